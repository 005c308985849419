"""``modsent align``: train a parallel adapter that maps a language's frozen encoder onto the English pivot.

Step 4 of the method (the reference's ``train_cla_adapter.py``). The target-language encoder is
frozen and gets a ParBn adapter (:mod:`modsent.models.adapter`); the English pivot encoder is
frozen and has none. Batches are the reference's cross-lingual batches over two languages
(:class:`~modsent.train.paraphrase_batches.ParaphraseBatches` with ``train_type="cross"``):
every row of a batch puts one of its texts in English and the other in the target language
(a triplet's hard negative in either), each batch from one dataset. English texts are embedded
by the pivot, target texts by target + adapter, and the cross-model MNRL loss (in-batch
negatives over every rank's batch, scale 20) trains the adapter alone.

Corpus negatives (``corpus_negatives: N``, an addition to the reference): the pivot is frozen, so its
embedding of any English sentence is the same in every step; each step also scores every target-side
text against the pivot embeddings of the training data's first ``N`` distinct English sentences
(:func:`~modsent.train.losses.bank_loss`, added to the in-batch loss), read from the pivot cache or
encoded once. Why and what it measured: ``docs/design/corpus-negatives.md``.

Data: the English and target columns of translated paraphrase corpora (``data.paraphrase``),
and plain parallel text (``data.parallel``: directories holding ``eng_Latn.txt`` and
``<lang>.txt``, line ``i`` translating line ``i``; each line pair is one row whose anchor is one
side and positive the other).

Pivot cache (``pivot_cache``): the pivot's embeddings of the English sentences this run will
use are looked up in a :class:`~modsent.align.pivot_cache.PivotCache` shared by every
language. Before training, each rank embeds the English side of its own batches that the cache
lacks — exactly as the step would, batch by batch — so the first language pays once and every
later one (same data, seed and batch size: the same English sentences) only reads.
``pivot_cache: null`` re-encodes the English side in every step, as the reference does. Both give the
same loss, bit-for-bit with the float32 cache.

The pivot always runs in eval mode. (The reference's pivot, a submodule of its loss, was switched to
train mode with the loss and so embedded with dropout; a frozen pivot without dropout is what a
cache can reproduce, and what "frozen" means.) The target's frozen layers keep the reference's
train-mode dropout.

Launch::

    modsent align --config configs/align.yaml pivot=models/eng model=runs/train/deu_Latn/artifacts/model \\
        languages=[deu_Latn] output_dir=runs/align/deu_Latn
    torchrun --nproc_per_node 2 -m modsent.cli align --config configs/align.yaml languages=[deu_Latn] …

Output under ``output_dir``: ``config.yaml``, ``checkpoints/`` (adapter and optimizer state only),
``metrics/`` and the adapter in ``artifacts/adapter`` (``adapter_config.json`` naming the base
encoder and its weights fingerprint, ``adapter.safetensors``).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from modsent.align.config import ADAPTER_EXPORT_NAME, AlignConfig, AlignDataError
from modsent.align.pivot_cache import PivotCache, PivotIdentity
from modsent.config import to_dict
from modsent.corpus import CorpusError, ParaphraseDataset, open_corpus
from modsent.corpus.parallel import parallel_dataset
from modsent.io import seed_everything
from modsent.models.adapter import ParallelAdapter, encoder_fingerprint
from modsent.models.encoder import SentenceEncoder
from modsent.train.distributed import DistInfo, barrier
from modsent.train.losses import bank_loss, mnrl_loss
from modsent.train.paraphrase_batches import ParaphraseBatch, ParaphraseBatches
from modsent.train.retrieval import embed_texts, top1_accuracy
from modsent.train.trainer import Trainer, TrainResult, TrainTask, start_run

__all__ = [
    "AlignmentModel",
    "AlignCollate",
    "HeldOutTranslations",
    "AlignJob",
    "batches_per_epoch",
    "build_align_job",
    "cross_model_loss",
    "encode_pivot",
    "fill_pivot_cache",
    "pivot_features",
    "SplitBatch",
    "split_batch",
    "run",
]

logger = logging.getLogger(__name__)

# -------------------------------------------------------------------------------------------- Data

def _datasets(cfg: AlignConfig, capped: bool = True) -> list[ParaphraseDataset]:
    """The training data; ``capped=False`` reads parallel text past ``data.max_parallel_pairs`` (the bank's view)."""
    if not cfg.data.paraphrase and not cfg.data.parallel:
        raise AlignDataError("no training data: set data.paraphrase (paraphrase corpora) and/or data.parallel "
                             "(directories of line-aligned <pivot>.txt / <lang>.txt)")
    datasets = [dataset for path in cfg.data.paraphrase for dataset in open_corpus(path)]
    datasets += [parallel_dataset(path, cfg.pivot_lang, cfg.lang, cfg.data.max_parallel_pairs if capped else None)
                 for path in cfg.data.parallel]
    return datasets


def batches_per_epoch(cfg: AlignConfig) -> int:
    """Global batches in one epoch of ``cfg``'s data (what ``trainer.epochs`` counts), read without a model."""
    try:
        batches = ParaphraseBatches(_datasets(cfg), [cfg.pivot_lang, cfg.lang],
                                    cfg.trainer.global_batch_size // cfg.trainer.grad_accum, "cross",
                                    use_hard_negatives=cfg.data.use_hard_negatives)
    except CorpusError as err:
        raise AlignDataError(f"{err}") from None
    return batches.batches_per_epoch


def corpus_bank_texts(datasets: Sequence[ParaphraseDataset], pivot_lang: str, limit: int) -> list[str]:
    """The first ``limit`` distinct pivot-language sentences of ``datasets`` (dataset, row, column order)."""
    texts: dict[str, None] = {}
    for dataset in datasets:
        keys = [(pivot_lang, column) for column in range(1, dataset.num_columns(pivot_lang) + 1)]
        for row in dataset.iter_rows(keys):
            for text in row:
                texts.setdefault(text)
                if len(texts) == limit:
                    return list(texts)
    return list(texts)


class CorpusBank:
    """Corpus negatives: the bank's sentences by row, and their pivot embeddings from the first use on.

    The embeddings wait for the first training step so that, with a pivot cache, the cache fill
    (:func:`fill_pivot_cache`, which stores the bank's sentences with the batches' English) has
    run: the bank then costs a lookup, and every later language reads what the first encoded.
    """

    def __init__(self, texts: list[str], cache: PivotCache | None, load_pivot: Any, device: torch.device,
                 batch_size: int) -> None:
        self.texts, self.cache, self.load_pivot = texts, cache, load_pivot
        self.device, self.batch_size = device, batch_size
        self.rows = {text: row for row, text in enumerate(texts)}

    @functools.cached_property
    def embeddings(self) -> torch.Tensor:
        embeddings = pivot_embeddings_of(self.texts, self.cache, self.load_pivot, self.batch_size)
        return torch.from_numpy(embeddings).to(self.device)


@dataclass(frozen=True)
class SplitBatch:
    """A cross-lingual batch's texts by side: slot ``column * rows + row`` of each text, in slot order."""

    rows: int
    target_slots: list[int]
    target_texts: list[str]
    pivot_slots: list[int]
    pivot_texts: list[str]


def split_batch(batch: ParaphraseBatch, pivot_lang: str) -> SplitBatch:
    """Separate the texts the pivot embeds from those target + adapter embed (the order both paths use)."""
    target_slots, target_texts, pivot_slots, pivot_texts = [], [], [], []
    for column, (texts, langs) in enumerate(zip(batch.texts, batch.langs)):
        for row, (text, lang) in enumerate(zip(texts, langs)):
            slot = column * batch.size + row
            if lang == pivot_lang:
                pivot_slots.append(slot)
                pivot_texts.append(text)
            else:
                target_slots.append(slot)
                target_texts.append(text)
    return SplitBatch(batch.size, target_slots, target_texts, pivot_slots, pivot_texts)


def pivot_features(pivot: SentenceEncoder, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """``pivot``'s padded inputs for ``texts``, with one extra padding column.

    Why the column: ``transformers`` drops an all-ones attention mask and runs attention without
    a mask, a different kernel whose float results differ in the last bits. With a padding column
    every batch takes the masked kernel, so a sentence's pivot embedding does not depend on the
    batch it is in — which makes cached and recomputed pivot embeddings bit-identical (on CPU).
    """
    features = pivot.tokenize(texts)
    return {"input_ids": nn.functional.pad(features["input_ids"], (0, 1), value=pivot.tokenizer.pad_token_id),
            "attention_mask": nn.functional.pad(features["attention_mask"], (0, 1), value=0)}


@torch.no_grad()
def encode_pivot(pivot: SentenceEncoder, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """Pivot embeddings of ``texts`` (float32, input order), in length-sorted batches of :func:`pivot_features`."""
    pivot.eval()
    out = np.zeros((len(texts), pivot.embedding_dim), dtype=np.float32)
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
    for start in range(0, len(order), batch_size):
        rows = order[start:start + batch_size]
        features = pivot_features(pivot, [texts[i] for i in rows])
        out[rows] = pivot(**{k: v.to(pivot.device) for k, v in features.items()}).float().cpu().numpy()
    return out


class AlignCollate:
    """A :class:`ParaphraseBatch` → tensors: target texts tokenised, pivot texts tokenised or looked up.

    Slots number the batch's texts column by column (slot ``column * rows + row``);
    ``target_slots`` / ``pivot_slots`` say where each embedding goes back. With a ``cache`` the
    batch carries ``pivot_embeddings`` (float32) instead of pivot token ids. With ``bank_rows``
    (corpus negatives: bank sentence → row) it also carries, for every target text whose row
    partner is English, its position among the target texts (``bank_queries``), the partner's
    slot (``bank_partner_slots``) and the partner's bank row, -1 if absent (``bank_rows``).
    """

    def __init__(self, target: SentenceEncoder, pivot: SentenceEncoder | None, pivot_lang: str,
                 cache: PivotCache | None = None, bank_rows: dict[str, int] | None = None) -> None:
        if (pivot is None) == (cache is None):
            raise ValueError("give exactly one of pivot (recompute) and cache (look up)")
        self.target, self.pivot, self.pivot_lang, self.cache = target, pivot, pivot_lang, cache
        self.bank_rows = bank_rows

    def __call__(self, batch: ParaphraseBatch) -> dict[str, Any]:
        split = split_batch(batch, self.pivot_lang)
        target = self.target.tokenize(split.target_texts)
        out: dict[str, Any] = {
            "rows": split.rows,
            "target_input_ids": target["input_ids"], "target_attention_mask": target["attention_mask"],
            "target_slots": torch.tensor(split.target_slots, dtype=torch.long),
            "pivot_slots": torch.tensor(split.pivot_slots, dtype=torch.long),
        }
        if self.cache is not None:
            out["pivot_embeddings"] = torch.from_numpy(self.cache.lookup(split.pivot_texts))
        else:
            assert self.pivot is not None
            pivot = pivot_features(self.pivot, split.pivot_texts)
            out["pivot_input_ids"], out["pivot_attention_mask"] = pivot["input_ids"], pivot["attention_mask"]
        if self.bank_rows is not None:
            out.update(self._bank_partners(batch, split))
        return out

    def _bank_partners(self, batch: ParaphraseBatch, split: SplitBatch) -> dict[str, torch.Tensor]:
        queries, partner_slots, rows = [], [], []
        for position, slot in enumerate(split.target_slots):
            column, row = divmod(slot, split.rows)
            if column < 2 and batch.langs[1 - column][row] == self.pivot_lang:  # anchor or positive, English partner
                queries.append(position)
                partner_slots.append((1 - column) * split.rows + row)
                rows.append(self.bank_rows.get(batch.texts[1 - column][row], -1))  # type: ignore[union-attr]
        return {"bank_queries": torch.tensor(queries, dtype=torch.long),
                "bank_partner_slots": torch.tensor(partner_slots, dtype=torch.long),
                "bank_rows": torch.tensor(rows, dtype=torch.long)}


# ---------------------------------------------------------------------------------- Model and loss

class AlignmentModel(nn.Module):
    """The trained module: the frozen target encoder with the adapter attached; only ``adapter`` is trainable."""

    def __init__(self, target: SentenceEncoder, adapter: ParallelAdapter) -> None:
        super().__init__()
        self.target = target
        self.adapter = adapter
        for param in self.target.parameters():
            param.requires_grad_(False)
        for param in self.adapter.parameters():
            param.requires_grad_(True)
        adapter.attach(target)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.target(input_ids, attention_mask)


def cross_model_loss(batch: dict[str, Any], target_embeddings: torch.Tensor, pivot_embeddings: torch.Tensor,
                     scale: float, bank: torch.Tensor | None = None) -> torch.Tensor:
    """MNRL over the batch reassembled from target- and pivot-side embeddings (the reference's ``CrossModelMNRL``).

    Column 0 (anchors) is scored against columns 1 (positives) and 2 (hard negatives) of every rank.
    With a ``bank`` (corpus negatives) the :func:`bank_loss` of the batch's target texts against
    their English partners and the bank is added.
    """
    rows = int(batch["rows"])
    pivot_embeddings = pivot_embeddings.to(target_embeddings.dtype)
    total = target_embeddings.shape[0] + pivot_embeddings.shape[0]
    slots = target_embeddings.new_zeros((total, target_embeddings.shape[1]))
    slots = slots.index_copy(0, batch["target_slots"], target_embeddings)
    slots = slots.index_copy(0, batch["pivot_slots"], pivot_embeddings)
    columns = slots.view(total // rows, rows, -1)
    loss = mnrl_loss(columns[0], columns[1], tuple(columns[2:]), scale=scale)
    if bank is not None and len(batch["bank_queries"]):
        loss = loss + bank_loss(target_embeddings[batch["bank_queries"]], slots[batch["bank_partner_slots"]], bank,
                                batch["bank_rows"], scale)
    return loss


def _compute_loss(pivot: SentenceEncoder | None, scale: float, bank: CorpusBank | None, engine: Any,
                  batch: dict[str, Any]) -> torch.Tensor:
    target_embeddings = engine(batch["target_input_ids"], batch["target_attention_mask"])
    if "pivot_embeddings" in batch:
        pivot_embeddings = batch["pivot_embeddings"]
    else:
        assert pivot is not None
        # The frozen pivot runs in float32 whatever the trainer's precision (as the cache, filled outside it, does).
        with torch.no_grad(), torch.autocast(batch["pivot_input_ids"].device.type, enabled=False):
            pivot_embeddings = pivot(batch["pivot_input_ids"], batch["pivot_attention_mask"])
    return cross_model_loss(batch, target_embeddings, pivot_embeddings, scale,
                            bank.embeddings if bank is not None else None)


# -------------------------------------------------------------------------------------- Evaluation

class HeldOutTranslations:
    """Top-1 accuracy of finding each held-out target sentence's translation among the pivot sentences, and back.

    The pivot side is embedded once; the target side is re-embedded through the engine (adapter
    on) at every evaluation (:mod:`modsent.train.retrieval`).
    """

    def __init__(self, target: SentenceEncoder, target_texts: list[str], pivot_embeddings: np.ndarray,
                 batch_size: int, device: torch.device) -> None:
        if len(target_texts) != len(pivot_embeddings) or not target_texts:
            raise AlignDataError("the retrieval eval needs the same non-zero number of target and pivot sentences")
        self.target, self.texts, self.batch_size = target, target_texts, batch_size
        self.pivot = nn.functional.normalize(torch.from_numpy(np.asarray(pivot_embeddings, dtype=np.float32)), dim=-1)
        self.device = device

    def _features(self, texts: list[str]) -> dict[str, torch.Tensor]:
        features = self.target.tokenize(texts)
        return {"input_ids": features["input_ids"], "attention_mask": features["attention_mask"]}

    def __call__(self, engine: Any) -> dict[str, float]:
        target = embed_texts(engine, self._features, self.texts, self.batch_size, self.device)
        t2p, p2t = top1_accuracy(target, self.pivot)
        return {"t2p_accuracy": t2p, "p2t_accuracy": p2t}


# ----------------------------------------------------------------------------------------- The job

@dataclass
class AlignJob:
    """Everything :func:`run_align` builds: the task for the trainer plus what the pivot cache needs."""

    task: TrainTask
    target: SentenceEncoder
    batches: ParaphraseBatches
    cache: PivotCache | None
    load_pivot: Any  # () -> SentenceEncoder, loaded once on first call
    bank: CorpusBank | None = None


def _pivot_identity(pivot_path: str, pivot: SentenceEncoder) -> PivotIdentity:
    return PivotIdentity(fingerprint=encoder_fingerprint(pivot_path), max_seq_length=pivot.max_seq_length,
                         pooling=pivot.pooling, normalize=pivot.normalize, dim=pivot.embedding_dim,
                         prompt=pivot.prompt)


def _export(cfg: AlignConfig, adapter_shape: tuple[int, int], module: nn.Module, state_dict: dict[str, torch.Tensor],
            directory: Path) -> None:
    prefix = "adapter."
    adapter = ParallelAdapter(*adapter_shape, cfg.adapter)
    adapter.load_state_dict({k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)})
    adapter.write(directory, base_path=cfg.model, metadata={
        "lang": cfg.lang, "pivot_lang": cfg.pivot_lang, "max_seq_length": cfg.max_seq_length,
        "pivot": {"path": str(cfg.pivot), "fingerprint": encoder_fingerprint(cfg.pivot)}})


def _read_eval_pairs(cfg: AlignConfig) -> tuple[list[str], list[str]]:
    dataset = parallel_dataset(cfg.data.eval_parallel, cfg.pivot_lang, cfg.lang)  # type: ignore[arg-type]
    pivot_side, target_side = [], []
    for pivot_text, target_text in dataset.iter_rows([(cfg.pivot_lang, 1), (cfg.lang, 1)]):
        pivot_side.append(pivot_text)
        target_side.append(target_text)
        if len(pivot_side) == cfg.data.eval_max_rows:
            break
    return pivot_side, target_side


def pivot_embeddings_of(texts: Sequence[str], cache: PivotCache | None, load_pivot: Any, batch_size: int) -> np.ndarray:
    """The pivot's float32 embeddings of ``texts``: read from ``cache`` when it holds all of them, else encoded.

    Both give the same bits (:func:`pivot_features` makes an embedding independent of its batch).
    """
    if cache is not None and not cache.missing(texts):
        return cache.lookup(texts)
    return encode_pivot(load_pivot(), texts, batch_size)


def build_align_job(cfg: AlignConfig, dist_info: DistInfo) -> AlignJob:
    """The alignment :class:`TrainTask` for ``cfg`` on this rank (the pivot cache is opened, not yet filled).

    In cache mode the pivot is loaded to identify the cache and fill it (:func:`fill_pivot_cache`),
    then dropped: training steps never run it.
    """
    seed_everything(cfg.trainer.seed)  # the adapter's initial weights must match on every rank and run
    target = SentenceEncoder.from_pretrained(cfg.model, max_seq_length=cfg.max_seq_length,
                                             trust_remote_code=cfg.trust_remote_code)
    load_pivot = functools.cache(lambda: SentenceEncoder.from_pretrained(
        cfg.pivot, max_seq_length=cfg.max_seq_length, trust_remote_code=cfg.trust_remote_code
    ).to(dist_info.device).eval())
    adapter = ParallelAdapter.for_model(target, cfg.adapter)
    model = AlignmentModel(target, adapter)
    cache = None
    if cfg.pivot_cache is not None:
        cache = PivotCache.open_or_create(cfg.pivot_cache, _pivot_identity(cfg.pivot, load_pivot()), cfg.cache_dtype)
    bank = None
    try:
        datasets = _datasets(cfg)
        if cfg.corpus_negatives:
            # The bank reads past the pair cap; without a cap that is the training data itself.
            uncapped = datasets if cfg.data.max_parallel_pairs is None else _datasets(cfg, capped=False)
            texts = corpus_bank_texts(uncapped, cfg.pivot_lang, cfg.corpus_negatives)
            bank = CorpusBank(texts, cache, load_pivot, dist_info.device, cfg.data.eval_batch_size)
            logger.info("corpus negatives: %d English sentences of the training data", len(texts))
        collate = AlignCollate(target, None if cache is not None else load_pivot(), cfg.pivot_lang, cache,
                               bank.rows if bank is not None else None)
        micro_batch = cfg.trainer.micro_batch(dist_info.world_size)
        batches = ParaphraseBatches(datasets, [cfg.pivot_lang, cfg.lang], micro_batch,
                                    "cross", seed=cfg.trainer.seed, rank=dist_info.rank,
                                    world_size=dist_info.world_size, group_by_length=cfg.data.group_by_length,
                                    use_hard_negatives=cfg.data.use_hard_negatives, collate=collate)
    except CorpusError as err:
        raise AlignDataError(f"{err}") from None
    evaluator = None
    if cfg.data.eval_parallel is not None:
        pivot_side, target_side = _read_eval_pairs(cfg)
        # Encoded here in both modes (a small set), so eval numbers never depend on the cache.
        pivot_embeddings = encode_pivot(load_pivot(), pivot_side, cfg.data.eval_batch_size)
        evaluator = HeldOutTranslations(target, target_side, pivot_embeddings, cfg.data.eval_batch_size, dist_info.device)
    recipe = {k: v for k, v in to_dict(cfg).items()
              if k not in ("trainer", "output_dir", "pivot_cache", "cache_dtype")}
    task = TrainTask(
        model=model,
        train_batches=batches,
        compute_loss=functools.partial(_compute_loss, None if cache is not None else load_pivot(), cfg.scale, bank),
        evaluate=evaluator,
        export=functools.partial(_export, cfg, (len(adapter.layers), adapter.hidden_size)),
        fingerprint={"align": recipe, "target": encoder_fingerprint(cfg.model), "pivot": encoder_fingerprint(cfg.pivot)},
        count_tokens=lambda batch: int(batch["target_attention_mask"].sum()),
        export_name=ADAPTER_EXPORT_NAME,
    )
    return AlignJob(task=task, target=target, batches=batches, cache=cache, load_pivot=load_pivot, bank=bank)


def fill_pivot_cache(job: AlignJob, start: int, stop: int, pivot_lang: str) -> int:
    """Add to the cache the pivot embeddings of this rank's micro-batches ``start .. stop-1`` (collective).

    Each batch whose pivot-side texts are not all cached is embedded exactly as the recompute path
    would embed it in its training step (same texts, same order, same padding), so the cache holds
    bit-for-bit what recomputing gives. Then each rank adds its share (every ``world_size``-th
    sentence) of the corpus negatives the batches did not hold. Every rank writes its own segments,
    then all re-read the cache. Returns how many sentences this rank added.
    """
    assert job.cache is not None
    with job.cache.writer() as writer:
        for index in range(start, stop):
            texts = split_batch(job.batches.batch_at(index), pivot_lang).pivot_texts
            if writer.wanted(texts):
                pivot = job.load_pivot()
                features = pivot_features(pivot, texts)
                with torch.no_grad():
                    embeddings = pivot(**{k: v.to(pivot.device) for k, v in features.items()})
                writer.add(texts, embeddings.float().cpu().numpy())
    added = writer.added
    if job.bank is not None:
        rank, world_size = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
        added += job.cache.add_missing(job.bank.texts[rank::world_size],
                                       lambda texts: encode_pivot(job.load_pivot(), texts, job.bank.batch_size))
    barrier()
    job.cache.refresh()
    job.load_pivot.cache_clear()  # training reads the cache only: free the pivot's memory
    return added


def run(cfg: AlignConfig) -> TrainResult:
    """Run ``modsent align`` on every rank of the job; the adapter ends up in ``<output_dir>/artifacts/adapter``.

    >>> run(AlignConfig(model="runs/train/deu_Latn/artifacts/model", pivot="models/eng",
    ...                 languages=["deu_Latn"], output_dir="runs/align/deu_Latn",
    ...                 data=AlignDataConfig(paraphrase=["data/paraphrase"])))  # doctest: +SKIP
    """
    dist_info = start_run(cfg, "modsent align", {
        "pivot": cfg.pivot, "model": cfg.model, "data.paraphrase": cfg.data.paraphrase,
        "data.parallel": cfg.data.parallel, "data.eval_parallel": cfg.data.eval_parallel})
    job = build_align_job(cfg, dist_info)
    trainer = Trainer(job.task, cfg.trainer, dist_info)
    if job.cache is not None:
        accum = cfg.trainer.grad_accum
        added = fill_pivot_cache(job, trainer.step * accum, trainer.total_steps * accum, cfg.pivot_lang)
        logger.info("pivot cache %s: %d sentences added by rank %d", cfg.pivot_cache, added, dist_info.rank)
    return trainer.fit()
