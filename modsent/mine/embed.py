"""Embedding both sides of a mining job on Ray Data, into float16 shards that a rerun reuses.

The unique sentences of a side are cut into shards of ``embed.shard_size`` rows. Each shard is
one Ray Data block, so one actor call embeds it whole (the same batches on every run: the floats
do not depend on how Ray schedules the work). An actor holds the model (a modular model routes
each sentence to its language's encoder and adapter; a single encoder takes every language) and,
when configured, a fallback encoder for languages the model lacks.

A finished shard is two files under ``embeddings/<side>/``: ``shard-NNNNNN.npy`` (float16,
L2-normalised rows) and then ``shard-NNNNNN.json`` (the text hash, settings and the ``.npy``
hash), each written atomically. A shard counts as finished only when both exist and match the
current sentences and settings, so a job killed at any point redoes exactly its unfinished shards
and ends byte-identical to a run that was never interrupted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modsent.io import atomic_write, atomic_write_json, sha256_file
from modsent.mine.config import EmbedConfig

__all__ = ["Shard", "ShardStore", "ModelEncoder", "EmbedActor", "plan_shards", "embed_pending", "FAULT_ENV"]

logger = logging.getLogger(__name__)

#: Tests only: ``kill-after:N`` makes the driver SIGKILL itself once it has saved N shards.
FAULT_ENV = "MODSENT_MINE_FAULT"


@dataclass(frozen=True)
class Shard:
    side: str
    index: int
    start: int  # first row of the side's unique sentences
    stop: int
    sha256: str  # of the shard's texts and languages

    @property
    def size(self) -> int:
        return self.stop - self.start


def plan_shards(side: str, texts: Sequence[str], langs: Sequence[str], shard_size: int) -> list[Shard]:
    shards = []
    for index, start in enumerate(range(0, len(texts), shard_size)):
        stop = min(start + shard_size, len(texts))
        digest = hashlib.sha256()
        for text, lang in zip(texts[start:stop], langs[start:stop]):
            digest.update(f"{lang}\t{text}\n".encode())
        shards.append(Shard(side, index, start, stop, digest.hexdigest()))
    return shards


class ShardStore:
    """Finished shards under ``root/<side>/``, valid only for ``settings`` (model fingerprint, batch size…)."""

    def __init__(self, root: str | Path, settings: dict[str, Any]) -> None:
        self.root = Path(root)
        self.settings = settings

    def paths(self, shard: Shard) -> tuple[Path, Path]:
        stem = self.root / shard.side / f"shard-{shard.index:06d}"
        return stem.with_suffix(".npy"), stem.with_suffix(".json")

    def load(self, shard: Shard) -> np.ndarray | None:
        """The shard's float16 rows when it finished under the current settings, else None."""
        array_path, meta_path = self.paths(shard)
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if (meta.get("sha256") != shard.sha256 or meta.get("settings") != self.settings
                    or meta.get("rows") != shard.size or meta.get("array_sha256") != sha256_file(array_path)):
                return None
            array = np.load(array_path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        return array if array.shape[0] == shard.size and array.dtype == np.float16 else None

    def save(self, shard: Shard, embeddings: np.ndarray) -> None:
        array_path, meta_path = self.paths(shard)
        meta_path.unlink(missing_ok=True)  # the .npy is about to change: no stale marker may vouch for it
        with atomic_write(array_path, "wb", encoding=None) as handle:
            np.save(handle, embeddings.astype(np.float16), allow_pickle=False)
        atomic_write_json(meta_path, {"side": shard.side, "shard": shard.index, "start": shard.start,
                                      "stop": shard.stop, "rows": shard.size, "dim": int(embeddings.shape[1]),
                                      "sha256": shard.sha256, "settings": self.settings,
                                      "array_sha256": sha256_file(array_path)})


class ModelEncoder:
    """One model directory, modular (routed by language) or a single sentence encoder; L2-normalised float32 out."""

    def __init__(self, path: str, device: str, aligned: bool, batch_size: int, trust_remote_code: bool = False) -> None:
        from modsent.models.modular import ModularEncoder, is_modular_model

        self.aligned = aligned
        self.batch_size = batch_size
        if is_modular_model(path):
            self.modular: Any = ModularEncoder(path, device=device)
            self.single: Any = None
        else:
            from modsent.models.encoder import SentenceEncoder

            self.modular = None
            self.single = SentenceEncoder.from_pretrained(path, trust_remote_code=trust_remote_code).to(device).eval()

    def serves(self, lang: str) -> bool:
        return self.modular is None or lang in self.modular.modules

    def encode(self, texts: list[str], langs: list[str]) -> np.ndarray:
        if self.modular is not None:
            return self.modular.encode(texts, lang=langs, aligned=self.aligned, batch_size=self.batch_size,
                                       normalize=True)
        lang = langs if self.single.needs_lang and all(langs) else None
        return self.single.encode(texts, lang=lang, batch_size=self.batch_size, normalize=True)


class EmbedActor:
    """Ray Data actor: embeds one shard per call with the model, or the fallback for languages it lacks."""

    def __init__(self, model: str, fallback: str | None, aligned: bool, batch_size: int, device: str,
                 torch_threads: int, trust_remote_code: bool = False) -> None:
        import torch

        if device == "cpu":
            torch.set_num_threads(torch_threads)
        self.primary = ModelEncoder(model, device, aligned, batch_size, trust_remote_code)
        self.fallback = None if fallback is None else ModelEncoder(fallback, device, aligned, batch_size,
                                                                   trust_remote_code)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = [str(t) for t in batch["text"]]
        langs = [str(lang) for lang in batch["lang"]]
        primary = np.array([self.primary.serves(lang) for lang in langs], dtype=bool)
        out: np.ndarray | None = None
        for encoder, rows in ((self.primary, np.flatnonzero(primary)), (self.fallback, np.flatnonzero(~primary))):
            if len(rows) == 0:
                continue
            if encoder is None:  # the driver routes only served languages here
                raise RuntimeError(f"no encoder for languages {sorted({langs[i] for i in rows})}")
            rows_out = encoder.encode([texts[i] for i in rows], [langs[i] for i in rows])
            if out is None:
                out = np.zeros((len(texts), rows_out.shape[1]), dtype=np.float32)
            out[rows] = rows_out
        assert out is not None
        return {"side": batch["side"], "shard": batch["shard"], "pos": batch["pos"],
                "embedding": out.astype(np.float16)}


def _fault_after() -> int | None:
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return None
    mode, _, count = spec.partition(":")
    if mode != "kill-after" or not count.isdigit():
        raise ValueError(f"{FAULT_ENV}={spec!r}: expected kill-after:N")
    return int(count)


def _device(config: EmbedConfig) -> str:
    if config.device != "auto":
        return config.device
    import ray

    return "cuda" if ray.cluster_resources().get("GPU", 0) > 0 else "cpu"


def embed_pending(pending: list[Shard], texts: dict[str, list[str]], langs: dict[str, list[str]],
                  store: ShardStore, config: EmbedConfig, actor_kwargs: dict[str, Any], progress_bars: bool) -> int:
    """Embed the ``pending`` shards of both sides on an actor pool (inside a Ray session); return sentences embedded."""
    import pyarrow as pa
    import ray

    sides = sorted(texts)
    blocks = [pa.table({
        "side": pa.array(np.full(shard.size, sides.index(shard.side), dtype=np.int8)),
        "shard": pa.array(np.full(shard.size, shard.index, dtype=np.int64)),
        "pos": pa.array(np.arange(shard.size, dtype=np.int64)),
        "text": pa.array(texts[shard.side][shard.start:shard.stop], type=pa.string()),
        "lang": pa.array(langs[shard.side][shard.start:shard.stop], type=pa.string()),
    }) for shard in pending]
    device = _device(config)
    ray.data.DataContext.get_current().enable_progress_bars = progress_bars
    resources: dict[str, float] = {"num_cpus": config.cpus_per_actor}
    if device == "cuda":
        resources["num_gpus"] = config.gpus_per_actor
    embedded = ray.data.from_blocks(blocks).map_batches(
        EmbedActor, batch_size=None, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=config.num_actors),
        fn_constructor_kwargs={**actor_kwargs, "device": device, "torch_threads": config.torch_threads},
        **resources)
    by_key = {(shard.side, shard.index): shard for shard in pending}
    buffers: dict[tuple[str, int], np.ndarray] = {}
    seen: dict[tuple[str, int], np.ndarray] = {}
    filled: dict[tuple[str, int], int] = {}
    kill_after = _fault_after()
    saved = sentences = 0
    last_log = time.monotonic()
    for batch in embedded.iter_batches(batch_size=None, batch_format="numpy"):
        for side_id, shard_id, pos, row in zip(batch["side"], batch["shard"], batch["pos"], batch["embedding"]):
            key = (sides[int(side_id)], int(shard_id))
            shard = by_key[key]
            if key not in buffers:
                buffers[key] = np.zeros((shard.size, len(row)), dtype=np.float16)
                seen[key] = np.zeros(shard.size, dtype=bool)
                filled[key] = 0
            pos = int(pos)
            buffers[key][pos] = row
            if not seen[key][pos]:  # a retried batch may deliver a row twice
                seen[key][pos] = True
                filled[key] += 1
            if filled[key] == shard.size:
                store.save(shard, buffers.pop(key))
                del seen[key], filled[key]
                saved += 1
                sentences += shard.size
                if kill_after is not None and saved >= kill_after:
                    os.kill(os.getpid(), signal.SIGKILL)
        if time.monotonic() - last_log > 10:
            logger.info("embedded %d/%d shards (%d sentences)", saved, len(pending), sentences)
            last_log = time.monotonic()
    if buffers or saved != len(pending):
        raise RuntimeError(f"Ray Data returned {saved} of {len(pending)} shards complete")
    return sentences
