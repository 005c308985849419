"""DeepSpeed configs: the bundled JSON (:func:`modsent.resources.ds_configs`) holds ZeRO settings, :class:`TrainerConfig` the rest.

The trainer section of a stage config is the single source of truth for batch size, gradient
accumulation, clipping and precision; :func:`build_ds_config` writes them into the JSON's dict and
refuses a JSON that sets one of them to a different value (``"auto"`` or leaving it out is fine).
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from modsent.errors import ModsentError
from modsent.resources import ds_configs
from modsent.train.trainer_config import TrainerConfig

logger = logging.getLogger(__name__)

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = ["DeepSpeedConfigError", "resolve_ds_config_path", "resolve_precision", "build_ds_config",
           "uses_offload"]

ResolvedPrecision = Literal["bf16", "bf16_mixed", "fp16", "fp32"]


class DeepSpeedConfigError(ModsentError):
    """A DeepSpeed JSON config is missing, unreadable or contradicts the trainer settings."""


def resolve_ds_config_path(name_or_path: str) -> Path | Traversable:
    """A path to a JSON file as given, or a bare name (``zero2``, ``zero3_offload.json``) of a bundled config."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = ds_configs()
    name = path.stem if path.suffix == ".json" else path.name
    if path.parent == Path(".") and name in bundled:
        return bundled[name]
    available = ", ".join(bundled)
    raise DeepSpeedConfigError(
        f"trainer.ds_config: {name_or_path} is neither a file nor one of the bundled configs ({available})"
    )


def resolve_precision(precision: str, device: torch.device) -> ResolvedPrecision:
    """The one device check for precision: ``auto`` is bf16 on CUDA (fp16 where bf16 is unsupported), fp32 on CPU.

    >>> resolve_precision("auto", torch.device("cpu"))
    'fp32'
    """
    cuda = device.type == "cuda"
    if precision == "auto":
        if not cuda:
            return "fp32"
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp16" and not cuda:
        raise DeepSpeedConfigError("trainer.precision=fp16 needs a CUDA device; use fp32 or bf16 on CPU (or auto)")
    if precision not in ("bf16", "bf16_mixed", "fp16", "fp32"):
        raise DeepSpeedConfigError(f"trainer.precision must be auto, bf16, bf16_mixed, fp16 or fp32, got {precision!r}")
    if precision.startswith("bf16") and not cuda and not cpu_has_native_bf16():
        logger.warning("trainer.precision=%s on a CPU without AVX512-BF16 or AMX: bf16 matmuls are emulated there "
                       "(25x slower than fp32 on an AVX2 EPYC); precision: auto (fp32 on a CPU) is faster", precision)
    return precision  # type: ignore[return-value]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX tiles); torch's own CPU checks."""
    checks = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return any(check() for check in checks if check is not None)


def _load_json(path: Path | Traversable) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DeepSpeedConfigError(f"{path} line {err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(data, dict):
        raise DeepSpeedConfigError(f"{path}: expected a JSON object at the top level")
    return data


def _strip_comments(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _strip_comments(v) for k, v in node.items() if not str(k).startswith("_")}
    return node


def _set_owned(config: dict[str, Any], key: str, value: Any, source: Path | Traversable, trainer_key: str) -> None:
    """Write a trainer-owned value, refusing a JSON that already holds a different concrete one."""
    current = config.get(key, "auto")
    if current != "auto" and current != value:
        raise DeepSpeedConfigError(
            f"{source}: '{key}' is {current!r} but {trainer_key} gives {value!r}; remove '{key}' from the "
            f"JSON (or set it to \"auto\") and set {trainer_key} instead"
        )
    config[key] = value


def uses_offload(ds_config: dict[str, Any]) -> bool:
    """Whether ZeRO offloads optimizer state to CPU/NVMe (then DeepSpeed must build its own optimizer)."""
    offload = ds_config.get("zero_optimization", {}).get("offload_optimizer") or {}
    return offload.get("device", "none") not in ("none", None)


def build_ds_config(cfg: TrainerConfig, world_size: int, device: torch.device) -> dict[str, Any]:
    """The dict to pass to ``deepspeed.initialize``: the JSON's ZeRO settings plus the trainer's values.

    Sets batch sizes (the global batch and its per-rank share, :meth:`TrainerConfig.micro_batch`), clipping, precision
    (:func:`resolve_precision`), the ZeRO stage override and, when the optimizer is offloaded,
    an AdamW ``optimizer`` section from the trainer's lr/betas/eps/weight decay.

    >>> ds = build_ds_config(TrainerConfig(ds_config="zero3", global_batch_size=8), 2, torch.device("cpu"))
    >>> ds["train_batch_size"], ds["train_micro_batch_size_per_gpu"], ds["zero_optimization"]["stage"], ds["bf16"]["enabled"]
    (8, 4, 3, False)
    """
    source = resolve_ds_config_path(cfg.ds_config)
    config = _strip_comments(copy.deepcopy(_load_json(source)))
    _set_owned(config, "train_micro_batch_size_per_gpu", cfg.micro_batch(world_size), source,
               "trainer.global_batch_size / (world size × trainer.grad_accum)")
    _set_owned(config, "gradient_accumulation_steps", cfg.grad_accum, source, "trainer.grad_accum")
    _set_owned(config, "train_batch_size", cfg.global_batch_size, source, "trainer.global_batch_size")
    _set_owned(config, "gradient_clipping", cfg.max_grad_norm, source, "trainer.max_grad_norm")
    precision = resolve_precision(cfg.precision, device)
    for name in ("bf16", "fp16"):
        section = config.get(name)
        section = dict(section) if isinstance(section, dict) else {}
        section["enabled"] = precision == name
        config[name] = section
    zero = dict(config.get("zero_optimization") or {})
    if cfg.zero_stage is not None:
        zero["stage"] = cfg.zero_stage
    zero.setdefault("stage", 0)
    config["zero_optimization"] = zero
    for owned in ("optimizer", "scheduler"):
        if owned in config:
            raise DeepSpeedConfigError(
                f"{source}: remove the '{owned}' section; the optimizer and LR schedule come from the "
                "trainer settings (trainer.lr, trainer.betas, trainer.schedule, …)"
            )
    if uses_offload(config):
        config["optimizer"] = {
            "type": "AdamW",
            "params": {"lr": cfg.lr, "betas": list(cfg.betas), "eps": cfg.adam_eps, "weight_decay": cfg.weight_decay},
        }
    # modsent logs its own metrics; DeepSpeed's periodic prints would only interleave with the progress bar.
    config.setdefault("steps_per_print", 1 << 30)
    config.setdefault("wall_clock_breakdown", False)
    return config
