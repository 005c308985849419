"""Embeddings computed once per (encoder, space, language, data set) in a run, optionally kept on disk.

A task first asks for *all* texts it will need of one language in one space, then looks rows up
by text as often as it likes; a 20-language matrix thus costs 20 ``encode`` calls per space, not
400. :attr:`EmbeddingCache.encode_calls` counts the calls so tests and reports can check that.

On disk (``cache_dir``), each set is one ``<sha256>.npy`` keyed by the encoder's fingerprint, the
space, the language and the exact texts, written atomically; encoders without a fingerprint are
never cached on disk.
"""

from __future__ import annotations

import io
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modsent.models.encoders import Encoder, effective_aligned, normalize_rows
from modsent.io import atomic_write_bytes, sha256_json

__all__ = ["EmbeddingCache", "EncoderOutputError"]

logger = logging.getLogger(__name__)


class EncoderOutputError(ValueError):
    """An encoder returned the wrong shape or non-finite values."""


@dataclass
class _Table:
    row_of: dict[str, int]
    matrix: np.ndarray


class EmbeddingCache:
    """Per-run store of embeddings, keyed by (encoder name, effective space, language, data set id).

    >>> from modsent.models.encoders import SingleModelEncoder
    >>> toy = SingleModelEncoder(lambda texts: [[1.0, len(t)] for t in texts])
    >>> cache = EmbeddingCache()
    >>> cache.embed("toy", toy, "deu_Latn", True, "sts17", ["ein Satz", "zwei"]).shape  # encodes
    (2, 2)
    >>> cache.embed("toy", toy, "deu_Latn", False, "sts17", ["zwei"]).shape  # one space for this model: a lookup
    (1, 2)
    >>> dict(cache.encode_calls)
    {('toy', False): 1}
    """

    def __init__(self, cache_dir: str | os.PathLike | None = None) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._tables: dict[tuple[str, bool, str, str], _Table] = {}
        #: (encoder name, aligned space) -> number of ``encode`` calls made
        self.encode_calls: Counter[tuple[str, bool]] = Counter()
        #: (encoder name, aligned space) -> number of sets loaded from disk instead
        self.disk_hits: Counter[tuple[str, bool]] = Counter()

    def embed(self, encoder_name: str, encoder: Encoder, lang: str, aligned: bool, dataset_id: str,
              texts: Sequence[str]) -> np.ndarray:
        """Rows (float32, unit norm) for ``texts`` of ``lang`` in the requested space, in order.

        The first request for a key encodes its (deduplicated) texts; later requests for the same
        key must ask only for texts among them, else ``KeyError`` (gather a language's texts
        before the first request).
        """
        space = effective_aligned(encoder, lang, aligned)
        key = (encoder_name, space, lang, dataset_id)
        table = self._tables.get(key)
        if table is None:
            table = self._tables[key] = self._build(encoder_name, encoder, lang, space, dataset_id, texts)
        try:
            rows = [table.row_of[text] for text in texts]
        except KeyError as err:
            raise KeyError(f"text {err.args[0][:60]!r} of {lang} was not among the texts first encoded for "
                           f"{key}; request all of a language's texts in the first call") from None
        return table.matrix[rows]

    def release(self, encoder_name: str) -> None:
        """Drop ``encoder_name``'s embeddings from memory (counters and the disk cache stay)."""
        for key in [key for key in self._tables if key[0] == encoder_name]:
            del self._tables[key]

    def _build(self, encoder_name: str, encoder: Encoder, lang: str, space: bool, dataset_id: str,
               texts: Sequence[str]) -> _Table:
        unique = list(dict.fromkeys(texts))
        by_space = getattr(encoder, "space_fingerprint", None)
        fingerprint = by_space(lang, space) if by_space is not None else getattr(encoder, "fingerprint", None)
        path = None
        if self.cache_dir is not None and fingerprint:
            path = self.cache_dir / f"{sha256_json([fingerprint, space, lang, unique])}.npy"
            if path.is_file():
                matrix = np.load(path, allow_pickle=False)
                if matrix.shape[0] == len(unique):
                    self.disk_hits[(encoder_name, space)] += 1
                    return _Table({text: i for i, text in enumerate(unique)}, matrix)
                logger.warning("ignoring %s: %d rows for %d texts", path, matrix.shape[0], len(unique))
        logger.info("encoding %d texts of %s with %s (aligned=%s, %s)", len(unique), lang, encoder_name, space,
                    dataset_id)
        output = np.asarray(encoder.encode(unique, lang=lang, aligned=space))
        self.encode_calls[(encoder_name, space)] += 1
        if output.ndim != 2 or output.shape[0] != len(unique):
            raise EncoderOutputError(f"encoder {encoder_name!r} returned shape {output.shape} for {len(unique)} "
                                     f"texts of {lang}; expected ({len(unique)}, dimension)")
        if not np.isfinite(output).all():
            raise EncoderOutputError(f"encoder {encoder_name!r} returned NaN or infinite values for {lang}")
        matrix = normalize_rows(output)
        if path is not None:
            buffer = io.BytesIO()
            np.save(buffer, matrix, allow_pickle=False)
            atomic_write_bytes(path, buffer.getvalue())
        return _Table({text: i for i, text in enumerate(unique)}, matrix)
