"""Token embeddings -> one sentence embedding: mean (the reference's default), CLS or max pooling.

The modes and their on-disk names follow sentence-transformers' ``Pooling`` module, so a saved
model's ``1_Pooling/config.json`` means the same thing to both libraries.

>>> import torch
>>> hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]])
>>> mask = torch.tensor([[1, 1, 0]])
>>> pool(hidden, mask, "mean")
tensor([[2., 3.]])
"""

from __future__ import annotations

from typing import Literal, get_args

import torch

from modsent.errors import ModsentError

__all__ = ["PoolingMode", "POOLING_MODES", "PoolingError", "pool", "check_pooling_mode"]

PoolingMode = Literal["mean", "cls", "max"]
POOLING_MODES: tuple[str, ...] = get_args(PoolingMode)


class PoolingError(ModsentError):
    """An unknown pooling mode was requested."""


def check_pooling_mode(mode: str) -> PoolingMode:
    """Return ``mode`` if it is a supported pooling mode, else raise :class:`PoolingError`."""
    if mode not in POOLING_MODES:
        raise PoolingError(f"unknown pooling mode {mode!r}; use one of {', '.join(POOLING_MODES)}")
    return mode  # type: ignore[return-value]


def pool(token_embeddings: torch.Tensor, attention_mask: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """Pool ``(batch, seq, dim)`` token embeddings into ``(batch, dim)`` sentence embeddings.

    ``attention_mask`` is ``(batch, seq)`` with 1 for real tokens: padding never contributes.
    ``mean`` averages real tokens, ``cls`` takes the first token, ``max`` the element-wise maximum
    over real tokens.
    """
    check_pooling_mode(mode)
    if mode == "cls":
        return token_embeddings[:, 0]
    mask = attention_mask.unsqueeze(-1).to(token_embeddings.dtype)
    if mode == "mean":
        # clamp: an all-padding row (never produced by a tokenizer) gives zeros instead of NaN.
        return (token_embeddings * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
    lowest = torch.finfo(token_embeddings.dtype).min
    return token_embeddings.masked_fill(mask == 0, lowest).max(dim=1).values
