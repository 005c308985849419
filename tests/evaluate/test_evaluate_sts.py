from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from modsent.evaluate.cache import EmbeddingCache
from modsent.corpus.evaluation_data import STSPairs
from modsent.evaluate.sts import evaluate_sts, paired_cosine, recombine_aligned, spearman_x100


def _pairs(lang1, lang2, n=12, seed=0, prefix="s"):
    rng = np.random.default_rng(seed)
    first = tuple(f"{prefix}{lang1} first sentence {i}" for i in range(n))
    second = tuple(f"{prefix}{lang2} second sentence {i}" for i in range(n))
    # gold with ties, on the STS 0-5 scale
    return STSPairs(lang1, lang2, first, second, rng.integers(0, 6, n).astype(float), f"{lang1}-{lang2}")


def _by_key(scores, directed):
    return {(s.lang1, s.lang2): s.value for s in scores if s.directed == directed}


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(3)
    gold = rng.integers(0, 5, 50).astype(float)
    pred = rng.standard_normal(50)
    assert spearman_x100(gold, pred) == pytest.approx(spearmanr(gold, pred)[0] * 100, abs=1e-12)


def test_monolingual_pair_uses_unaligned_encoder_and_equals_scipy(fakes):
    encoder = fakes.HashEncoder()
    data = _pairs("deu_Latn", "deu_Latn")
    scores = evaluate_sts("toy", {("deu_Latn", "deu_Latn"): data}, "fake", encoder, EmbeddingCache())

    # the reference, computed independently: one vector per sentence, cosine by loop
    cosines = []
    for s1, s2 in zip(data.sentences1, data.sentences2):
        a, b = encoder.vector(s1, "deu_Latn", False), encoder.vector(s2, "deu_Latn", False)
        cosines.append(float(a @ b) / (np.linalg.norm(a) * np.linalg.norm(b)))
    expected = spearmanr(data.scores, cosines)[0] * 100
    assert _by_key(scores, True) == {("deu_Latn", "deu_Latn"): pytest.approx(expected, abs=1e-6)}
    assert _by_key(scores, False) == {("deu_Latn", "deu_Latn"): pytest.approx(expected, abs=1e-6)}
    assert {(lang, aligned) for lang, aligned, _ in encoder.calls} == {("deu_Latn", False)}
    assert [s.metric for s in scores] == ["spearman", "spearman"]


def test_cross_lingual_sides_use_their_own_aligned_encoders(fakes):
    encoder = fakes.HashEncoder()
    data = _pairs("eng_Latn", "kin_Latn")
    scores = evaluate_sts("toy", {("eng_Latn", "kin_Latn"): data}, "fake", encoder, EmbeddingCache())
    assert sorted((lang, aligned) for lang, aligned, _ in encoder.calls) == [("eng_Latn", True), ("kin_Latn", True)]
    cosines = [float(encoder.vector(a, "eng_Latn", True) @ encoder.vector(b, "kin_Latn", True))
               for a, b in zip(data.sentences1, data.sentences2)]
    assert _by_key(scores, True)[("eng_Latn", "kin_Latn")] == pytest.approx(
        spearmanr(data.scores, cosines)[0] * 100, abs=1e-5)


def test_pair_and_reverse_are_averaged_under_first_seen_order(fakes):
    encoder = fakes.HashEncoder()
    forward, backward = _pairs("deu_Latn", "eng_Latn", seed=1), _pairs("eng_Latn", "deu_Latn", seed=2)
    mono = _pairs("eng_Latn", "eng_Latn", seed=3)
    scores = evaluate_sts("toy", {("deu_Latn", "eng_Latn"): forward, ("eng_Latn", "deu_Latn"): backward,
                                  ("eng_Latn", "eng_Latn"): mono}, "fake", encoder, EmbeddingCache())
    directed, combined = _by_key(scores, True), _by_key(scores, False)
    assert set(directed) == {("deu_Latn", "eng_Latn"), ("eng_Latn", "deu_Latn"), ("eng_Latn", "eng_Latn")}
    assert directed[("deu_Latn", "eng_Latn")] != directed[("eng_Latn", "deu_Latn")]
    assert combined == {
        ("deu_Latn", "eng_Latn"): pytest.approx((directed[("deu_Latn", "eng_Latn")]
                                                 + directed[("eng_Latn", "deu_Latn")]) / 2),
        ("eng_Latn", "eng_Latn"): directed[("eng_Latn", "eng_Latn")],
    }
    # English is encoded once per space, although three pairs use it
    assert sorted((lang, aligned) for lang, aligned, _ in encoder.calls) == [
        ("deu_Latn", True), ("eng_Latn", False), ("eng_Latn", True)]


def test_recombine_aligned_pairs_first_sentences_of_a_with_second_of_b():
    eng = STSPairs("eng", "eng", ("e1a", "e2a"), ("e1b", "e2b"), np.array([1.0, 4.0]), "eng.jsonl")
    deu = STSPairs("deu", "deu", ("d1a", "d2a"), ("d1b", "d2b"), np.array([1.0, 4.0]), "deu.jsonl")
    combos = recombine_aligned({"eng": eng, "deu": deu})
    assert list(combos) == [("eng", "eng"), ("eng", "deu"), ("deu", "eng"), ("deu", "deu")]
    assert combos[("eng", "deu")].sentences1 == ("e1a", "e2a")
    assert combos[("eng", "deu")].sentences2 == ("d1b", "d2b")
    np.testing.assert_array_equal(combos[("deu", "eng")].scores, [1.0, 4.0])
    assert list(recombine_aligned({"eng": eng, "deu": deu}, pairs=[("deu", "eng")])) == [("deu", "eng")]

    shifted = STSPairs("fra", "fra", ("f1a", "f2a"), ("f1b", "f2b"), np.array([4.0, 1.0]), "fra.jsonl")
    with pytest.raises(ValueError, match=r"fra\.jsonl \(fra\) is not row-aligned with eng\.jsonl"):
        recombine_aligned({"eng": eng, "fra": shifted})
    with pytest.raises(ValueError, match="language\\(s\\) kor"):
        recombine_aligned({"eng": eng}, pairs=[("eng", "kor")])


def test_paired_cosine_is_rowwise_cosine():
    a = np.array([[3.0, 4.0], [1.0, 0.0]])
    b = np.array([[3.0, 4.0], [0.0, 2.0]])
    np.testing.assert_allclose(paired_cosine(a, b), [1.0, 0.0])
