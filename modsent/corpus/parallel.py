"""Parallel text corpora (English -> target line pairs with splits): reading and statistics.

The layout, written by :func:`modsent.corpus.gettext_po.write_parallel_corpus` (``pypi:django-parallel``)
and :func:`modsent.corpus.ui_parallel.build_ui_parallel` (``pypi:ui-parallel``)::

    corpus/manifest.json                          {"source_lang": "eng_Latn", "pairs": {split: {lang: n}}, ...}
    corpus/<split>/eng_Latn-<lang>/eng_Latn.txt   one English string per line
    corpus/<split>/eng_Latn-<lang>/<lang>.txt     line i translates line i of eng_Latn.txt
    corpus/<split>/eng_Latn-<lang>/projects.txt   (ui-parallel) the project line i comes from

Splits are ``train`` and ``test``. Read one language's held-out pairs with
``read_parallel_pairs(corpus, "deu_Latn", "test")``.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from modsent.corpus.formats import ColumnKey, CorpusError, MisalignedCorpusError, ParaphraseDataset, read_lines
from modsent.errors import ModsentError
from modsent.languages import resolve
from modsent.sources import local_path

__all__ = ["PROJECTS_FILE", "ParallelPairs", "is_parallel_corpus", "parallel_dataset", "parallel_languages",
           "parallel_stats", "read_parallel_pairs", "source_language"]

PROJECTS_FILE = "projects.txt"


@dataclass(frozen=True)
class ParallelPairs:
    """One language's pairs of one split: ``english[i]`` translates to ``target[i]``; ``projects[i]``
    is where the pair comes from (empty when the corpus keeps no provenance)."""

    lang: str
    english: list[str]
    target: list[str]
    projects: list[str]

    def __len__(self) -> int:
        return len(self.english)


def _manifest(corpus: Path) -> dict:
    path = corpus / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise CorpusError(f"{corpus}: not a parallel corpus ({path}: {err})") from None
    if not isinstance(manifest, dict) or "source_lang" not in manifest:
        raise CorpusError(f"{path}: not a parallel corpus manifest (no source_lang)")
    return manifest


def is_parallel_corpus(path: str | Path) -> bool:
    """True for a directory in the layout above (a manifest naming the source language)."""
    try:
        _manifest(Path(path))
    except CorpusError:
        return False
    return True


def source_language(corpus: str | Path) -> str:
    """The language every pair translates from (NLLB code; ``eng_Latn`` in the bundled corpora)."""
    return _manifest(Path(corpus))["source_lang"]


def parallel_languages(corpus: str | Path, split: str = "test") -> list[str]:
    """The target languages (NLLB codes) that have a ``split`` directory, sorted."""
    corpus = Path(corpus)
    source = source_language(corpus)
    return sorted(d.name.split("-", 1)[1] for d in (corpus / split).glob(f"{source}-*") if d.is_dir())


def read_parallel_pairs(corpus: str | Path, lang: str, split: str = "test") -> ParallelPairs:
    """``lang``'s (any code the registry resolves) line pairs of ``split``, checked for alignment."""
    corpus = Path(corpus)
    source = source_language(corpus)
    code = resolve(lang).code
    pair_dir = corpus / split / f"{source}-{code}"
    if not pair_dir.is_dir():
        have = ", ".join(parallel_languages(corpus, split)) or "none"
        raise CorpusError(f"{corpus}: no {split} pairs for {code} (languages with {split} pairs: {have})")
    english = list(read_lines(pair_dir / f"{source}.txt"))
    target = list(read_lines(pair_dir / f"{code}.txt"))
    projects = list(read_lines(pair_dir / PROJECTS_FILE)) if (pair_dir / PROJECTS_FILE).exists() else []
    if len(target) != len(english) or (projects and len(projects) != len(english)):
        raise MisalignedCorpusError(f"{pair_dir}: {len(english)} English lines, {len(target)} {code} lines"
                                    + (f", {len(projects)} project lines" if projects else "")
                                    + "; every file must have one line per pair (rebuild the corpus)")
    return ParallelPairs(code, english, target, projects)


def parallel_stats(corpus: str | Path) -> list[dict]:
    """Per (split, language pair, side): the rows ``modsent corpus stats`` prints for paraphrase corpora."""
    corpus = Path(corpus)
    source = source_language(corpus)
    rows = []
    for split in sorted(d.name for d in corpus.iterdir() if d.is_dir() and not d.name.startswith(".")):
        for lang in parallel_languages(corpus, split):
            pairs = read_parallel_pairs(corpus, lang, split)
            for side_lang, side in ((source, pairs.english), (lang, pairs.target)):
                rows.append({
                    "dataset": f"{split}/{source}-{lang}", "language": side_lang, "format": "parallel",
                    "rows": len(side), "columns": 1, "unique_sentences": len(set(side)),
                    "mean_chars": round(sum(map(len, side)) / max(1, len(side)), 1),
                })
    return rows


@dataclass
class _FirstRows(ParaphraseDataset):
    """A dataset read only up to its first ``max_rows`` rows."""

    max_rows: Optional[int] = None

    def iter_rows(self, keys: Sequence[ColumnKey]) -> Iterator[tuple[str, ...]]:
        return itertools.islice(super().iter_rows(keys), self.max_rows)


def parallel_dataset(directory: str | Path, pivot_lang: str, lang: str,
                     max_rows: Optional[int] = None) -> ParaphraseDataset:
    """A directory of line-aligned ``<pivot>.txt`` / ``<lang>.txt`` as a two-column paraphrase dataset.

    Both columns of a language read the same file, so a cross-lingual batch row pairs line ``i``
    in one language with line ``i`` in the other (alignment, and the multilingual Single_c
    baseline, train on such rows). ``max_rows``: only the first lines.
    """
    root = local_path(directory)
    if not root.is_dir():
        raise CorpusError(f"parallel text: {root} is not a directory (expected {pivot_lang}.txt and {lang}.txt in it)")
    files: dict[str, str] = {}
    for path in sorted(root.glob("*.txt")):
        try:
            code = resolve(path.stem).code
        except ModsentError:
            continue
        if code in (pivot_lang, lang):
            if code in files:
                raise CorpusError(f"{root}: both {files[code]} and {path.name} hold {code}; keep one")
            files[code] = path.name
    for code in (pivot_lang, lang):
        if code not in files:
            raise CorpusError(f"{root}: no {code}.txt (parallel text needs {pivot_lang}.txt and {lang}.txt, "
                              "line i of one translating line i of the other)")
    columns = {(code, column): files[code] for code in (pivot_lang, lang) for column in (1, 2)}
    return _FirstRows(name=f"parallel:{root.name}", path=root, format="seed", columns=columns, max_rows=max_rows)
