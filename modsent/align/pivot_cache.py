"""Pivot-embedding cache: the frozen English encoder's embeddings, computed once, read by every language.

The pivot is frozen during alignment, so its embedding of an English sentence is the same in
every language's run. Instead of re-encoding the English side of each batch in each run, the
runs look the embeddings up here (memory-mapped), which removes the pivot's forward pass from
every training step. A float32 cache gives bit-for-bit the loss of recomputing (the pivot runs
in eval mode, in float32).

Layout (every file written atomically; segments are immutable once renamed into place)::

    CACHE_DIR/
      pivot.json                        what the embeddings depend on: pivot weights fingerprint,
                                        max_seq_length, pooling, normalisation, dim; storage dtype
      segments/<id>/keys.npy            sorted 16-byte BLAKE2b hashes of the UTF-8 sentences (dtype S16)
      segments/<id>/embeddings.npy      (rows, dim) float32 or float16, row i = keys[i]

A run adds segments holding only the sentences it needs that no segment has yet, so ranks (each
encodes its own share) and concurrent runs never write the same file; a sentence present twice
is harmless. Lookups binary-search each segment's memory-mapped key array.

>>> cache = PivotCache.open_or_create("runs/pivot_cache", identity)            # doctest: +SKIP
>>> cache.add_missing(english_sentences, encode=pivot.encode)                   # doctest: +SKIP
>>> cache.lookup(["The old man reads a book."]).shape                           # doctest: +SKIP
(1, 768)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Sequence

import numpy as np

from modsent.errors import ModsentError
from modsent.io import atomic_directory, atomic_write_json

__all__ = ["PivotCache", "PivotCacheError", "PivotIdentity", "SegmentWriter", "CacheDtype", "sentence_keys"]

logger = logging.getLogger(__name__)

CacheDtype = Literal["float32", "float16"]
CACHE_FORMAT = "modsent-pivot-cache"
CACHE_FORMAT_VERSION = 1
IDENTITY_FILE = "pivot.json"
SEGMENTS_DIR = "segments"
KEYS_FILE = "keys.npy"
EMBEDDINGS_FILE = "embeddings.npy"
KEY_BYTES = 16
#: Sentences encoded per call of the encode function in :meth:`PivotCache.add_missing`.
ENCODE_CHUNK = 16384
#: Rows buffered before a segment is written (~200 MB of float32 at dim 768).
SEGMENT_ROWS = 65536


class PivotCacheError(ModsentError):
    """The cache belongs to another pivot, is damaged, or lacks a sentence it was asked for."""


@dataclass(frozen=True)
class PivotIdentity:
    """Everything a pivot embedding depends on; a cache only serves the pivot it was built with."""

    fingerprint: str  # modsent.models.adapter.encoder_fingerprint of the pivot's directory
    max_seq_length: int
    pooling: str
    normalize: bool
    dim: int
    prompt: str = ""  # the pivot's default prompt, put before every sentence it embeds


def sentence_keys(texts: Sequence[str]) -> np.ndarray:
    """16-byte BLAKE2b hashes of ``texts`` (UTF-8) as a ``(n,)`` array of dtype ``S16``.

    >>> sentence_keys(["a", "a", "b"]).tolist()[0] == sentence_keys(["a"]).tolist()[0]
    True
    """
    return np.array([hashlib.blake2b(t.encode("utf-8"), digest_size=KEY_BYTES).digest() for t in texts],
                    dtype=f"S{KEY_BYTES}")


@dataclass
class _Segment:
    path: Path
    keys: np.ndarray  # (n,) S16, sorted; memory-mapped
    embeddings: np.ndarray  # (n, dim); memory-mapped

    def find(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of ``keys`` found here, their rows)."""
        if len(self.keys) == 0:
            return np.zeros(len(keys), dtype=bool), np.zeros(len(keys), dtype=np.int64)
        rows = np.searchsorted(self.keys, keys).clip(max=len(self.keys) - 1)
        return self.keys[rows] == keys, rows


class PivotCache:
    """A directory of pivot embeddings keyed by sentence hash (see the module docstring).

    Open one with :meth:`open_or_create`; read with :meth:`lookup`; fill with :meth:`add_missing`.
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        identity_path = self.root / IDENTITY_FILE
        if not identity_path.is_file():
            raise PivotCacheError(f"{self.root}: not a pivot cache (no {IDENTITY_FILE})")
        try:
            meta = json.loads(identity_path.read_text(encoding="utf-8"))
            self.identity = PivotIdentity(**meta["identity"])
            self.dtype: CacheDtype = meta["dtype"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise PivotCacheError(f"{identity_path}: damaged pivot cache description ({err}); delete {self.root}") from None
        if meta.get("format") != CACHE_FORMAT or self.dtype not in ("float32", "float16"):
            raise PivotCacheError(f"{identity_path}: not a {CACHE_FORMAT} description; delete {self.root}")
        self._segments: list[_Segment] = []
        self.refresh()

    @classmethod
    def open_or_create(cls, root: str | os.PathLike, identity: PivotIdentity,
                       dtype: CacheDtype = "float32") -> "PivotCache":
        """Open the cache at ``root`` for ``identity``, creating it (empty) when absent.

        Raises :class:`PivotCacheError` when it exists but was built for another pivot (other
        weights, length limit, pooling …) or with another storage dtype.
        """
        root = Path(root)
        identity_path = root / IDENTITY_FILE
        if not identity_path.is_file():
            # Ranks or runs racing here write identical content: the last rename wins harmlessly.
            atomic_write_json(identity_path, {"format": CACHE_FORMAT, "format_version": CACHE_FORMAT_VERSION,
                                              "identity": asdict(identity), "dtype": dtype})
        cache = cls(root)
        if cache.identity != identity or cache.dtype != dtype:
            theirs = {**asdict(cache.identity), "dtype": cache.dtype}
            ours = {**asdict(identity), "dtype": dtype}
            diff = ", ".join(f"{k}: cache {theirs[k]!r} vs run {ours[k]!r}" for k in ours if theirs[k] != ours[k])
            raise PivotCacheError(f"{root}: this pivot cache was built for another pivot setup ({diff}); "
                                  "point align.pivot_cache at a fresh directory or delete this one")
        return cache

    def refresh(self) -> None:
        """Re-scan ``segments/`` (segments other ranks or runs added since opening)."""
        segments = []
        seg_root = self.root / SEGMENTS_DIR
        for path in sorted(seg_root.iterdir()) if seg_root.is_dir() else ():
            if path.name.startswith(".") or not path.is_dir():
                continue  # a segment still being written has a temporary name
            try:
                keys = np.load(path / KEYS_FILE, mmap_mode="r")
                embeddings = np.load(path / EMBEDDINGS_FILE, mmap_mode="r")
            except (OSError, ValueError) as err:
                raise PivotCacheError(f"{path}: damaged cache segment ({err}); delete it and rerun") from None
            if embeddings.shape != (len(keys), self.identity.dim) or keys.dtype != np.dtype(f"S{KEY_BYTES}"):
                raise PivotCacheError(f"{path}: segment shapes {keys.shape}/{embeddings.shape} do not match the cache "
                                      f"(dim {self.identity.dim}); delete it and rerun")
            segments.append(_Segment(path, keys, embeddings))
        self._segments = segments

    def __len__(self) -> int:
        """Stored rows (a sentence stored by two segments counts twice)."""
        return sum(len(s.keys) for s in self._segments)

    @property
    def nbytes(self) -> int:
        return sum(s.embeddings.nbytes + s.keys.nbytes for s in self._segments)

    def _locate(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each key: found?, segment index, row in that segment."""
        found = np.zeros(len(keys), dtype=bool)
        segment_of = np.full(len(keys), -1, dtype=np.int64)
        row_of = np.zeros(len(keys), dtype=np.int64)
        for index, segment in enumerate(self._segments):
            todo = np.flatnonzero(~found)
            if len(todo) == 0:
                break
            hit, rows = segment.find(keys[todo])
            found[todo[hit]] = True
            segment_of[todo[hit]] = index
            row_of[todo[hit]] = rows[hit]
        return found, segment_of, row_of

    def missing(self, texts: Iterable[str]) -> list[str]:
        """The distinct ``texts`` the cache lacks, in order of first appearance."""
        unique = list(dict.fromkeys(texts))
        found, _, _ = self._locate(sentence_keys(unique))
        return [text for text, ok in zip(unique, found) if not ok]

    def lookup(self, texts: Sequence[str]) -> np.ndarray:
        """The cached embeddings of ``texts`` as a float32 ``(len(texts), dim)`` array, in input order.

        Raises :class:`PivotCacheError` if any text is absent.
        """
        keys = sentence_keys(texts)
        found, segment_of, row_of = self._locate(keys)
        if not found.all():
            first = texts[int(np.flatnonzero(~found)[0])]
            raise PivotCacheError(f"{self.root}: {int((~found).sum())} of {len(texts)} sentences are not cached "
                                  f"(first: {first[:80]!r}); fill the cache for this data before training")
        out = np.empty((len(texts), self.identity.dim), dtype=np.float32)
        for index in np.unique(segment_of):
            members = np.flatnonzero(segment_of == index)
            out[members] = self._segments[index].embeddings[row_of[members]]
        return out

    def writer(self, rows_per_segment: int = SEGMENT_ROWS) -> "SegmentWriter":
        """A :class:`SegmentWriter` adding embeddings computed by the caller (use it as a context manager)."""
        return SegmentWriter(self, rows_per_segment)

    def add_missing(self, texts: Iterable[str], encode: Callable[[list[str]], np.ndarray],
                    chunk_size: int = ENCODE_CHUNK) -> int:
        """Encode the ``texts`` not cached yet with ``encode`` and store them; return how many were added.

        ``encode(list_of_texts)`` returns their ``(n, dim)`` embeddings. Texts are encoded
        ``chunk_size`` at a time, so memory stays bounded.
        """
        todo = self.missing(texts)
        with self.writer() as writer:
            for start in range(0, len(todo), chunk_size):
                chunk = todo[start:start + chunk_size]
                writer.add(chunk, encode(chunk))
        return len(todo)

    def _write_segment(self, keys: np.ndarray, embeddings: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        keys, embeddings = keys[order], embeddings[order]
        segment_id = hashlib.sha256(keys.tobytes()).hexdigest()[:20]
        with atomic_directory(self.root / SEGMENTS_DIR / segment_id) as staging:
            np.save(staging / KEYS_FILE, keys)
            np.save(staging / EMBEDDINGS_FILE, embeddings.astype(self.dtype, copy=False))
        logger.info("pivot cache %s: stored %d sentences (segment %s)", self.root, len(keys), segment_id)

    def describe(self) -> dict[str, Any]:
        """Counts and sizes for reports."""
        return {"path": str(self.root), "segments": len(self._segments), "rows": len(self), "bytes": self.nbytes,
                "dtype": self.dtype, "dim": self.identity.dim}


class SegmentWriter:
    """Adds ``(texts, embeddings)`` to a :class:`PivotCache`, skipping sentences it already has.

    Rows are buffered and written as immutable segments of up to ``rows_per_segment`` rows (and
    once more when the ``with`` block ends); the cache re-reads its segments after each write.

    >>> with cache.writer() as writer:                                # doctest: +SKIP
    ...     writer.add(batch_texts, pivot_embeddings_of_the_batch)
    """

    def __init__(self, cache: PivotCache, rows_per_segment: int = SEGMENT_ROWS) -> None:
        self.cache, self.rows_per_segment = cache, rows_per_segment
        self.added = 0
        self._seen: set[bytes] = set()
        self._keys: list[np.ndarray] = []
        self._embeddings: list[np.ndarray] = []
        self._pending = 0

    def wanted(self, texts: Sequence[str]) -> bool:
        """Whether any of ``texts`` is neither cached nor already added: worth encoding them."""
        keys = sentence_keys(texts)
        found, _, _ = self.cache._locate(keys)
        return any(not ok and bytes(key) not in self._seen for key, ok in zip(keys, found))

    def add(self, texts: Sequence[str], embeddings: np.ndarray) -> int:
        """Store the rows of ``embeddings`` (``(len(texts), dim)``) whose text is new; return how many."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.shape != (len(texts), self.cache.identity.dim):
            raise PivotCacheError(f"got embeddings of shape {embeddings.shape} for {len(texts)} sentences; the cache "
                                  f"expects dim {self.cache.identity.dim}")
        keys = sentence_keys(texts)
        found, _, _ = self.cache._locate(keys)
        new = []
        for row, (key, ok) in enumerate(zip(keys, found)):
            if not ok and bytes(key) not in self._seen:
                self._seen.add(bytes(key))
                new.append(row)
        if new:
            self._keys.append(keys[new])
            self._embeddings.append(embeddings[new])
            self._pending += len(new)
            self.added += len(new)
        if self._pending >= self.rows_per_segment:
            self.flush()
        return len(new)

    def flush(self) -> None:
        """Write the buffered rows as one segment now."""
        if self._pending:
            self.cache._write_segment(np.concatenate(self._keys), np.concatenate(self._embeddings))
            self._keys, self._embeddings, self._pending = [], [], 0
            self.cache.refresh()

    def __enter__(self) -> "SegmentWriter":
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.flush()
