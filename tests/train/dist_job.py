"""The 2-rank jobs behind tests/train/test_distributed.py (run under torchrun, not collected by pytest).

    torchrun --nproc_per_node 2 tests/train/dist_job.py WORKDIR STOP_AT_STEP

WORKDIR holds ``adapt.yaml`` (written by the test fixture). In one process group this runs:
``zero2_full`` (the uninterrupted reference), ``zero2_resume`` stopped early at
STOP_AT_STEP (the test finishes it later with the ``modsent adapt`` CLI), ``zero3``
(full run; the engine's logits on held-out blocks are saved for the export test) and an
``all_gather_with_grad`` check. Results go to ``WORKDIR/<name>/`` and ``WORKDIR/*.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from modsent.config import load_config
from modsent.io import atomic_write_json
from modsent.testing.ranks import end_rank
from modsent.train import Trainer, all_gather_with_grad, init_distributed
from modsent.adapt.stage import AdaptConfig, build_adapt_task


def adapt(workdir: Path, name: str, *overrides: str) -> Trainer:
    cfg = load_config(AdaptConfig, workdir / "adapt.yaml", [f"output_dir={workdir / name}", *overrides])
    info = init_distributed()
    task, _ = build_adapt_task(cfg, info)
    trainer = Trainer(task, cfg.trainer, info)
    result = trainer.fit()
    if info.is_main:
        atomic_write_json(workdir / f"{name}.json", {"step": result.step, "completed": result.completed,
                                                     "eval": result.eval_metrics})
    return trainer


def save_engine_logits(trainer: Trainer, path: Path) -> None:
    """Logits of the trained engine on four held-out blocks (a collective forward under ZeRO-3)."""
    input_ids = torch.from_numpy(trainer.task.evaluate.blocks[:4].astype("int64"))
    trainer.engine.eval()
    with torch.no_grad():
        logits = trainer.engine(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).logits
    if trainer.dist.is_main:
        from safetensors.torch import save_file

        save_file({"input_ids": input_ids, "logits": logits.contiguous()}, str(path))


def check_all_gather(workdir: Path) -> None:
    """Rank r contributes rows [r+1, r+1]; loss = sum(all rows * weights) sends grads back by row."""
    info = init_distributed()
    local = torch.full((1, 2), float(info.rank + 1), requires_grad=True)
    gathered = all_gather_with_grad(local)
    weights = torch.arange(1, 1 + gathered.numel(), dtype=torch.float32).view_as(gathered)
    (gathered * weights).sum().backward()
    grads = [None] * info.world_size
    torch.distributed.all_gather_object(grads, local.grad.tolist())
    if info.is_main:
        atomic_write_json(workdir / "all_gather.json", {"gathered": gathered.tolist(), "grads": grads})


def main(workdir: Path, stop_at_step: int) -> None:
    adapt(workdir, "zero2_full")
    adapt(workdir, "zero2_resume", f"trainer.stop_at_step={stop_at_step}")
    # 2 ranks × micro-batches of 4, as the ZeRO-2 runs, without accumulation
    zero3 = adapt(workdir, "zero3", "trainer.ds_config=zero3", "trainer.grad_accum=1", "trainer.global_batch_size=8")
    save_engine_logits(zero3, workdir / "zero3_engine_logits.safetensors")
    check_all_gather(workdir)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
    end_rank()
