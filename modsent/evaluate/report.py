"""Reports from a list of :class:`~modsent.evaluate.scores.Score`: CSV and Markdown tables, heatmaps, deltas.

Layout under the output directory (every file written atomically)::

    <task>.md                                    all tables of a task, for people
    <task>/<dataset>.<metric>.csv                combined pairs × encoders, then averages
    <task>/<dataset>.<metric>.directed.csv       both directions of each cross-lingual pair
    <task>/heatmaps/<dataset>.<metric>.<encoder>.png (+ .csv)   every language × language matrix of 3 or more languages
    deltas.csv, deltas.md                        each encoder minus the baseline encoder
"""

from __future__ import annotations

import io
import math
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from modsent.evaluate.scores import LOWER_IS_BETTER, Score, group_scores, score_matrix, summarize
from modsent.io import atomic_write_bytes, atomic_write_text
from modsent.tables import csv_text, markdown_table

__all__ = ["write_reports", "system_table", "language_tables", "plot_heatmap", "heatmap_size_inches", "HEATMAP_DPI", "delta_rows"]

HEATMAP_DPI = 100
_ANNOTATE_UP_TO = 25  # cells get their value printed up to this many languages a side


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]+", "_", name)


def heatmap_size_inches(n_rows: int, n_cols: int) -> tuple[float, float]:
    """Figure size of a heatmap; at :data:`HEATMAP_DPI` the PNG is ``round(w*dpi) × round(h*dpi)`` pixels."""
    return 2.5 + 0.45 * n_cols, 1.8 + 0.4 * n_rows


def plot_heatmap(matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str], title: str,
                 path: str | os.PathLike, row_axis: str = "", col_axis: str = "") -> Path:
    """Draw ``matrix`` (NaN cells blank) as a PNG at ``path``; returns the path.

    >>> plot_heatmap(np.eye(2), ["a", "b"], ["a", "b"], "demo", "demo.png")  # doctest: +SKIP
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"matrix {matrix.shape} does not match {len(row_labels)} × {len(col_labels)} labels")
    fig, ax = plt.subplots(figsize=heatmap_size_inches(*matrix.shape), dpi=HEATMAP_DPI)
    try:
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", aspect="auto")
        fig.colorbar(image, ax=ax)
        ax.set_xticks(range(len(col_labels)), labels=list(col_labels), rotation=90, fontsize=7)
        ax.set_yticks(range(len(row_labels)), labels=list(row_labels), fontsize=7)
        ax.set_xlabel(col_axis)
        ax.set_ylabel(row_axis)
        ax.set_title(title, fontsize=9)
        if max(matrix.shape) <= _ANNOTATE_UP_TO:
            for (i, j), value in np.ndenumerate(matrix):
                if not math.isnan(value):
                    ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=6, color="white")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=HEATMAP_DPI)
    finally:
        plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)


# Axis names of the directed matrices, per task.
_AXES = {
    "sts": ("sentence 1 language", "sentence 2 language"),
    "belebele": ("passage language", "question + options language"),
    "belebele_retrieval": ("passage language", "question language"),
    "bitext": ("query language", "retrieved language"),
}


def delta_rows(scores: Sequence[Score], summary: Sequence[dict], baseline: str) -> list[list[object]]:
    """Rows (task, dataset, metric, pair, encoder, baseline value, value, delta, better) comparing every
    other encoder with ``baseline``, over combined pairs and the ``avg:`` summary rows."""
    values: dict[tuple[str, str, str, str], dict[str, float]] = {}
    for s in scores:
        if not s.directed:
            values.setdefault((s.task, s.dataset, s.metric, s.pair), {})[s.encoder] = s.value
    for row in summary:
        for name, value in row.items():
            if name not in ("task", "dataset", "metric", "encoder"):
                values.setdefault((row["task"], row["dataset"], row["metric"], f"avg:{name}"), {})[row["encoder"]] = value
    rows = []
    for (task, dataset, metric, pair), by_encoder in values.items():
        if baseline not in by_encoder:
            continue
        for encoder, value in by_encoder.items():
            if encoder == baseline:
                continue
            delta = value - by_encoder[baseline]
            lower_better = metric.startswith(LOWER_IS_BETTER)
            better = "" if math.isnan(delta) else ("yes" if (delta < 0 if lower_better else delta > 0) else "no")
            rows.append([task, dataset, metric, pair, encoder, by_encoder[baseline], value, delta, better])
    return rows


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    atomic_write_text(path, csv_text(header, rows))
    return path


def write_reports(scores: Sequence[Score], output_dir: str | os.PathLike,
                  resource_levels: Mapping[str, str] | None = None, baseline: str | None = None,
                  heatmaps: bool = True) -> list[Path]:
    """Write every table, heatmap and the delta table for ``scores``; returns the paths written."""
    output = Path(output_dir)
    written: list[Path] = []
    summary = summarize(scores, resource_levels)
    encoders = list(dict.fromkeys(s.encoder for s in scores))
    markdown: dict[str, list[str]] = {}
    for (task, dataset, metric), group in group_scores(scores).items():
        stem = f"{_safe(dataset)}.{_safe(metric)}"
        sections = markdown.setdefault(task, [f"# {task}\n"])

        combined: dict[str, dict[str, float]] = {}
        for s in group:
            if not s.directed:
                combined.setdefault(s.pair, {})[s.encoder] = s.value
        rows = [[pair, *(by_encoder.get(e, math.nan) for e in encoders)] for pair, by_encoder in combined.items()]
        averages = [row for row in summary if (row["task"], row["dataset"], row["metric"]) == (task, dataset, metric)]
        names = list(dict.fromkeys(name for row in averages for name in row
                                   if name not in ("task", "dataset", "metric", "encoder")))
        by_encoder_avg = {row["encoder"]: row for row in averages}
        rows += [[f"avg:{name}", *(by_encoder_avg.get(e, {}).get(name, math.nan) for e in encoders)] for name in names]
        header = ["pair", *encoders]
        written.append(_write_csv(output / task / f"{stem}.csv", header, rows))
        sections.append(f"## {dataset} — {metric}\n\n{markdown_table(header, rows)}\n")

        directed_rows = [[s.lang1, s.lang2, s.encoder, s.value] for s in group if s.directed and s.lang1 != s.lang2]
        if directed_rows:
            directed_header = ["lang1", "lang2", "encoder", metric]
            written.append(_write_csv(output / task / f"{stem}.directed.csv", directed_header, directed_rows))
            sections.append(f"### {dataset} — {metric}, each direction\n\n"
                            f"{markdown_table(directed_header, directed_rows)}\n")

        if not heatmaps:
            continue
        row_axis, col_axis = _AXES.get(task, ("lang1", "lang2"))
        for encoder in encoders:
            row_labels, col_labels, matrix = score_matrix(group, encoder)
            # Two languages' matrix says no more than the table's two numbers, and a run of many languages has
            # one such set per language: 81 languages plotted ~1300 of them.
            if len(row_labels) < 3 or len(col_labels) < 3:
                continue
            base = output / task / "heatmaps" / f"{stem}.{_safe(encoder)}"
            written.append(plot_heatmap(matrix, row_labels, col_labels, f"{task} {dataset} {metric} — {encoder}",
                                        base.with_name(base.name + ".png"), row_axis, col_axis))
            written.append(_write_csv(base.with_name(base.name + ".csv"), [f"{row_axis} \\ {col_axis}", *col_labels],
                                      ([r, *m] for r, m in zip(row_labels, matrix.tolist()))))

    for task, sections in markdown.items():
        path = output / f"{task}.md"
        atomic_write_text(path, "\n".join(sections))
        written.append(path)

    if baseline:
        header = ["task", "dataset", "metric", "pair", "encoder", f"baseline ({baseline})", "value", "delta", "better"]
        rows = delta_rows(scores, summary, baseline)
        written.append(_write_csv(output / "deltas.csv", header, rows))
        atomic_write_text(output / "deltas.md", f"# Each encoder minus {baseline}\n\n{markdown_table(header, rows)}\n")
        written.append(output / "deltas.md")
    return written


HEADLINE_METRICS = ("spearman", "accuracy", "p_at_1_cosine")


def headline_table(results: dict) -> str:
    """A short Markdown table of the main figures (one column per encoder): what a run prints last.

    STS Spearman and Belebele accuracy per language pair (directions averaged); bitext P@1
    (cosine) per direction, since "target → English" and "English → target" differ.
    """
    rows: dict[tuple[str, str, str], dict[str, float]] = {}
    encoders: list[str] = []
    for score in results["scores"]:
        if score["metric"] not in HEADLINE_METRICS or score["directed"] != (score["task"] == "bitext"):
            continue
        pair = score["lang1"] if score["lang1"] == score["lang2"] else (
            f"{score['lang1']} → {score['lang2']}" if score["directed"] else f"{score['lang1']}-{score['lang2']}")
        rows.setdefault((score["dataset"], score["metric"], pair), {})[score["encoder"]] = score["value"]
        if score["encoder"] not in encoders:
            encoders.append(score["encoder"])
    lines = ["| dataset | metric | languages | " + " | ".join(encoders) + " |",
             "|---|---|---|" + "---:|" * len(encoders)]
    for (dataset, metric, pair), values in rows.items():
        cells = [f"{values[e]:.1f}" if e in values else "" for e in encoders]
        lines.append(f"| {dataset} | {metric} | {pair} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def system_table(results: dict, pivot: str) -> str:
    """One row per encoder, one column per language: what a modular run is judged by, in Markdown.

    Columns: bitext P@1 (cosine) of each language's sentences retrieving their ``pivot``
    translations, from the bitext sets of two languages (a language's own held-out pairs,
    not a set shared by many languages), then their mean, then Spearman of every STS set in
    ``pivot`` alone. Empty when the results hold neither.
    """
    cells: dict[tuple[str, str], float] = {}
    columns: list[str] = []
    encoders: list[str] = []
    langs_of: dict[str, set[str]] = {}
    for score in results["scores"]:
        langs_of.setdefault(score["dataset"], set()).update((score["lang1"], score["lang2"]))
    for score in results["scores"]:
        if score["task"] == "bitext" and score["metric"] == "p_at_1_cosine" and score["directed"] \
                and score["lang2"] == pivot and score["lang1"] != pivot and len(langs_of[score["dataset"]]) == 2:
            column = f"{score['lang1']} → {pivot.split('_')[0]}"
        elif score["task"] == "sts" and score["metric"] == "spearman" and score["lang1"] == score["lang2"] == pivot:
            column = f"{score['dataset']} ({pivot.split('_')[0]})"
        else:
            continue
        if column not in columns:
            columns.append(column)
        if score["encoder"] not in encoders:
            encoders.append(score["encoder"])
        cells[score["encoder"], column] = score["value"]
    if not columns:
        return ""
    bitext = [c for c in columns if "→" in c]
    sts = [c for c in columns if "→" not in c]
    header = ["system", *bitext, *(["mean P@1"] if len(bitext) > 1 else []), *sts]
    rows = []
    for encoder in encoders:
        values = [cells.get((encoder, c)) for c in bitext]
        known = [v for v in values if v is not None]
        mean = [sum(known) / len(known) if len(known) == len(values) else None] if len(bitext) > 1 else []
        rows.append([encoder, *values, *mean, *(cells.get((encoder, c)) for c in sts)])
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    lines += ["| " + " | ".join([row[0], *("" if v is None else f"{v:.1f}" for v in row[1:])]) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def language_tables(results: dict, pivot: str) -> str:
    """One Markdown table per language besides ``pivot`` (one row per encoder), then their mean: what each
    system does for that language, where the modular method makes its two claims.

    Columns: Spearman of each STS set in the language alone and against ``pivot``; bitext P@1 (cosine)
    from the language to ``pivot`` and back, on its own held-out pairs (sets of two languages); Spearman
    of each STS set in ``pivot`` alone. Empty when the results hold none of these for any language.
    """
    short = pivot.split("_")[0]
    langs_of: dict[str, set[str]] = {}
    for score in results["scores"]:
        langs_of.setdefault(score["dataset"], set()).update((score["lang1"], score["lang2"]))
    cells: dict[tuple[str, str, str], float] = {}  # (language, column with X for the language, encoder)
    kinds: list[str] = []
    encoders: list[str] = []
    pivot_sts: dict[tuple[str, str], float] = {}
    for score in results["scores"]:
        pair = {score["lang1"], score["lang2"]}
        if score["task"] == "sts" and score["metric"] == "spearman" and not score["directed"]:
            if pair == {pivot}:
                pivot_sts[(f"{score['dataset']} ({short})", score["encoder"])] = score["value"]
                continue
            lang = next(iter(pair - {pivot}))
            if len(pair) == 2 and pivot not in pair:
                continue
            kind = f"{score['dataset']} (X)" if len(pair) == 1 else f"{score['dataset']} ({short}-X)"
        elif score["task"] == "bitext" and score["metric"] == "p_at_1_cosine" and score["directed"] \
                and pivot in pair and len(pair) == 2 and len(langs_of[score["dataset"]]) == 2:
            lang = next(iter(pair - {pivot}))
            kind = f"P@1 X → {short}" if score["lang1"] == lang else f"P@1 {short} → X"
        else:
            continue
        kinds += [kind] if kind not in kinds else []
        encoders += [score["encoder"]] if score["encoder"] not in encoders else []
        cells[(lang, kind, score["encoder"])] = score["value"]
    languages = sorted({lang for lang, _, _ in cells})
    if not languages:
        return ""
    kinds.sort(key=lambda kind: (kind.startswith("P@1"), kind))
    pivot_columns = sorted({column for column, _ in pivot_sts})

    def table(title: str, label: str, value: Callable[[str, str], float | None]) -> str:
        header = ["system", *(kind.replace("X", label) for kind in kinds), *pivot_columns]
        lines = [f"### {title}\n", "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
        for encoder in encoders:
            values = [value(kind, encoder) for kind in kinds] + [pivot_sts.get((c, encoder)) for c in pivot_columns]
            lines.append("| " + " | ".join([encoder, *("" if v is None else f"{v:.1f}" for v in values)]) + " |")
        return "\n".join(lines) + "\n"

    def mean(kind: str, encoder: str) -> float | None:
        values = [cells.get((lang, kind, encoder)) for lang in languages]
        return None if None in values else sum(values) / len(values)

    sections = [table(lang, lang.split("_")[0], lambda kind, encoder, lang=lang: cells.get((lang, kind, encoder)))
                for lang in languages]
    if len(languages) > 1:
        sections.append(table(f"mean over {', '.join(languages)}", "X", mean))
    return "\n".join(sections)
