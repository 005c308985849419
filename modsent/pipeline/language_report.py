"""A run's results one row per language: what a run of many languages is read by.

Each target language gets its bitext P@1 (cosine) in both directions against the pivot for the modular
model, the run's first baseline (the source model as is) and Single_c, on its own test pairs: the
held-out projects' (``heldout-<lang>``), or, where those are too few, the in-domain pairs the run set
aside (``indomain-<lang>``, :data:`~modsent.pipeline.plan.IN_DOMAIN_PREFIX`). Rows are sorted by the
baseline's score, weakest first, since the modular method claims most where the multilingual model is
weakest. Written beside the reports (the evaluation's own directory stays as its job left it)::

    RUN_DIR/languages/languages.csv  languages.md   the table, the goals, summaries by script and tier
    RUN_DIR/languages/gain.png                      each language's gain over the baseline against its score
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from modsent.corpus import count_lines
from modsent.io import atomic_write_bytes, atomic_write_text
from modsent.languages import resolve
from modsent.pipeline.layout import SINGLE_C
from modsent.pipeline.plan import IN_DOMAIN_PREFIX, Planner
from modsent.tables import csv_text, markdown_table

__all__ = ["LanguageRow", "language_rows", "write_language_report", "resource_tier", "TIERS"]

MODULAR = "modular"
#: Resource tiers by the language's training pairs in the parallel text (what the run could learn from).
TIERS = ((5000, "high (≥ 5000)"), (1000, "mid (1000–4999)"), (0, "low (< 1000)"))


def resource_tier(training_pairs: int) -> str:
    return next(name for floor, name in TIERS if training_pairs >= floor)


@dataclass
class LanguageRow:
    lang: str
    script: str
    test_set: str  # "held-out projects" or "in-domain"
    test_pairs: int
    pairs_used: int  # training pairs the run's jobs read
    corpus_pairs: int  # training pairs the parallel text holds (the resource tier)
    scores: dict[str, tuple[float, float]]  # encoder -> (P@1 lang → pivot, pivot → lang)

    def mean(self, encoder: str) -> float:
        return float(np.mean(self.scores[encoder])) if encoder in self.scores else math.nan


def language_rows(results: dict, planner: Planner) -> list[LanguageRow]:
    """One row per target language with bitext scores against the pivot, sorted by the first baseline's mean P@1."""
    pivot = planner.pivot
    files = _test_files(planner)
    directed: dict[tuple[str, str, str, str], float] = {}
    for score in results["scores"]:
        if score["task"] == "bitext" and score["metric"] == "p_at_1_cosine" and score["directed"]:
            directed[(score["dataset"], score["encoder"], score["lang1"], score["lang2"])] = score["value"]
    encoders = list(dict.fromkeys(encoder for _, encoder, _, _ in directed))
    rows = []
    for lang in planner.targets:
        in_domain = f"{IN_DOMAIN_PREFIX}{lang}"
        dataset = in_domain if in_domain in files else f"heldout-{lang}"
        if dataset not in files:
            continue
        scores = {encoder: (directed[(dataset, encoder, lang, pivot)], directed[(dataset, encoder, pivot, lang)])
                  for encoder in encoders if (dataset, encoder, lang, pivot) in directed}
        if not scores:
            continue
        training = planner.parallel_pair_dir("train", lang) / f"{lang}.txt"
        corpus_pairs = count_lines(training) if training.is_file() else 0
        available = corpus_pairs - planner.in_domain_test_pairs(lang)
        cap = planner.cfg.parallel_text_max_pairs or available
        rows.append(LanguageRow(lang, resolve(lang).script, "in-domain" if dataset == in_domain else "held-out projects",
                                count_lines(files[dataset]), min(cap, available), corpus_pairs, scores))
    baseline = _baseline(planner)
    return sorted(rows, key=lambda row: (row.mean(baseline), row.lang))


def _test_files(planner: Planner) -> dict[str, Path]:
    """Each bitext set of the evaluation -> its target language's file (whose lines are the test pairs)."""
    files = {}
    for entry in planner.evaluate_job().config.bitext:
        langs = [lang for lang in entry.files if lang != planner.pivot]
        if len(langs) == 1 and Path(entry.files[langs[0]]).is_file():
            files[entry.name] = Path(entry.files[langs[0]])
    return files


def _baseline(planner: Planner) -> str:
    return next(iter(planner.cfg.baselines), SINGLE_C)


def _mean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(np.mean(finite)) if finite else math.nan


def goals_table(rows: Sequence[LanguageRow], baseline: str) -> list[list[object]]:
    """The claims a many-language run tests, each as (claim, measured): the modular model against the
    baseline and Single_c over every language, and whether the weakest quarter gains most."""
    gains = [row.mean(MODULAR) - row.mean(baseline) for row in rows]
    versus_single_c = [row.mean(MODULAR) - row.mean(SINGLE_C) for row in rows]
    quarter = max(1, len(rows) // 4)  # rows are sorted by the baseline's score, weakest first
    table: list[list[object]] = [
        ["languages", len(rows)],
        [f"modular ≥ {baseline} (share of languages, %)", 100.0 * _share(gains, lambda g: g >= 0)],
        [f"mean gain over {baseline} (P@1 points)", _mean(gains)],
        [f"mean gain, weakest quarter by {baseline} ({quarter} languages)", _mean(gains[:quarter])],
        [f"mean gain, the other {len(rows) - quarter} languages", _mean(gains[quarter:])],
    ]
    if any(SINGLE_C in row.scores for row in rows):
        table += [[f"modular − {SINGLE_C}, mean (P@1 points)", _mean(versus_single_c)],
                  [f"modular ≥ {SINGLE_C} − 1 (share of languages, %)",
                   100.0 * _share(versus_single_c, lambda d: d >= -1)]]
    return table


def _share(values: Sequence[float], keep) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return sum(1 for v in finite if keep(v)) / len(finite) if finite else math.nan


def group_table(rows: Sequence[LanguageRow], key, encoders: Sequence[str], baseline: str) -> list[list[object]]:
    """Mean P@1 (both directions) per encoder and the mean gain over the baseline, per group of languages."""
    groups: dict[str, list[LanguageRow]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    table = []
    for name, members in sorted(groups.items(), key=lambda item: (-len(item[1]), item[0])):
        means = [_mean([row.mean(encoder) for row in members]) for encoder in encoders]
        gains = [row.mean(MODULAR) - row.mean(baseline) for row in members]
        table.append([name, len(members), *means, _mean(gains), 100.0 * _share(gains, lambda g: g >= 0)])
    return table


def plot_gains(rows: Sequence[LanguageRow], baseline: str, path: Path) -> Path:
    """Each language's gain over ``baseline`` against ``baseline``'s own mean P@1 (Single_c's gain beside it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([row.mean(baseline) for row in rows])
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    try:
        for encoder, marker, color in ((SINGLE_C, "x", "tab:orange"), (MODULAR, "o", "tab:blue")):
            y = np.array([row.mean(encoder) for row in rows]) - x
            if np.isnan(y).all():
                continue
            ax.scatter(x, y, marker=marker, color=color, s=18, label=f"{encoder} − {baseline}")
            if encoder == MODULAR:
                for row, xi, yi in zip(rows, x, y):
                    ax.annotate(row.lang.split("_")[0], (xi, yi), fontsize=5, xytext=(2, 2), textcoords="offset points")
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xlabel(f"{baseline}: P@1, mean of both directions (test pairs of each language)")
        ax.set_ylabel("gain in P@1 points")
        ax.set_title(f"Gain over {baseline} by {baseline}'s own score ({len(rows)} languages)", fontsize=10)
        ax.legend(fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", metadata={"Software": None})
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def write_language_report(results: dict, planner: Planner) -> str:
    """Write ``RUN_DIR/languages/`` (see the module) and return its Markdown ("" without rows)."""
    rows = language_rows(results, planner)
    if not rows:
        return ""
    baseline = _baseline(planner)
    encoders = [e for e in (MODULAR, baseline, SINGLE_C) if any(e in row.scores for row in rows)]
    short = planner.pivot.split("_")[0]
    header = ["language", "script", "test set", "test pairs", "pairs used", "corpus pairs"]
    for encoder in encoders:
        header += [f"{encoder} X → {short}", f"{encoder} {short} → X"]
    header += [f"gain over {baseline}"]
    table = [[row.lang, row.script, row.test_set, row.test_pairs, row.pairs_used, row.corpus_pairs,
              *(v for e in encoders for v in row.scores.get(e, (math.nan, math.nan))),
              row.mean(MODULAR) - row.mean(baseline)] for row in rows]
    out = planner.run.root / "languages"
    atomic_write_text(out / "languages.csv", csv_text(header, table))
    plot_gains(rows, baseline, out / "gain.png")
    means = [f"{e} (mean P@1)" for e in encoders]
    group_header = ["languages", "n", *means, f"gain over {baseline}", f"≥ {baseline} (%)"]
    by_script = group_table(rows, lambda row: row.script, encoders, baseline)
    by_tier = group_table(rows, lambda row: resource_tier(row.corpus_pairs), encoders, baseline)
    by_test = group_table(rows, lambda row: row.test_set, encoders, baseline)
    markdown = "\n".join([
        f"## Every language ({len(rows)}), weakest {baseline} first\n",
        f"Bitext P@1 (cosine) against {planner.pivot} on each language's own test pairs: held-out projects', or "
        f"in-domain pairs set aside from its training projects where those are fewer than "
        f"{planner.cfg.parallel_text_min_test_pairs or 'the minimum'} (marked). gain: the modular model's mean of "
        f"both directions minus {baseline}'s. Plot: gain.png.\n",
        "### Goals\n", markdown_table(["claim", "measured"], goals_table(rows, baseline)),
        "\n### By test set\n", markdown_table(group_header, by_test),
        "\n### By script\n", markdown_table(group_header, by_script),
        "\n### By resource tier (training pairs in the parallel text)\n", markdown_table(group_header, by_tier),
        "\n### Per language\n", markdown_table(header, table), ""])
    atomic_write_text(out / "languages.md", markdown)
    return markdown
