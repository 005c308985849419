#!/usr/bin/env python
# Usage: python ray_jobs/mine_bitext.py --config configs/mine.yaml [key.sub=value ...]
#        ray job submit --working-dir . -- python ray_jobs/mine_bitext.py --config configs/mine.yaml
"""Thin Ray job entry point for :func:`modsent.mine.run_mine`.

Under ``ray job submit`` the job connects to its cluster (``RAY_ADDRESS`` is set); run directly,
it starts a bounded local Ray. Exit status 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# `ray job submit --working-dir .` ships this checkout without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modsent.config import load_config  # noqa: E402
from modsent.errors import ModsentError  # noqa: E402
from modsent.mine import MineConfig, run_mine  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Mine translation pairs from two monolingual collections.")
    parser.add_argument("--config", "-c", required=True, help="YAML config (see configs/mine.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args(argv)
    try:
        run_mine(load_config(MineConfig, args.config, args.overrides))
    except ModsentError as err:
        print(f"mine_bitext: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
