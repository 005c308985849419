#!/usr/bin/env python
# Usage: python ray_jobs/mine_bitext.py --config configs/mine.yaml [key.sub=value ...]
#        ray job submit --working-dir . -- python ray_jobs/mine_bitext.py --config configs/mine.yaml
"""Thin Ray job entry point for :func:`modsent.mine.run_mine`.

Under ``ray job submit`` the job connects to its cluster (``RAY_ADDRESS`` is set); run directly,
it starts a bounded local Ray. Exit status 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `ray job submit --working-dir .` ships this checkout without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modsent.config import config_job_main  # noqa: E402
from modsent.mine import MineConfig, run_mine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return config_job_main(
        "mine_bitext", "Mine translation pairs from two monolingual collections.", MineConfig, run_mine, argv)


if __name__ == "__main__":
    sys.exit(main())
