"""Exact nearest-neighbour search with FAISS and bitext retrieval (P@1, xsim error) by cosine or margin.

Vectors are L2-normalised, so inner product (``IndexFlatIP``) is cosine similarity. Large sets are
searched in shards: the database in chunks of ``database_chunk`` rows (one index each), the
queries in chunks of ``query_chunk``, and the per-shard top-k lists merged. FAISS's GPU index is
used when FAISS sees a GPU (:func:`faiss_gpu_count`); the CPU path is the same code otherwise.

Ratio margin (Artetxe & Schwenk, 2019)::

    margin(x, y) = cos(x, y) / ((mean cos of x to its k nearest y) + (mean cos of y to its k nearest x)) * 2

As in LASER's xsim, each source sentence's candidates are its k nearest targets by cosine, and
the candidate with the highest margin is its prediction.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Literal

import faiss
import numpy as np

from modsent.evaluate.cache import EmbeddingCache
from modsent.evaluate.encoders import Encoder
from modsent.evaluate.scores import Score, combine_directions

__all__ = [
    "Scoring",
    "faiss_gpu_count",
    "knn_search",
    "ratio_margin",
    "nearest_neighbours",
    "bitext_accuracy",
    "ranking_metrics",
    "evaluate_bitext",
]

Scoring = Literal["cosine", "margin"]

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


def nearest_neighbours(source: np.ndarray, target: np.ndarray, scoring: Scoring = "cosine", k: int = 4,
                       **search: int | bool | None) -> np.ndarray:
    """For each source row, the id of the target row it retrieves (by cosine or ratio margin over ``k`` NN).

    ``search`` passes ``query_chunk``/``database_chunk``/``use_gpu`` to :func:`knn_search`.
    """
    if scoring == "cosine":
        return knn_search(source, target, 1, **search)[1][:, 0]
    if scoring != "margin":
        raise ValueError(f"scoring must be 'cosine' or 'margin', got {scoring!r}")
    if k < 1:
        raise ValueError(f"margin k must be >= 1, got {k}")
    forward_sims, forward_ids = knn_search(source, target, k, **search)
    backward_sims, _ = knn_search(target, source, k, **search)
    margins = ratio_margin(forward_sims, forward_sims.mean(axis=1, keepdims=True),
                           backward_sims.mean(axis=1)[forward_ids])
    best = margins.argmax(axis=1)
    return forward_ids[np.arange(len(source)), best]


def bitext_accuracy(predicted: np.ndarray, target_texts: Sequence[str] | None = None) -> float:
    """P@1 ×100 of retrieving row i's translation (row i); with ``target_texts``, retrieving an
    identical copy of the translation (duplicate sentences) also counts as correct."""
    gold = np.arange(len(predicted))
    correct = predicted == gold
    if target_texts is not None:
        correct |= np.array([target_texts[p] == target_texts[i] for i, p in enumerate(predicted)])
    return float(correct.mean()) * 100.0


def ranking_metrics(ranked_ids: np.ndarray, relevant: np.ndarray, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Retrieval metrics ×100 for one relevant item per query: ``p_at_1``, ``recall_at_k``, ``ndcg_at_10``.

    ``ranked_ids`` (n_queries, ≥ max(ks, 10) or the whole database) are ids best first.

    >>> round(ranking_metrics(np.array([[2, 0, 1]]), np.array([0]), ks=(1, 2))["ndcg_at_10"], 2)  # 100/log2(3)
    63.09
    """
    hits = ranked_ids == relevant[:, None]
    found = hits.any(axis=1)
    rank = np.where(found, hits.argmax(axis=1) + 1, np.iinfo(np.int64).max)  # 1-based
    metrics = {"p_at_1": float((rank == 1).mean()) * 100.0}
    for k in ks:
        metrics[f"recall_at_{k}"] = float((rank <= k).mean()) * 100.0
    gains = np.where(rank <= 10, 1.0 / np.log2(np.minimum(rank, 10) + 1.0), 0.0)
    metrics["ndcg_at_10"] = float(gains.mean()) * 100.0
    return metrics


def evaluate_bitext(dataset: str, texts: Mapping[str, Sequence[str]], pairs: Sequence[tuple[str, str]],
                    encoder_name: str, encoder: Encoder, cache: EmbeddingCache,
                    scorings: Sequence[Scoring] = ("cosine", "margin"), k: int = 4,
                    **search: int | bool | None) -> list[Score]:
    """Bitext retrieval between line-aligned ``texts[lang]`` for each (A, B) in ``pairs``, both directions.

    Every language is encoded once with ``aligned=True``. Metrics ``p_at_1_<scoring>`` and
    ``xsim_error_<scoring>`` (= 100 − P@1), directed (A → B: A's sentences query B's) and combined.
    """
    languages = list(dict.fromkeys(lang for pair in pairs for lang in pair))
    embeddings = {lang: cache.embed(encoder_name, encoder, lang, True, dataset, texts[lang]) for lang in languages}
    directed = []
    for lang1, lang2 in pairs:
        for source, target in ((lang1, lang2), (lang2, lang1)):
            for scoring in scorings:
                predicted = nearest_neighbours(embeddings[source], embeddings[target], scoring, k, **search)
                p_at_1 = bitext_accuracy(predicted, texts[target])
                for metric, value in ((f"p_at_1_{scoring}", p_at_1), (f"xsim_error_{scoring}", 100.0 - p_at_1)):
                    directed.append(Score("bitext", dataset, metric, encoder_name, source, target, value, True))
    return directed + combine_directions(directed)
