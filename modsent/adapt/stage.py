"""``modsent adapt``: continued masked-LM training of the source model in the target language.

With ``vocab_dir`` (the output of ``modsent vocab``: ``tokenizer/`` and ``embeddings.safetensors``)
the model's input embeddings — and the MLM decoder tied to them — are replaced by the new
vocabulary's FOCUS-initialised matrix before training; without it the source model keeps its
own tokenizer. Each line becomes its own ``[CLS] … [SEP]`` sequence; the sequences are concatenated
and cut into full ``max_seq_length`` blocks; 15% of tokens are masked with
a seed per batch (so a resumed run masks exactly as an uninterrupted one), and validation loss
and perplexity are measured on held-out blocks with fixed masks.

Launch (any number of ranks; one process without a launcher works too)::

    deepspeed --hostfile hosts -m modsent.cli adapt --config configs/adapt.yaml trainer.ds_config=zero3
    torchrun --nproc_per_node 2 -m modsent.cli adapt --config configs/adapt.yaml

Output under ``output_dir``: ``config.yaml``, ``data/`` (packed-token cache),
``checkpoints/``, ``metrics/`` and the adapted model in ``artifacts/model`` (a ``transformers``
directory with the tokenizer; load it with ``AutoModelForMaskedLM.from_pretrained``).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from modsent.config import to_dict
from modsent.io import RunDir, seed_everything
from modsent.models.encoder import fit_max_seq_length
from modsent.adapt.config import AdaptConfig, ModelSourceError
from modsent.models.files import (
    VOCAB_EMBEDDINGS_FILE,
    VOCAB_EMBEDDINGS_KEY,
    VOCAB_TOKENIZER_DIR,
    from_pretrained,
    load_weights,
    require_model_dir,
    require_vocabulary,
)
from modsent.train.data import ShardedBatches, derive_seed
from modsent.train.distributed import DistInfo, all_reduce_sum, run_on_main
from modsent.train.export import save_pretrained_dir
from modsent.adapt.data import MLMDataError, PackedBlocks, mask_tokens, prepare_packed_data
from modsent.train.trainer import TrainResult, TrainTask, Trainer, start_run

__all__ = ["load_mlm_model", "MLMBatches", "MLMEvaluator", "build_adapt_task", "run"]

def _load_embeddings(path: Path) -> torch.Tensor:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelSourceError(f"{path} does not exist; vocab_dir must be the output directory of `modsent vocab`")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError) as err:
        raise ModelSourceError(f"{path}: not a readable safetensors file ({err})") from None
    if VOCAB_EMBEDDINGS_KEY not in tensors:
        raise ModelSourceError(f"{path} has no tensor '{VOCAB_EMBEDDINGS_KEY}' (found {sorted(tensors)})")
    embeddings = tensors[VOCAB_EMBEDDINGS_KEY]
    if embeddings.ndim != 2:
        raise ModelSourceError(
            f"{path}: '{VOCAB_EMBEDDINGS_KEY}' must be [vocab, hidden], got shape {list(embeddings.shape)}")
    return embeddings


def load_mlm_model(model_dir: str | Path, vocab_dir: str | Path | None = None,
                   trust_remote_code: bool = False) -> tuple[Any, Any]:
    """The source masked LM (fp32) and the tokenizer to train it with.

    With ``vocab_dir`` the tokenizer is ``vocab_dir/tokenizer`` and the input embeddings become
    ``vocab_dir/embeddings.safetensors`` (resized to its rows); the MLM decoder, tied to them,
    follows (an untied decoder is initialised from the same matrix) and its bias restarts at 0,
    since the old per-token biases belong to other tokens. Special-token ids in the model config
    are taken from the new tokenizer.

    >>> model, tokenizer = load_mlm_model("models/labse-mlm", "runs/vocab/deu_Latn")  # doctest: +SKIP
    >>> model.get_input_embeddings().weight.shape[0] == len(tokenizer)  # doctest: +SKIP
    True
    """
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    model_dir = require_model_dir(model_dir, ModelSourceError, "model directory (model:)")
    if not (model_dir / "config.json").is_file():
        raise ModelSourceError(f"model: {model_dir} is not a transformers model directory (no config.json)")
    tokenizer_dir = model_dir if vocab_dir is None else Path(vocab_dir) / VOCAB_TOKENIZER_DIR
    try:
        tokenizer = from_pretrained(AutoTokenizer.from_pretrained, tokenizer_dir, ModelSourceError, trust_remote_code)
    except ModelSourceError:
        raise
    except (OSError, ValueError) as err:
        raise ModelSourceError(f"cannot load a tokenizer from {tokenizer_dir}: {err}") from None
    require_vocabulary(tokenizer, tokenizer_dir, ModelSourceError)
    model = load_weights(AutoModelForMaskedLM.from_pretrained, model_dir, ModelSourceError,
                         trust_remote_code=trust_remote_code, dtype=torch.float32)
    if vocab_dir is None:
        return model, tokenizer

    embeddings_path = Path(vocab_dir) / VOCAB_EMBEDDINGS_FILE
    embeddings = _load_embeddings(embeddings_path)
    hidden = model.get_input_embeddings().weight.shape[1]
    if embeddings.shape[1] != hidden:
        raise ModelSourceError(
            f"{embeddings_path}: embeddings have width {embeddings.shape[1]} but {model_dir} has hidden size {hidden}; "
            "run `modsent vocab` with this source model"
        )
    if embeddings.shape[0] != len(tokenizer):
        raise ModelSourceError(
            f"{embeddings_path}: {embeddings.shape[0]} embedding rows for a tokenizer of {len(tokenizer)} tokens "
            f"({tokenizer_dir}); both must come from the same `modsent vocab` run"
        )
    model.resize_token_embeddings(embeddings.shape[0], mean_resizing=False)
    output = model.get_output_embeddings()
    with torch.no_grad():
        model.get_input_embeddings().weight.copy_(embeddings)
        if output is not None:
            if output.weight is not model.get_input_embeddings().weight:
                output.weight.copy_(embeddings)
            if getattr(output, "bias", None) is not None:
                output.bias.zero_()
    for name in ("pad_token_id", "bos_token_id", "eos_token_id", "sep_token_id", "cls_token_id"):
        if hasattr(model.config, name) and getattr(tokenizer, name, None) is not None:
            setattr(model.config, name, getattr(tokenizer, name))
    return model, tokenizer


def _special_mask(input_ids: torch.Tensor, special_ids: torch.Tensor) -> torch.Tensor:
    return torch.isin(input_ids, special_ids)


class MLMBatches:
    """Collate for :class:`~modsent.train.data.ShardedBatches`: packed blocks → masked MLM batch."""

    def __init__(self, blocks: np.ndarray, tokenizer: Any, probability: float) -> None:
        self.blocks = blocks
        self.special_ids = torch.tensor(sorted(tokenizer.all_special_ids), dtype=torch.long)
        self.mask_token_id = tokenizer.mask_token_id
        self.vocab_size = len(tokenizer)
        self.probability = probability

    def rows(self, indices: list[int]) -> torch.Tensor:
        return torch.from_numpy(np.asarray(self.blocks[indices], dtype=np.int64))

    def masked(self, input_ids: torch.Tensor, generator: torch.Generator) -> dict[str, torch.Tensor]:
        inputs, labels = mask_tokens(input_ids, _special_mask(input_ids, self.special_ids), generator,
                                     probability=self.probability, mask_token_id=self.mask_token_id,
                                     vocab_size=self.vocab_size)
        return {"input_ids": inputs, "attention_mask": torch.ones_like(inputs), "labels": labels}

    def __call__(self, indices: list[int], generator: torch.Generator) -> dict[str, torch.Tensor]:
        return self.masked(self.rows(indices), generator)


class MLMEvaluator:
    """Validation loss (mean cross-entropy over masked tokens, all ranks) and perplexity.

    Each validation block has its own fixed mask (seeded by its index), so values are comparable
    across steps and runs. Ranks split the blocks and all run the same number of forward passes
    (ZeRO-3 gathers parameters collectively); a rank with no rows left runs one discarded pass.
    """

    def __init__(self, batches: MLMBatches, blocks: np.ndarray, batch_size: int, dist_info: DistInfo,
                 seed: int) -> None:
        self.batches, self.blocks = batches, blocks
        self.batch_size, self.dist, self.seed = batch_size, dist_info, seed
        self.my_rows = list(range(dist_info.rank, len(blocks), dist_info.world_size))
        rows_per_rank = math.ceil(len(blocks) / dist_info.world_size)
        self.num_batches = math.ceil(rows_per_rank / batch_size)

    def _batch(self, rows: list[int]) -> dict[str, torch.Tensor]:
        masked = [self.batches.masked(torch.from_numpy(np.asarray(self.blocks[[row]], dtype=np.int64)),
                                      torch.Generator().manual_seed(derive_seed(self.seed, "eval", row)))
                  for row in rows]
        return {key: torch.cat([m[key] for m in masked]).to(self.dist.device) for key in masked[0]}

    def __call__(self, engine: Any) -> dict[str, float]:
        loss_sum, targets = 0.0, 0
        for index in range(self.num_batches):
            rows = self.my_rows[index * self.batch_size:(index + 1) * self.batch_size]
            batch = self._batch(rows or [0])
            labels = batch.pop("labels")
            logits = engine(**batch).logits
            if rows:
                loss_sum += F.cross_entropy(logits.float().flatten(0, 1), labels.flatten(), ignore_index=-100,
                                            reduction="sum").item()
                targets += int((labels != -100).sum())
        total_loss, total_targets = all_reduce_sum([loss_sum, targets], self.dist.device)
        if total_targets == 0:
            raise MLMDataError("the validation text has no maskable token (every token is special or unknown); "
                               "check that valid_files are in the tokenizer's language")
        loss = total_loss / total_targets
        return {"loss": loss, "perplexity": math.exp(min(loss, 50.0)), "masked_tokens": int(total_targets)}


def _mlm_loss(engine: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return engine(**batch).loss


def build_adapt_task(cfg: AdaptConfig, dist_info: DistInfo) -> tuple[TrainTask, Any]:
    """The MLM :class:`TrainTask` for ``cfg`` (collective: packs the text on rank 0) and its tokenizer."""
    run = RunDir(Path(cfg.trainer.output_dir))
    seed_everything(cfg.trainer.seed)  # any freshly initialised weights must match on every rank
    model, tokenizer = load_mlm_model(cfg.model, cfg.vocab_dir, cfg.trust_remote_code)
    fit_max_seq_length(cfg.max_seq_length, model.config, cfg.model)
    # Rank 0 packs (or finds the cache); every rank then maps the same files.
    packed_dir = run_on_main(lambda: prepare_packed_data(
        cfg.train_files, cfg.valid_files, tokenizer, cfg.max_seq_length, cfg.valid_fraction, run.root / "data",
    ).directory)
    packed = PackedBlocks.open(packed_dir)
    collate = MLMBatches(packed.train, tokenizer, cfg.mlm_probability)
    micro_batch = cfg.trainer.micro_batch(dist_info.world_size)
    batches = ShardedBatches(len(packed.train), micro_batch, collate, rank=dist_info.rank,
                             world_size=dist_info.world_size, seed=cfg.trainer.seed)
    evaluator = MLMEvaluator(collate, packed.valid, cfg.eval_batch_size or micro_batch, dist_info,
                             cfg.trainer.seed)
    # Where it runs is not what it trains: a moved run resumes.
    recipe = {k: v for k, v in to_dict(cfg).items() if k not in ("trainer", "output_dir")}
    task = TrainTask(
        model=model,
        train_batches=batches,
        compute_loss=_mlm_loss,
        evaluate=evaluator,
        export=functools.partial(save_pretrained_dir, tokenizer=tokenizer),
        fingerprint={"adapt": recipe, "data": packed.key},
        count_tokens=lambda batch: int(batch["attention_mask"].sum()),
    )
    return task, tokenizer


def run(cfg: AdaptConfig) -> TrainResult:
    """Run ``modsent adapt`` on every rank of the job; returns where training got to and the export path.

    >>> run(AdaptConfig(model="models/src", vocab_dir="runs/vocab/deu_Latn",
    ...                       train_files=["data/deu_Latn.txt"]))  # doctest: +SKIP
    """
    dist_info = start_run(cfg, "modsent adapt", {
        "model": cfg.model, "vocab_dir": cfg.vocab_dir, "train_files": cfg.train_files, "valid_files": cfg.valid_files})
    task, _ = build_adapt_task(cfg, dist_info)
    return Trainer(task, cfg.trainer, dist_info).fit()
