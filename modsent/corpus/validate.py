"""Corpus validation and statistics, streaming over every file once.

`validate_corpus` collects every problem instead of stopping at the first, so a user fixes a
corpus in one pass: misaligned line counts (file, expected, got), empty lines, invalid UTF-8 and
NUL bytes (file and line), datasets without rows, datasets whose languages have different column
counts, and languages missing from some datasets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from modsent.corpus.formats import BadLineError, CorpusError, ParaphraseDataset, _decode, open_corpus

__all__ = ["Issue", "ValidationReport", "validate_corpus", "corpus_stats"]

_MAX_ISSUES_PER_KIND = 20  # per file: a corpus with a million empty lines should not print a million lines


@dataclass(frozen=True)
class Issue:
    kind: str  # misaligned | empty_line | invalid_utf8 | nul_byte | no_rows | missing_column | missing_language | unreadable
    where: str  # file (and line) the problem is in
    message: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.message}"


@dataclass
class ValidationReport:
    path: Path
    datasets: list[str] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    suppressed: Counter = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.issues

    def add(self, issue: Issue, per_file_key: tuple[str, str] | None = None) -> None:
        key = per_file_key or (issue.kind, issue.where)
        if sum(1 for i in self.issues if (i.kind, i.where.split(":")[0]) == key) >= _MAX_ISSUES_PER_KIND:
            self.suppressed[key] += 1
            return
        self.issues.append(issue)

    def format(self) -> str:
        lines = [f"{self.path}: {len(self.datasets)} dataset(s), "
                 + ("OK" if self.ok else f"{len(self.issues) + sum(self.suppressed.values())} problem(s)")]
        lines += [f"  {issue}" for issue in self.issues]
        lines += [f"  … and {n} more {kind} in {where}" for (kind, where), n in self.suppressed.items()]
        return "\n".join(lines)


def _scan_text_file(path: Path, report: ValidationReport) -> int:
    """Count lines, reporting empty lines, invalid UTF-8 and NUL bytes with line numbers."""
    count = 0
    with open(path, "rb") as handle:
        for count, raw in enumerate(handle, start=1):
            try:
                text = _decode(raw, path, count)
            except BadLineError as err:
                report.add(Issue(err.kind, f"{path}:{count}", str(err).split(": ", 1)[1]), (err.kind, str(path)))
                continue
            if not text.strip():
                report.add(Issue("empty_line", f"{path}:{count}", "empty line (an empty sentence trains nothing; "
                                 "remove the row from every file of the dataset)"), ("empty_line", str(path)))
    return count


def _validate_dataset(dataset: ParaphraseDataset, report: ValidationReport) -> None:
    widths = {lang: dataset.num_columns(lang) for lang in dataset.languages}
    for lang in dataset.languages:
        for col in range(1, max(widths.values()) + 1):
            if (lang, col) not in dataset.columns:
                report.add(Issue("missing_column", str(dataset.path),
                                 f"{lang} has no column {col} while other languages do "
                                 f"(a dataset is all pairs or all triplets)"))
    if dataset.format == "seed":
        counts = {key: _scan_text_file(dataset.path / name, report) for key, name in sorted(dataset.columns.items())}
        expected = Counter(counts.values()).most_common(1)[0][0]
        if not any(counts.values()):
            report.add(Issue("no_rows", str(dataset.path), f"every file of dataset '{dataset.name}' is empty (0 lines)"))
        for key, got in counts.items():
            if got != expected:
                report.add(Issue("misaligned", str(dataset.path / dataset.columns[key]),
                                 f"expected {expected} lines (like the other files of '{dataset.name}'), got {got}"))
        return
    keys = sorted(dataset.columns)
    row = 0
    try:
        for row, values in enumerate(dataset.iter_rows(keys), start=1):
            for key, value in zip(keys, values):
                if not value.strip():
                    report.add(Issue("empty_line", f"{dataset.path}:{row}", f"empty value in '{dataset.columns[key]}'"),
                               ("empty_line", str(dataset.path)))
    except CorpusError as err:
        report.add(Issue("unreadable", str(dataset.path), str(err)))
        return
    if row == 0:
        report.add(Issue("no_rows", str(dataset.path), f"dataset '{dataset.name}' has no rows"))


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
