"""The training settings every recipe nests in its own config (``adapt.trainer``, ``train.trainer`` …)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Literal, Optional

from modsent.errors import ModsentError

Precision = Literal["auto", "bf16", "bf16_mixed", "fp16", "fp32"]
Schedule = Literal["constant", "warmup_linear"]

#: Fields that change where and how often things are written, not what is trained: a checkpoint
#: written under one value can be resumed under another.
BOOKKEEPING_FIELDS = frozenset(
    {"output_dir", "resume", "save_every", "eval_every", "log_every", "eval_at_start", "stop_at_step",
     "keep_checkpoints", "progress_bar"}
)


class BatchSizeError(ModsentError):
    """The global batch cannot be split evenly over the ranks and accumulation steps."""


@dataclass
class TrainerConfig:
    """How to optimise: DeepSpeed config, precision, optimiser, schedule, run length, outputs, resume.

    ``ds_config`` is a JSON file or the name of a bundled one (``modsent configs list``)
    (``zero0`` … ``zero3``, ``zero3_offload``). Batch sizes, accumulation, clipping and precision
    come from here and are written into the DeepSpeed config; the JSON holds only ZeRO settings.

    ``precision``:

    - ``fp32``: everything in float32 — what the reference trains with (the paper's setting).
    - ``bf16`` / ``fp16``: DeepSpeed's mixed precision. The engine casts the *whole* module to
      that dtype (frozen parts too: alignment's frozen target encoder then runs in bf16, while
      the pivot, outside the engine, stays fp32) and keeps float32 master weights of the
      trainable parameters in the optimizer. Halves parameter memory (ZeRO partitions).
    - ``bf16_mixed``: weights stay float32 — trainable and frozen alike, each module in the dtype
      it was loaded in — and each training forward runs under ``torch.autocast(bfloat16)``: bf16
      matmuls, float32 weights, gradients, optimizer and loss scores; evaluation runs in float32.
      Alignment's pivot always runs in float32. Measured on the CPU accelerator: the same held-out
      retrieval as fp32 within one point (tests/align/test_precision.py).
    - ``auto``: ``bf16`` on a CUDA device that supports it (else ``fp16``), ``fp32`` on CPU.

    Run length: ``max_steps`` optimiser steps when set, otherwise ``epochs`` passes over the data.
    ``global_batch_size`` is what one optimiser step sees, summed over every rank and accumulation
    step — the number papers report. Each rank's micro-batch is ``global_batch_size / (ranks ×
    grad_accum)`` (:meth:`micro_batch`), so the same config trains the same model, with the same
    steps per epoch, on 1, 2 or 8 ranks (up to reduction order).

    ``resume``: ``"auto"`` continues from the newest complete checkpoint in ``output_dir`` (or
    starts fresh if there is none), ``"none"`` always starts fresh, anything else is the path of
    one checkpoint directory. ``stop_at_step`` ends the run early after checkpointing (for
    time-sliced jobs); a later run with the same config resumes and finishes it.
    ``keep_checkpoints``: how many of the newest checkpoints to keep (0 keeps all).

    >>> TrainerConfig(lr=1e-4, max_steps=100).schedule
    'warmup_linear'
    """

    ds_config: str = "zero2"
    zero_stage: Optional[int] = None
    precision: Precision = "auto"
    lr: float = 5e-5
    adam_eps: float = 1e-8
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    weight_decay: float = 0.01
    schedule: Schedule = "warmup_linear"
    warmup_steps: int = 0
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    global_batch_size: int = 8
    max_steps: Optional[int] = None
    epochs: float = 1.0
    seed: int = 42
    save_every: int = 1000
    eval_every: int = 500
    log_every: int = 10
    eval_at_start: bool = True
    # Where the training core writes; the stage sets it from its own output_dir (bind_output_dir), so it is
    # neither dumped nor a key of a stage's YAML.
    output_dir: str = field(default="runs/train", metadata={"dumped": False})
    resume: str = "auto"
    keep_checkpoints: int = 2
    stop_at_step: Optional[int] = None
    progress_bar: bool = True

    def __post_init__(self) -> None:
        if self.zero_stage is not None and self.zero_stage not in (0, 1, 2, 3):
            raise ValueError(
                f"trainer.zero_stage must be 0, 1, 2 or 3 (or null to keep the JSON's), got {self.zero_stage}")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ValueError(f"trainer.betas must be two numbers in [0, 1), got {self.betas}")
        positive = {"lr": self.lr, "adam_eps": self.adam_eps, "grad_accum": self.grad_accum,
                    "global_batch_size": self.global_batch_size, "log_every": self.log_every}
        for name, value in positive.items():
            if value <= 0:
                raise ValueError(f"trainer.{name} must be > 0, got {value}")
        non_negative = {"weight_decay": self.weight_decay, "warmup_steps": self.warmup_steps,
                        "max_grad_norm": self.max_grad_norm, "save_every": self.save_every,
                        "eval_every": self.eval_every, "keep_checkpoints": self.keep_checkpoints}
        for name, value in non_negative.items():
            if value < 0:
                raise ValueError(f"trainer.{name} must be >= 0, got {value}")
        if self.max_steps is not None and self.max_steps <= 0:
            raise ValueError(
                f"trainer.max_steps must be > 0 (or null to train for trainer.epochs), got {self.max_steps}")
        if self.max_steps is None and self.epochs <= 0:
            raise ValueError(f"trainer.epochs must be > 0 when trainer.max_steps is null, got {self.epochs}")
        if self.stop_at_step is not None and self.stop_at_step <= 0:
            raise ValueError(f"trainer.stop_at_step must be > 0 (or null), got {self.stop_at_step}")

    def micro_batch(self, world_size: int) -> int:
        """Examples per rank per forward pass: ``global_batch_size / (world_size × grad_accum)``.

        >>> TrainerConfig(global_batch_size=128, grad_accum=2).micro_batch(world_size=4)
        16
        """
        split = world_size * self.grad_accum
        if self.global_batch_size % split:
            lower, upper = self.global_batch_size // split * split, (self.global_batch_size // split + 1) * split
            raise BatchSizeError(
                f"trainer.global_batch_size={self.global_batch_size} does not divide into {world_size} rank(s) × "
                f"trainer.grad_accum={self.grad_accum}; set it to a multiple of {split} (e.g. "
                f"{upper if lower == 0 else f'{lower} or {upper}'}) or change grad_accum")
        return self.global_batch_size // split

    def total_steps(self, batches_per_epoch: int) -> int:
        """Optimiser steps of the run: ``max_steps``, else ``epochs`` passes of ``batches_per_epoch``
        micro-batch rounds (``global_batch_size / grad_accum`` rows each over all ranks).

        >>> TrainerConfig(epochs=2, grad_accum=2).total_steps(batches_per_epoch=15)
        15
        """
        if self.max_steps is not None:
            return self.max_steps
        return max(1, math.ceil(self.epochs * batches_per_epoch / self.grad_accum))


def bind_output_dir(output_dir: str | os.PathLike | None, trainer: TrainerConfig, recipe_default: str) -> str:
    """A training stage's one run directory: ``output_dir``, set into ``trainer.output_dir`` where the core writes.

    Built in Python with ``trainer.output_dir`` alone (the earlier API), that one is taken; both, differing, is an error.
    """
    given = trainer.output_dir if trainer.output_dir not in (recipe_default, TrainerConfig.output_dir) else None
    if output_dir is not None and given is not None and str(given) != str(output_dir):
        raise ValueError(f"set the run directory once, as output_dir (got output_dir={str(output_dir)!r} and "
                         f"trainer.output_dir={given!r})")
    trainer.output_dir = str(output_dir if output_dir is not None else given or recipe_default)
    return trainer.output_dir
