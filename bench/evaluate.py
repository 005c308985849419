"""Benchmark of the evaluator: length-sorted batch encoding, and FAISS search against NumPy.

usage: python bench/evaluate.py [--quick] [--threads N]

- ``length_sorted_encode_speedup``: the same shuffled texts of varied length encoded by a random
  BERT (``tiny_bert_mlm(size="small")``: hidden 256, 4 layers) in batches of 64, in input order vs sorted by length
  (:func:`modsent.models.encoders.encode_length_sorted`); padding is what the sort saves.
- ``faiss_speedup_vs_numpy_100k``: top-10 inner-product search of 1000 queries in 100k unit
  vectors of width 256, :func:`modsent.evaluate.retrieval.knn_search` (FAISS ``IndexFlatIP``) vs
  NumPy matmul + ``argpartition`` (the fastest exact NumPy route); NumPy's full ``argsort``, FAISS
  with its shipped BLAS threshold, and the 10k figures are in ``results``.

Both sides of each ratio run on the same inputs, after a warm-up, median of several repetitions,
with the same thread count. The last line of stdout is the JSON record (see BENCH.md).
"""

from __future__ import annotations

from _common import bench_args  # noqa: I001  (sets threads before numpy/torch load)

import argparse

ARGS = bench_args(__doc__.split("\n\n")[0], "fewer texts, queries and repetitions", "threads for torch, BLAS and FAISS alike") if __name__ == "__main__" else None

import json  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

from modsent.models.encoders import encode_length_sorted, normalize_rows  # noqa: E402
from modsent.evaluate.retrieval import knn_search  # noqa: E402

BATCH_SIZE = 64
TOP_K = 10
DIM = 256


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --------------------------------------------------------------------------- length-sorted encoding


def varied_texts(count: int, seed: int = 0) -> list[str]:
    """Texts of 1 to ~12 synthetic sentences (a long-tailed length mix, as real evaluation sets have)."""
    from modsent.testing.synthetic import synthetic_sentences

    pool = synthetic_sentences(count * 3, seed=seed)
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = min(12, max(1, int(rng.expovariate(1 / 2.5))))
        texts.append(" ".join(rng.sample(pool, parts)))
    return texts


def load_small_bert():
    """The shared benchmark encoder: a random BERT (hidden 256, 4 layers, WordPiece) built locally once."""
    from transformers import AutoModel, AutoTokenizer

    from modsent.testing.tiny_models import tiny_bert_mlm

    path = tiny_bert_mlm(size="small")
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def bench_length_sorted(n_texts: int, repeats: int) -> dict[str, float]:
    import torch

    texts = varied_texts(n_texts)
    model, tokenizer = load_small_bert()
    padded_tokens: list[int] = []

    def encode_batch(batch: list[str]):
        encoded = tokenizer(batch, padding=True, truncation=True, max_length=512, return_tensors="pt")
        padded_tokens.append(int(encoded["attention_mask"].numel()))
        with torch.inference_mode():
            hidden = model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1)  # mean pooling

    real_tokens = sum(len(ids) for ids in tokenizer(texts, truncation=True, max_length=512)["input_ids"])

    def run(sort: bool) -> tuple[np.ndarray, int]:
        padded_tokens.clear()
        rows = encode_length_sorted(encode_batch, texts, BATCH_SIZE, sort_by_length=sort)
        return rows, sum(padded_tokens)

    sorted_rows, sorted_padded = run(True)
    unsorted_rows, unsorted_padded = run(False)
    sorted_s = median_seconds(lambda: run(True), repeats)
    unsorted_s = median_seconds(lambda: run(False), repeats)
    return {
        "encode_texts": n_texts,
        "encode_real_tokens": real_tokens,
        "encode_sorted_s": sorted_s,
        "encode_unsorted_s": unsorted_s,
        "encode_sorted_texts_per_s": n_texts / sorted_s,
        "encode_unsorted_texts_per_s": n_texts / unsorted_s,
        "encode_sorted_padding_fraction": 1 - real_tokens / sorted_padded,
        "encode_unsorted_padding_fraction": 1 - real_tokens / unsorted_padded,
        "encode_max_abs_diff_sorted_vs_unsorted": float(np.abs(sorted_rows - unsorted_rows).max()),
    }


# ------------------------------------------------------------------------------- FAISS vs NumPy


def numpy_topk_argpartition(queries: np.ndarray, database: np.ndarray, k: int, chunk: int = 256) -> np.ndarray:
    ids = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        sims = queries[start:start + chunk] @ database.T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        ids[start:start + chunk] = np.take_along_axis(top, order, axis=1)
    return ids


def numpy_topk_argsort(queries: np.ndarray, database: np.ndarray, k: int, chunk: int = 256) -> np.ndarray:
    ids = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), chunk):
        ids[start:start + chunk] = np.argsort(-(queries[start:start + chunk] @ database.T), axis=1)[:, :k]
    return ids


def bench_search(database_size: int, n_queries: int, repeats: int) -> dict[str, float]:
    import faiss

    rng = np.random.default_rng(database_size)
    database = normalize_rows(rng.standard_normal((database_size, DIM)))
    queries = normalize_rows(rng.standard_normal((n_queries, DIM)))
    faiss_ids = knn_search(queries, database, TOP_K, use_gpu=False)[1]
    agreement = float((faiss_ids == numpy_topk_argpartition(queries, database, TOP_K)).all(axis=1).mean())
    size = f"{database_size // 1000}k"

    def faiss_as_shipped() -> None:  # FAISS with its own BLAS threshold, which knn_search lowers
        index = faiss.IndexFlatIP(DIM)
        index.add(database)
        index.search(queries, TOP_K)

    return {
        f"search_{size}_faiss_s": median_seconds(lambda: knn_search(queries, database, TOP_K, use_gpu=False), repeats),
        f"search_{size}_faiss_default_blas_threshold_s": median_seconds(faiss_as_shipped, repeats),
        f"search_{size}_numpy_argpartition_s": median_seconds(
            lambda: numpy_topk_argpartition(queries, database, TOP_K), repeats),
        f"search_{size}_numpy_argsort_s": median_seconds(lambda: numpy_topk_argsort(queries, database, TOP_K),
                                                         max(1, repeats // 2)),
        f"search_{size}_top{TOP_K}_rows_equal_fraction": agreement,
    }


def main(args: argparse.Namespace) -> dict:
    import faiss
    import torch

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    n_texts, n_queries, repeats = (384, 200, 3) if args.quick else (2048, 1000, 5)
    results: dict[str, float] = {}
    results.update(bench_length_sorted(n_texts, repeats))
    for size in (10_000, 100_000):
        results.update(bench_search(size, n_queries, repeats))
    ratios = {
        "length_sorted_encode_speedup": results["encode_unsorted_s"] / results["encode_sorted_s"],
        "faiss_speedup_vs_numpy_100k": results["search_100k_numpy_argpartition_s"] / results["search_100k_faiss_s"],
        "faiss_speedup_vs_numpy_10k": results["search_10k_numpy_argpartition_s"] / results["search_10k_faiss_s"],
        "faiss_speedup_vs_numpy_argsort_100k": results["search_100k_numpy_argsort_s"] / results["search_100k_faiss_s"],
    }
    params = {"quick": args.quick, "threads": args.threads, "batch_size": BATCH_SIZE, "model": "BertModel h256 L4",
              "encode_texts": n_texts, "queries": n_queries, "dim": DIM, "top_k": TOP_K, "repeats": repeats,
              "faiss": faiss.__version__, "torch": torch.__version__}
    return {"bench": "evaluate", "device": "cpu", "params": params, "results": results, "ratios": ratios}


if __name__ == "__main__":
    record = main(ARGS)
    for key, value in record["results"].items():
        print(f"{key}: {value:.4g}" if isinstance(value, float) else f"{key}: {value}")
    print(json.dumps(record))
