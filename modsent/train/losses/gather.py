"""Rows of every rank, in rank order, with gradients flowing back: the global batch for in-batch negatives."""

from __future__ import annotations

import torch
import torch.distributed as dist

from modsent.train.distributed import all_gather_with_grad

__all__ = ["gather_rows"]


def gather_rows(tensor: torch.Tensor, across_ranks: bool = True) -> tuple[torch.Tensor, int]:
    """``(rows of all ranks concatenated, index of this rank's first row in them)``.

    Every rank must pass the same number of rows. Rank ``r``'s rows come at
    ``[r * rows, (r + 1) * rows)``, so local row ``i`` is global row ``offset + i``; gradients of
    every rank's loss reach the rank that computed each row. One process (or
    ``across_ranks=False``): ``(tensor, 0)``.

    >>> gathered, offset = gather_rows(torch.ones(4, 8))
    >>> gathered.shape, offset
    (torch.Size([4, 8]), 0)
    """
    if not across_ranks or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor, 0
    return all_gather_with_grad(tensor), dist.get_rank() * tensor.shape[0]
