"""Test and benchmark helpers: synthetic multilingual paraphrase data and tiny local models.

``synthetic`` needs only the standard library; ``tiny_models`` imports torch, transformers,
tokenizers and ctranslate2 lazily, when a model is first built or located.
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
