"""``modsent train``: contrastive sentence-encoder training with MultipleNegativesRankingLoss.

The seed's recipe (``train_sentence_encoder.py``): a ``transformers`` encoder (the adapted LM of
``modsent adapt``, or the encoder half of an NLLB model) with mean pooling, trained on several
paraphrase datasets with in-batch negatives — ``train_type: mono`` for one language per batch
(a language-specific encoder), ``cross`` for batches that mix up to six languages (the
multilingual baseline). Defaults follow the seed: lr 2e-5, constant schedule, AdamW eps 1e-6,
max_seq_length 64, 1 epoch. Batches: :mod:`modsent.train.paraphrase_batches`; loss:
:mod:`modsent.train.losses` (embeddings gathered across ranks, so every rank's pairs are every
anchor's negatives; ``loss.cached`` for batches beyond memory).

Launch (any number of ranks; one process without a launcher works too)::

    deepspeed -m modsent.cli train --config configs/train_mono.yaml
    torchrun --nproc_per_node 2 -m modsent.cli train --config configs/train_cross.yaml

Output under ``trainer.output_dir``: ``config.yaml``, ``checkpoints/``, ``metrics/`` and the
encoder in ``artifacts/model`` (sentence-transformers layout: ``SentenceTransformer(path)`` or
:meth:`modsent.models.SentenceEncoder.from_pretrained`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch
import torch.nn.functional as F

from modsent.config import to_dict
from modsent.corpus import ParaphraseDataset, open_corpus
from modsent.corpus.parallel import parallel_dataset
from modsent.errors import ModsentError
from modsent.io import check_not_overwriting, seed_everything
from modsent.languages import resolve_many
from modsent.models.encoder import SentenceEncoder
from modsent.models.pooling import PoolingMode
from modsent.train.distributed import DistInfo
from modsent.train.ds_config import build_ds_config
from modsent.train.losses import CachedMultipleNegativesRankingLoss, mnrl_loss
from modsent.train.paraphrase_batches import MAX_LANGS_PER_BATCH, ParaphraseBatch, ParaphraseBatches, TrainType
from modsent.train.trainer import Trainer, TrainResult, TrainTask, start_run
from modsent.train.trainer_config import TrainerConfig

__all__ = [
    "ContrastiveConfig",
    "ContrastiveLossConfig",
    "ContrastiveConfigError",
    "ContrastiveLoss",
    "RetrievalEvaluator",
    "TokenizeBatch",
    "select_datasets",
    "training_datasets",
    "parallel_pair",
    "batches_per_epoch",
    "build_contrastive_task",
    "run_contrastive",
]


class ContrastiveConfigError(ModsentError):
    """Settings of ``modsent train`` that cannot work together."""


def _default_trainer() -> TrainerConfig:
    # The seed's fit(): AdamW lr 2e-5, eps 1e-6, weight decay 0.01, clipping 1, constant LR, one epoch.
    return TrainerConfig(output_dir="runs/train", ds_config="zero1", lr=2e-5, adam_eps=1e-6, schedule="constant",
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
    ``datasets``: the dataset names to use (empty = all). ``langs``: languages to train on, any
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

    model: str
    corpus: str
    langs: list[str]
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


def select_datasets(corpus: str | Path, names: list[str]) -> list[ParaphraseDataset]:
    """The datasets of ``corpus`` named in ``names`` (all of them when ``names`` is empty)."""
    datasets = open_corpus(corpus)
    if not names:
        return datasets
    by_name = {d.name: d for d in datasets}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ContrastiveConfigError(f"datasets {unknown} are not in {corpus} (it has {sorted(by_name)})")
    return [by_name[name] for name in names]


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


def training_datasets(cfg: ContrastiveConfig) -> list[ParaphraseDataset]:
    """The corpus's selected datasets, then one dataset per ``parallel`` directory."""
    datasets = select_datasets(cfg.corpus, cfg.datasets)
    return datasets + [parallel_dataset(directory, *parallel_pair(directory), cfg.max_parallel_pairs)
                       for directory in cfg.parallel]


def batches_per_epoch(cfg: ContrastiveConfig) -> int:
    """Global batches in one epoch of ``cfg``'s data (what ``trainer.epochs`` counts), read without a model."""
    langs = [lang.code for lang in resolve_many(cfg.langs)]
    batches = ParaphraseBatches(training_datasets(cfg), langs, cfg.trainer.global_batch_size // cfg.trainer.grad_accum,
                                cfg.train_type, max_langs_per_batch=cfg.max_langs_per_batch,
                                use_hard_negatives=cfg.use_hard_negatives, partial_datasets=cfg.partial_datasets)
    return batches.batches_per_epoch


class TokenizeBatch:
    """Collate: a :class:`ParaphraseBatch` → one padded tensor of all its texts, column after column.

    Returns ``{"input_ids", "attention_mask"}`` of shape ``(columns × rows, longest)`` and
    ``num_columns``; one forward pass embeds the whole batch. NLLB tokenizers get each text's language.
    """

    def __init__(self, encoder: SentenceEncoder) -> None:
        self.encoder = encoder

    def __call__(self, batch: ParaphraseBatch) -> dict[str, Any]:
        texts = [text for column in batch.texts for text in column]
        langs = [lang for column in batch.langs for lang in column] if self.encoder.needs_lang else None
        return {**self.encoder.tokenize(texts, langs), "num_columns": batch.num_columns}


class ContrastiveLoss:
    """``compute_loss(engine, batch)`` for the trainer: MNRL over the batch's columns (anchor, positive, negative)."""

    def __init__(self, cfg: ContrastiveLossConfig) -> None:
        self.cfg = cfg

    def __call__(self, engine: Any, batch: dict[str, Any]) -> torch.Tensor:
        num_columns = int(batch["num_columns"])
        features = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if self.cfg.cached:
            columns = [{k: v.chunk(num_columns)[c] for k, v in features.items()} for c in range(num_columns)]
            loss_fn = CachedMultipleNegativesRankingLoss(lambda f: engine(**f), self.cfg.mini_batch_size,
                                                         scale=self.cfg.scale, symmetric=self.cfg.symmetric)
            return loss_fn(columns)
        anchors, positives, *negatives = engine(**features).chunk(num_columns)
        return mnrl_loss(anchors, positives, negatives, scale=self.cfg.scale, symmetric=self.cfg.symmetric)


class RetrievalEvaluator:
    """Held-out anchor→positive retrieval accuracy (top-1 among all held-out positives).

    ``mono``: within each language (``retrieval_acc_<lang>``); ``cross``: also between every
    ordered pair of languages (``retrieval_acc_cross``). ``retrieval_acc`` is the mean over every
    (dataset, language pair) measured. Every rank embeds every held-out text (eval sets are
    small), so every rank runs the same forward passes — as ZeRO-3 needs — and gets the same numbers.
    """

    def __init__(self, encoder: SentenceEncoder, datasets: list[ParaphraseDataset], langs: list[str],
                 train_type: TrainType, rows: int, batch_size: int, device: torch.device) -> None:
        self.encoder, self.langs, self.train_type = encoder, langs, train_type
        self.batch_size, self.device = batch_size, device
        self.texts: dict[tuple[str, str, int], list[str]] = {}
        for dataset in datasets:
            keys = [(lang, col) for lang in langs for col in (1, 2)]
            taken = [row for _, row in zip(range(rows), dataset.iter_rows(keys))]
            if len(taken) < 2:
                raise ContrastiveConfigError(f"eval dataset '{dataset.name}' ({dataset.path}) has fewer than 2 rows")
            for index, (lang, col) in enumerate(keys):
                self.texts[(dataset.name, lang, col)] = [row[index] for row in taken]
        self.dataset_names = [d.name for d in datasets]

    def _embed(self, engine: Any, texts: list[str], lang: str) -> torch.Tensor:
        chunks = []
        for start in range(0, len(texts), self.batch_size):
            features = self.encoder.tokenize(texts[start:start + self.batch_size], lang)
            chunks.append(engine(**{k: v.to(self.device) for k, v in features.items()}).float())
        return F.normalize(torch.cat(chunks), dim=-1)

    def __call__(self, engine: Any) -> dict[str, float]:
        same: dict[str, list[float]] = {lang: [] for lang in self.langs}
        cross: list[float] = []
        for name in self.dataset_names:
            embedded = {(lang, col): self._embed(engine, self.texts[(name, lang, col)], lang)
                        for lang in self.langs for col in (1, 2)}
            for source in self.langs:
                targets = self.langs if self.train_type == "cross" else [source]
                for target in targets:
                    scores = embedded[(source, 1)] @ embedded[(target, 2)].T
                    hits = (scores.argmax(dim=1) == torch.arange(len(scores), device=scores.device)).float()
                    accuracy = hits.mean().item()
                    (same[source] if source == target else cross).append(accuracy)
        metrics = {f"retrieval_acc_{lang}": sum(v) / len(v) for lang, v in same.items()}
        everything = [a for v in same.values() for a in v] + cross
        metrics["retrieval_acc"] = sum(everything) / len(everything)
        if cross:
            metrics["retrieval_acc_cross"] = sum(cross) / len(cross)
        return metrics


def _export(module: SentenceEncoder, state_dict: dict[str, torch.Tensor], directory: Path) -> None:
    module.write(directory, state_dict)


def _check_cached_loss_engine(cfg: ContrastiveConfig, dist_info: DistInfo) -> None:
    stage = build_ds_config(cfg.trainer, dist_info.world_size, dist_info.device)["zero_optimization"]["stage"]
    if cfg.loss.cached and stage >= 2:
        raise ContrastiveConfigError(
            f"loss.cached needs ZeRO stage 0 or 1 (trainer.ds_config gives stage {stage}): ZeRO-2/3 reduce gradients "
            "per parameter and reject the one gradient per mini-batch that the cached loss produces; set "
            "trainer.ds_config=zero1 (or trainer.zero_stage=1), or loss.cached=false")


def build_contrastive_task(cfg: ContrastiveConfig, dist_info: DistInfo) -> tuple[TrainTask, SentenceEncoder]:
    """The contrastive :class:`TrainTask` for ``cfg`` on this rank, and its (not yet trained) encoder."""
    _check_cached_loss_engine(cfg, dist_info)
    langs = [lang.code for lang in resolve_many(cfg.langs)]
    datasets = training_datasets(cfg)
    seed_everything(cfg.trainer.seed)  # weights a checkpoint lacks (e.g. BERT's pooler) must match on every rank
    encoder = SentenceEncoder.from_pretrained(cfg.model, pooling=cfg.pooling, max_seq_length=cfg.max_seq_length,
                                              trust_remote_code=cfg.trust_remote_code)
    if cfg.gradient_checkpointing:
        encoder.backbone.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    micro_batch = cfg.trainer.micro_batch(dist_info.world_size)
    batches = ParaphraseBatches(
        datasets, langs, micro_batch, cfg.train_type, seed=cfg.trainer.seed, rank=dist_info.rank,
        world_size=dist_info.world_size, group_by_length=cfg.group_by_length,
        length_group_batches=cfg.length_group_batches, max_langs_per_batch=cfg.max_langs_per_batch,
        use_hard_negatives=cfg.use_hard_negatives, partial_datasets=cfg.partial_datasets,
        collate=TokenizeBatch(encoder),
        length_fn=lambda texts, lang: [len(ids) for ids in encoder.token_ids(texts, lang)])
    evaluator = None
    if cfg.eval_corpus is not None:
        evaluator = RetrievalEvaluator(encoder, open_corpus(cfg.eval_corpus), langs, cfg.train_type, cfg.eval_rows,
                                       cfg.eval_batch_size or micro_batch, dist_info.device)
    recipe = {k: v for k, v in to_dict(cfg).items() if k != "trainer"}
    task = TrainTask(
        model=encoder,
        train_batches=batches,
        compute_loss=ContrastiveLoss(cfg.loss),
        evaluate=evaluator,
        export=_export,
        fingerprint={"train": recipe, "data": batches.signature()},
        count_tokens=lambda batch: int(batch["attention_mask"].sum()),
    )
    return task, encoder


def run_contrastive(cfg: ContrastiveConfig) -> TrainResult:
    """Run ``modsent train`` on every rank of the job; returns where training got to and the export path.

    >>> run_contrastive(ContrastiveConfig(model="runs/adapt/artifacts/model", corpus="data/paraphrase",
    ...                                   langs=["deu_Latn"]))  # doctest: +SKIP
    """
    check_not_overwriting({"trainer.output_dir": cfg.trainer.output_dir}, {
        "model": cfg.model, "corpus": cfg.corpus, "parallel": cfg.parallel, "eval_corpus": cfg.eval_corpus})
    dist_info = start_run(cfg, cfg.trainer.output_dir, "modsent train")
    task, _ = build_contrastive_task(cfg, dist_info)
    return Trainer(task, cfg.trainer, dist_info).fit()
