"""MultipleNegativesRankingLoss: each anchor must pick its own positive among every positive (and hard negative) of the batch.

For anchors ``a``, positives ``p`` and optional hard-negative columns ``n1, n2 …`` (all
``(batch, dim)``), the scores are ``scale * cos(a_i, c_j)`` over the candidates
``c = [p; n1; n2; …]`` and the loss is the cross-entropy with target ``j = i``, averaged over
anchors. On several ranks the candidates of every rank are gathered (with gradients), so each
anchor also sees every other rank's positives as negatives and the loss over ``world × batch``
pairs equals the one-process loss over the same global batch. ``symmetric=True`` adds the
reverse task (each positive picks its anchor among all anchors) and averages the two.

>>> import torch
>>> a, p = torch.eye(3), torch.eye(3)
>>> round(mnrl_loss(a, p, scale=20.0).item(), 6)  # diagonal scores 20, others 0
0.0
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from modsent.train.losses.gather import gather_rows

__all__ = ["mnrl_loss", "MultipleNegativesRankingLoss"]

DEFAULT_SCALE = 20.0  # the reference's (and sentence-transformers') similarity scale


def _full_precision(tensor: torch.Tensor) -> torch.Tensor:
    # Scores of 20 × cosine in bf16 would be off by ~0.1: compute the loss in float32 at least.
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


def _cosine_scores(queries: torch.Tensor, candidates: torch.Tensor, scale: float) -> torch.Tensor:
    # Outside any bf16 autocast of the forward (precision: bf16_mixed): the scores stay float32.
    with torch.autocast(queries.device.type, enabled=False):
        return scale * F.normalize(queries, dim=-1) @ F.normalize(candidates, dim=-1).T


def mnrl_loss(anchors: torch.Tensor, positives: torch.Tensor, negatives: Sequence[torch.Tensor] = (),
              scale: float = DEFAULT_SCALE, symmetric: bool = False, across_ranks: bool = True) -> torch.Tensor:
    """The MNRL loss of this rank's ``(batch, dim)`` anchors against the global batch (see the module docstring).

    ``negatives`` are hard-negative columns aligned with the anchors (row ``i`` is anchor
    ``i``'s hard negative). Returns a scalar: the mean over this rank's anchors. Every rank must
    call it with the same batch size and number of negative columns.
    """
    if anchors.shape != positives.shape or any(n.shape != anchors.shape for n in negatives):
        shapes = [tuple(t.shape) for t in (anchors, positives, *negatives)]
        raise ValueError(f"anchors, positives and negatives must have one shape (batch, dim); got {shapes}")
    anchors, positives = _full_precision(anchors), _full_precision(positives)
    negatives = [_full_precision(n) for n in negatives]
    all_positives, offset = gather_rows(positives, across_ranks)
    candidates = [all_positives] + [gather_rows(n, across_ranks)[0] for n in negatives]
    labels = torch.arange(offset, offset + anchors.shape[0], device=anchors.device)
    loss = F.cross_entropy(_cosine_scores(anchors, torch.cat(candidates), scale), labels)
    if symmetric:
        all_anchors, _ = gather_rows(anchors, across_ranks)
        loss = (loss + F.cross_entropy(_cosine_scores(positives, all_anchors, scale), labels)) / 2
    return loss


class MultipleNegativesRankingLoss(nn.Module):
    """:func:`mnrl_loss` as a module: ``loss(anchors, positives, *hard_negative_columns)``.

    >>> loss = MultipleNegativesRankingLoss(scale=20.0, symmetric=True)
    >>> loss(torch.randn(4, 8), torch.randn(4, 8)).shape
    torch.Size([])
    """

    def __init__(self, scale: float = DEFAULT_SCALE, symmetric: bool = False, across_ranks: bool = True) -> None:
        super().__init__()
        self.scale, self.symmetric, self.across_ranks = float(scale), bool(symmetric), bool(across_ranks)

    def forward(self, anchors: torch.Tensor, positives: torch.Tensor, *negatives: torch.Tensor) -> torch.Tensor:
        return mnrl_loss(anchors, positives, negatives, scale=self.scale, symmetric=self.symmetric,
                         across_ranks=self.across_ranks)

    def extra_repr(self) -> str:
        return f"scale={self.scale}, symmetric={self.symmetric}, across_ranks={self.across_ranks}"
