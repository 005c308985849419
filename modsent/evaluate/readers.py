"""Readers for the evaluation data sets, from local files in their published layouts.

Every reader returns plain records (:class:`STSPairs`, :class:`BelebeleItem`, lists of lines) with
language codes exactly as the file spells them; the runner maps them to NLLB codes. Gold scores are
kept raw: Spearman correlation does not depend on the scale (0-5 for STS, 1-4 for STS22, 0-1 for STR).

Bad input raises :class:`EvaluationDataError` (a ``ValueError``) naming the file, the row and what
was expected, e.g.::

    data/sts-test.csv, row 12: expected at least 7 tab-separated fields, got 5
    (expected columns: genre, file, year, id, score, sentence1, sentence2)
"""

from __future__ import annotations

import csv
import functools
import gzip
import json
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from modsent.errors import ModsentError

__all__ = [
    "EvaluationDataError",
    "MissingDataFileError",
    "LanguageNotFoundError",
    "STSPairs",
    "BelebeleItem",
    "BelebeleData",
    "read_stsb",
    "read_mteb_sts",
    "read_str",
    "read_kardes",
    "read_kardes_files",
    "uyghur_cyrillic_to_arabic",
    "read_belebele_language",
    "read_belebele",
    "read_belebele_files",
    "read_lines",
    "read_parallel_lines",
    "split_pair",
    "STSB_COLUMNS",
    "MTEB_STS_COLUMNS",
    "STR_COLUMNS",
    "KARDES_COLUMNS",
    "BELEBELE_COLUMNS",
]

STSB_COLUMNS = ("genre", "file", "year", "id", "score", "sentence1", "sentence2")
MTEB_STS_COLUMNS = ("sentence1", "sentence2", "score")
STR_COLUMNS = ("PairID", "Text", "Score")
KARDES_COLUMNS = ("sentence1", "sentence2", "score", "s1_translation", "s2_translation")
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


def _require_file(path: str | os.PathLike, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        hint = " (it is a directory; give the file inside)" if path.is_dir() else ""
        raise MissingDataFileError(path, f"{what} file not found{hint}")
    return path


def _open_text(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _parse_score(value: Any, path: Path, row: int, column: str, expected: Sequence[str]) -> float:
    try:
        score = float(value)
    except (TypeError, ValueError):
        score = math.nan
    if not math.isfinite(score):
        raise EvaluationDataError(path, f"column '{column}' holds {value!r}, not a number", row=row,
                                  expected=expected)
    return score


def _require_text(value: Any, path: Path, row: int, column: str, expected: Sequence[str]) -> str:
    if not isinstance(value, str) or not value.strip():
        raise EvaluationDataError(path, f"column '{column}' is empty or not text ({value!r})", row=row,
                                  expected=expected)
    return value


def _csv_records(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a comma-separated file with a header, as (1-based row number, record)."""
    with _open_text(path) as handle:
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


def _table_records(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
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
    with _open_text(path) as handle:
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


def _check_languages(path: Path, present: Sequence[str], requested: Sequence[str] | None) -> None:
    if requested is None:
        return
    absent = [lang for lang in requested if lang not in present]
    if absent:
        raise LanguageNotFoundError(path, f"language(s) {', '.join(absent)} not in the file "
                                    f"(present: {', '.join(sorted(present)) or 'none'})")


# --------------------------------------------------------------------------------------------- STS


def read_stsb(path: str | os.PathLike, lang: str = "eng_Latn") -> STSPairs:
    """Read an STS-benchmark file (``sts-train.csv`` / ``sts-dev.csv`` / ``sts-test.csv``).

    Tab-separated, no header: genre, file, year, id, score, sentence1, sentence2 (some rows carry
    extra source fields after sentence2; they are ignored). Sentences contain bare double quotes,
    so fields are split on tabs only (no CSV quoting).

    >>> pairs = read_stsb("stsbenchmark/sts-test.csv")  # doctest: +SKIP
    >>> pairs.sentences1[0], pairs.scores[0]            # doctest: +SKIP
    ('A girl is styling her hair.', 2.5)
    """
    path = _require_file(path, "STS-B")
    first, second, scores = [], [], []
    with _open_text(path) as handle:
        for row, fields in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not fields or fields == [""]:
                continue
            if len(fields) < len(STSB_COLUMNS):
                raise EvaluationDataError(path, f"expected at least {len(STSB_COLUMNS)} tab-separated fields, "
                                          f"got {len(fields)}", row=row, expected=STSB_COLUMNS)
            scores.append(_parse_score(fields[4], path, row, "score", STSB_COLUMNS))
            first.append(_require_text(fields[5], path, row, "sentence1", STSB_COLUMNS))
            second.append(_require_text(fields[6], path, row, "sentence2", STSB_COLUMNS))
    if not scores:
        raise EvaluationDataError(path, "no rows", expected=STSB_COLUMNS)
    return STSPairs(lang, lang, tuple(first), tuple(second), np.asarray(scores, dtype=np.float64), str(path))


def read_mteb_sts(path: str | os.PathLike, lang_pair: str | None = None, languages: Sequence[str] | None = None,
                  normalize: Callable[[str], str] | None = None) -> dict[tuple[str, str], STSPairs]:
    """Read an MTEB-style STS file (STS17, STS22): JSONL (optionally .gz) or Parquet.

    Columns ``sentence1``, ``sentence2``, ``score``; the languages come from ``lang1``/``lang2``
    columns, else a ``lang`` column (``"en-de"`` or ``"de"``), else ``lang_pair``. When the file has
    language columns, ``lang_pair`` selects rows of that pair. ``languages``: every one must occur
    in the file (else :class:`LanguageNotFoundError`), and only pairs of these languages are kept.
    ``normalize`` maps every code (the file's and ``lang_pair``'s) before matching, e.g. ``"en"`` to
    ``"eng_Latn"``; ``languages`` are then in normalized codes.

    Returns ``{(lang1, lang2): STSPairs}`` in order of first appearance.

    >>> read_mteb_sts("sts17/test.jsonl.gz", lang_pair="en-de")  # doctest: +SKIP
    {('en', 'de'): STSPairs(...)}
    """
    path = _require_file(path, "STS")
    norm = normalize or (lambda code: code)

    def parse_pair(code: str, row: int | None) -> tuple[str, str]:
        try:
            first, second = split_pair(code)
            return norm(first), norm(second)
        except ValueError as err:
            raise EvaluationDataError(path, str(err), row=row, expected=MTEB_STS_COLUMNS) from None

    requested_pair = parse_pair(lang_pair, None) if lang_pair else None
    grouped: dict[tuple[str, str], tuple[list[str], list[str], list[float]]] = {}
    for row, record in _table_records(path, MTEB_STS_COLUMNS):
        if "lang1" in record and "lang2" in record:
            pair = parse_pair(f"{record['lang1']}-{record['lang2']}", row)
        elif "lang" in record:
            pair = parse_pair(str(record["lang"]), row)
        elif requested_pair is not None:
            pair = requested_pair
        else:
            raise EvaluationDataError(path, "has no 'lang' or 'lang1'/'lang2' column; give the language pair "
                                      "(e.g. lang_pair='en-de')", row=row, expected=MTEB_STS_COLUMNS)
        first, second, scores = grouped.setdefault(pair, ([], [], []))
        first.append(_require_text(record["sentence1"], path, row, "sentence1", MTEB_STS_COLUMNS))
        second.append(_require_text(record["sentence2"], path, row, "sentence2", MTEB_STS_COLUMNS))
        scores.append(_parse_score(record["score"], path, row, "score", MTEB_STS_COLUMNS))
    if requested_pair is not None:
        if requested_pair not in grouped:
            present = ", ".join("-".join(p) for p in grouped) or "none"
            raise LanguageNotFoundError(path, f"language pair {lang_pair} not in the file (present: {present})")
        grouped = {requested_pair: grouped[requested_pair]}
    if not grouped:
        raise EvaluationDataError(path, "no rows", expected=MTEB_STS_COLUMNS)
    present_langs = sorted({lang for pair in grouped for lang in pair})
    _check_languages(path, present_langs, languages)
    keep = set(languages) if languages is not None else None
    return {
        pair: STSPairs(pair[0], pair[1], tuple(first), tuple(second), np.asarray(scores, dtype=np.float64),
                       f"{path} [{'-'.join(pair)}]")
        for pair, (first, second, scores) in grouped.items()
        if keep is None or (pair[0] in keep and pair[1] in keep)
    }


def _strip_wrapping_quotes(sentence: str) -> str:
    # Some STR files (Marathi) wrap each sentence of the pair in literal double quotes.
    sentence = sentence.strip()
    if len(sentence) >= 2 and sentence[0] == sentence[-1] == '"':
        return sentence[1:-1].strip()
    return sentence


def read_str(path: str | os.PathLike, lang: str) -> STSPairs:
    """Read a SemEval-2024 Task 1 (semantic textual relatedness) track A CSV.

    Columns ``PairID``, ``Text``, ``Score``; ``Text`` holds the two sentences separated by a
    newline (most languages) or a tab. Use the ``*_with_labels.csv`` files: unlabelled rows raise.
    Uyghur (``uig_Arab``) in Cyrillic script is transliterated to Arabic script, as for Kardeş-NLU.

    >>> read_str("Track A/amh/amh_test_with_labels.csv", "amh_Ethi").lang1  # doctest: +SKIP
    'amh_Ethi'
    """
    path = _require_file(path, "STR")
    first, second, scores = [], [], []
    for row, record in _csv_records(path, STR_COLUMNS):
        text = _require_text(record["Text"], path, row, "Text", STR_COLUMNS).replace("\r\n", "\n")
        parts = text.split("\n")
        if len(parts) != 2:
            parts = text.split("\t")
        if len(parts) != 2:
            raise EvaluationDataError(path, f"'Text' of pair {record['PairID']!r} does not split into two "
                                      "sentences at a newline or a tab", row=row, expected=STR_COLUMNS)
        sentence1, sentence2 = (_strip_wrapping_quotes(part) for part in parts)
        first.append(_require_text(sentence1, path, row, "Text (first sentence)", STR_COLUMNS))
        second.append(_require_text(sentence2, path, row, "Text (second sentence)", STR_COLUMNS))
        if not record["Score"].strip():
            raise EvaluationDataError(path, "no gold 'Score' (use the *_with_labels.csv file)", row=row,
                                      expected=STR_COLUMNS)
        scores.append(_parse_score(record["Score"], path, row, "Score", STR_COLUMNS))
    if not scores:
        raise EvaluationDataError(path, "no rows", expected=STR_COLUMNS)
    if lang == UYGHUR:
        first, second = ([uyghur_cyrillic_to_arabic(text) for text in side] for side in (first, second))
    return STSPairs(lang, lang, tuple(first), tuple(second), np.asarray(scores, dtype=np.float64), str(path))


UYGHUR = "uig_Arab"


def uyghur_cyrillic_to_arabic(text: str) -> str:
    """Uyghur Cyrillic script (UCS) → Uyghur Arabic script (UAS), as the reference does before scoring.

    Kardeş-NLU's Uyghur translations are in Cyrillic; Uyghur models (NLLB's ``uig_Arab``, the
    paraphrase corpus, FOCUS vocabularies) read Arabic script. The reference converts with
    ``umsc.UgMultiScriptConverter("UCS", "UAS")`` from ``umsc`` 0.2.0; this uses the same package.
    Arabic-script text passes through unchanged.

    >>> uyghur_cyrillic_to_arabic("китаб")
    'كىتاب'
    """
    return _ucs_to_uas()(text)


@functools.cache
def _ucs_to_uas() -> Callable[[str], str]:
    from umsc import UgMultiScriptConverter

    return UgMultiScriptConverter("UCS", "UAS")


def read_kardes(path: str | os.PathLike, lang: str, english: str = "eng_Latn") -> dict[str, STSPairs]:
    """Read a Kardeş-NLU STS CSV (``Data/<language>/sts.test.<code>.csv``).

    Each row holds the English STS-B pair (``sentence1``, ``sentence2``), its ``score`` and the
    translations (``s1_translation``, ``s2_translation``). Returns the two row-aligned monolingual
    sets ``{english: ..., lang: ...}`` sharing the gold scores. Uyghur (``lang`` ``uig_Arab``) is
    transliterated from Cyrillic to Arabic script (:func:`uyghur_cyrillic_to_arabic`), as the
    reference scores it.
    """
    path = _require_file(path, "Kardeş-NLU STS")
    columns: dict[str, list[str]] = {col: [] for col in KARDES_COLUMNS if col != "score"}
    scores = []
    for row, record in _csv_records(path, KARDES_COLUMNS):
        for col, values in columns.items():
            values.append(_require_text(record[col], path, row, col, KARDES_COLUMNS))
        scores.append(_parse_score(record["score"], path, row, "score", KARDES_COLUMNS))
    if not scores:
        raise EvaluationDataError(path, "no rows", expected=KARDES_COLUMNS)
    gold = np.asarray(scores, dtype=np.float64)
    if lang == UYGHUR:
        for col in ("s1_translation", "s2_translation"):
            columns[col] = [uyghur_cyrillic_to_arabic(text) for text in columns[col]]
    return {
        english: STSPairs(english, english, tuple(columns["sentence1"]), tuple(columns["sentence2"]), gold,
                          f"{path} [English]"),
        lang: STSPairs(lang, lang, tuple(columns["s1_translation"]), tuple(columns["s2_translation"]), gold,
                       str(path)),
    }


def read_kardes_files(files: Mapping[str, str | os.PathLike], english: str = "eng_Latn") -> dict[str, STSPairs]:
    """Read several Kardeş-NLU STS files (``{lang: path}``) into one row-aligned set per language.

    All files translate the same English pairs; a file whose English side or scores differ from
    the first one raises (the files are not of the same split).
    """
    result: dict[str, STSPairs] = {}
    for lang, path in files.items():
        sets = read_kardes(path, lang, english)
        if english not in result:
            result[english] = sets[english]
        else:
            reference = result[english]
            if sets[english].sentences1 != reference.sentences1 or not np.array_equal(
                    sets[english].scores, reference.scores):
                raise EvaluationDataError(path, f"its English pairs or scores differ from {reference.source}; "
                                          "all files must be the same split (e.g. all sts.test.*.csv)")
        result[lang] = sets[lang]
    return result


# -------------------------------------------------------------------------------------- Belebele


def read_belebele_language(path: str | os.PathLike) -> list[BelebeleItem]:
    """Read one language of Belebele (``data/<flores code>.jsonl``): one question per line.

    >>> items = read_belebele_language("belebele/eng_Latn.jsonl")  # doctest: +SKIP
    >>> items[0].options[items[0].answer]                             # doctest: +SKIP
    """
    path = _require_file(path, "Belebele")
    items: list[BelebeleItem] = []
    for row, record in _table_records(path, BELEBELE_COLUMNS):
        options = tuple(_require_text(str(record[f"mc_answer{i}"]), path, row, f"mc_answer{i}", BELEBELE_COLUMNS)
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
            link=_require_text(record["link"], path, row, "link", BELEBELE_COLUMNS),
            question_number=question_number,
            passage=_require_text(record["flores_passage"], path, row, "flores_passage", BELEBELE_COLUMNS),
            question=_require_text(record["question"], path, row, "question", BELEBELE_COLUMNS),
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


def read_lines(path: str | os.PathLike) -> list[str]:
    """Lines of a text file (one sentence a line, e.g. FLORES ``devtest/<lang>.devtest``); none may be empty."""
    path = _require_file(path, "sentence")
    with open(path, encoding="utf-8", newline="") as handle:
        lines = handle.read().split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for row, line in enumerate(lines, start=1):
        lines[row - 1] = line.rstrip("\r")
        if not lines[row - 1].strip():
            raise EvaluationDataError(path, "empty line; line-aligned files hold one sentence per line", row=row)
    if not lines:
        raise EvaluationDataError(path, "no lines")
    return lines


def read_parallel_lines(files: Mapping[str, str | os.PathLike]) -> dict[str, list[str]]:
    """Read line-aligned files ``{lang: path}``: line i of every file is the same sentence."""
    texts = {lang: read_lines(path) for lang, path in files.items()}
    counts = {lang: len(lines) for lang, lines in texts.items()}
    if len(set(counts.values())) > 1:
        first = next(iter(files))
        for lang, count in counts.items():
            if count != counts[first]:
                raise EvaluationDataError(files[lang], f"has {count} lines but {files[first]} has {counts[first]}; "
                                          "line-aligned files must have the same number of lines")
    return texts
