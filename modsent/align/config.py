"""The config of ``modsent align`` (the adapter on a frozen encoder; the stage is :mod:`modsent.align.stage`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Optional

from modsent.align.pivot_cache import CacheDtype
from modsent.errors import ModsentError
from modsent.io import RunDir
from modsent.languages import resolve, single_language
from modsent.models.adapter import ParBnConfig
from modsent.train.trainer_config import TrainerConfig, bind_output_dir

__all__ = ["AlignConfig", "AlignDataConfig", "AlignDataError", "ADAPTER_EXPORT_NAME", "artifact"]

DEFAULT_TRAINER_OUTPUT = "runs/align"
ADAPTER_EXPORT_NAME = "adapter"


class AlignDataError(ModsentError):
    """The alignment data is missing, lacks a language, or has nothing to train on."""


def _default_trainer() -> TrainerConfig:
    # The reference: AdamW lr 1e-4, eps 1e-6, weight decay 0.01, constant LR, batch 128, 1 epoch, clip 1.0.
    # ZeRO-0: the only trained weights are the adapter's, too few to be worth partitioning.
    return TrainerConfig(ds_config="zero0", lr=1e-4, adam_eps=1e-6, weight_decay=0.01, schedule="constant",
                         warmup_steps=0, global_batch_size=128, epochs=1.0, max_grad_norm=1.0,
                         output_dir=DEFAULT_TRAINER_OUTPUT, save_every=1000, eval_every=500)


@dataclass
class AlignDataConfig:
    """Training and evaluation data (paths; at least one of ``paraphrase`` and ``parallel``).

    ``paraphrase``: paraphrase corpora or datasets (reference layout, JSONL, Parquet) with the pivot's
    and the target's columns. ``parallel``: directories with ``<pivot>.txt`` and ``<lang>.txt``
    (any code spelling the registry resolves, e.g. ``deu.txt``). ``max_parallel_pairs``: read
    only the first N line pairs of each ``parallel`` directory (short runs; ``pypi:ui-parallel``
    orders its lines so that any prefix samples every project). ``eval_parallel``: a held-out
    parallel directory for target→pivot retrieval accuracy (first ``eval_max_rows`` lines).
    """

    paraphrase: list[str] = field(default_factory=list)
    parallel: list[str] = field(default_factory=list)
    max_parallel_pairs: Optional[int] = None
    use_hard_negatives: bool = True
    group_by_length: bool = False
    eval_parallel: Optional[str] = None
    eval_max_rows: int = 1000
    eval_batch_size: int = 128

    def __post_init__(self) -> None:
        if self.eval_max_rows < 1 or self.eval_batch_size < 1:
            raise ValueError("data.eval_max_rows and data.eval_batch_size must be >= 1")
        if self.max_parallel_pairs is not None and self.max_parallel_pairs < 1:
            raise ValueError(f"data.max_parallel_pairs must be >= 1 or null, got {self.max_parallel_pairs}")


@dataclass
class AlignConfig:
    """Config of ``modsent align`` (YAML keys = field names; ``languages=[deu_Latn]`` on the command line).

    ``model``: the language's encoder directory (frozen; the adapter is trained on it). ``pivot``: the English
    encoder directory (frozen, no adapter). ``languages``: the language aligned (one). ``output_dir``: the run
    directory. ``pivot_cache``: a directory shared by every language's run,
    or null to re-encode the English side each step. ``adapter``: ParBn shape (reduction factor 2,
    scaling 4.0). ``scale``: MNRL similarity scale. ``corpus_negatives``: how many of the training
    data's distinct English sentences (in data order, parallel lines past ``data.max_parallel_pairs``
    included) every step also uses as negatives for each target-side text (0: in-batch negatives
    only, as the reference; see the module docstring).
    """

    RENAMED_KEYS: ClassVar[dict[str, str]] = {"target": "model", "lang": "languages", "output": "output_dir",
                                              "trainer.output_dir": "output_dir"}

    model: str
    pivot: str
    languages: list[str]
    output_dir: Optional[str] = None
    pivot_lang: str = "eng_Latn"
    data: AlignDataConfig = field(default_factory=AlignDataConfig)
    max_seq_length: int = 128
    pivot_cache: Optional[str] = None
    cache_dtype: CacheDtype = "float32"
    adapter: ParBnConfig = field(default_factory=ParBnConfig)
    scale: float = 20.0
    corpus_negatives: int = 0
    trust_remote_code: bool = False  # run Python a model directory ships (auto_map): only for a directory you trust
    trainer: TrainerConfig = field(default_factory=_default_trainer)

    def __post_init__(self) -> None:
        self.lang = single_language(self.languages, "align")
        self.pivot_lang = resolve(self.pivot_lang).code
        if self.lang == self.pivot_lang:
            raise ValueError(f"languages and pivot_lang are both {self.lang}; the pivot language needs no alignment")
        if self.max_seq_length < 2 or not self.scale > 0:
            raise ValueError(f"max_seq_length must be >= 2 and scale > 0, got {self.max_seq_length} and {self.scale}")
        if self.corpus_negatives < 0:
            raise ValueError(f"corpus_negatives must be >= 0 (0: in-batch negatives only), got {self.corpus_negatives}")
        self.output_dir = bind_output_dir(self.output_dir, self.trainer, DEFAULT_TRAINER_OUTPUT)


def artifact(output_dir: str | Path) -> Path:
    """What ``modsent align`` exports under ``output_dir``: the adapter (``adapter_config.json``, weights)."""
    return RunDir(Path(output_dir)).artifacts / ADAPTER_EXPORT_NAME
