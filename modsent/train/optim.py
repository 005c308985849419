"""Optimizer parameter groups (trainable parameters only) and learning-rate schedules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from modsent.errors import ModsentError

__all__ = ["trainable_param_groups", "LRSchedule", "NoTrainableParametersError"]


class NoTrainableParametersError(ModsentError):
    """Every parameter of the model is frozen, so there is nothing to optimise."""


def trainable_param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups over the parameters with ``requires_grad``: matrices decay, biases and norms do not.

    Frozen parameters are left out, so an optimizer (and ZeRO's partitions of its state) only ever
    holds what is trained — e.g. an adapter on a frozen encoder.

    >>> groups = trainable_param_groups(torch.nn.Linear(4, 2), weight_decay=0.01)
    >>> [(g["weight_decay"], len(g["params"])) for g in groups]
    [(0.01, 1), (0.0, 1)]
    """
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (decay if param.ndim >= 2 else no_decay).append(param)
    if not decay and not no_decay:
        raise NoTrainableParametersError(
            f"{type(model).__name__} has no parameter with requires_grad=True; unfreeze what should be trained"
        )
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return [group for group in groups if group["params"]]


@dataclass
class LRSchedule:
    """Multiplier of the peak learning rate for ``torch.optim.lr_scheduler.LambdaLR``.

    ``constant``: linear warm-up over ``warmup_steps`` steps, then 1. ``warmup_linear``: the same
    warm-up, then linear decay that reaches 0 just after step ``total_steps``. The argument is the
    number of optimizer steps already taken (LambdaLR's counter), so the first step uses
    ``1 / warmup_steps`` rather than wasting a step at learning rate 0.

    >>> schedule = LRSchedule("warmup_linear", warmup_steps=2, total_steps=6)
    >>> [round(schedule(step), 2) for step in range(6)]
    [0.5, 1.0, 1.0, 0.75, 0.5, 0.25]
    """

    kind: str
    warmup_steps: int
    total_steps: int

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "warmup_linear"):
            raise ValueError(f"unknown LR schedule {self.kind!r}; use constant or warmup_linear")

    def __call__(self, steps_done: int) -> float:
        if steps_done < self.warmup_steps:
            return (steps_done + 1) / self.warmup_steps
        if self.kind == "constant":
            return 1.0
        decay_steps = max(1, self.total_steps - self.warmup_steps)
        return max(0.0, (self.total_steps - steps_done) / decay_steps)
