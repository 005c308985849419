"""The 2-rank job behind test_two_ranks_share_the_cache_build_and_match_recomputing (run under torchrun).

    torchrun --nproc_per_node 2 tests/align/dist_align.py WORKDIR

WORKDIR holds ``align.yaml``. Runs ``modsent align`` twice in one process group — with a pivot
cache in ``WORKDIR/cache`` (recording how many sentences each rank added) and without — into
``WORKDIR/cached`` and ``WORKDIR/plain``; rank 0 writes ``WORKDIR/added.json``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch.distributed as dist

from modsent.align.stage import AlignConfig, build_align_job, fill_pivot_cache
from modsent.config import load_config
from modsent.io import atomic_write_json
from modsent.testing.ranks import end_rank
from modsent.train import Trainer, init_distributed


def align(workdir: Path, name: str, *overrides: str) -> int:
    cfg = load_config(AlignConfig, workdir / "align.yaml", [f"output_dir={workdir / name}", *overrides])
    info = init_distributed()
    job = build_align_job(cfg, info)
    trainer = Trainer(job.task, cfg.trainer, info)
    added = 0
    if job.cache is not None:
        steps = cfg.trainer.grad_accum
        added = fill_pivot_cache(job, trainer.step * steps, trainer.total_steps * steps, cfg.pivot_lang)
    trainer.fit()
    return added


def main(workdir: Path) -> None:
    added = align(workdir, "cached", f"pivot_cache={workdir / 'cache'}")
    align(workdir, "plain")
    counts = [None] * dist.get_world_size()
    dist.all_gather_object(counts, added)
    if dist.get_rank() == 0:
        atomic_write_json(workdir / "added.json", counts)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
    end_rank()
