"""Semantic textual similarity / relatedness: Spearman ×100 between cosine similarity and gold.

A monolingual pair (``lang1 == lang2``) is encoded with ``aligned=False`` on both sides; in a
cross-lingual pair each side is encoded by its own language's encoder with ``aligned=True``. When
both a pair and its reverse are present they are averaged (:func:`~modsent.evaluate.scores.combine_directions`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from scipy.stats import spearmanr

from modsent.evaluate.cache import EmbeddingCache
from modsent.models.encoders import Encoder, effective_aligned
from modsent.corpus.evaluation_data import STSPairs
from modsent.evaluate.scores import Score, combine_directions

__all__ = ["spearman_x100", "paired_cosine", "recombine_aligned", "evaluate_sts"]


def spearman_x100(gold: Sequence[float] | np.ndarray, predicted: Sequence[float] | np.ndarray) -> float:
    """Spearman's rank correlation ×100 (NaN when either side is constant).

    >>> round(spearman_x100([1, 2, 3, 4], [0.1, 0.3, 0.2, 0.9]), 1)
    80.0
    """
    return float(spearmanr(gold, predicted).statistic) * 100.0


def paired_cosine(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Cosine similarity of row i of ``first`` with row i of ``second``."""
    dots = np.einsum("ij,ij->i", first, second, dtype=np.float64)
    norms = np.linalg.norm(first, axis=1) * np.linalg.norm(second, axis=1)
    return dots / np.maximum(norms, np.finfo(np.float64).tiny)


def recombine_aligned(sets: Mapping[str, STSPairs],
                      pairs: Sequence[tuple[str, str]] | None = None) -> dict[tuple[str, str], STSPairs]:
    """Build cross-lingual pairs from row-aligned monolingual sets (extended STS17, Kardeş-NLU).

    ``sets[lang]`` holds the same pairs translated into ``lang`` with the same gold scores. For
    every (A, B) (or only ``pairs``), the result pairs sentence 1 in A with sentence 2 in B.

    >>> aligned = recombine_aligned({"eng": eng_pairs, "deu": deu_pairs})  # doctest: +SKIP
    >>> list(aligned)                                                       # doctest: +SKIP
    [('eng', 'eng'), ('eng', 'deu'), ('deu', 'eng'), ('deu', 'deu')]
    """
    if not sets:
        raise ValueError("recombine_aligned needs at least one language")
    langs = list(sets)
    reference = sets[langs[0]]
    for lang in langs[1:]:
        other = sets[lang]
        if len(other) != len(reference) or not np.allclose(other.scores, reference.scores, atol=1e-9):
            raise ValueError(f"{other.source} ({lang}) is not row-aligned with {reference.source} ({langs[0]}): "
                             f"{len(other)} vs {len(reference)} pairs, or different gold scores")
    wanted = list(pairs) if pairs is not None else [(a, b) for a in langs for b in langs]
    missing = sorted({lang for pair in wanted for lang in pair if lang not in sets})
    if missing:
        raise ValueError(f"pairs name language(s) {', '.join(missing)} that the aligned sets lack "
                         f"(have: {', '.join(langs)})")
    return {
        (a, b): STSPairs(a, b, sets[a].sentences1, sets[b].sentences2, reference.scores,
                         f"{sets[a].source} + {sets[b].source}" if a != b else sets[a].source)
        for a, b in wanted
    }


def evaluate_sts(dataset: str, pairs: Mapping[tuple[str, str], STSPairs], encoder_name: str, encoder: Encoder,
                 cache: EmbeddingCache, task: str = "sts") -> list[Score]:
    """Score every pair of one data set with one encoder; returns directed and combined ``spearman`` scores.

    All texts of a language (per space) are encoded in one call, shared by every pair using them.
    """
    # Gather per embedding space actually produced: a multilingual model's two "spaces" are one.
    needed: dict[tuple[str, bool], dict[str, None]] = {}
    for (lang1, lang2), data in pairs.items():
        aligned = lang1 != lang2
        for lang, sentences in ((lang1, data.sentences1), (lang2, data.sentences2)):
            space = effective_aligned(encoder, lang, aligned)
            needed.setdefault((lang, space), {}).update(dict.fromkeys(sentences))
    for (lang, space), texts in needed.items():
        cache.embed(encoder_name, encoder, lang, space, dataset, list(texts))

    directed = []
    for (lang1, lang2), data in pairs.items():
        aligned = lang1 != lang2
        first = cache.embed(encoder_name, encoder, lang1, aligned, dataset, data.sentences1)
        second = cache.embed(encoder_name, encoder, lang2, aligned, dataset, data.sentences2)
        value = spearman_x100(data.scores, paired_cosine(first, second))
        directed.append(Score(task, dataset, "spearman", encoder_name, lang1, lang2, value, directed=True))
    return directed + combine_directions(directed)
