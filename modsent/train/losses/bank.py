"""Bank negatives: each query must pick its own positive over every row of a fixed bank of candidate embeddings.

For queries ``q`` and their positives ``p`` (both ``(n, dim)``) and a bank ``B`` (``(m, dim)``, no
gradient), query ``i`` is scored against ``[p_i, B_0 … B_{m-1}]`` (``scale * cos``) and the loss
is the cross-entropy with target 0, averaged over queries. ``positive_rows[i]`` is the bank row
holding ``p_i`` itself (or -1): that row is masked, so a positive never counts as its own
negative.

Why a bank: when the positives come from a frozen encoder (alignment's English pivot), their
embeddings never change, so every sentence of the training data can serve as a negative in
every step at the cost of one ``(n, m)`` matrix product — thousands of negatives where in-batch
MNRL has the batch. It is added to, not substituted for, in-batch MNRL.

>>> import torch
>>> q = torch.eye(3)
>>> round(bank_loss(q, q, torch.eye(3), torch.tensor([0, 1, 2]), scale=20.0).item(), 6)  # own rows masked
0.0
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from modsent.train.losses.mnrl import _full_precision

__all__ = ["bank_loss"]


def bank_loss(queries: torch.Tensor, positives: torch.Tensor, bank: torch.Tensor, positive_rows: torch.Tensor,
              scale: float) -> torch.Tensor:
    """Mean cross-entropy of each query picking its positive over the bank (see the module docstring).

    ``positive_rows``: ``(n,)`` long, the bank row equal to each positive, or -1 when the bank lacks it.
    Scores are computed in float32 at least, whatever the inputs' precision.
    """
    if queries.shape != positives.shape or bank.shape[-1] != queries.shape[-1] or positive_rows.shape != queries.shape[:1]:
        raise ValueError(f"queries and positives (n, dim), bank (m, dim) and positive_rows (n,) do not fit: got "
                         f"{tuple(queries.shape)}, {tuple(positives.shape)}, {tuple(bank.shape)}, {tuple(positive_rows.shape)}")
    with torch.autocast(queries.device.type, enabled=False):
        q = F.normalize(_full_precision(queries), dim=-1)
        own = (q * F.normalize(_full_precision(positives), dim=-1)).sum(dim=-1, keepdim=True)
        others = q @ F.normalize(bank.to(q.dtype), dim=-1).T
        rows = torch.arange(others.shape[0], device=others.device)
        present = positive_rows >= 0
        others[rows[present], positive_rows[present]] = float("-inf")
        logits = scale * torch.cat([own, others], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))
