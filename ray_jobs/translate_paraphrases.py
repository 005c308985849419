#!/usr/bin/env python
# Usage: python ray_jobs/translate_paraphrases.py --config configs/translate.yaml [key.sub=value ...]
#        ray job submit --working-dir . -- python ray_jobs/translate_paraphrases.py --config configs/translate.yaml
#        (or ray_jobs/submit_translate.sh configs/translate.yaml)
"""Thin Ray job entry point for :func:`modsent.translate.run_translate`.

Under ``ray job submit`` the job connects to its cluster (``RAY_ADDRESS`` is set); run directly,
it starts a bounded local Ray. Exit status 2 with one line on stderr for bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path

# `ray job submit --working-dir .` ships this checkout without installing it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# CTranslate2 before Ray connects. Imported later in a Ray Job's driver (after ray.init joined a 2-node
# cluster), the oneMKL inside libctranslate2 stopped the driver at load time with "Intel oneMKL FATAL
# ERROR: Cannot load .../libctranslate2-*.so" (exit 2) in 4 of 5 runs (ctranslate2 4.8.5, ray 2.60.0);
# imported first, in none of 3 (tests/translate/test_ray_jobs.py submits this job to such a cluster).
import ctranslate2  # noqa: E402,F401

from modsent.config import config_job_main  # noqa: E402
from modsent.translate import TranslateConfig, run_translate  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    return config_job_main(
        "translate_paraphrases", "Translate paraphrase corpora with CTranslate2 NLLB on Ray Data.", TranslateConfig,
        run_translate, argv)


if __name__ == "__main__":
    sys.exit(main())
