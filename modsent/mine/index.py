"""k-NN search for mining: exact FAISS search for small sets, a trained factory index above a size threshold.

Up to ``IndexConfig.exact_max_vectors`` database vectors the search is exact
(:func:`modsent.search.knn_search`, ``IndexFlatIP`` in shards). Above it, the index
is built from a FAISS factory string (IVF-SQ8 by default; IVF-PQ, OPQ, HNSW all work), trained
on a seeded sample, and its memory estimated and logged *before* it is built, so a size that
would not fit is seen before the time is spent. FAISS's GPU index is used when FAISS sees a GPU
(:func:`~modsent.search.faiss_gpu_count`, the one device check), falling back to the
CPU index for types the GPU build lacks (HNSW).
"""

from __future__ import annotations

import logging
import math
import re
import time
from dataclasses import dataclass

import faiss
import numpy as np

from modsent.errors import ModsentError
from modsent.mine.config import IndexConfig
from modsent.search import faiss_gpu_count, knn_search

__all__ = ["MineIndexError", "BuiltIndex", "nlist_for", "resolve_factory", "estimate_index_bytes", "build_index",
           "Searcher"]

logger = logging.getLogger(__name__)

_MIN_POINTS_PER_CENTROID = 39  # FAISS warns below this many training points per k-means centroid
_QUERY_CHUNK = 16_384
_ID_BYTES = 8  # IVF lists store one int64 id per vector


class MineIndexError(ModsentError):
    """A factory string FAISS cannot build, or too few vectors to train it."""


@dataclass
class BuiltIndex:
    """A trained, filled FAISS index and what it cost."""

    index: faiss.Index
    factory: str
    estimated_bytes: int
    train_seconds: float
    add_seconds: float
    gpu: bool

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        k = min(k, self.index.ntotal)
        sims = np.empty((len(queries), k), dtype=np.float32)
        ids = np.empty((len(queries), k), dtype=np.int64)
        for start in range(0, len(queries), _QUERY_CHUNK):
            stop = start + _QUERY_CHUNK
            sims[start:stop], ids[start:stop] = self.index.search(queries[start:stop], k)
        return sims, ids

    @property
    def memory_bytes(self) -> int:
        """The serialised size of the index (its memory on the CPU, within a few per cent)."""
        index = faiss.index_gpu_to_cpu(self.index) if self.gpu else self.index
        return int(faiss.serialize_index(index).nbytes)


def nlist_for(n: int, train_sample: int) -> int:
    """Inverted lists for ``n`` vectors: the power of two nearest 4·sqrt(n), at most train_sample/39."""
    target = max(1.0, 4.0 * math.sqrt(max(n, 1)))
    nlist = 2 ** round(math.log2(target))
    cap = max(1, min(n, train_sample) // _MIN_POINTS_PER_CENTROID)
    while nlist > cap:
        nlist //= 2
    return max(1, nlist)


def resolve_factory(config: IndexConfig, n: int) -> str:
    return config.factory.replace("{nlist}", str(nlist_for(n, config.train_sample)))


def _empty_index(factory: str, dim: int) -> faiss.Index:
    try:
        return faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1]
        raise MineIndexError(f"index.factory {factory!r}: FAISS cannot build it for dimension {dim} "
                             f"({first})") from None


def estimate_index_bytes(factory: str, n: int, dim: int) -> int:
    """Memory of ``factory`` holding ``n`` vectors of width ``dim``: codes, ids, links, centroids, codebooks."""
    index = _empty_index(factory, dim)
    fixed = 0
    if "OPQ" in factory or "PCA" in factory:
        fixed += dim * dim * 4
    try:
        ivf = faiss.extract_index_ivf(index)
    except RuntimeError:
        ivf = None
    if ivf is not None:
        fixed += ivf.nlist * dim * 4 + 256 * dim * 4  # coarse centroids; PQ/SQ tables (an upper bound)
        per_vector = ivf.code_size + _ID_BYTES
    else:
        inner = faiss.downcast_index(index)
        if hasattr(inner, "hnsw"):
            storage = faiss.downcast_index(inner.storage)
            # level-0 links (2M int32) plus the upper levels (~1/M of the vectors, M links each).
            per_vector = storage.code_size + int(inner.hnsw.nb_neighbors(0) * 4 * 1.05) + _ID_BYTES
        else:
            per_vector = getattr(inner, "code_size", dim * 4)
    return int(fixed + per_vector * n)


def _set_search_breadth(index: faiss.Index, nprobe: int, gpu: bool) -> None:
    space = faiss.GpuParameterSpace() if gpu else faiss.ParameterSpace()
    for name in ("nprobe", "efSearch"):
        try:
            space.set_index_parameter(index, name, nprobe)
        except RuntimeError:  # not a parameter of this index type
            continue


def _to_gpu(index: faiss.Index, factory: str) -> tuple[faiss.Index, bool]:
    try:
        return faiss.index_cpu_to_all_gpus(index), True
    except RuntimeError as err:  # e.g. HNSW has no GPU implementation
        logger.warning("%s has no GPU version in this FAISS (%s); building it on the CPU", factory,
                       str(err).strip().splitlines()[-1])
        return index, False


def build_index(database: np.ndarray, config: IndexConfig) -> BuiltIndex:
    """Train ``config.factory`` on a seeded sample of ``database`` (L2-normalised rows), then add every row."""
    database = np.ascontiguousarray(database, dtype=np.float32)
    n, dim = database.shape
    factory = resolve_factory(config, n)
    estimated = estimate_index_bytes(factory, n, dim)
    logger.info("index %s for %d vectors of width %d: about %.1f MiB (exact search would hold %.1f MiB)",
                factory, n, dim, estimated / 2**20, n * dim * 4 / 2**20)
    index = _empty_index(factory, dim)
    use_gpu = faiss_gpu_count() > 0 if config.use_gpu is None else config.use_gpu
    gpu = False
    if use_gpu:
        index, gpu = _to_gpu(index, factory)
    started = time.perf_counter()
    if not index.is_trained:
        rng = np.random.default_rng(config.seed)
        size = min(n, config.train_sample)
        sample = database[np.sort(rng.choice(n, size=size, replace=False))] if size < n else database
        ivf_lists = re.search(r"IVF(\d+)", factory)
        if ivf_lists and size < int(ivf_lists.group(1)):
            raise MineIndexError(f"index.factory {factory!r} needs at least {ivf_lists.group(1)} training vectors, "
                                 f"got {size}; lower the IVF list count or raise index.train_sample")
        index.train(sample)
    trained = time.perf_counter()
    for start in range(0, n, 1 << 20):
        index.add(database[start:start + (1 << 20)])
    added = time.perf_counter()
    _set_search_breadth(index, config.nprobe, gpu)
    return BuiltIndex(index, factory, estimated, trained - started, added - trained, gpu)


class Searcher:
    """``searcher(queries, database, k) -> (similarities, ids)``: exact up to the threshold, else a built index.

    Keeps what each call used and cost (``calls``: kind, vectors, estimated and real index bytes,
    build and search seconds), for the job's report and the benchmark.
    """

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self.calls: list[dict] = []

    def __call__(self, queries: np.ndarray, database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        n, dim = database.shape
        if n <= self.config.exact_max_vectors:
            logger.info("exact search (IndexFlatIP): %d queries in %d vectors, about %.1f MiB", len(queries), n,
                        n * dim * 4 / 2**20)
            started = time.perf_counter()
            result = knn_search(queries, database, k, use_gpu=self.config.use_gpu)
            self.calls.append({"index": "Flat", "vectors": n, "estimated_bytes": n * dim * 4,
                               "memory_bytes": n * dim * 4, "build_seconds": 0.0,
                               "search_seconds": time.perf_counter() - started})
            return result
        built = build_index(database, self.config)
        started = time.perf_counter()
        result = built.search(queries, k)
        self.calls.append({"index": built.factory, "vectors": n, "estimated_bytes": built.estimated_bytes,
                           "memory_bytes": built.memory_bytes, "gpu": built.gpu,
                           "build_seconds": built.train_seconds + built.add_seconds,
                           "search_seconds": time.perf_counter() - started})
        return result
