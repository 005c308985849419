"""Corpus validation and statistics.

`validate_corpus` collects every problem instead of stopping at the first, so a user fixes a
corpus in one pass: misaligned line counts (file, expected, got), invalid UTF-8 and NUL bytes (file
and line), datasets without rows, a language without both columns of a pair, hard negatives for some
languages only, and languages missing from some datasets. Rows with a blank sentence are warnings:
training skips them.

The rules a dataset must meet to train on (:func:`row_columns`, :class:`BlankRows`) live here and
the stages call them, so ``modsent corpus validate`` refuses exactly what ``translate`` and ``train``
would refuse, with the same message.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from modsent.corpus.formats import BadLineError, ColumnKey, CorpusError, ParaphraseDataset, _decode, open_corpus

__all__ = ["Issue", "ValidationReport", "validate_corpus", "corpus_stats", "row_columns", "BlankRows"]

_MAX_ISSUES_PER_KIND = 20  # per file: a corpus with a million empty lines should not print a million lines


@dataclass(frozen=True)
class Issue:
    kind: str  # misaligned | blank_row | invalid_utf8 | nul_byte | no_rows | missing_column | missing_language | unreadable
    where: str  # file (and line) the problem is in
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.message}"


@dataclass
class ValidationReport:
    path: Path
    datasets: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)  # what training tolerates (and logs)
    suppressed: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.issues

    def add(self, issue: Issue, per_file_key: tuple[str, str] | None = None, warning: bool = False) -> None:
        key = per_file_key or (issue.kind, issue.where)
        listed = self.warnings if warning else self.issues
        if sum(1 for i in listed if (i.kind, i.where.split(":")[0]) == key) >= _MAX_ISSUES_PER_KIND:
            self.suppressed[key] += 1
            return
        listed.append(issue)

    def format(self) -> str:
        problems = len(self.issues) + sum(n for (kind, _), n in self.suppressed.items() if kind != "blank_row")
        warnings = len(self.warnings) + sum(n for (kind, _), n in self.suppressed.items() if kind == "blank_row")
        status = "OK" if self.ok else f"{problems} problem(s)"
        lines = [f"{self.path}: {len(self.datasets)} dataset(s), {status}"
                 + (f", {warnings} warning(s)" if warnings else "")]
        # Problems last: they are what a terminal shows after a long list of warnings.
        lines += [f"  warning: {issue}" for issue in self.warnings]
        lines += [f"  {issue}" for issue in self.issues]
        lines += [f"  … and {n} more {kind} in {where}" for (kind, where), n in self.suppressed.items()]
        return "\n".join(lines)


def row_columns(dataset: ParaphraseDataset, langs: Sequence[str], hard_negatives: bool = True) -> int:
    """The columns a training row of ``dataset`` takes for ``langs``: 2 (a pair) or 3 (with a hard negative).

    Raises :class:`CorpusError` when a language lacks column 1 or 2 (a sentence without its paraphrase
    trains nothing), or, with ``hard_negatives``, when column 3 exists for some languages and not others.
    """
    dataset.require(langs, columns=(1, 2))
    with_negatives = [lang for lang in langs if (lang, 3) in dataset.columns]
    if not hard_negatives or not with_negatives:
        return 2
    if len(with_negatives) != len(langs):
        without = [lang for lang in langs if lang not in with_negatives]
        raise CorpusError(
            f"dataset '{dataset.name}' ({dataset.path}) mixes pairs and triplets: hard negatives (column 3) exist "
            f"for {', '.join(with_negatives)} but not for {', '.join(without)}; translate the third column for every "
            "language, remove it everywhere, or set use_hard_negatives: false")
    return 3


class BlankRows:
    """Counts the rows of ``dataset`` with a blank sentence in one of ``keys``, which training skips (an empty
    sentence is no paraphrase of anything); :meth:`check` refuses a dataset that holds nothing else."""

    def __init__(self, dataset: ParaphraseDataset, keys: Sequence[ColumnKey]) -> None:
        self.dataset, self.keys = dataset, list(keys)
        self.per_column = [0] * len(self.keys)
        self.skipped = self.kept = 0

    def skip(self, row: Sequence[str]) -> bool:
        """Whether ``row`` (one value per key) has a blank sentence; counts it either way."""
        blank = [not text.strip() for text in row]
        if not any(blank):
            self.kept += 1
            return False
        self.skipped += 1
        self.per_column = [n + b for n, b in zip(self.per_column, blank)]
        return True

    def blank_columns(self, row: Sequence[str]) -> str:
        return ", ".join(self.dataset.columns[key] for key, text in zip(self.keys, row) if not text.strip())

    def summary(self) -> str:
        """Which columns the skipped rows were blank in, with counts: ``eng_Latn_1.txt (3), …``."""
        return ", ".join(f"{self.dataset.columns[key]} ({n})" for key, n in zip(self.keys, self.per_column) if n)

    def check(self) -> None:
        if self.skipped and not self.kept:
            raise CorpusError(
                f"dataset '{self.dataset.name}' ({self.dataset.path}): all {self.skipped} rows have a blank sentence "
                f"(blank lines per column: {self.summary()}); fix or remove the dataset (modsent corpus validate "
                "lists the lines)")


def _scan_text_file(path: Path, report: ValidationReport) -> int:
    """Count lines, reporting every line with invalid UTF-8 or NUL bytes (reading rows stops at the first)."""
    count = 0
    with open(path, "rb") as handle:
        for count, raw in enumerate(handle, start=1):
            try:
                _decode(raw, path, count)
            except BadLineError as err:
                report.add(Issue(err.kind, f"{path}:{count}", str(err).split(": ", 1)[1]), (err.kind, str(path)))
    return count


def _validate_dataset(dataset: ParaphraseDataset, report: ValidationReport) -> None:
    try:
        width = row_columns(dataset, dataset.languages)
    except CorpusError as err:
        report.add(Issue("missing_column", str(dataset.path), str(err)))
        width = 0
    before = len(report.issues)
    if dataset.format == "seed":
        counts = {key: _scan_text_file(dataset.path / name, report) for key, name in sorted(dataset.columns.items())}
        expected = Counter(counts.values()).most_common(1)[0][0]
        if not any(counts.values()):
            report.add(Issue("no_rows", str(dataset.path), f"every file of dataset '{dataset.name}' is empty (0 lines)"))
        for key, got in counts.items():
            if got != expected:
                report.add(Issue("misaligned", str(dataset.path / dataset.columns[key]),
                                 f"expected {expected} lines (like the other files of '{dataset.name}'), got {got}"))
        if len(report.issues) > before or not width:
            return  # reading rows would stop at the first of the problems listed
    # The rows as training reads them (every language's columns), blank ones found by the same rule.
    keys = [(lang, col) for lang in dataset.languages for col in range(1, width + 1)] if width else sorted(
        dataset.columns)
    blanks = BlankRows(dataset, keys)
    row = 0
    try:
        for row, values in enumerate(dataset.iter_rows(keys), start=1):
            if blanks.skip(values):
                report.add(Issue("blank_row", f"{dataset.path}:{row}", f"blank sentence in "
                                 f"{blanks.blank_columns(values)}; training skips this row"),
                           ("blank_row", str(dataset.path)), warning=True)
    except CorpusError as err:
        report.add(Issue("unreadable", str(dataset.path), str(err)))
        return
    if row == 0 and dataset.format != "seed":  # a seed dataset's empty files are reported above
        report.add(Issue("no_rows", str(dataset.path), f"dataset '{dataset.name}' has no rows"))
    try:
        blanks.check()
    except CorpusError as err:
        report.add(Issue("no_rows", str(dataset.path), str(err)))


def validate_corpus(path: str | Path) -> ValidationReport:
    """Check every dataset under ``path``; the report lists all problems found."""
    report = ValidationReport(Path(path))
    try:
        datasets = open_corpus(path)
    except CorpusError as err:
        report.add(Issue("unreadable", str(path), str(err)))
        return report
    report.datasets = [d.name for d in datasets]
    for dataset in datasets:
        _validate_dataset(dataset, report)
    all_langs = sorted({lang for d in datasets for lang in d.languages})
    for dataset in datasets:
        missing = [lang for lang in all_langs if lang not in dataset.languages]
        if missing:
            report.add(Issue("missing_language", str(dataset.path),
                             f"dataset '{dataset.name}' lacks {', '.join(missing)} that other datasets have"))
    return report


def corpus_stats(path: str | Path) -> list[dict]:
    """Per (dataset, language): rows, columns, unique sentences, mean characters per sentence.

    A parallel text corpus (:mod:`modsent.corpus.parallel`) gives a row per split, pair and side."""
    from modsent.corpus.parallel import is_parallel_corpus, parallel_stats

    if is_parallel_corpus(path):
        return parallel_stats(path)
    rows = []
    for dataset in open_corpus(path):
        for lang in dataset.languages:
            keys = [(lang, col) for col in range(1, dataset.num_columns(lang) + 1)]
            seen: set[int] = set()
            count = chars = 0
            for values in dataset.iter_rows(keys):
                count += 1
                for value in values:
                    seen.add(hash(value))
                    chars += len(value)
            rows.append({
                "dataset": dataset.name, "language": lang, "format": dataset.format, "rows": count,
                "columns": len(keys), "unique_sentences": len(seen),
                "mean_chars": round(chars / max(1, count * len(keys)), 1),
            })
    return rows
