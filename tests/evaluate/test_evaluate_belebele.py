from __future__ import annotations

import math

import numpy as np
import pytest

from modsent.evaluate.belebele import evaluate_belebele
from modsent.evaluate.cache import EmbeddingCache
from modsent.corpus.evaluation_data import read_belebele

LANGS = ["eng_Latn", "deu_Latn", "kin_Latn"]


def _cos(a, b):
    return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def _brute_force_accuracy(data, encoder, passage_lang, question_lang):
    aligned = passage_lang != question_lang
    correct = 0
    for passage_item, question_item in zip(data.items[passage_lang], data.items[question_lang]):
        passage = encoder.vector(passage_item.passage, passage_lang, aligned).tolist()
        sims = [_cos(passage, encoder.vector(f"{question_item.question} {option}", question_lang, aligned).tolist())
                for option in question_item.options]
        _check_no_near_tie(sims[question_item.answer], sims[:question_item.answer] + sims[question_item.answer + 1:])
        correct += max(range(len(sims)), key=sims.__getitem__) == question_item.answer
    return 100.0 * correct / len(data)


def _check_no_near_tie(sim, others):
    """The exact comparisons here rest on this data having no near-tie with the answer: the evaluation
    sums in float32 in another order than this float64 brute force (~1e-7 apart), which on some CPU
    would decide a tie the other way."""
    assert min(abs(sim - other) for other in others) > 1e-5


def _brute_force_retrieval(data, encoder, passage_lang, question_lang):
    aligned = passage_lang != question_lang
    passages = {}
    for item in data.items[passage_lang]:
        passages.setdefault(item.link, encoder.vector(item.passage, passage_lang, aligned).tolist())
    ranks = []
    for item in data.items[question_lang]:
        query = encoder.vector(item.question, question_lang, aligned).tolist()
        sims = {link: _cos(query, vector) for link, vector in passages.items()}
        _check_no_near_tie(sims[item.link], [sim for link, sim in sims.items() if link != item.link])
        ordered = sorted(passages, key=lambda link: -sims[link])
        ranks.append(ordered.index(item.link) + 1)
    n = len(ranks)
    return {
        "p_at_1": 100.0 * sum(r == 1 for r in ranks) / n,
        "recall_at_1": 100.0 * sum(r <= 1 for r in ranks) / n,
        "recall_at_5": 100.0 * sum(r <= 5 for r in ranks) / n,
        "recall_at_10": 100.0 * sum(r <= 10 for r in ranks) / n,
        "ndcg_at_10": 100.0 * sum(1 / math.log2(r + 1) for r in ranks if r <= 10) / n,
    }


@pytest.fixture
def belebele(tmp_path, fakes):
    fakes.write_belebele(tmp_path, LANGS, n_passages=14, questions_per_passage=3, seed=5)
    return read_belebele(tmp_path, LANGS)


def test_accuracy_and_retrieval_equal_brute_force_over_the_full_matrix(belebele, fakes):
    encoder = fakes.HashEncoder()
    scores = evaluate_belebele(belebele, "fake", encoder, EmbeddingCache())
    directed = {(s.task, s.metric, s.lang1, s.lang2): s.value for s in scores if s.directed}
    accuracies = []
    for a in LANGS:
        for b in LANGS:
            expected = _brute_force_accuracy(belebele, encoder, a, b)
            accuracies.append(expected)
            assert directed[("belebele", "accuracy", a, b)] == pytest.approx(expected, abs=1e-9), (a, b)
            for metric, value in _brute_force_retrieval(belebele, encoder, a, b).items():
                assert directed[("belebele_retrieval", metric, a, b)] == pytest.approx(value, abs=1e-9), (metric, a, b)
    assert len(set(accuracies)) > 1  # the cells differ: a mix-up of languages would show

    combined = {(s.task, s.metric, s.lang1, s.lang2): s.value for s in scores if not s.directed}
    assert combined[("belebele", "accuracy", "eng_Latn", "kin_Latn")] == pytest.approx(
        (directed[("belebele", "accuracy", "eng_Latn", "kin_Latn")]
         + directed[("belebele", "accuracy", "kin_Latn", "eng_Latn")]) / 2)
    assert ("belebele", "accuracy", "kin_Latn", "eng_Latn") not in combined
    assert sum(1 for key in combined if key[:2] == ("belebele", "accuracy")) == 6  # 3 diagonal + 3 unordered


def test_each_language_is_encoded_once_per_space_with_all_its_texts(belebele, fakes):
    encoder = fakes.HashEncoder()
    evaluate_belebele(belebele, "fake", encoder, EmbeddingCache())
    assert sorted((lang, aligned) for lang, aligned, _ in encoder.calls) == sorted(
        (lang, aligned) for lang in LANGS for aligned in (False, True))
    n_texts = {count for _, _, count in encoder.calls}
    assert n_texts == {14 + 42 * 4 + 42}  # unique passages + option strings + questions


def test_accuracy_is_perfect_when_the_answer_string_is_the_passage(tmp_path, fakes):
    # A sanity check with a known answer: if the right option string equals the passage text and
    # the encoder maps equal strings to equal vectors, every prediction is right.
    records = fakes.belebele_records("eng_Latn", n_passages=8, questions_per_passage=1, seed=1)
    for record in records:
        question = record["question"]
        record["flores_passage"] = f"{question} answer-of-{record['link']}-{record['question_number']}"
        record[f"mc_answer{record['correct_answer_num']}"] = f"answer-of-{record['link']}-{record['question_number']}"
    fakes.write_jsonl(tmp_path / "eng_Latn.jsonl", records)
    data = read_belebele(tmp_path, ["eng_Latn"])
    scores = evaluate_belebele(data, "fake", fakes.HashEncoder(shared_space=True), EmbeddingCache(),
                               tasks=["belebele"])
    assert [(s.metric, s.value) for s in scores] == [("accuracy", 100.0), ("accuracy", 100.0)]


def test_task_selection_and_diagonal_only(belebele, fakes):
    encoder = fakes.HashEncoder()
    scores = evaluate_belebele(belebele, "fake", encoder, EmbeddingCache(), tasks=["belebele_retrieval"],
                               pairs=[(lang, lang) for lang in LANGS], retrieval_ks=(1, 3))
    assert {s.task for s in scores} == {"belebele_retrieval"}
    assert {s.metric for s in scores} == {"p_at_1", "recall_at_1", "recall_at_3", "ndcg_at_10"}
    assert {aligned for _, aligned, _ in encoder.calls} == {False}
    assert np.all([s.lang1 == s.lang2 for s in scores])
    with pytest.raises(ValueError, match="tasks must be among"):
        evaluate_belebele(belebele, "fake", encoder, EmbeddingCache(), tasks=["sts"])
