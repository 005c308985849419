"""Resumable, rank-sharded batch iteration.

A recipe gives the trainer any object that follows :class:`ResumableBatches`: an endless iterator
of this rank's micro-batches whose position can be saved and restored. :class:`ShardedBatches`
is the standard one: a seeded shuffle per epoch, one slice of every global batch per rank, and a
seeded generator per micro-batch for whatever randomness the collate function needs (MLM
masking), so a resumed run sees exactly the batches an uninterrupted one would have.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Protocol, runtime_checkable

import torch

from modsent.errors import ModsentError

__all__ = ["ResumableBatches", "ShardedBatches", "derive_seed", "TooLittleDataError", "BatchStateError"]


class TooLittleDataError(ModsentError):
    """The data does not fill even one global batch."""


class BatchStateError(ModsentError):
    """A saved data position belongs to other data or another number of ranks."""


def derive_seed(*parts: Any) -> int:
    """A 63-bit seed from any mix of ints and strings, identical in every process and Python run.

    >>> derive_seed(42, "mask", 3) == derive_seed(42, "mask", 3) != derive_seed(42, "mask", 4)
    True
    """
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@runtime_checkable
class ResumableBatches(Protocol):
    """What the trainer needs from a recipe's training data (one object per rank).

    ``next()`` returns this rank's next micro-batch (any structure of tensors) forever, epoch after
    epoch; every rank must return the same number of batches per epoch. ``batches_per_epoch`` is
    that number (the trainer uses it for ``trainer.epochs`` and to report the epoch).
    ``state_dict()``/``load_state_dict()`` save and restore the position (plain Python values).
    An optional ``epoch_progress`` attribute (fractional epochs done) is logged as ``epoch``.
    """

    batches_per_epoch: int

    def __iter__(self) -> "ResumableBatches": ...

    def __next__(self) -> Any: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class ShardedBatches:
    """Micro-batches of example indices, shuffled per epoch and split between ranks.

    ``collate(indices, generator)`` turns this rank's ``micro_batch_size`` example indices into a
    batch; ``generator`` is a ``torch.Generator`` seeded by (seed, epoch, batch, rank), so random
    choices in ``collate`` repeat exactly after a resume. Each epoch uses
    ``num_examples // (micro_batch_size × world_size)`` global batches; the remainder is dropped
    (a different remainder each epoch) so every rank takes the same number of steps.

    >>> batches = ShardedBatches(10, 2, lambda idx, gen: idx, rank=0, world_size=2, seed=0)
    >>> batches.batches_per_epoch, len(next(batches))
    (2, 2)
    """

    def __init__(
        self,
        num_examples: int,
        micro_batch_size: int,
        collate: Callable[[list[int], torch.Generator], Any],
        *,
        rank: int,
        world_size: int,
        seed: int,
        shuffle: bool = True,
    ) -> None:
        global_batch = micro_batch_size * world_size
        if num_examples < global_batch:
            raise TooLittleDataError(
                f"{num_examples} training examples do not fill one global batch of {global_batch} "
                f"(micro_batch_size {micro_batch_size} × {world_size} ranks); "
                "add data or lower trainer.global_batch_size"
            )
        self.num_examples = num_examples
        self.micro_batch_size = micro_batch_size
        self.collate = collate
        self.rank, self.world_size = rank, world_size
        self.seed, self.shuffle = seed, shuffle
        self.batches_per_epoch = num_examples // global_batch
        self.epoch = 0
        self.position = 0  # batches of this epoch already returned
        self._order: torch.Tensor | None = None
        self._order_epoch = -1

    def __iter__(self) -> "ShardedBatches":
        return self

    def _epoch_order(self) -> torch.Tensor:
        if self._order_epoch != self.epoch:
            if self.shuffle:
                generator = torch.Generator().manual_seed(derive_seed(self.seed, "order", self.epoch))
                self._order = torch.randperm(self.num_examples, generator=generator)
            else:
                self._order = torch.arange(self.num_examples)
            self._order_epoch = self.epoch
        assert self._order is not None
        return self._order

    def indices_for(self, position: int) -> list[int]:
        """This rank's example indices for batch ``position`` of the current epoch."""
        start = (position * self.world_size + self.rank) * self.micro_batch_size
        return self._epoch_order()[start:start + self.micro_batch_size].tolist()

    def __next__(self) -> Any:
        indices = self.indices_for(self.position)
        generator = torch.Generator().manual_seed(derive_seed(self.seed, "batch", self.epoch, self.position, self.rank))
        batch = self.collate(indices, generator)
        self.position += 1
        if self.position == self.batches_per_epoch:
            self.epoch, self.position = self.epoch + 1, 0
        return batch

    @property
    def epoch_progress(self) -> float:
        """Epochs completed, fractional (``1.5`` = halfway through the second epoch)."""
        return self.epoch + self.position / self.batches_per_epoch

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.position, "num_examples": self.num_examples,
                "micro_batch_size": self.micro_batch_size, "world_size": self.world_size, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("num_examples", "micro_batch_size", "world_size", "seed"):
            if state.get(key) != getattr(self, key):
                raise BatchStateError(
                    f"saved data position has {key}={state.get(key)!r} but this run has {getattr(self, key)!r}; "
                    "resume with the same data, batch size, seed and number of ranks"
                )
        self.epoch, self.position = int(state["epoch"]), int(state["position"])

