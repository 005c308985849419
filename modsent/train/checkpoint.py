"""Checkpoint layout, integrity and resume rules (the DeepSpeed engine state is saved by the trainer).

One checkpoint is ``<output_dir>/checkpoints/step-00001000/``: DeepSpeed's model/optimizer/
scheduler files, one ``trainer_state_rank00000.pt`` per rank (data position and RNG states), and
``manifest.json``, written last by rank 0, with the step, world size, the run's config
fingerprint and the size and SHA-256 of every other file. A directory without a manifest is an
interrupted save and is skipped by ``resume: auto``; a manifest whose files do not match is a
corrupt checkpoint and stops the run with a :class:`CheckpointError`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import re
import shutil
import time
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np
import torch

import modsent
from modsent.errors import ModsentError
from modsent.io import atomic_write, atomic_write_json, sha256_file, sha256_json
from modsent.output_checks import human_bytes, is_disk_full

__all__ = [
    "CheckpointError",
    "MANIFEST_NAME",
    "checkpoint_root",
    "checkpoint_tag",
    "list_checkpoints",
    "write_manifest",
    "verify_checkpoint",
    "check_compatible",
    "resolve_resume",
    "prune_checkpoints",
    "check_room_for_checkpoint",
    "disk_full_as_error",
    "capture_rng_state",
    "restore_rng_state",
    "save_rank_state",
    "load_rank_state",
]

logger = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
FORMAT_VERSION = 1
_TAG = re.compile(r"^step-(\d{8,})$")


class CheckpointError(ModsentError):
    """A checkpoint is incomplete, corrupt, or was written by a run with another config."""


def checkpoint_root(output_dir: str | Path) -> Path:
    return Path(output_dir) / "checkpoints"


def checkpoint_tag(step: int) -> str:
    """``step-00000120``: zero-padded so names sort by step."""
    return f"step-{step:08d}"


def _step_of(path: Path) -> int | None:
    match = _TAG.match(path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(root: str | Path) -> tuple[list[Path], list[Path]]:
    """(complete, incomplete) checkpoint directories under ``root``, each sorted by step."""
    root = Path(root)
    found = sorted((p for p in root.glob("step-*") if p.is_dir() and _step_of(p) is not None), key=_step_of)
    complete = [p for p in found if (p / MANIFEST_NAME).is_file()]
    return complete, [p for p in found if p not in complete]


def write_manifest(checkpoint: Path, *, step: int, world_size: int, fingerprint: Mapping[str, Any]) -> None:
    """Seal ``checkpoint`` (rank 0, after every rank has written its files): hash each file, then write the manifest."""
    files = {
        path.relative_to(checkpoint).as_posix(): {"size": path.stat().st_size, "sha256": sha256_file(path)}
        for path in sorted(checkpoint.rglob("*"))
        if path.is_file() and path.name != MANIFEST_NAME and not path.name.startswith(".tmp-")
    }
    atomic_write_json(checkpoint / MANIFEST_NAME, {
        "format_version": FORMAT_VERSION,
        "modsent_version": modsent.__version__,
        "step": step,
        "world_size": world_size,
        "fingerprint": dict(fingerprint),
        "fingerprint_sha256": sha256_json(fingerprint),
        "created_unix": time.time(),
        "files": files,
    })


def verify_checkpoint(checkpoint: str | Path) -> dict[str, Any]:
    """The manifest of ``checkpoint`` after checking every listed file's size and SHA-256.

    Raises :class:`CheckpointError` naming the directory, the bad file and what to do.
    """
    checkpoint = Path(checkpoint)
    fix = f"delete {checkpoint} or set trainer.resume to another checkpoint (or none)"
    if not checkpoint.is_dir():
        raise CheckpointError(f"checkpoint {checkpoint} does not exist or is not a directory")
    manifest_path = checkpoint / MANIFEST_NAME
    if not manifest_path.is_file():
        raise CheckpointError(
            f"checkpoint {checkpoint} is incomplete (no {MANIFEST_NAME}: the save was interrupted); {fix}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        files = manifest["files"]
        step = int(manifest["step"])
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint {checkpoint}: {MANIFEST_NAME} is unreadable ({err}); {fix}") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {checkpoint} has format version {manifest.get('format_version')}, "
            f"this modsent reads {FORMAT_VERSION}"
        )
    for name, expected in files.items():
        path = checkpoint / name
        if not path.is_file():
            raise CheckpointError(f"checkpoint {checkpoint} is corrupt: {name} is missing; {fix}")
        size = path.stat().st_size
        if size != expected["size"]:
            raise CheckpointError(
                f"checkpoint {checkpoint} is corrupt: {name} has {size} bytes, "
                f"the manifest says {expected['size']}; {fix}"
            )
        if sha256_file(path) != expected["sha256"]:
            raise CheckpointError(
                f"checkpoint {checkpoint} is corrupt: {name} does not match its SHA-256 in the manifest; {fix}")
    manifest["step"] = step
    return manifest


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, Mapping):
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix[:-1]: node}


def check_compatible(manifest: Mapping[str, Any], checkpoint: Path, fingerprint: Mapping[str, Any],
                     world_size: int) -> None:
    """Refuse to resume from a checkpoint of another config or another number of ranks."""
    if manifest.get("world_size") != world_size:
        raise CheckpointError(
            f"checkpoint {checkpoint} was written by {manifest.get('world_size')} ranks but this run has {world_size}; "
            "resume with the same number of ranks"
        )
    if manifest.get("fingerprint_sha256") != sha256_json(fingerprint):
        saved, current = _flatten(manifest.get("fingerprint", {})), _flatten(fingerprint)
        absent = "<absent>"
        differing = sorted(k for k in saved.keys() | current.keys() if saved.get(k, absent) != current.get(k, absent))
        shown = "; ".join(f"{k}: checkpoint {saved.get(k, absent)!r}, now {current.get(k, absent)!r}"
                          for k in differing[:6])
        more = f" (and {len(differing) - 6} more)" if len(differing) > 6 else ""
        raise CheckpointError(
            f"checkpoint {checkpoint} was written by a run with a different config ({shown}{more}); "
            "resume with that config, or set trainer.resume=none (or a new trainer.output_dir) to start fresh"
        )


def resolve_resume(resume: str, output_dir: str | Path) -> Path | None:
    """The checkpoint to resume from: ``auto`` = newest complete one in ``output_dir`` (or None), ``none``, a path."""
    if resume == "none":
        return None
    if resume == "auto":
        complete, incomplete = list_checkpoints(checkpoint_root(output_dir))
        newest_complete = _step_of(complete[-1]) if complete else -1
        for path in incomplete:
            if _step_of(path) > newest_complete:  # type: ignore[operator]
                logger.warning("ignoring %s: it has no %s (the save was interrupted)", path, MANIFEST_NAME)
        return complete[-1] if complete else None
    return Path(resume)


def prune_checkpoints(root: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest complete checkpoints, and interrupted saves older than them (0 keeps all)."""
    if keep <= 0:
        return
    complete, incomplete = list_checkpoints(root)
    if len(complete) <= keep:
        return
    oldest_kept = _step_of(complete[-keep])
    for path in complete[:-keep] + [p for p in incomplete if _step_of(p) < oldest_kept]:  # type: ignore[operator]
        shutil.rmtree(path, ignore_errors=True)


def capture_rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU (and CUDA) generator states, in types ``torch.load(weights_only=True)`` accepts."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _rank_state_path(checkpoint: Path, rank: int) -> Path:
    return checkpoint / f"trainer_state_rank{rank:05d}.pt"


def save_rank_state(checkpoint: Path, rank: int, state: Mapping[str, Any]) -> None:
    """This rank's trainer state (step, data position, RNG states) beside DeepSpeed's files."""
    with atomic_write(_rank_state_path(checkpoint, rank), "wb") as handle:
        torch.save(dict(state), handle)


def load_rank_state(checkpoint: Path, rank: int) -> dict[str, Any]:
    path = _rank_state_path(checkpoint, rank)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {checkpoint} has no trainer state for rank {rank} ({path.name})") from None


def check_room_for_checkpoint(root: str | Path) -> None:
    """Refuse a save the disk cannot hold (the newest complete checkpoint's size must be free), before writing."""
    complete, _ = list_checkpoints(root)
    if not complete:
        return
    need = sum(p.stat().st_size for p in complete[-1].rglob("*") if p.is_file())
    free = shutil.disk_usage(root).free
    if need > free:
        raise CheckpointError(
            f"{root}: the next checkpoint needs about {human_bytes(need)} (the size of {complete[-1].name}) but its "
            f"disk has {human_bytes(free)} free; free space or lower trainer.keep_checkpoints, then rerun (training "
            f"resumes from {complete[-1].name})")


@contextlib.contextmanager
def disk_full_as_error(checkpoint: Path) -> Iterator[None]:
    """Turn a save that ran out of space into a :class:`CheckpointError`, removing the partial ``checkpoint``.

    A checkpoint without its manifest is never resumed from anyway; removing it frees the space
    and leaves nothing that looks like a checkpoint.
    """
    try:
        yield
    except (OSError, RuntimeError) as err:  # torch.save reports a full disk as a RuntimeError
        if not is_disk_full(err, checkpoint):
            raise
        shutil.rmtree(checkpoint, ignore_errors=True)
        free = shutil.disk_usage(checkpoint.parent).free if checkpoint.parent.exists() else 0
        raise CheckpointError(
            f"disk full while writing checkpoint {checkpoint} ({human_bytes(free)} free after removing the partial "
            "save); free space or lower trainer.keep_checkpoints, then rerun: training resumes from the last "
            "complete checkpoint") from None
