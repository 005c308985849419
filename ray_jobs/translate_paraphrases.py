#!/usr/bin/env python
# Usage: python ray_jobs/translate_paraphrases.py --config configs/translate.yaml [key.sub=value ...]
#        ray job submit --working-dir . -- python ray_jobs/translate_paraphrases.py --config configs/translate.yaml
#        (or ray_jobs/submit_translate.sh configs/translate.yaml)
"""Thin Ray job entry point for :func:`modsent.translate.run_translate`.

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
from modsent.translate import TranslateConfig, run_translate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Translate paraphrase corpora with CTranslate2 NLLB on Ray Data.")
    parser.add_argument("--config", "-c", required=True, help="YAML config (see configs/translate.yaml)")
    parser.add_argument("overrides", nargs="*", metavar="key.sub=value")
    args = parser.parse_args(argv)
    try:
        run_translate(load_config(TranslateConfig, args.config, args.overrides))
    except ModsentError as err:
        print(f"translate_paraphrases: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
