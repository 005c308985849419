from __future__ import annotations

import faiss
import numpy as np
import pytest

from modsent.evaluate.cache import EmbeddingCache
from modsent.models.encoders import normalize_rows
from modsent.evaluate.retrieval import (
    bitext_accuracy,
    evaluate_bitext,
    faiss_gpu_count,
    knn_search,
    nearest_neighbours,
    ranking_metrics,
)


def _unit(n, dim, seed):
    return normalize_rows(np.random.default_rng(seed).standard_normal((n, dim)))


@pytest.mark.parametrize("query_chunk,database_chunk", [(16_384, 1_000_000), (7, 50), (1, 333)])
def test_knn_search_equals_numpy_argsort(query_chunk, database_chunk):
    queries, database = _unit(40, 24, 0), _unit(1000, 24, 1)
    sims, ids = knn_search(queries, database, 10, query_chunk=query_chunk, database_chunk=database_chunk,
                           use_gpu=False)
    full = queries.astype(np.float64) @ database.astype(np.float64).T
    expected = np.argsort(-full, axis=1, kind="stable")[:, :10]
    # FAISS sums in float32 in its own order: neighbours closer than that error (the closest here are
    # 2e-6 apart) may swap on another CPU. Each returned id must have the similarity of its rank.
    np.testing.assert_allclose(np.take_along_axis(full, ids, axis=1), np.take_along_axis(full, expected, axis=1),
                               atol=1e-5)
    assert (ids == expected).mean() > 0.98 and all(len(set(row)) == 10 for row in ids.tolist())
    np.testing.assert_allclose(sims, np.take_along_axis(full, expected, axis=1), atol=1e-5)


def test_knn_search_caps_k_and_rejects_bad_shapes():
    blas_threshold = faiss.cvar.distance_compute_blas_threshold
    sims, ids = knn_search(_unit(3, 4, 0), _unit(2, 4, 1), k=5, database_chunk=1)
    assert ids.shape == (3, 2) and sorted(ids[0]) == [0, 1]
    with pytest.raises(ValueError, match="equal width"):
        knn_search(_unit(3, 4, 0), _unit(2, 5, 1), k=1)
    assert faiss_gpu_count() >= 0
    assert faiss.cvar.distance_compute_blas_threshold == blas_threshold  # the search's tuning is undone


def test_margin_beats_a_hub_that_cosine_falls_for():
    # Target 2 ("hub") is close to every source; source i's true translation is target i.
    # Cosines (rows: sources, columns: targets):
    #             t0     t1     hub
    #   s0      0.60   0.05   0.65
    #   s1      0.05   0.60   0.65
    # With k = 2: source means  s0 = (0.65+0.60)/2 = 0.625, s1 = 0.625;
    #             target means  t0 = (0.60+0.05)/2 = 0.325, t1 = 0.325, hub = (0.65+0.65)/2 = 0.65.
    # margin(s0, t0)  = 0.60 / ((0.625 + 0.325) / 2) = 1.263
    # margin(s0, hub) = 0.65 / ((0.625 + 0.650) / 2) = 1.020   -> margin picks t0, cosine picks the hub
    cos = np.array([[0.60, 0.05, 0.65], [0.05, 0.60, 0.65]])
    # Realise those cosines with unit vectors: sources are the first two basis vectors of R^5.
    source = np.eye(5)[:2]
    target = np.zeros((3, 5))
    target[:, :2] = cos.T
    target[:, 2 + np.arange(3)] = np.sqrt(1 - (cos.T ** 2).sum(axis=1))[:, None] * np.eye(3)
    np.testing.assert_allclose(source @ target.T, cos, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(target, axis=1), 1.0)

    assert nearest_neighbours(source, target, "cosine").tolist() == [2, 2]
    assert nearest_neighbours(source, target, "margin", k=2).tolist() == [0, 1]
    # the hub is retrieved again once it is each source's only candidate (k = 1)
    assert nearest_neighbours(source, target, "margin", k=1).tolist() == [2, 2]
    with pytest.raises(ValueError, match="scoring must be"):
        nearest_neighbours(source, target, "csls")


def test_bitext_accuracy_counts_duplicate_translations_as_correct():
    predicted = np.array([1, 0, 2, 2])
    assert bitext_accuracy(predicted) == 25.0
    assert bitext_accuracy(predicted, ["same", "same", "c", "d"]) == 75.0


def test_ranking_metrics_by_hand():
    ranked = np.array([[4, 1, 2, 3, 0, 5, 6, 7, 8, 9, 10],
                       [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10],
                       [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0]])
    metrics = ranking_metrics(ranked, np.array([0, 0, 0]), ks=(1, 5, 10))
    assert metrics["p_at_1"] == pytest.approx(100 / 3)
    assert metrics["recall_at_1"] == pytest.approx(100 / 3)
    assert metrics["recall_at_5"] == pytest.approx(200 / 3)
    assert metrics["recall_at_10"] == pytest.approx(200 / 3)  # rank 11 is outside the top 10
    assert metrics["ndcg_at_10"] == pytest.approx((1 / np.log2(6) + 1 + 0) / 3 * 100)


def test_evaluate_bitext_scores_both_directions_with_one_encode_per_language(fakes):
    sentences = [f"sentence number {i} of the parallel corpus" for i in range(30)]
    # the last five German lines are rotated by one: those five translations sit one line off
    texts = {"eng_Latn": sentences, "deu_Latn": sentences[:25] + sentences[26:] + sentences[25:26]}
    encoder = fakes.HashEncoder(shared_space=True)  # identical strings -> identical vectors
    scores = evaluate_bitext("flores", texts, [("eng_Latn", "deu_Latn")], "fake", encoder, EmbeddingCache(),
                             scorings=("cosine", "margin"), k=3)
    directed = {(s.lang1, s.lang2, s.metric): s.value for s in scores if s.directed}
    for source, target in (("eng_Latn", "deu_Latn"), ("deu_Latn", "eng_Latn")):
        for scoring in ("cosine", "margin"):
            assert directed[(source, target, f"p_at_1_{scoring}")] == pytest.approx(25 / 30 * 100)
            assert directed[(source, target, f"xsim_error_{scoring}")] == pytest.approx(5 / 30 * 100)
    combined = {(s.lang1, s.lang2, s.metric) for s in scores if not s.directed}
    assert combined == {("eng_Latn", "deu_Latn", m) for m in
                        ("p_at_1_cosine", "xsim_error_cosine", "p_at_1_margin", "xsim_error_margin")}
    assert sorted((lang, aligned) for lang, aligned, _ in encoder.calls) == [("deu_Latn", True), ("eng_Latn", True)]
