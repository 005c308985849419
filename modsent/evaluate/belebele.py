"""Belebele as sentence-embedding tasks: answer selection by cosine, and passage retrieval.

*Accuracy*: for each question, the passage and the four strings ``question + " " + option`` are
embedded; the option whose string is closest (cosine) to the passage is the prediction. With the
passage in language A and question/options in language B this gives a full A×B matrix:
diagonal cells use ``aligned=False`` encoders, off-diagonal ones ``aligned=True``.

*Retrieval* (as MTEB's BelebeleRetrieval): each question (language B) retrieves its passage among
all unique passages (language A) with FAISS; P@1, Recall@k, nDCG@10.

Scores name the passage language ``lang1`` and the question language ``lang2``; combined scores
average (A, B) with (B, A).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import numpy as np

from modsent.evaluate.cache import EmbeddingCache
from modsent.models.encoders import Encoder
from modsent.corpus.evaluation_data import BelebeleData, BelebeleItem
from modsent.evaluate.retrieval import knn_search, ranking_metrics
from modsent.evaluate.scores import Score, combine_directions

__all__ = ["evaluate_belebele", "qa_strings", "answer_accuracy", "BELEBELE_TASKS"]

BELEBELE_TASKS = ("belebele", "belebele_retrieval")


def qa_strings(items: Sequence[BelebeleItem]) -> list[str]:
    """``question + " " + option`` for every option of every item (4 per item, in order)."""
    return [f"{item.question} {option}" for item in items for option in item.options]


def answer_accuracy(passages: np.ndarray, qa: np.ndarray, answers: np.ndarray) -> float:
    """Accuracy ×100 of picking, per question, the option row of ``qa`` (n, 4, dim) most similar to
    its passage row of ``passages`` (n, dim); rows are unit-norm, ties go to the first option."""
    similarity = np.einsum("nd,nkd->nk", passages, qa)
    return float((similarity.argmax(axis=1) == answers).mean()) * 100.0


@dataclass(frozen=True)
class _Layout:
    """Where each part sits in one language's text list."""

    passage_of_item: np.ndarray  # (n_items,) index into the unique passages
    n_passages: int
    with_qa: bool
    with_questions: bool

    def texts(self, items: Sequence[BelebeleItem]) -> list[str]:
        passages = list({item.link: item.passage for item in items}.values())
        return (passages + (qa_strings(items) if self.with_qa else [])
                + ([item.question for item in items] if self.with_questions else []))

    def split(self, rows: np.ndarray, n_items: int) -> dict[str, np.ndarray]:
        parts = {"passages": rows[:self.n_passages]}
        offset = self.n_passages
        if self.with_qa:
            parts["qa"] = rows[offset:offset + 4 * n_items].reshape(n_items, 4, -1)
            offset += 4 * n_items
        if self.with_questions:
            parts["questions"] = rows[offset:offset + n_items]
        return parts


def evaluate_belebele(data: BelebeleData, encoder_name: str, encoder: Encoder, cache: EmbeddingCache,
                      dataset: str = "belebele", tasks: Collection[str] = BELEBELE_TASKS,
                      pairs: Sequence[tuple[str, str]] | None = None, retrieval_ks: Sequence[int] = (1, 5, 10),
                      **search: int | bool | None) -> list[Score]:
    """Belebele accuracy (task ``belebele``) and/or retrieval (``belebele_retrieval``) for one encoder.

    ``pairs`` are (passage language, question language); default: every pair of ``data.languages``.
    Each language is encoded once per space it needs (passages, option strings and questions in
    one call). Returns directed and combined scores.
    """
    unknown = set(tasks) - set(BELEBELE_TASKS)
    if unknown or not tasks:
        raise ValueError(f"tasks must be among {BELEBELE_TASKS}, got {sorted(tasks)}")
    langs = data.languages
    pairs = list(pairs) if pairs is not None else [(a, b) for a in langs for b in langs]
    first_items = data.items[langs[0]]
    links = {link: i for i, link in enumerate(dict.fromkeys(item.link for item in first_items))}
    layout = _Layout(np.array([links[item.link] for item in first_items]), len(links),
                     with_qa="belebele" in tasks, with_questions="belebele_retrieval" in tasks)
    n_items = len(data)

    embeddings: dict[tuple[str, bool], dict[str, np.ndarray]] = {}
    for lang_a, lang_b in pairs:
        aligned = lang_a != lang_b
        for lang in (lang_a, lang_b):
            if (lang, aligned) not in embeddings:
                items = data.items[lang]
                rows = cache.embed(encoder_name, encoder, lang, aligned, dataset, layout.texts(items))
                embeddings[(lang, aligned)] = layout.split(rows, n_items)

    directed: list[Score] = []
    for passage_lang, question_lang in pairs:
        aligned = passage_lang != question_lang
        passages = embeddings[(passage_lang, aligned)]["passages"]
        questions_side = embeddings[(question_lang, aligned)]
        if layout.with_qa:
            accuracy = answer_accuracy(passages[layout.passage_of_item], questions_side["qa"], data.answers)
            directed.append(Score("belebele", dataset, "accuracy", encoder_name, passage_lang, question_lang,
                                  accuracy, directed=True))
        if layout.with_questions:
            depth = max([10, *retrieval_ks])
            _, ranked = knn_search(questions_side["questions"], passages, depth, **search)
            for metric, value in ranking_metrics(ranked, layout.passage_of_item, retrieval_ks).items():
                directed.append(Score("belebele_retrieval", dataset, metric, encoder_name, passage_lang,
                                      question_lang, value, directed=True))
    return directed + combine_directions(directed)
