"""FAISS search for mining: the trained IVF path agrees with exact search; memory is estimated before building."""

from __future__ import annotations

import numpy as np
import pytest

from modsent.evaluate.retrieval import knn_search
from modsent.mine import IndexConfig, MineIndexError, Searcher, build_index, estimate_index_bytes, mine_pairs
from modsent.mine.index import nlist_for


def _clustered(n: int, dim: int, seed: int, centers: int = 20) -> np.ndarray:
    """Rows around a few centres, as sentence embeddings are (uniform noise would defeat any IVF)."""
    rng = np.random.default_rng(seed)
    middle = rng.standard_normal((centers, dim))
    rows = middle[rng.integers(0, centers, n)] + 0.5 * rng.standard_normal((n, dim))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def test_ivf_flat_with_every_list_probed_equals_exact_search():
    database, queries = _clustered(3000, 32, 0), _clustered(200, 32, 1)
    built = build_index(database, IndexConfig(factory="IVF{nlist},Flat", nprobe=4096, train_sample=3000))
    assert built.factory == f"IVF{nlist_for(3000, 3000)},Flat" and built.index.ntotal == 3000
    sims, ids = built.search(queries, 5)
    exact_sims, exact_ids = knn_search(queries, database, 5)
    np.testing.assert_array_equal(ids, exact_ids)
    np.testing.assert_allclose(sims, exact_sims, atol=1e-5)


def test_default_compressed_index_recall_and_mining_agree_with_exact():
    database = _clustered(4000, 32, 2)
    rng = np.random.default_rng(3)
    queries = database[rng.choice(4000, 300, replace=False)] + 0.05 * rng.standard_normal((300, 32)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    config = IndexConfig(exact_max_vectors=1000, nprobe=8)  # above the threshold: IVF{nlist},SQ8
    searcher = Searcher(config)
    ids = searcher(queries, database, 4)[1]
    assert searcher.calls[0]["index"].endswith(",SQ8") and searcher.calls[0]["index"].startswith("IVF")
    exact_ids = knn_search(queries, database, 1)[1]
    assert (ids[:, 0] == exact_ids[:, 0]).mean() >= 0.95
    # The pairs mined through the index are the exact search's pairs (margins use exact cosines).
    indexed = mine_pairs(queries, database, 4, "max", Searcher(config))
    exact = mine_pairs(queries, database, 4, "max", Searcher(IndexConfig()))
    agree = (set(zip(indexed.source.tolist(), indexed.target.tolist()))
             & set(zip(exact.source.tolist(), exact.target.tolist())))
    assert len(agree) >= 0.95 * len(exact)


@pytest.mark.parametrize("factory", ["IVF{nlist},SQ8", "IVF{nlist},PQ8np", "HNSW16,Flat", "Flat"])
def test_memory_estimate_is_close_to_the_built_index(factory):
    database = _clustered(5000, 32, 4)
    built = build_index(database, IndexConfig(factory=factory, train_sample=5000))
    assert built.estimated_bytes == estimate_index_bytes(built.factory, 5000, 32)
    assert 0.7 < built.estimated_bytes / built.memory_bytes < 1.5


def test_bad_factory_and_too_small_sample_are_clear_errors():
    database = _clustered(500, 16, 5)
    with pytest.raises(MineIndexError, match="FAISS cannot build it"):
        build_index(database, IndexConfig(factory="IVF8,Bogus"))
    with pytest.raises(MineIndexError, match="needs at least 256 training vectors"):
        build_index(database, IndexConfig(factory="IVF256,Flat", train_sample=100))
