"""The source side of a translation job: every source sentence once, sorted by length, in shards.

Paraphrase corpora repeat sentences (the same question in several pairs, an anchor that is also
another row's positive). :func:`load_source` reads every source column of every dataset once,
keeps each distinct sentence once, sorts them by length (so a batch of neighbours carries little
padding) and remembers, for each (dataset, column), which sorted sentence every row holds, so the
translations can be scattered back to every place a sentence occurs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from modsent.corpus import CorpusError, ParaphraseDataset, open_corpus
from modsent.corpus.validate import row_columns

__all__ = ["SourceColumn", "SourceDataset", "SourceCorpus", "load_source"]


@dataclass
class SourceColumn:
    column: int  # 1 anchor, 2 positive, 3 hard negative
    ranks: np.ndarray  # row i holds SourceCorpus.sentences[ranks[i]]


@dataclass
class SourceDataset:
    name: str
    path: Path
    columns: list[SourceColumn]

    @property
    def num_rows(self) -> int:
        return len(self.columns[0].ranks) if self.columns else 0


@dataclass
class SourceCorpus:
    """Unique source sentences (shortest first) and where each occurs."""

    language: str
    sentences: list[str]
    datasets: list[SourceDataset]

    @property
    def num_occurrences(self) -> int:
        return sum(len(col.ranks) for dataset in self.datasets for col in dataset.columns)

    @property
    def blank_occurrences(self) -> int:
        """Source lines that are blank (written through as blank lines, never translated)."""
        blank = [rank for rank, sentence in enumerate(self.sentences) if not sentence.strip()]
        return sum(int(np.isin(col.ranks, blank).sum()) for dataset in self.datasets for col in dataset.columns)

    def shard_bounds(self, shard_size: int) -> list[tuple[int, int]]:
        """``[(start, stop), …]`` covering ``sentences`` in chunks of ``shard_size``."""
        return [(start, min(start + shard_size, len(self.sentences))) for start in range(0, len(self.sentences), shard_size)]

    def shard_sha256(self, start: int, stop: int) -> str:
        """Content hash of one shard's sentences (a unit is redone when it changes)."""
        digest = hashlib.sha256()
        for sentence in self.sentences[start:stop]:
            digest.update(sentence.encode("utf-8"))
            digest.update(b"\n")
        return digest.hexdigest()


def _datasets(paths: Iterable[str | Path]) -> Iterator[ParaphraseDataset]:
    seen: dict[str, Path] = {}
    for path in paths:
        for dataset in open_corpus(path):
            if dataset.name in seen:
                raise CorpusError(f"two datasets are named '{dataset.name}' ({seen[dataset.name]} and {dataset.path}); "
                                  "output directories are named after datasets, so rename one")
            seen[dataset.name] = dataset.path
            yield dataset


def load_source(paths: Iterable[str | Path], language: str) -> SourceCorpus:
    """Read the ``language`` columns of every dataset under ``paths`` and deduplicate them.

    Raises :class:`~modsent.corpus.CorpusError` (file and line in the message) for a missing
    column, misaligned files, invalid UTF-8, a dataset without rows or with only blank source
    lines — before any translation starts.

    >>> corpus = load_source(["data/paraphrase"], "eng_Latn")  # doctest: +SKIP
    >>> len(corpus.sentences), corpus.num_occurrences  # doctest: +SKIP
    (81234, 100000)
    """
    ids: dict[str, int] = {}
    raw: list[tuple[ParaphraseDataset, list[int], list[list[int]]]] = []
    for dataset in _datasets(paths):
        # The rule train applies: a corpus that could not train is refused before hours of translation.
        numbers = list(range(1, row_columns(dataset, [language]) + 1))
        keys = [(language, number) for number in numbers]
        columns: list[list[int]] = [[] for _ in keys]
        rows = blank_rows = 0
        for row in dataset.iter_rows(keys):
            rows += 1
            blank_rows += all(not sentence.strip() for sentence in row)
            for values, sentence in zip(columns, row):
                values.append(ids.setdefault(sentence, len(ids)))
        files = ", ".join(str(dataset.path / dataset.columns[key]) if dataset.format == "seed"
                          else f"{dataset.path} ({dataset.columns[key]})" for key in keys)
        if rows == 0:
            raise CorpusError(f"dataset '{dataset.name}' has no rows ({files}): nothing to translate; "
                              "fill it or remove it from the corpora")
        if blank_rows == rows:
            raise CorpusError(f"dataset '{dataset.name}': all {rows} {language} lines are blank ({files}): "
                              "nothing to translate; fill it or remove it from the corpora")
        raw.append((dataset, numbers, columns))
    by_id = list(ids)
    order = sorted(range(len(by_id)), key=lambda i: (len(by_id[i]), by_id[i]))
    rank_of_id = np.empty(len(by_id), dtype=np.int64)
    rank_of_id[order] = np.arange(len(by_id), dtype=np.int64)
    datasets = [
        SourceDataset(dataset.name, dataset.path, [
            SourceColumn(number, rank_of_id[np.asarray(values, dtype=np.int64)]) for number, values in zip(numbers, columns)
        ])
        for dataset, numbers, columns in raw
    ]
    return SourceCorpus(language, [by_id[i] for i in order], datasets)
