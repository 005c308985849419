"""The config of ``modsent adapt`` (continued masked-LM training; the stage is :mod:`modsent.adapt.stage`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional

from modsent.errors import ModsentError
from modsent.io import RunDir
from modsent.train.trainer_config import TrainerConfig, bind_output_dir

__all__ = ["AdaptConfig", "ModelSourceError", "artifact"]

ADAPT_OUTPUT = "runs/adapt"


class ModelSourceError(ModsentError):
    """The source model or the new vocabulary cannot be loaded or do not fit together."""


def _default_trainer() -> TrainerConfig:
    # The reference recipe (the reference's train_mlm.py with its README's arguments): AdamW lr 5e-5,
    # weight decay 0, linear decay to 0 without warm-up, no gradient clipping, fp32, 128 blocks
    # per device x 2 accumulation steps, 3 epochs.
    return TrainerConfig(output_dir=ADAPT_OUTPUT, lr=5e-5, weight_decay=0.0, schedule="warmup_linear",
                         warmup_steps=0, max_grad_norm=0.0, precision="fp32", global_batch_size=256, grad_accum=2,
                         max_steps=None, epochs=3.0)


@dataclass
class AdaptConfig:
    """Config of ``modsent adapt`` (YAML keys = field names; ``trainer.lr=1e-4`` on the command line).

    ``model``: source masked-LM directory (``transformers`` format). ``vocab_dir``: output of
    ``modsent vocab`` or null to keep the source vocabulary. ``train_files``/``valid_files``:
    UTF-8 text, one sentence or paragraph per line (globs allowed); without ``valid_files``,
    ``valid_fraction`` of the packed blocks is held out (5%, the reference's split). ``eval_batch_size``
    defaults to the per-rank micro-batch (``trainer.global_batch_size / (ranks × grad_accum)``).

    The defaults are the reference's recipe: 256-token blocks of ``[CLS] line [SEP]`` sequences
    (:mod:`modsent.adapt.data`) and the trainer settings of ``_default_trainer`` (3 epochs,
    256 blocks per optimizer step as 128 × 2 accumulation steps, lr 5e-5 decaying linearly, no
    warm-up, no weight decay, no clipping, fp32). Override any of them under ``trainer:``.
    """

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"trainer.output_dir": "output_dir"}

    model: str
    train_files: list[str]
    output_dir: Optional[str] = None  # the run directory: config.yaml, checkpoints/, metrics/, artifacts/model
    vocab_dir: Optional[str] = None
    valid_files: list[str] = field(default_factory=list)
    valid_fraction: float = 0.05
    max_seq_length: int = 256
    mlm_probability: float = 0.15
    eval_batch_size: Optional[int] = None
    trust_remote_code: bool = False  # run Python a model directory ships (auto_map): only for a directory you trust
    trainer: TrainerConfig = field(default_factory=_default_trainer)

    def __post_init__(self) -> None:
        self.output_dir = bind_output_dir(self.output_dir, self.trainer, ADAPT_OUTPUT)
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        if self.max_seq_length < 3:
            raise ValueError(f"max_seq_length must be at least 3, got {self.max_seq_length}")
        if self.eval_batch_size is not None and self.eval_batch_size <= 0:
            raise ValueError(f"eval_batch_size must be > 0 (or null), got {self.eval_batch_size}")


def artifact(output_dir: str | Path) -> Path:
    """What ``modsent adapt`` exports under ``output_dir``: the adapted masked-LM directory."""
    return RunDir(Path(output_dir)).artifacts / "model"
