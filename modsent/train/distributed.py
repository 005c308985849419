"""Process-group setup and the few collectives the recipes need (CPU/gloo and CUDA/NCCL alike).

Every training entry point calls :func:`init_distributed` once; it works under ``torchrun``, the
``deepspeed`` launcher, and as one plain process without any launcher.
"""

from __future__ import annotations

import atexit
import functools
import os
import socket
import warnings
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Callable, Sequence, TypeVar

import torch
import torch.distributed as dist

from modsent.io import cache_root

__all__ = [
    "DistInfo",
    "init_distributed",
    "barrier",
    "all_reduce_sum",
    "broadcast_object",
    "run_on_main",
    "all_gather_with_grad",
]

T = TypeVar("T")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: its rank, the world size and the device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _set_single_process_defaults() -> None:
    """Without a launcher, act as rank 0 of 1 on loopback (DeepSpeed would otherwise try MPI discovery)."""
    os.environ.setdefault("RANK", "0")
    os.environ.setdefault("LOCAL_RANK", "0")
    os.environ.setdefault("WORLD_SIZE", "1")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    if "MASTER_PORT" not in os.environ:
        if int(os.environ["WORLD_SIZE"]) > 1:
            raise RuntimeError("WORLD_SIZE > 1 but MASTER_PORT is unset: start the job with torchrun or deepspeed")
        os.environ["MASTER_PORT"] = str(_free_port())


def _skip_cpu_shm_allreduce_op() -> None:
    """Keep DeepSpeed from compiling (45-100 s on first use) its shared-memory CPU all-reduce op.

    DeepSpeed's comm backend builds that op at start-up on the CPU accelerator, but only its
    tensor-parallel inference path (``inference_all_reduce``) calls it; training reduces through
    torch.distributed. Marking it incompatible also avoids the ``/dev/shm`` buffers it leaves.
    Should a DeepSpeed release drop this table, the op is simply built as before.
    """
    import deepspeed.ops

    compatible = getattr(deepspeed.ops, "__compatible_ops__", None)
    if isinstance(compatible, dict):
        compatible["deepspeed_shm_comm"] = False


def _quiet_third_party(rank: int) -> None:
    """Keep each rank's log to what matters: DeepSpeed calls a torch collective under its deprecated
    name on every step (a FutureWarning per rank), and every rank would draw its own weight-loading bar."""
    warnings.filterwarnings("ignore", message=r".*all_gather_into_tensor.* is deprecated", category=FutureWarning)
    if rank != 0:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _destroy_process_group() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


@functools.cache
def _destroy_group_at_exit() -> None:
    """Destroy the process group while the interpreter is still whole (registered once per process).

    Why: a process that exits with its gloo group alive lets the group's worker threads be torn
    down during interpreter finalisation, which now and then aborts the rank with "terminate called
    without an active exception" after its work is done (seen on a 2-rank CPU test; pytorch#190489).
    NCCL asks for the same explicit destroy on exit.
    """
    atexit.register(_destroy_process_group)


def init_distributed(timeout_s: float = 1800.0) -> DistInfo:
    """Join (or create) the process group: NCCL when CUDA is available, gloo on CPU.

    Reads ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` from the launcher;
    one process without a launcher becomes rank 0 of 1 on 127.0.0.1 and a free port. Also points
    ``TORCH_EXTENSIONS_DIR`` at ``<modsent cache>/torch_extensions`` (DeepSpeed compiles ops such
    as CPU Adam once there) and, on CPU without ``OMP_NUM_THREADS``, splits the cores between
    local ranks.
    Safe to call more than once.

    >>> info = init_distributed()  # doctest: +SKIP
    >>> info.rank, info.world_size, info.device.type  # doctest: +SKIP
    (0, 1, 'cpu')
    """
    _set_single_process_defaults()
    cuda = torch.cuda.is_available()
    if not cuda:
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(cache_root() / "torch_extensions"))
    rank = int(os.environ["RANK"])
    world_size = int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if cuda:
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
        backend = "nccl"
    else:
        device = torch.device("cpu")
        backend = "gloo"
        if "OMP_NUM_THREADS" not in os.environ:
            # Every rank would otherwise start one thread per core and they would fight for them.
            # torchrun exports LOCAL_WORLD_SIZE, the deepspeed launcher LOCAL_SIZE.
            local_world = int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("LOCAL_SIZE", "1")))
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, local_world)))

    _quiet_third_party(rank)
    import deepspeed  # after the environment above: DeepSpeed reads it when it builds its comm ops

    if not cuda:
        _skip_cpu_shm_allreduce_op()
    deepspeed.init_distributed(dist_backend=backend, timeout=timedelta(seconds=timeout_s), verbose=False)
    _destroy_group_at_exit()
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device, backend=backend)


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def all_reduce_sum(values: Sequence[float], device: torch.device) -> list[float]:
    """Sum each number over all ranks (float64), e.g. ``[loss_sum, token_count]`` for an eval mean."""
    tensor = torch.tensor(list(values), dtype=torch.float64, device=device)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s ``obj`` on every rank (picklable objects only)."""
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def run_on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and return its result on every rank.

    If ``fn`` raises, every rank raises the same exception, so a bad input file stops the whole
    job with one clear error instead of leaving the other ranks waiting in a collective forever.
    """
    outcome: tuple[bool, Any] = (True, None)
    is_main = not dist.is_initialized() or dist.get_rank() == 0
    if is_main:
        try:
            outcome = (True, fn())
        except Exception as err:  # re-raised below, on every rank
            outcome = (False, err)
    ok, value = broadcast_object(outcome)
    if not ok:
        raise value
    return value


class _AllGatherWithGrad(torch.autograd.Function):
    """all_gather whose backward sends every rank's gradient for a row back to the rank that made it.

    Backward all-reduces the full gradient and keeps this rank's slice: only all_reduce is needed,
    which every backend (gloo included) implements.
    """

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        world_size = dist.get_world_size()
        ctx.rank, ctx.rows = dist.get_rank(), tensor.shape[0]
        gathered = [torch.empty_like(tensor) for _ in range(world_size)]
        dist.all_gather(gathered, tensor.contiguous())
        return torch.cat(gathered, dim=0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.rows:(ctx.rank + 1) * ctx.rows]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` (``[rows, ...]``, the same shape on every rank) from all ranks along dim 0.

    Rank ``r``'s rows come at ``[r * rows, (r + 1) * rows)``. Gradients flow back to the rank that
    produced each row, summed over every rank's loss; with DeepSpeed averaging gradients over
    ranks, training then follows the gradient of the mean of the per-rank losses — what an
    in-batch-negatives loss over the global batch needs. One process: returns ``tensor``.

    >>> embeddings = encoder(batch)                       # doctest: +SKIP
    >>> everyone = all_gather_with_grad(embeddings)       # [world * rows, dim]
    """
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return tensor
    return _AllGatherWithGrad.apply(tensor)
