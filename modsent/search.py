"""Exact nearest-neighbour search with FAISS, and the ratio margin: shared by evaluation and mining.

Vectors are L2-normalised, so inner product (``IndexFlatIP``) is cosine similarity. Large sets are
searched in shards: the database in chunks of ``database_chunk`` rows (one index each), the
queries in chunks of ``query_chunk``, and the per-shard top-k lists merged. FAISS's GPU index is
used when FAISS sees a GPU (:func:`faiss_gpu_count`); the CPU path is the same code otherwise.

Ratio margin (Artetxe & Schwenk, 2019)::

    margin(x, y) = cos(x, y) / ((mean cos of x to its k nearest y) + (mean cos of y to its k nearest x)) * 2
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import faiss
import numpy as np

__all__ = ["DEFAULT_QUERY_CHUNK", "DEFAULT_DATABASE_CHUNK", "faiss_gpu_count", "knn_search", "ratio_margin"]

DEFAULT_QUERY_CHUNK = 16_384
DEFAULT_DATABASE_CHUNK = 1_000_000
_GPU_MAX_K = 2048  # FAISS GPU flat search limit
# FAISS >= 1.15 leaves its per-query SIMD scan for BLAS only once n_queries * dim reaches 128 000, a
# crossover tuned for many cores. With the few threads of an evaluation host BLAS wins from about
# 800 * threads on (measured here: 64 queries of width 256 in 100k, 1 thread: 2.39 s scan, 0.47 s
# BLAS; FAISS PR #5109 proposes the same per-thread threshold).
_BLAS_WORK_PER_THREAD = 800
_PRODUCT_THRESHOLD_MIN = 10_000  # older FAISS counts queries (default 20): leave it alone there


def faiss_gpu_count() -> int:
    """The number of GPUs FAISS can use (0 with faiss-cpu): the one device check of this module."""
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


@contextlib.contextmanager
def _blas_for_small_thread_counts() -> Iterator[None]:
    """Within the body, let FAISS's CPU flat search use BLAS from n_queries * dim = 800 * threads."""
    default = faiss.cvar.distance_compute_blas_threshold
    if default >= _PRODUCT_THRESHOLD_MIN:
        faiss.cvar.distance_compute_blas_threshold = min(default, _BLAS_WORK_PER_THREAD * faiss.omp_get_max_threads())
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = default


def _flat_ip_index(dim: int, use_gpu: bool) -> faiss.Index:
    index = faiss.IndexFlatIP(dim)
    return faiss.index_cpu_to_all_gpus(index) if use_gpu else index


def knn_search(queries: np.ndarray, database: np.ndarray, k: int, *, query_chunk: int = DEFAULT_QUERY_CHUNK,
               database_chunk: int = DEFAULT_DATABASE_CHUNK, use_gpu: bool | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` database rows with the largest inner product for each query, best first.

    Returns (similarities float32 (n_queries, k), ids int64 (n_queries, k)); ``k`` is capped at
    the database size. Equal to a full NumPy ``argsort`` of ``queries @ database.T`` up to the order
    of ties. ``use_gpu=None`` uses a GPU when FAISS has one.

    >>> x = np.eye(3, dtype=np.float32)
    >>> knn_search(x[:1], x, k=2)[1].tolist()
    [[0, 1]]
    """
    queries = np.ascontiguousarray(queries, dtype=np.float32)
    database = np.ascontiguousarray(database, dtype=np.float32)
    if queries.ndim != 2 or database.ndim != 2 or queries.shape[1] != database.shape[1]:
        raise ValueError(f"queries {queries.shape} and database {database.shape} must be 2-D with equal width")
    if len(database) == 0:
        raise ValueError("cannot search an empty database")
    k = min(k, len(database))
    gpu = faiss_gpu_count() > 0 if use_gpu is None else use_gpu
    if gpu and k > _GPU_MAX_K:
        gpu = False
    best_sims: np.ndarray | None = None
    best_ids: np.ndarray | None = None
    for start in range(0, len(database), database_chunk):
        shard = database[start:start + database_chunk]
        index = _flat_ip_index(database.shape[1], gpu)
        index.add(shard)
        shard_k = min(k, len(shard))
        sims = np.empty((len(queries), shard_k), dtype=np.float32)
        ids = np.empty((len(queries), shard_k), dtype=np.int64)
        with _blas_for_small_thread_counts():
            for q_start in range(0, len(queries), query_chunk):
                q_end = q_start + query_chunk
                sims[q_start:q_end], ids[q_start:q_end] = index.search(queries[q_start:q_end], shard_k)
        ids += start
        if best_sims is None:
            best_sims, best_ids = sims, ids
            continue
        merged_sims = np.concatenate([best_sims, sims], axis=1)
        merged_ids = np.concatenate([best_ids, ids], axis=1)
        # Stable sort: on equal similarity the earlier shard (smaller id) stays first.
        order = np.argsort(-merged_sims, axis=1, kind="stable")[:, :k]
        best_sims = np.take_along_axis(merged_sims, order, axis=1)
        best_ids = np.take_along_axis(merged_ids, order, axis=1)
    assert best_sims is not None and best_ids is not None
    return best_sims, best_ids


def ratio_margin(cosine: np.ndarray, source_knn_mean: np.ndarray, target_knn_mean: np.ndarray) -> np.ndarray:
    """``cos(x, y) / ((mean k-NN cos of x + mean k-NN cos of y) / 2)``, elementwise (broadcasting).

    >>> float(ratio_margin(np.array(0.6), np.array(0.5), np.array(0.7)))
    1.0
    """
    return cosine / ((source_knn_mean + target_knn_mean) / 2.0)
