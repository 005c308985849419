"""Bitext retrieval (P@1, xsim error) by cosine or ratio margin, on :mod:`modsent.search`'s FAISS k-NN.

As in LASER's xsim, each source sentence's candidates are its k nearest targets by cosine, and
the candidate with the highest margin is its prediction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np

from modsent.evaluate.cache import EmbeddingCache
from modsent.models.encoders import Encoder
from modsent.evaluate.scores import Score, combine_directions
from modsent.search import (
    faiss_gpu_count,
    knn_search,
    ratio_margin,
)

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
