"""``modsent train``: contrastive sentence-encoder training with MultipleNegativesRankingLoss.

The reference's recipe (``train_sentence_encoder.py``): a ``transformers`` encoder (the adapted LM of
``modsent adapt``, or the encoder half of an NLLB model) with mean pooling, trained on several
paraphrase datasets with in-batch negatives — ``train_type: mono`` for one language per batch
(a language-specific encoder), ``cross`` for batches that mix up to six languages (the
multilingual baseline). Defaults follow the reference: lr 2e-5, constant schedule, AdamW eps 1e-6,
max_seq_length 64, 1 epoch. Batches: :mod:`modsent.train.paraphrase_batches`; loss:
:mod:`modsent.train.losses` (embeddings gathered across ranks, so every rank's pairs are every
anchor's negatives; ``loss.cached`` for batches beyond memory).

Launch (any number of ranks; one process without a launcher works too)::

    deepspeed -m modsent.cli train --config configs/train_mono.yaml
    torchrun --nproc_per_node 2 -m modsent.cli train --config configs/train_cross.yaml

Output under ``output_dir``: ``config.yaml``, ``checkpoints/``, ``metrics/`` and the
encoder in ``artifacts/model`` (sentence-transformers layout: ``SentenceTransformer(path)`` or
:meth:`modsent.models.SentenceEncoder.from_pretrained`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from modsent.config import to_dict
from modsent.corpus import ParaphraseDataset, open_corpus
from modsent.corpus.parallel import parallel_dataset
from modsent.io import seed_everything
from modsent.languages import resolve_many
from modsent.models.encoder import SentenceEncoder
from modsent.train.config import ContrastiveConfig, ContrastiveConfigError, ContrastiveLossConfig, parallel_pair
from modsent.train.distributed import DistInfo
from modsent.train.ds_config import build_ds_config
from modsent.train.losses import CachedMultipleNegativesRankingLoss, mnrl_loss
from modsent.train.paraphrase_batches import ParaphraseBatch, ParaphraseBatches, TrainType
from modsent.train.retrieval import embed_texts, top1_accuracy
from modsent.train.trainer import Trainer, TrainResult, TrainTask, start_run

__all__ = [
    "ContrastiveLoss",
    "HeldOutParaphrases",
    "TokenizeBatch",
    "select_datasets",
    "training_datasets",
    "batches_per_epoch",
    "build_contrastive_task",
    "run",
]


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


def training_datasets(cfg: ContrastiveConfig) -> list[ParaphraseDataset]:
    """The corpus's selected datasets, then one dataset per ``parallel`` directory."""
    datasets = select_datasets(cfg.corpus, cfg.datasets)
    return datasets + [parallel_dataset(directory, *parallel_pair(directory), cfg.max_parallel_pairs)
                       for directory in cfg.parallel]


def batches_per_epoch(cfg: ContrastiveConfig) -> int:
    """Global batches in one epoch of ``cfg``'s data (what ``trainer.epochs`` counts), read without a model."""
    langs = [lang.code for lang in resolve_many(cfg.languages)]
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


class HeldOutParaphrases:
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
        return embed_texts(engine, lambda batch: self.encoder.tokenize(batch, lang), texts, self.batch_size,
                           self.device)

    def __call__(self, engine: Any) -> dict[str, float]:
        same: dict[str, list[float]] = {lang: [] for lang in self.langs}
        cross: list[float] = []
        for name in self.dataset_names:
            embedded = {(lang, col): self._embed(engine, self.texts[(name, lang, col)], lang)
                        for lang in self.langs for col in (1, 2)}
            for source in self.langs:
                targets = self.langs if self.train_type == "cross" else [source]
                for target in targets:
                    accuracy, _ = top1_accuracy(embedded[(source, 1)], embedded[(target, 2)])
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
    langs = [lang.code for lang in resolve_many(cfg.languages)]
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
        evaluator = HeldOutParaphrases(encoder, open_corpus(cfg.eval_corpus), langs, cfg.train_type, cfg.eval_rows,
                                       cfg.eval_batch_size or micro_batch, dist_info.device)
    # Where it runs is not what it trains: a moved run resumes.
    recipe = {k: v for k, v in to_dict(cfg).items() if k not in ("trainer", "output_dir")}
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


def run(cfg: ContrastiveConfig) -> TrainResult:
    """Run ``modsent train`` on every rank of the job; returns where training got to and the export path.

    >>> run(ContrastiveConfig(model="runs/adapt/artifacts/model", corpus="data/paraphrase",
    ...                     languages=["deu_Latn"]))  # doctest: +SKIP
    """
    dist_info = start_run(cfg, "modsent train", {
        "model": cfg.model, "corpus": cfg.corpus, "parallel": cfg.parallel, "eval_corpus": cfg.eval_corpus})
    task, _ = build_contrastive_task(cfg, dist_info)
    return Trainer(task, cfg.trainer, dist_info).fit()
