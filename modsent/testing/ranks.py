"""The ranks of a test's torchrun job: their environment, and how they end."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

import torch.distributed as dist


#: What torchrun (or :func:`modsent.train.distributed.init_distributed` in one process) sets for a rank.
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def child_environment(**extra: str) -> dict[str, str]:
    """``os.environ`` without :data:`RANK_VARIABLES`, plus ``extra``: the environment of a job a test starts.

    A training test that ran in the test process set ``MASTER_PORT`` and its process group still listens
    there; a child that inherited it would take itself for that rank and fail to bind the port (EADDRINUSE).
    """
    return {**{key: value for key, value in os.environ.items() if key not in RANK_VARIABLES}, **extra}


def end_rank() -> NoReturn:
    """Leave the process group together with every other rank, then end this process at once (exit code 0).

    Why not a normal exit: a test rank that has run several DeepSpeed engines in one process now and
    then aborts *after* its Python code has finished, in C++ teardown ("terminate called without an
    active exception", Python's fault handler showing no Python frame; about 1 full test-suite run
    in 3 for tests/align/dist_align.py, even with the ranks leaving together). Its outputs are
    already written by then, but torchrun reports the signal as a failure. ``os._exit`` skips that
    teardown; the group is destroyed and the streams flushed first.
    """
    if dist.is_initialized():
        if dist.get_world_size() > 1:
            dist.barrier()
        dist.destroy_process_group()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
