"""The one record every task emits (:class:`Score`), and the views reports build from a list of them.

A task reports, per language pair and metric, *directed* scores (``lang1`` is the language of
STS sentence 1, of the Belebele passage, of the bitext queries) and *combined* ones
(a pair and its reverse averaged, under the pair's first-seen order; monolingual pairs are both).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["Score", "combine_directions", "summarize", "score_matrix", "group_scores", "LOWER_IS_BETTER"]

#: metric-name prefixes where a smaller value is better
LOWER_IS_BETTER = ("xsim_error",)


@dataclass(frozen=True)
class Score:
    task: str  # "sts", "belebele", "belebele_retrieval", "bitext"
    dataset: str
    metric: str  # "spearman", "accuracy", "p_at_1", "ndcg_at_10", "xsim_error_margin", ...
    encoder: str
    lang1: str
    lang2: str
    value: float
    directed: bool

    @property
    def pair(self) -> str:
        return self.lang1 if self.lang1 == self.lang2 else f"{self.lang1}-{self.lang2}"

    def as_dict(self) -> dict:
        return asdict(self)


def combine_directions(directed: Iterable[Score]) -> list[Score]:
    """Average each pair with its reverse (seed convention: the key is the first-seen order).

    >>> a = Score("sts", "d", "spearman", "m", "deu", "eng", 80.0, True)
    >>> b = Score("sts", "d", "spearman", "m", "eng", "deu", 70.0, True)
    >>> [(s.pair, s.value) for s in combine_directions([a, b])]
    [('deu-eng', 75.0)]
    """
    groups: dict[tuple, list[Score]] = {}
    for score in directed:
        unordered = tuple(sorted((score.lang1, score.lang2)))
        groups.setdefault((score.task, score.dataset, score.metric, score.encoder, unordered), []).append(score)
    combined = []
    for members in groups.values():
        first = members[0]
        value = float(np.mean([m.value for m in members]))
        combined.append(Score(first.task, first.dataset, first.metric, first.encoder, first.lang1, first.lang2,
                              value, directed=False))
    return combined


def group_scores(scores: Iterable[Score]) -> dict[tuple[str, str, str], list[Score]]:
    """Scores grouped by (task, dataset, metric), in first-seen order."""
    groups: dict[tuple[str, str, str], list[Score]] = defaultdict(list)
    for score in scores:
        groups[(score.task, score.dataset, score.metric)].append(score)
    return dict(groups)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def summarize(scores: Iterable[Score], resource_levels: Mapping[str, str] | None = None) -> list[dict]:
    """Averages of the combined scores per (task, dataset, metric, encoder).

    Each row has ``all``, ``monolingual``, ``cross_lingual`` and, when ``resource_levels`` maps
    languages to levels (``{"deu_Latn": "high", "kin_Latn": "low"}``), ``level:<L>`` for monolingual
    pairs of level L and ``level:<L1>|<L2>`` (sorted) for cross-lingual pairs. NaN scores are
    skipped; a group with no finite score is NaN.
    """
    levels = dict(resource_levels or {})
    rows: dict[tuple, dict[str, list[float]]] = {}
    for score in scores:
        if score.directed:
            continue
        buckets = rows.setdefault((score.task, score.dataset, score.metric, score.encoder), defaultdict(list))
        buckets["all"].append(score.value)
        mono = score.lang1 == score.lang2
        buckets["monolingual" if mono else "cross_lingual"].append(score.value)
        if score.lang1 in levels and score.lang2 in levels:
            level = levels[score.lang1] if mono else "|".join(sorted((levels[score.lang1], levels[score.lang2])))
            buckets[f"level:{level}"].append(score.value)
    summary = []
    for (task, dataset, metric, encoder), buckets in rows.items():
        row = {"task": task, "dataset": dataset, "metric": metric, "encoder": encoder}
        row.update({name: _mean(values) for name, values in buckets.items()})
        row.setdefault("monolingual", math.nan)
        row.setdefault("cross_lingual", math.nan)
        summary.append(row)
    return summary


def score_matrix(scores: Iterable[Score], encoder: str) -> tuple[list[str], list[str], np.ndarray]:
    """The directed scores of one encoder as a matrix: rows ``lang1``, columns ``lang2`` (NaN where absent).

    Languages keep their first-seen order (columns follow the rows where both have a language).
    Pass the scores of one (task, dataset, metric).
    """
    directed = [s for s in scores if s.directed and s.encoder == encoder]
    rows = list(dict.fromkeys(s.lang1 for s in directed))
    seen_cols = list(dict.fromkeys(s.lang2 for s in directed))
    # Languages on both axes take the rows' order, so a language × language matrix has its diagonal on the diagonal.
    cols = [lang for lang in rows if lang in seen_cols] + [lang for lang in seen_cols if lang not in rows]
    row_of = {lang: i for i, lang in enumerate(rows)}
    col_of = {lang: j for j, lang in enumerate(cols)}
    matrix = np.full((len(rows), len(cols)), np.nan)
    for s in directed:
        matrix[row_of[s.lang1], col_of[s.lang2]] = s.value
    return rows, cols, matrix
