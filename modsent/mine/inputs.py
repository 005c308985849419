"""One side of a mining job: sentences streamed from sharded files, exact duplicates folded together.

Inputs are text files (one sentence per line), JSONL (one object per line, the sentence under a
configurable key, or a bare JSON string) and Parquet (a string column, read batch by batch),
given as files, directories (every supported file inside, sorted) or glob patterns. Blank lines
are skipped; surrounding whitespace is stripped; each distinct sentence is kept once, with the
file and line where it first appears, so it is embedded once and reported with a line id.
"""

from __future__ import annotations

import glob
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modsent.corpus import read_lines
from modsent.errors import ModsentError

__all__ = ["MineInputError", "SentenceSet", "expand_inputs", "read_side"]

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".text")
SUFFIXES = (*TEXT_SUFFIXES, ".jsonl", ".parquet")
_PARQUET_BATCH = 65_536


class MineInputError(ModsentError):
    """An input file is missing, empty, malformed or not UTF-8; the message names it."""


@dataclass
class SentenceSet:
    """The unique sentences of one side, in first-seen order, with where each first appears."""

    texts: list[str]
    files: list[str]
    first_file: np.ndarray  # (n,) int32 index into ``files``
    first_line: np.ndarray  # (n,) int64, 1-based line (text, JSONL) or row (Parquet) number
    lines: int  # non-blank input lines, duplicates included

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, keep: np.ndarray) -> "SentenceSet":
        """The sentences where boolean ``keep`` is set (same ``lines`` count)."""
        rows = np.flatnonzero(keep)
        return SentenceSet([self.texts[i] for i in rows], self.files, self.first_file[rows], self.first_line[rows],
                           self.lines)


def expand_inputs(patterns: Sequence[str | Path], side: str) -> list[Path]:
    """Files named by ``patterns`` (files, directories, globs), in the given order; none missing."""
    files: list[Path] = []
    for pattern in patterns:
        path = Path(pattern)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
            if not found:
                raise MineInputError(f"{side}: directory {path} holds no {'/'.join(SUFFIXES)} files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(str(pattern)) if Path(p).is_file())
            if not matches:
                raise MineInputError(f"{side}: {pattern} does not exist (no file, directory or glob match)")
            files.extend(matches)
    for path in files:
        if path.suffix not in SUFFIXES:
            raise MineInputError(f"{side}: {path} has an unsupported suffix; use {', '.join(SUFFIXES)}")
    return list(dict.fromkeys(files))


def _jsonl_texts(path: Path, field: str) -> Iterator[tuple[int, str]]:
    for lineno, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise MineInputError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
        text = record if isinstance(record, str) else record.get(field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            raise MineInputError(f"{path}:{lineno}: expected a JSON string or an object with a string "
                                 f"{field!r} (set text_field)")
        yield lineno, text


def _parquet_texts(path: Path, field: str) -> Iterator[tuple[int, str]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise MineInputError(f"{path}: not a readable Parquet file ({err})") from None
    if field not in parquet.schema_arrow.names:
        raise MineInputError(f"{path}: no column {field!r} (columns: {', '.join(parquet.schema_arrow.names)}); "
                             "set text_field")
    row = 0
    for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH, columns=[field]):
        for text in batch.column(0).to_pylist():
            row += 1
            if text is not None:
                if not isinstance(text, str):
                    raise MineInputError(f"{path} row {row}: column {field!r} holds {type(text).__name__}, not text")
                yield row, text


def _file_texts(path: Path, field: str) -> Iterator[tuple[int, str]]:
    if path.suffix == ".jsonl":
        return _jsonl_texts(path, field)
    if path.suffix == ".parquet":
        return _parquet_texts(path, field)
    return enumerate(read_lines(path), start=1)  # invalid UTF-8: CorpusError naming file and line


def read_side(patterns: Sequence[str | Path], side: str, text_field: str = "text") -> SentenceSet:
    """Stream every sentence of one side and fold exact duplicates; refuse an input without any."""
    from modsent.corpus import CorpusError

    files = expand_inputs(patterns, side)
    first: dict[str, int] = {}
    first_file: list[int] = []
    first_line: list[int] = []
    lines = 0
    for file_index, path in enumerate(files):
        before = lines
        try:
            for lineno, raw in _file_texts(path, text_field):
                text = raw.strip()
                if not text:
                    continue
                lines += 1
                if text not in first:
                    first[text] = len(first)
                    first_file.append(file_index)
                    first_line.append(lineno)
        except CorpusError as err:
            raise MineInputError(f"{side}: {err}") from None
        if lines == before:
            logger.warning("%s: %s holds no sentences", side, path)
    if not first:
        raise MineInputError(f"{side}: no sentences in {', '.join(map(str, files))} (empty input)")
    logger.info("%s: %d sentences, %d unique, from %d file(s)", side, lines, len(first), len(files))
    return SentenceSet(list(first), [str(f) for f in files], np.array(first_file, dtype=np.int32),
                       np.array(first_line, dtype=np.int64), lines)
