"""Benchmark of the training core on a masked-LM step: speed against plain PyTorch, and ZeRO memory.

usage: python bench/train_mlm.py [--quick]

- ``step_time_ratio_vs_plain_torch``: seconds per optimizer step of :meth:`modsent.train.Trainer.train_step`
  (DeepSpeed engine, ZeRO-0, fp32 on CPU / the precision ``auto`` picks on GPU; batch fetch, device
  move, forward, backward, clipping, AdamW, LR schedule) over a hand-written PyTorch loop doing the
  same work (``loss.backward()``, ``clip_grad_norm_``, ``AdamW.step``, ``LambdaLR.step``) on an
  identical model and the same batch, one process. Steps of both run interleaved, ``REPS`` timed
  blocks each, median. ZeRO-2 on one rank (the adapt default's stage) is in ``results`` too.
- ``zero3_state_bytes_ratio_vs_zero0``: per-rank bytes of parameters plus optimizer state
  (parameters, fp32 master copies and Adam moments; gradients excluded) after one step with 2 ranks,
  ZeRO-3 over ZeRO-0, in bf16 mixed precision (what ``auto`` trains in on a GPU). The same in fp32,
  and ZeRO-2 in both, are in ``results``. Measured in a torchrun job this script starts.

The last line of stdout is the JSON record (see BENCH.md).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for _key, _value in {"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}.items():
    os.environ.setdefault(_key, _value)
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

SIZES = {
    # hidden 384 keeps every weight matrix above ZeRO-3's 1e5-element persistence threshold, so it is partitioned.
    "full": dict(hidden=384, layers=6, vocab=16000, seq=128, batch=8, reps=7, steps_per_rep=3),
    "quick": dict(hidden=384, layers=2, vocab=4000, seq=64, batch=4, reps=5, steps_per_rep=3),
}
LR = 1e-4
# Mixed precision is what `precision: auto` trains in on a GPU and what ZeRO's partitioning is designed around:
# the fp32 master copy and Adam moments are the bulk. In fp32 ZeRO-1/2/3 still keep an fp32 master partition
# beside the (already fp32) parameter partition, which ZeRO-0 does not, so there ZeRO-3's floor is 2/3 on 2 ranks.
STATE_BYTES_PRECISIONS = ("bf16", "fp32")


def make_model(size: dict[str, int], seed: int = 0) -> Any:
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(seed)
    config = BertConfig(vocab_size=size["vocab"], hidden_size=size["hidden"], num_hidden_layers=size["layers"],
                        num_attention_heads=size["hidden"] // 64, intermediate_size=4 * size["hidden"],
                        max_position_embeddings=size["seq"])
    return BertForMaskedLM(config)


def make_batch(size: dict[str, int]) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(5, size["vocab"], (size["batch"], size["seq"]), generator=generator)
    labels = torch.where(torch.rand(ids.shape, generator=generator) < 0.15, ids, torch.full_like(ids, -100))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


class RepeatedBatch:
    """A ResumableBatches that yields the same batch forever (the bench times steps, not data)."""

    batches_per_epoch = 1

    def __init__(self, batch: dict[str, torch.Tensor]) -> None:
        self.batch = batch

    def __iter__(self) -> "RepeatedBatch":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        return self.batch

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def build_trainer(size: dict[str, int], ds_config: str, output_dir: Path, precision: str = "auto") -> Any:
    from modsent.train import Trainer, TrainerConfig, TrainTask

    batch = make_batch(size)
    task = TrainTask(model=make_model(size), train_batches=RepeatedBatch(batch),
                     compute_loss=lambda engine, b: engine(**b).loss,
                     count_tokens=lambda b: int(b["attention_mask"].sum()))
    ranks = int(os.environ.get("WORLD_SIZE", "1"))  # every rank steps on its own batch of size["batch"] rows
    cfg = TrainerConfig(ds_config=ds_config, global_batch_size=size["batch"] * ranks, lr=LR, schedule="constant",
                        max_steps=10**9, output_dir=str(output_dir), eval_at_start=False, progress_bar=False,
                        resume="none", precision=precision)
    return Trainer(task, cfg)


class PlainLoop:
    """The same step written directly in PyTorch."""

    def __init__(self, size: dict[str, int], device: torch.device) -> None:
        from modsent.train.optim import LRSchedule, trainable_param_groups

        self.model = make_model(size).to(device).train()
        self.batch = make_batch(size)
        self.device = device
        self.optimizer = torch.optim.AdamW(trainable_param_groups(self.model, 0.01), lr=LR, eps=1e-8)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, LRSchedule("constant", 0, 10**9))

    def step(self) -> None:
        batch = {k: v.to(self.device, non_blocking=True) for k, v in self.batch.items()}
        loss = self.model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(size: dict[str, int], workdir: Path) -> dict[str, Any]:
    """Interleaved timing of the plain loop and our step (ZeRO-0 and ZeRO-2), one process."""
    from modsent.train import init_distributed

    info = init_distributed()
    candidates = {"plain": PlainLoop(size, info.device).step}
    for stage in ("zero0", "zero2"):
        trainer = build_trainer(size, stage, workdir / stage)
        candidates[stage] = trainer.train_step
    for step in candidates.values():  # warm-up: allocator, Adam state, DeepSpeed buffers
        for _ in range(2):
            step()
    wall: dict[str, list[float]] = {name: [] for name in candidates}
    cpu: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(size["reps"]):
        for name, step in candidates.items():
            _sync(info.device)
            start, start_cpu = time.perf_counter(), time.process_time()
            for _ in range(size["steps_per_rep"]):
                step()
            _sync(info.device)
            wall[name].append((time.perf_counter() - start) / size["steps_per_rep"])
            cpu[name].append((time.process_time() - start_cpu) / size["steps_per_rep"])
    tokens = size["batch"] * size["seq"]
    medians = {name: statistics.median(values) for name, values in wall.items()}
    return {"device": info.device, "median_step_s": medians,
            # On a shared CPU, process time is less disturbed by other jobs than wall time (one thread per rank).
            "median_step_cpu_s": {name: statistics.median(values) for name, values in cpu.items()},
            "tokens_per_s": {name: tokens / seconds for name, seconds in medians.items()}}


MASTER_COPY_ATTRIBUTES = ("fp32_partitioned_groups_flat",  # ZeRO-3
                          "single_partition_of_fp32_groups",  # ZeRO-1/2
                          "fp32_groups_flat", "fp32_groups")  # ZeRO-0 with bf16/fp16 (fused / unfused wrapper)


def state_bytes(engine: Any) -> dict[str, int]:
    """This rank's bytes of parameters, fp32 master copies and optimizer moments (no gradients)."""
    params = 0
    for param in engine.module.parameters():
        # ZeRO-3 keeps a partition (ds_tensor) of each parameter; small "persistent" ones stay whole as well.
        for data in (param.data, getattr(param, "ds_tensor", None)):
            if data is not None:
                params += data.numel() * data.element_size()
    wrapper = engine.optimizer
    inner = getattr(wrapper, "optimizer", wrapper)  # ZeRO and the mixed-precision wrappers hold the torch optimizer
    # The optimizer's own fp32 copy, where a wrapper keeps one: ZeRO-3, ZeRO-1/2, and the bf16/fp16 wrappers of
    # ZeRO-0 (a list of lists there). ZeRO-0 in fp32 updates the parameters themselves and has none.
    master = 0
    for name in MASTER_COPY_ATTRIBUTES:
        for group in getattr(wrapper, name, None) or []:
            for tensor in group if isinstance(group, (list, tuple)) else [group]:
                master += tensor.numel() * tensor.element_size()
    moments = sum(value.numel() * value.element_size() for state in inner.state.values()
                  for value in state.values() if torch.is_tensor(value) and value.dim() > 0)
    return {"params": params, "master": master, "optimizer_moments": moments, "total": params + master + moments}


def state_bytes_worker(size: dict[str, int], out: Path) -> None:
    """One rank of the torchrun job: one step per ZeRO stage and precision; rank 0 writes every rank's bytes."""
    from modsent.train import init_distributed
    from modsent.train.distributed import barrier

    info = init_distributed()
    per_run: dict[str, list[dict[str, int]]] = {}
    for precision in STATE_BYTES_PRECISIONS:
        for stage in ("zero0", "zero2", "zero3"):
            trainer = build_trainer(size, stage, out.parent / f"state_{precision}_{stage}", precision)
            trainer.train_step()
            gathered: list[Any] = [None] * info.world_size
            torch.distributed.all_gather_object(gathered, state_bytes(trainer.engine))
            per_run[f"{precision}_{stage}"] = gathered
            trainer.engine.destroy()
            barrier()
    if info.is_main:
        out.write_text(json.dumps(per_run))


def run_state_bytes_job(quick: bool, workdir: Path) -> dict[str, list[dict[str, int]]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = workdir / "state_bytes.json"
    launcher_vars = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    env = {k: v for k, v in os.environ.items() if k not in launcher_vars}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    if not torch.cuda.is_available():
        env["DS_ACCELERATOR"] = "cpu"
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(port), __file__, "--state-bytes-worker", str(out)]
    if quick:
        command.append("--quick")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"state-bytes job failed:\n{(done.stdout + done.stderr)[-4000:]}")
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller model and fewer repetitions")
    parser.add_argument("--state-bytes-worker", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = SIZES["quick" if args.quick else "full"]
    if args.state_bytes_worker is not None:
        state_bytes_worker(size, args.state_bytes_worker)
        return
    with tempfile.TemporaryDirectory(prefix="bench-train-mlm-") as tmp:
        workdir = Path(tmp)
        timing = time_steps(size, workdir)
        per_run = run_state_bytes_job(args.quick, workdir)
    device = timing["device"]
    device_name = "cpu" if device.type == "cpu" else f"cuda:{torch.cuda.get_device_name(device)}"
    max_total = {run: max(rank["total"] for rank in ranks) for run, ranks in per_run.items()}
    headline = STATE_BYTES_PRECISIONS[0]
    medians, cpu_medians = timing["median_step_s"], timing["median_step_cpu_s"]
    n_params = sum(p.numel() for p in make_model(size).parameters())
    record = {
        "bench": "train_mlm",
        "device": device_name,
        "params": {**size, "model_params": n_params, "state_bytes_world_size": 2, "precision": "auto",
                   "state_bytes_precisions": list(STATE_BYTES_PRECISIONS),
                   "timed_ds_config": "zero0"},
        "results": {
            "plain_torch_step_s": medians["plain"],
            "ours_zero0_step_s": medians["zero0"],
            "ours_zero2_step_s": medians["zero2"],
            "plain_torch_tokens_per_s": timing["tokens_per_s"]["plain"],
            "ours_zero0_tokens_per_s": timing["tokens_per_s"]["zero0"],
            "ours_zero2_tokens_per_s": timing["tokens_per_s"]["zero2"],
            "zero2_one_rank_step_time_ratio_vs_plain_torch": medians["zero2"] / medians["plain"],
            "plain_torch_step_cpu_s": cpu_medians["plain"],
            "ours_zero0_step_cpu_s": cpu_medians["zero0"],
            "step_cpu_time_ratio_vs_plain_torch": cpu_medians["zero0"] / cpu_medians["plain"],
            **{f"{run}_state_bytes_per_rank": total for run, total in max_total.items()},
            **{f"{run}_state_bytes_breakdown_rank0": ranks[0] for run, ranks in per_run.items()},
            **{f"{precision}_{stage}_state_bytes_ratio_vs_zero0": max_total[f"{precision}_{stage}"]
               / max_total[f"{precision}_zero0"] for precision in STATE_BYTES_PRECISIONS for stage in ("zero2", "zero3")},
        },
        "ratios": {
            "step_time_ratio_vs_plain_torch": medians["zero0"] / medians["plain"],
            "zero3_state_bytes_ratio_vs_zero0": max_total[f"{headline}_zero3"] / max_total[f"{headline}_zero0"],
        },
    }
    print(json.dumps(record))


if __name__ == "__main__":
    main()
