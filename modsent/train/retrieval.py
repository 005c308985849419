"""Held-out retrieval accuracy during training: embed texts through the engine, then top-1 retrieval.

The measure the contrastive stages report while they train (``modsent train``: anchor → positive;
``modsent align``: target sentence → its English translation). Every rank embeds every held-out text,
so every rank runs the same forward passes, as ZeRO-3 needs, and gets the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

__all__ = ["embed_texts", "top1_accuracy"]


def embed_texts(engine: Any, features_of: Callable[[list[str]], dict[str, torch.Tensor]], texts: Sequence[str],
                batch_size: int, device: torch.device) -> torch.Tensor:
    """Unit-length float32 embeddings (on the CPU) of ``texts``, ``batch_size`` at a time through ``engine``;
    ``features_of`` tokenizes a batch into the engine's keyword arguments."""
    chunks = []
    for start in range(0, len(texts), batch_size):
        features = features_of(list(texts[start:start + batch_size]))
        chunks.append(engine(**{key: value.to(device) for key, value in features.items()}).float().cpu())
    return F.normalize(torch.cat(chunks), dim=-1)


def top1_accuracy(queries: torch.Tensor, keys: torch.Tensor) -> tuple[float, float]:
    """(query → key, key → query) top-1 accuracy of unit rows where row i of each is the other's gold."""
    scores = queries @ keys.T
    gold = torch.arange(len(scores))
    return float((scores.argmax(dim=1) == gold).float().mean()), float((scores.argmax(dim=0) == gold).float().mean())
