"""Ratio-margin mining: every mode equals a plain NumPy computation on the full similarity matrix."""

from __future__ import annotations

import numpy as np
import pytest

from modsent.evaluate.retrieval import knn_search
from modsent.mine import MODES, mine_pairs


def _unit_rows(n: int, dim: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _exact_search(queries, database, k):
    return knn_search(queries, database, k)


def _numpy_reference(src: np.ndarray, tgt: np.ndarray, k: int, mode: str) -> list[tuple[int, int, float]]:
    """LASER's mining written directly: full cosine matrix, k-NN means by sorting, margin of every pair."""
    cos = src.astype(np.float64) @ tgt.T.astype(np.float64)
    fwd_mean = np.sort(cos, axis=1)[:, ::-1][:, :k].mean(axis=1)
    bwd_mean = np.sort(cos.T, axis=1)[:, ::-1][:, :k].mean(axis=1)
    margin = cos / ((fwd_mean[:, None] + bwd_mean[None, :]) / 2)
    fwd_cand = np.argsort(-cos, axis=1)[:, :k]  # candidates: k nearest by cosine
    bwd_cand = np.argsort(-cos.T, axis=1)[:, :k]
    fwd = [(i, int(fwd_cand[i][np.argmax(margin[i, fwd_cand[i]])])) for i in range(len(src))]
    bwd = [(int(bwd_cand[j][np.argmax(margin[bwd_cand[j], j])]), j) for j in range(len(tgt))]
    if mode == "forward":
        pairs = fwd
    elif mode == "backward":
        pairs = bwd
    elif mode == "intersection":
        pairs = sorted(set(fwd) & set(bwd))
    else:
        pairs, seen_s, seen_t = [], set(), set()
        for s, t in sorted(set(fwd) | set(bwd), key=lambda p: (-margin[p], p)):
            if s not in seen_s and t not in seen_t:
                pairs.append((s, t))
                seen_s.add(s)
                seen_t.add(t)
    return sorted(((s, t, margin[s, t]) for s, t in pairs), key=lambda r: (-r[2], r[0], r[1]))


@pytest.mark.parametrize("mode", MODES)
def test_margin_mining_equals_numpy(mode):
    src, tgt = _unit_rows(40, 8, 0), _unit_rows(55, 8, 1)
    got = mine_pairs(src, tgt, k=4, mode=mode, search=_exact_search)
    want = _numpy_reference(src, tgt, 4, mode)
    assert [(int(s), int(t)) for s, t in zip(got.source, got.target)] == [(s, t) for s, t, _ in want]
    np.testing.assert_allclose(got.score, [m for _, _, m in want], rtol=1e-5)
    assert np.all(np.diff(got.score) <= 0)  # best first


def test_planted_pairs_rank_first_and_modes_nest():
    """Near-copies of 10 source rows hidden among 300 unrelated targets: every mode finds exactly them on top."""
    src = _unit_rows(100, 16, 2)
    noise = _unit_rows(10, 16, 3) * 0.1
    planted = src[:10] + noise
    tgt = np.concatenate([_unit_rows(300, 16, 4), planted / np.linalg.norm(planted, axis=1, keepdims=True)])
    results = {mode: mine_pairs(src, tgt, k=4, mode=mode, search=_exact_search) for mode in MODES}
    for mode, pairs in results.items():
        top = {(int(s), int(t)) for s, t in zip(pairs.source[:10], pairs.target[:10])}
        assert top == {(i, 300 + i) for i in range(10)}, mode
        assert pairs.score[9] > 1.2 and pairs.score[10] < pairs.score[9]
    inter = set(zip(results["intersection"].source.tolist(), results["intersection"].target.tolist()))
    assert inter <= set(zip(results["max"].source.tolist(), results["max"].target.tolist()))
    # max is one-to-one
    assert len(set(results["max"].source.tolist())) == len(results["max"])
    assert len(set(results["max"].target.tolist())) == len(results["max"])


def test_select_threshold_then_top_n():
    pairs = mine_pairs(_unit_rows(30, 8, 5), _unit_rows(30, 8, 6), k=4, mode="forward", search=_exact_search)
    cut = float(pairs.score[10])
    assert len(pairs.select(threshold=cut)) == int((pairs.score >= cut).sum()) >= 11
    assert len(pairs.select(threshold=cut, top_n=3)) == 3
    assert pairs.select(top_n=5).score.tolist() == pairs.score[:5].tolist()
