"""Test and benchmark helpers: synthetic multilingual paraphrase data and tiny local models.

``synthetic`` needs only the standard library; ``tiny_models`` imports torch, transformers,
tokenizers and ctranslate2 lazily, when a model is first built or located.

Why they ship in the package rather than in ``tests/``: the benchmarks (``bench/``) and users' own
tests build the same tiny models and synthetic data (documented API: :mod:`.synthetic`,
:mod:`.tiny_models`, :mod:`.ranks` for launching ranks in a clean environment, :mod:`.hostile_models`
for ``bench/bad_inputs.py``); and the suite runs with ``--import-mode=importlib``, where test modules
cannot import one another, so the fixtures the tests share (:mod:`.catalogues`, :mod:`.sentences`)
live here too. Nothing else in ``modsent`` imports this package (``tests/test_architecture.py``).
"""

from __future__ import annotations

from modsent.testing.synthetic import (
    synthetic_paraphrase_rows,
    synthetic_sentences,
    translate_synthetic,
    write_parallel_text,
    write_synthetic_corpus,
)
from modsent.testing.tiny_models import (
    save_perturbed_encoder,
    save_random_adapter,
    save_tiny_modular,
    tiny_bert_mlm,
    tiny_nllb,
    tiny_nllb_ct2,
)

__all__ = [
    "save_perturbed_encoder",
    "save_random_adapter",
    "save_tiny_modular",
    "synthetic_paraphrase_rows",
    "synthetic_sentences",
    "tiny_bert_mlm",
    "tiny_nllb",
    "tiny_nllb_ct2",
    "translate_synthetic",
    "write_parallel_text",
    "write_synthetic_corpus",
]
