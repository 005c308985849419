"""Benchmark of contrastive training: trainer overhead against a plain PyTorch loop, and padding.

usage: python bench/train_contrastive.py [--quick] [--threads N]

- ``step_time_ratio_vs_plain_torch``: seconds per optimizer step of ``modsent train``'s step
  (:class:`modsent.train.Trainer` over the contrastive task: DeepSpeed ZeRO-1 engine, batch
  iterator, tokenisation, one forward of all columns, MNRL, backward, clipping, AdamW) over a
  hand-written PyTorch loop doing the same work on the same model, batches and loss (same
  tokenised batches from the same iterator, ``torch.optim.AdamW``, ``clip_grad_norm_``). Both
  start from the same weights; steps alternate in blocks so machine load hits both alike; the
  ratio is of the medians (< 1 is better; goal <= 1.05). Model: ``tiny_bert_mlm(size="small")``
  (hidden 256, 4 layers), mono German, 2 synthetic datasets (one with hard negatives), 32 pairs.
- ``padding_waste_grouped`` / ``padding_waste_ungrouped``: share of padding positions in the
  token tensors the model receives (every column of a batch padded together, as training feeds
  them), with and without ``group_by_length`` (rows sorted by token length in chunks of 16
  batches inside each dataset).

The last line of stdout is the JSON record (see /work/shared/BENCH.md).
"""

from __future__ import annotations

from _common import bench_args  # noqa: I001  (sets threads before numpy/torch load)

import argparse

import tempfile
from pathlib import Path

ARGS = bench_args(__doc__.split("\n\n")[0], "fewer steps and batches", "torch threads for both loops",
                  env={"DS_ACCELERATOR": "cpu"}) if __name__ == "__main__" else None

import json  # noqa: E402
import logging  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from modsent.config import load_config  # noqa: E402
from modsent.corpus import open_corpus  # noqa: E402
from modsent.models import SentenceEncoder  # noqa: E402
from modsent.testing import tiny_bert_mlm, write_synthetic_corpus  # noqa: E402
from modsent.train import Trainer, init_distributed, move_to_device  # noqa: E402
from modsent.train.stage import ContrastiveConfig, ContrastiveLoss, TokenizeBatch, build_contrastive_task  # noqa: E402
from modsent.train.paraphrase_batches import ParaphraseBatches  # noqa: E402

BATCH_SIZE = 32
LANG = "deu_Latn"


def _config(model: Path, corpus: Path, output: Path, group_by_length: bool = False) -> ContrastiveConfig:
    return load_config(ContrastiveConfig, overrides=[
        f"model={model}", f"corpus={corpus}", f"languages=[{LANG}]", f"group_by_length={str(group_by_length).lower()}",
        f"output_dir={output}", "trainer.resume=none", "trainer.ds_config=zero1", "trainer.lr=2e-5",
        "trainer.adam_eps=1e-6", "trainer.schedule=constant", f"trainer.global_batch_size={BATCH_SIZE}",
        "trainer.max_steps=100000", "trainer.eval_every=0", "trainer.save_every=0", "trainer.eval_at_start=false",
        "trainer.progress_bar=false", "trainer.max_grad_norm=1.0"])


class PlainLoop:
    """The same training step written directly in PyTorch: no engine, no trainer."""

    def __init__(self, cfg: ContrastiveConfig, encoder: SentenceEncoder, batches: ParaphraseBatches) -> None:
        self.encoder, self.batches, self.cfg = encoder, batches, cfg
        self.loss = ContrastiveLoss(cfg.loss)
        decay = [p for p in encoder.parameters() if p.ndim >= 2]
        no_decay = [p for p in encoder.parameters() if p.ndim < 2]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.trainer.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
            lr=cfg.trainer.lr, eps=cfg.trainer.adam_eps, betas=tuple(cfg.trainer.betas))
        encoder.train()

    def step(self) -> float:
        batch = move_to_device(next(self.batches), torch.device("cpu"))
        loss = self.loss(self.encoder, batch)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.encoder.parameters(), self.cfg.trainer.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.item()


def _timed(step) -> float:
    start = time.perf_counter()
    step()
    return time.perf_counter() - start


def step_times(trainer: Trainer, plain: PlainLoop, blocks: int, steps_per_block: int) -> tuple[list[float], list[float]]:
    """Per-step seconds of both loops, measured in alternating blocks after a warm-up of each."""
    ours_step = lambda: trainer.train_step()[0].item()  # noqa: E731 (.item(): wait for the step to finish)
    for _ in range(3):
        ours_step()
        plain.step()
    ours, theirs = [], []
    for _ in range(blocks):
        ours += [_timed(ours_step) for _ in range(steps_per_block)]
        theirs += [_timed(plain.step) for _ in range(steps_per_block)]
    return ours, theirs


def padding_waste(cfg: ContrastiveConfig, batches: int) -> float:
    """Padding positions / all positions over ``batches`` tokenised training batches."""
    task, _ = build_contrastive_task(cfg, init_distributed())
    real = total = 0
    for _ in range(batches):
        mask = next(task.train_batches)["attention_mask"]
        real += int(mask.sum())
        total += mask.numel()
    return 1 - real / total


def main(args: argparse.Namespace) -> dict:
    logging.disable(logging.WARNING)
    torch.set_num_threads(args.threads)
    blocks, steps_per_block, waste_batches = (3, 4, 40) if args.quick else (6, 8, 150)
    rows = 1500 if args.quick else 4000
    work = Path(tempfile.mkdtemp(prefix="bench-contrastive-"))
    corpus = write_synthetic_corpus(work / "corpus", [LANG], {"pairs": rows, "triplets": rows // 2}, seed=0,
                                    triplet_datasets=["triplets"])
    model = tiny_bert_mlm(size="small")
    info = init_distributed()

    cfg = _config(model, corpus, work / "ours")
    task, encoder = build_contrastive_task(cfg, info)
    plain_encoder = SentenceEncoder.from_pretrained(model, max_seq_length=cfg.max_seq_length)
    plain_encoder.load_state_dict(encoder.state_dict())  # the same start, pooler included
    plain_batches = ParaphraseBatches(open_corpus(corpus), [LANG], BATCH_SIZE, seed=cfg.trainer.seed,
                                      collate=TokenizeBatch(plain_encoder))
    trainer = Trainer(task, cfg.trainer, info)
    ours, theirs = step_times(trainer, PlainLoop(cfg, plain_encoder, plain_batches), blocks, steps_per_block)

    grouped = padding_waste(_config(model, corpus, work / "grouped", group_by_length=True), waste_batches)
    ungrouped = padding_waste(_config(model, corpus, work / "ungrouped"), waste_batches)
    ours_s, theirs_s = statistics.median(ours), statistics.median(theirs)
    return {
        "bench": "train_contrastive",
        "device": f"cuda:{torch.cuda.get_device_name()}" if torch.cuda.is_available() else "cpu",
        "params": {"model": "tiny_bert_mlm(size='small')", "parameters": sum(p.numel() for p in encoder.parameters()),
                   "batch_size_pairs": BATCH_SIZE, "max_seq_length": cfg.max_seq_length, "lang": LANG,
                   "datasets": {"pairs": rows, "triplets (hard negatives)": rows // 2}, "timed_steps_each": len(ours),
                   "threads": args.threads, "ds_config": cfg.trainer.ds_config, "padding_batches": waste_batches,
                   "quick": args.quick},
        "results": {"ours_step_s_median": ours_s, "plain_torch_step_s_median": theirs_s,
                    "ours_samples_per_s": BATCH_SIZE / ours_s, "plain_torch_samples_per_s": BATCH_SIZE / theirs_s,
                    "ours_step_s_all": [round(t, 5) for t in ours],
                    "plain_torch_step_s_all": [round(t, 5) for t in theirs]},
        "ratios": {"step_time_ratio_vs_plain_torch": ours_s / theirs_s, "padding_waste_grouped": grouped,
                   "padding_waste_ungrouped": ungrouped},
    }


if __name__ == "__main__":
    print(json.dumps(main(ARGS)))
