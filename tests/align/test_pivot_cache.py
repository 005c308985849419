"""The pivot-embedding cache: hashing, segments, lookups in input order, dtypes, identity checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from modsent.align.pivot_cache import PivotCache, PivotCacheError, PivotIdentity, sentence_keys
from modsent.errors import ModsentError

IDENTITY = PivotIdentity(fingerprint="abc", max_seq_length=32, pooling="mean", normalize=False, dim=4)


class FakePivot:
    """A deterministic 'encoder' that counts what it is asked to encode."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    @staticmethod
    def vector(text: str) -> np.ndarray:
        rng = np.random.default_rng(int.from_bytes(sentence_keys([text])[0][:4], "little"))
        return rng.standard_normal(4).astype(np.float32)

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return np.stack([self.vector(t) for t in texts])


def test_keys_are_stable_16_byte_hashes():
    keys = sentence_keys(["a", "b", "a", "ä"])
    assert keys.dtype == np.dtype("S16") and keys[0] == keys[2] != keys[1] != keys[3]


def test_add_missing_encodes_only_new_sentences_and_lookup_keeps_input_order(tmp_path):
    pivot = FakePivot()
    cache = PivotCache.open_or_create(tmp_path / "cache", IDENTITY)
    texts = [f"sentence {i}" for i in range(10)]
    assert cache.add_missing(texts + texts[:3], pivot, chunk_size=4) == 10
    assert [len(c) for c in pivot.calls] == [4, 4, 2]  # chunked, each sentence once
    assert cache.add_missing(texts[::-1], pivot) == 0 and len(pivot.calls) == 3
    query = [texts[7], texts[2], texts[7], texts[0]]
    np.testing.assert_array_equal(cache.lookup(query), np.stack([FakePivot.vector(t) for t in query]))
    assert cache.missing(query + ["new", "new"]) == ["new"]
    with pytest.raises(PivotCacheError, match="1 of 2 sentences are not cached .*'unseen'") as info:
        cache.lookup([texts[0], "unseen"])
    assert isinstance(info.value, ModsentError)


def test_segments_from_several_writers_are_all_read(tmp_path):
    """Each rank (or run) adds its own segment; a reader opened earlier sees them after refresh()."""
    pivot = FakePivot()
    reader = PivotCache.open_or_create(tmp_path, IDENTITY)
    rank0 = PivotCache.open_or_create(tmp_path, IDENTITY)
    rank1 = PivotCache.open_or_create(tmp_path, IDENTITY)
    rank0.add_missing(["a", "b", "shared"], pivot)
    rank1.add_missing(["c", "shared"], pivot)  # rank1 had not seen rank0's segment: "shared" is stored twice
    assert len(list((tmp_path / "segments").iterdir())) == 2
    with pytest.raises(PivotCacheError):
        reader.lookup(["a", "c"])
    reader.refresh()
    np.testing.assert_array_equal(reader.lookup(["c", "shared", "a"]),
                                  np.stack([FakePivot.vector(t) for t in ["c", "shared", "a"]]))
    assert len(reader) == 5 and reader.describe()["segments"] == 2


def test_float16_cache_returns_float32_close_to_the_values(tmp_path):
    cache = PivotCache.open_or_create(tmp_path, IDENTITY, dtype="float16")
    cache.add_missing(["x", "y"], FakePivot())
    got = cache.lookup(["y", "x"])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, np.stack([FakePivot.vector("y"), FakePivot.vector("x")]), rtol=1e-3, atol=1e-3)
    assert np.load(next((tmp_path / "segments").iterdir()) / "embeddings.npy").dtype == np.float16


def test_cache_of_another_pivot_or_dtype_is_refused(tmp_path):
    PivotCache.open_or_create(tmp_path, IDENTITY).add_missing(["x"], FakePivot())
    other = PivotIdentity(fingerprint="def", max_seq_length=64, pooling="mean", normalize=False, dim=4)
    with pytest.raises(PivotCacheError, match="fingerprint: cache 'abc' vs run 'def', max_seq_length: cache 32 vs run 64"):
        PivotCache.open_or_create(tmp_path, other)
    with pytest.raises(PivotCacheError, match="dtype: cache 'float32' vs run 'float16'"):
        PivotCache.open_or_create(tmp_path, IDENTITY, dtype="float16")
    (tmp_path / "pivot.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(PivotCacheError, match="damaged pivot cache description"):
        PivotCache(tmp_path)


def test_wrong_embedding_width_is_refused_and_leaves_no_segment(tmp_path):
    cache = PivotCache.open_or_create(tmp_path, IDENTITY)
    with pytest.raises(PivotCacheError, match="expects dim 4"):
        cache.add_missing(["x"], lambda texts: np.zeros((len(texts), 3), dtype=np.float32))
    assert not (tmp_path / "segments").exists()
    assert len(PivotCache(tmp_path)) == 0
