"""Streaming the target language's monolingual text: plain text files or paraphrase corpora.

Nothing here holds a corpus in memory: lines are yielded one at a time, so the tokenizer trainer
and the fastText pre-tokenisation pass work on corpora of any size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator, Sequence

from modsent.corpus import open_corpus, read_lines
from modsent.corpus.formats import TABULAR_SUFFIXES

from .errors import EmptyTextError

__all__ = ["iter_texts", "require_text", "corpus_paths"]


def _is_corpus(path: Path) -> bool:
    return path.is_dir() or path.suffix in TABULAR_SUFFIXES


def _iter_path(path: Path, lang: str) -> Iterator[str]:
    if _is_corpus(path):
        for dataset in open_corpus(path):
            keys = [key for key in sorted(dataset.columns) if key[0] == lang]
            if not keys:
                continue
            for row in dataset.iter_rows(keys):
                yield from row
    else:
        yield from read_lines(path)


def corpus_paths(paths: Iterable[str | Path]) -> list[Path]:
    """The paths that are paraphrase corpora (directories, ``.jsonl``, ``.parquet``) rather than plain text files."""
    return [path for path in map(Path, paths) if _is_corpus(path)]


def iter_texts(paths: Sequence[str | Path], lang: str) -> Iterator[str]:
    """Yield the stripped, non-blank lines of every path in turn.

    A path is a plain UTF-8 text file (one sentence or paragraph per line), or a paraphrase corpus
    (a seed-layout directory, ``.jsonl`` or ``.parquet``; see :mod:`modsent.corpus`) from which every
    column of ``lang`` (an NLLB code such as ``deu_Latn``) is read.

    >>> list(iter_texts(["de.txt"], "deu_Latn"))  # doctest: +SKIP
    ['Guten Morgen.', 'Wie geht es?']
    """
    for path in paths:
        for line in _iter_path(Path(path), lang):
            line = line.strip()
            if line:
                yield line


def require_text(paths: Iterable[str | Path], lang: str) -> None:
    """Fail early, naming the path, when a path has no non-blank ``lang`` text (reads up to its first line)."""
    for path in map(Path, paths):
        if next(iter_texts([path], lang), None) is None:
            what = f"no {lang} sentences" if _is_corpus(path) else "no non-blank line"
            raise EmptyTextError(f"{path}: {what} to train the {lang} tokenizer on; remove it from text_files or fill it")
