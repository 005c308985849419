"""Full, unpartitioned weights out of a DeepSpeed engine, and plain ``transformers`` directories."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["gather_full_state_dict", "save_pretrained_dir"]


def gather_full_state_dict(engine: Any) -> dict[str, torch.Tensor] | None:
    """The model's complete state dict on CPU on rank 0 (None on other ranks); a collective call.

    Works for every ZeRO stage: ZeRO-3 partitions are gathered one parameter at a time (so no
    rank ever holds two full copies), and trained parameters come from the optimizer's fp32
    master copy where one exists (mixed precision, ZeRO-1/2/3), otherwise from the module.
    Tied parameters appear once, under their first name; persistent buffers are included.

    >>> state = gather_full_state_dict(engine)   # doctest: +SKIP
    >>> if state is not None: model.save_pretrained(out_dir, state_dict=state)  # doctest: +SKIP
    """
    import deepspeed
    from deepspeed.utils import safe_get_full_fp32_param

    module = engine.module
    is_main = not dist.is_initialized() or dist.get_rank() == 0
    full: dict[str, torch.Tensor] = {}
    for name, param in module.named_parameters():
        # Every rank walks the parameters in the same order: each gather below is a collective.
        with deepspeed.zero.GatheredParameters([param], modifier_rank=None):
            master = safe_get_full_fp32_param(param) if param.requires_grad else None
            value = master if master is not None else param.data
            if is_main:
                full[name] = value.detach().to("cpu", copy=True).contiguous()
    persistent = set(module.state_dict().keys())
    for name, buffer in module.named_buffers():
        if name in persistent and is_main:
            full[name] = buffer.detach().to("cpu", copy=True).contiguous()
    return full if is_main else None


def save_pretrained_dir(module: Any, state_dict: dict[str, torch.Tensor], directory: Path,
                        tokenizer: Any = None) -> None:
    """Write a ``transformers`` model directory (config + safetensors weights, and the tokenizer when given).

    ``module`` supplies the class and config (its own, possibly partitioned, weights are not read);
    ``state_dict`` comes from :func:`gather_full_state_dict`.
    """
    module.save_pretrained(directory, state_dict=state_dict, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(directory)
