"""The evaluation's test files of a run: held-out strings cut to the evaluated number, the language ×
language matrix's common strings, and in-domain test pairs set aside from a training split
(``parallel_text_min_test_pairs``, docs/design/test-pairs.md)."""

from __future__ import annotations

import itertools
from pathlib import Path

from modsent.corpus import read_lines
from modsent.io import atomic_write_text

__all__ = ["MIN_COMMON_STRINGS", "common_strings", "write_in_domain_split", "write_first_lines",
           "write_lines"]


#: The language × language matrix wants this many strings common to its languages (see :func:`_common_strings`).
MIN_COMMON_STRINGS = 100


def common_strings(by_lang: dict[str, dict[str, str]]) -> list[str]:
    """English strings common to every language (in the first language's order) if there are
    :data:`MIN_COMMON_STRINGS` of them; else those common to the most languages that still share that many,
    taken greedily (most held-out strings first): the 81 languages of configs/all-languages.yaml share no
    held-out string. If no two languages share that many, every language's common strings (perhaps none)."""
    tables = list(by_lang.values())
    everywhere = [en for en in tables[0] if all(en in table for table in tables)]
    if len(everywhere) >= MIN_COMMON_STRINGS:
        return everywhere
    ranked = sorted(tables, key=len, reverse=True)
    chosen, joined = list(ranked[0]), 1
    for table in ranked[1:]:
        kept = [en for en in chosen if en in table]
        if len(kept) >= MIN_COMMON_STRINGS:
            chosen, joined = kept, joined + 1
    return chosen if joined > 1 else everywhere


def write_in_domain_split(source: Path, train: Path, test: Path, count: int) -> None:
    """Split the line-aligned files of a parallel-text directory: all but the last ``count`` lines into
    ``train``, those into ``test`` (each file written atomically; the same bytes every time)."""
    for path in sorted(source.glob("*.txt")):
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        atomic_write_text(train / path.name, "".join(lines[:len(lines) - count]))
        atomic_write_text(test / path.name, "".join(lines[len(lines) - count:]))


def write_first_lines(sources: dict[str, Path], copies: dict[str, Path], count: int) -> None:
    """``copies`` of the line-aligned ``sources``, cut to their first ``count`` lines."""
    for code, path in sources.items():
        atomic_write_text(copies[code], "".join(f"{line}\n" for line in itertools.islice(read_lines(path), count)))


def write_lines(files: dict[str, Path], texts: dict[str, list[str]]) -> None:
    for lang, path in files.items():
        atomic_write_text(path, "".join(f"{line}\n" for line in texts[lang]))
