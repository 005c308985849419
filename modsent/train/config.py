"""The config of ``modsent train`` (contrastive training; the stage is :mod:`modsent.train.stage`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional

from modsent.errors import ModsentError
from modsent.languages import resolve_many
from modsent.models.pooling import PoolingMode
from modsent.train.paraphrase_batches import MAX_LANGS_PER_BATCH, TrainType
from modsent.io import RunDir
from modsent.train.trainer_config import TrainerConfig, bind_output_dir

__all__ = ["ContrastiveConfig", "ContrastiveLossConfig", "ContrastiveConfigError", "parallel_pair", "artifact"]

TRAIN_OUTPUT = "runs/train"


class ContrastiveConfigError(ModsentError):
    """Settings of ``modsent train`` that cannot work together."""


def _default_trainer() -> TrainerConfig:
    # The reference's fit(): AdamW lr 2e-5, eps 1e-6, weight decay 0.01, clipping 1, constant LR, one epoch.
    return TrainerConfig(output_dir=TRAIN_OUTPUT, ds_config="zero1", lr=2e-5, adam_eps=1e-6, schedule="constant",
                         warmup_steps=0, global_batch_size=32, epochs=1.0, save_every=1000, eval_every=1000)


@dataclass
class ContrastiveLossConfig:
    """MNRL settings: similarity ``scale``; ``symmetric`` adds the positive→anchor task; ``cached``
    computes the loss GradCache-style in mini-batches of ``mini_batch_size`` rows (same loss and
    gradients, memory of one mini-batch; needs ZeRO stage 0 or 1)."""

    scale: float = 20.0
    symmetric: bool = False
    cached: bool = False
    mini_batch_size: int = 32

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError(f"loss.scale must be > 0, got {self.scale}")
        if self.mini_batch_size < 1:
            raise ValueError(f"loss.mini_batch_size must be >= 1, got {self.mini_batch_size}")


@dataclass
class ContrastiveConfig:
    """Config of ``modsent train`` (YAML keys = field names; ``trainer.lr=1e-4`` on the command line).

    ``model``: encoder directory — a ``transformers`` model (e.g. ``modsent adapt``'s
    ``artifacts/model``), an NLLB/M2M100 translation model (its encoder is used) or a
    sentence-transformers directory. ``corpus``: paraphrase corpus (``modsent.corpus`` layouts);
    ``datasets``: the dataset names to use (empty = all). ``languages``: languages to train on, any
    code the registry resolves. ``trainer.global_batch_size`` pairs per step, on any number of
    ranks; every anchor sees the positives of the whole batch (gathered from every rank) as
    negatives. ``trainer.grad_accum`` > 1 splits the step into batches with fewer negatives
    each: prefer ``loss.cached``. ``parallel``: directories of line-aligned text named
    ``<lang1>-<lang2>`` holding ``<lang1>.txt`` and ``<lang2>.txt`` (e.g. ``pypi:ui-parallel``'s
    ``train/eng_Latn-deu_Latn``), each one more dataset whose rows pair a line with its
    translation (first ``max_parallel_pairs`` lines); with them, and with an English-only corpus in a
    ``cross`` run (the multilingual Single_c baseline), set ``partial_datasets: true`` so each
    dataset trains on the languages it holds. ``eval_corpus``: held-out
    paraphrases; the first ``eval_rows`` rows of each of its datasets measure anchor→positive
    retrieval accuracy.
    """

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"langs": "languages", "trainer.output_dir": "output_dir"}

    model: str
    corpus: str
    languages: list[str]
    output_dir: Optional[str] = None  # the run directory: config.yaml, checkpoints/, metrics/, artifacts/model
    train_type: TrainType = "mono"
    datasets: list[str] = field(default_factory=list)
    parallel: list[str] = field(default_factory=list)
    max_parallel_pairs: Optional[int] = None
    partial_datasets: bool = False
    max_seq_length: int = 64
    pooling: Optional[PoolingMode] = None  # null: the model's own (a sentence-transformers dir's, else mean)
    loss: ContrastiveLossConfig = field(default_factory=ContrastiveLossConfig)
    group_by_length: bool = False
    length_group_batches: int = 16
    max_langs_per_batch: int = MAX_LANGS_PER_BATCH
    use_hard_negatives: bool = True
    gradient_checkpointing: bool = False
    eval_corpus: Optional[str] = None
    eval_rows: int = 500
    eval_batch_size: Optional[int] = None
    trust_remote_code: bool = False  # run Python a model directory ships (auto_map): only for a directory you trust
    trainer: TrainerConfig = field(default_factory=_default_trainer)

    def __post_init__(self) -> None:
        self.output_dir = bind_output_dir(self.output_dir, self.trainer, TRAIN_OUTPUT)
        if self.max_seq_length < 2:
            raise ValueError(f"max_seq_length must be at least 2, got {self.max_seq_length}")
        if self.max_parallel_pairs is not None and self.max_parallel_pairs < 1:
            raise ValueError(f"max_parallel_pairs must be >= 1 or null, got {self.max_parallel_pairs}")
        for directory in self.parallel:
            parallel_pair(directory)  # a clear error now, not when the ranks start
        if self.eval_rows < 1:
            raise ValueError(f"eval_rows must be >= 1, got {self.eval_rows}")
        if self.eval_batch_size is not None and self.eval_batch_size < 1:
            raise ValueError(f"eval_batch_size must be >= 1 (or null), got {self.eval_batch_size}")


def parallel_pair(directory: str | Path) -> tuple[str, str]:
    """The two languages of a parallel-text directory, from its name ``<lang1>-<lang2>``."""
    name = Path(directory).name
    parts = name.split("-")
    try:
        if len(parts) != 2:
            raise ValueError(name)
        first, second = (lang.code for lang in resolve_many(parts))
    except (ValueError, ModsentError):
        raise ContrastiveConfigError(f"parallel: {directory}: name the directory <lang1>-<lang2> (e.g. "
                                     "eng_Latn-deu_Latn), holding <lang1>.txt and <lang2>.txt") from None
    return first, second


def artifact(output_dir: str | Path) -> Path:
    """What ``modsent train`` exports under ``output_dir``: the sentence encoder (sentence-transformers layout)."""
    return RunDir(Path(output_dir)).artifacts / "model"
