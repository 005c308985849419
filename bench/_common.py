"""What every bench script does before numpy/torch load: parse ``--quick``/``--threads``, pin the
thread pools, stay offline, and make the checkout importable (``python bench/NAME.py`` from the root)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]


def bench_args(description: str, quick_help: str, threads_help: str = "torch threads",
               extra: Callable[[argparse.ArgumentParser], None] | None = None,
               env: dict[str, str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--threads", type=int, default=1, help=threads_help)
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    # Thread pools size themselves when numpy/torch load, so this must run before those imports.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)
    for key, value in {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **(env or {})}.items():
        os.environ.setdefault(key, value)
    sys.path.insert(0, str(REPO))
    return args
