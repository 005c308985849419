"""Readers for the evaluation data sets' files in their published layouts: the shared checks, Belebele, bitext.

The STS readers are in :mod:`modsent.corpus.sts_data`. Every reader returns plain records
(:class:`STSPairs`, :class:`BelebeleItem`, lists of lines) with language codes exactly as the file
spells them; evaluation maps them to NLLB codes. Gold scores are kept raw: Spearman correlation does
not depend on the scale (0-5 for STS, 1-4 for STS22, 0-1 for STR).

Bad input raises :class:`EvaluationDataError` (a ``ValueError``) naming the file, the row and what
was expected, e.g.::

    data/sts-test.csv, row 12: expected at least 7 tab-separated fields, got 5
    (expected columns: genre, file, year, id, score, sentence1, sentence2)
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modsent.corpus.formats import read_lines
from modsent.errors import ModsentError
from modsent.sources import local_path

__all__ = [
    "EvaluationDataError", "MissingDataFileError", "LanguageNotFoundError", "STSPairs", "BelebeleItem", "BelebeleData",
    "read_belebele_language", "read_belebele", "read_belebele_files", "read_parallel_lines", "split_pair",
    "BELEBELE_COLUMNS",
]

BELEBELE_COLUMNS = (
    "link", "question_number", "flores_passage", "question",
    "mc_answer1", "mc_answer2", "mc_answer3", "mc_answer4", "correct_answer_num",
)


class EvaluationDataError(ModsentError):
    """An evaluation file is missing, malformed or lacks a requested language (bad input: one line, no traceback).

    The message names the file, the row (1-based, counting data rows; the header is not a row)
    when one is at fault, and the expected columns.
    """

    def __init__(self, path: str | os.PathLike, problem: str, *, row: int | None = None,
                 expected: Sequence[str] | None = None) -> None:
        where = f"{path}, row {row}" if row is not None else str(path)
        columns = f" (expected columns: {', '.join(expected)})" if expected else ""
        super().__init__(f"{where}: {problem}{columns}")
        self.path = Path(path)
        self.row = row


class MissingDataFileError(EvaluationDataError, FileNotFoundError):
    """An evaluation file or directory does not exist."""


class LanguageNotFoundError(EvaluationDataError):
    """A requested language is not in the data; the message lists the languages that are."""


@dataclass(frozen=True)
class STSPairs:
    """Sentence pairs with gold similarity scores, sentence 1 in ``lang1`` and sentence 2 in ``lang2``."""

    lang1: str
    lang2: str
    sentences1: tuple[str, ...]
    sentences2: tuple[str, ...]
    scores: np.ndarray  # float64, raw gold scale
    source: str  # where the pairs came from, for error messages

    def __post_init__(self) -> None:
        if not len(self.sentences1) == len(self.sentences2) == len(self.scores):
            raise ValueError(f"{self.source}: {len(self.sentences1)} first sentences, {len(self.sentences2)} "
                             f"second sentences and {len(self.scores)} scores; they must be equal")

    def __len__(self) -> int:
        return len(self.scores)


@dataclass(frozen=True)
class BelebeleItem:
    """One Belebele question: its passage (``link`` identifies it), four options, the 0-based answer."""

    link: str
    question_number: int
    passage: str
    question: str
    options: tuple[str, str, str, str]
    answer: int  # 0..3

    @property
    def key(self) -> tuple[str, int]:
        return (self.link, self.question_number)


@dataclass(frozen=True)
class BelebeleData:
    """Belebele questions of several languages, row-aligned: ``items[lang][i]`` is the same question."""

    languages: tuple[str, ...]
    items: Mapping[str, tuple[BelebeleItem, ...]]
    answers: np.ndarray  # int64 (n_questions,), the same in every language

    def __len__(self) -> int:
        return len(self.answers)


def require_file(path: str | os.PathLike, what: str) -> Path:
    path = local_path(path)
    if not path.is_file():
        hint = " (it is a directory; give the file inside)" if path.is_dir() else ""
        raise MissingDataFileError(path, f"{what} file not found{hint}")
    return path


def open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def parse_score(value: Any, path: Path, row: int, column: str, expected: Sequence[str]) -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        score = math.nan
    if not math.isfinite(score):
        raise EvaluationDataError(path, f"column '{column}' holds {value!r}, not a number", row=row,
                                  expected=expected)
    return score


def require_text(value: Any, path: Path, row: int, column: str, expected: Sequence[str]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EvaluationDataError(path, f"column '{column}' is empty or not text ({value!r})", row=row,
                                  expected=expected)
    return value


def csv_records(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a comma-separated file with a header, as (1-based row number, record)."""
    with open_text(path) as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [col for col in required if col not in header]
        if missing:
            raise EvaluationDataError(path, f"header lacks {', '.join(missing)} (header: {', '.join(header)})",
                                      expected=required)
        for row, record in enumerate(reader, start=1):
            if None in record or any(record[col] is None for col in required):
                raise EvaluationDataError(path, f"has {len(header)} header fields but this row has a different "
                                          "number of fields", row=row, expected=required)
            yield row, record


def table_records(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a JSONL (optionally gzipped) or Parquet file, as (1-based row number, record)."""
    name = path.name.lower()
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        missing = [col for col in required if col not in table.column_names]
        if missing:
            raise EvaluationDataError(path, f"lacks column(s) {', '.join(missing)} "
                                      f"(columns: {', '.join(table.column_names)})", expected=required)
        yield from enumerate(table.to_pylist(), start=1)
        return
    if not (name.endswith(".jsonl") or name.endswith(".jsonl.gz") or name.endswith(".json")):
        raise EvaluationDataError(path, "unknown file type; expected .jsonl, .jsonl.gz or .parquet",
                                  expected=required)
    with open_text(path) as handle:
        for row, line in enumerate(handle, start=1):
            if not line.strip():
                raise EvaluationDataError(path, "empty line", row=row, expected=required)
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise EvaluationDataError(path, f"not valid JSON ({err.msg})", row=row, expected=required) from None
            if not isinstance(record, dict):
                raise EvaluationDataError(path, "not a JSON object", row=row, expected=required)
            missing = [col for col in required if col not in record]
            if missing:
                raise EvaluationDataError(path, f"lacks key(s) {', '.join(missing)}", row=row, expected=required)
            yield row, record


def split_pair(code: str) -> tuple[str, str]:
    """``"en-de"`` -> ("en", "de"); a single code ``"de"`` is a monolingual pair."""
    parts = code.split("-")
    if len(parts) == 1:
        return parts[0], parts[0]
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise ValueError(f"language pair {code!r} is not of the form 'xx' or 'xx-yy'")


def check_languages(path: Path, present: Sequence[str], requested: Sequence[str] | None) -> None:
    if requested is None:
        return
    absent = [lang for lang in requested if lang not in present]
    if absent:
        raise LanguageNotFoundError(path, f"language(s) {', '.join(absent)} not in the file "
                                    f"(present: {', '.join(sorted(present)) or 'none'})")


# -------------------------------------------------------------------------------------- Belebele


def read_belebele_language(path: str | os.PathLike) -> list[BelebeleItem]:
    """Read one language of Belebele (``data/<flores code>.jsonl``): one question per line.

    >>> items = read_belebele_language("belebele/eng_Latn.jsonl")  # doctest: +SKIP
    >>> items[0].options[items[0].answer]                             # doctest: +SKIP
    """
    path = require_file(path, "Belebele")
    items: list[BelebeleItem] = []
    for row, record in table_records(path, BELEBELE_COLUMNS):
        options = tuple(require_text(str(record[f"mc_answer{i}"]), path, row, f"mc_answer{i}", BELEBELE_COLUMNS)
                        for i in range(1, 5))
        try:
            answer = int(str(record["correct_answer_num"]).strip()) - 1
            question_number = int(record["question_number"])
        except ValueError:
            answer = question_number = -1
        if answer not in range(4) or question_number < 0:
            raise EvaluationDataError(path, f"correct_answer_num must be 1-4 and question_number an integer, got "
                                      f"{record['correct_answer_num']!r} and {record['question_number']!r}",
                                      row=row, expected=BELEBELE_COLUMNS)
        items.append(BelebeleItem(
            link=require_text(record["link"], path, row, "link", BELEBELE_COLUMNS),
            question_number=question_number,
            passage=require_text(record["flores_passage"], path, row, "flores_passage", BELEBELE_COLUMNS),
            question=require_text(record["question"], path, row, "question", BELEBELE_COLUMNS),
            options=options,  # type: ignore[arg-type]
            answer=answer,
        ))
    if not items:
        raise EvaluationDataError(path, "no rows", expected=BELEBELE_COLUMNS)
    passage_of: dict[str, str] = {}
    for row, item in enumerate(items, start=1):
        if passage_of.setdefault(item.link, item.passage) != item.passage:
            raise EvaluationDataError(path, f"link {item.link} has two different passages; questions on one "
                                      "passage must repeat it verbatim", row=row, expected=BELEBELE_COLUMNS)
    return items


def read_belebele(directory: str | os.PathLike, languages: Sequence[str],
                  file_pattern: str = "{lang}.jsonl") -> BelebeleData:
    """Read Belebele for ``languages`` from ``directory/<file_pattern>`` and align the questions.

    Questions are matched across languages by (link, question_number), in the order of the first
    language's file; every language must hold the same questions with the same answers.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise MissingDataFileError(directory, "Belebele directory not found")
    if not languages:
        raise ValueError("read_belebele needs at least one language")
    files = {lang: directory / file_pattern.format(lang=lang) for lang in languages}
    for lang, path in files.items():
        if not path.is_file():
            present = sorted(p.name for p in directory.iterdir() if p.is_file())
            raise LanguageNotFoundError(path, f"no Belebele file for language {lang} "
                                        f"(files in {directory}: {', '.join(present[:20]) or 'none'})")
    return read_belebele_files(files)


def read_belebele_files(files: Mapping[str, str | os.PathLike]) -> BelebeleData:
    """Read Belebele from one file per language ``{lang: path}`` and align the questions (as :func:`read_belebele`)."""
    languages = list(files)
    per_language = {lang: read_belebele_language(path) for lang, path in files.items()}
    first_lang = languages[0]
    order = [item.key for item in per_language[first_lang]]
    answers = np.asarray([item.answer for item in per_language[first_lang]], dtype=np.int64)
    aligned: dict[str, tuple[BelebeleItem, ...]] = {}
    for lang, items in per_language.items():
        by_key = {item.key: item for item in items}
        path = files[lang]
        if len(by_key) != len(items):
            raise EvaluationDataError(path, "repeats a (link, question_number) pair")
        if set(by_key) != set(order):
            missing = [key for key in order if key not in by_key]
            extra = [key for key in by_key if key not in set(order)]
            raise EvaluationDataError(path, f"questions differ from {first_lang}: {len(missing)} missing "
                                      f"(e.g. {missing[:1]}), {len(extra)} extra (e.g. {extra[:1]})")
        aligned[lang] = tuple(by_key[key] for key in order)
        differing = [i for i, item in enumerate(aligned[lang]) if item.answer != answers[i]]
        if differing:
            item = aligned[lang][differing[0]]
            raise EvaluationDataError(path, f"{len(differing)} answers differ from {first_lang}, e.g. "
                                      f"{item.key}: {item.answer + 1} vs {answers[differing[0]] + 1}")
    return BelebeleData(tuple(languages), aligned, answers)


# --------------------------------------------------------------------------------------- bitext


def read_parallel_lines(files: Mapping[str, str | os.PathLike]) -> dict[str, list[str]]:
    """Read line-aligned sentence files ``{lang: path}`` (e.g. FLORES ``devtest/<lang>.devtest``): line i of every
    file is the same sentence, and no line is empty."""
    texts = {}
    for lang, path in files.items():
        path = require_file(path, "sentence")
        texts[lang] = list(read_lines(path))
        empty = next((row for row, line in enumerate(texts[lang], start=1) if not line.strip()), None)
        if empty is not None:
            raise EvaluationDataError(path, "empty line; line-aligned files hold one sentence per line", row=empty)
        if not texts[lang]:
            raise EvaluationDataError(path, "no lines")
    counts = {lang: len(lines) for lang, lines in texts.items()}
    if len(set(counts.values())) > 1:
        first = next(iter(files))
        for lang, count in counts.items():
            if count != counts[first]:
                raise EvaluationDataError(files[lang], f"has {count} lines but {files[first]} has {counts[first]}; "
                                          "line-aligned files must have the same number of lines")
    return texts
