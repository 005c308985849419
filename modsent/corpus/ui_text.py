"""UI strings as sentence pairs: clean display text, matching keys, and the filters with reasons.

A UI catalogue string carries things that are not words: HTML tags, entities, keyboard
accelerators (``&File``, ``_Edit``, CJK ``文件(&F)``), placeholders (``%s``, ``%(name)s``,
``%1$d``, ``{name}``, ``${name}``, ``{{ name }}``, ``%{count}``, Home Assistant's ``[%key:common::x%]``) and
irregular whitespace. :func:`display_text` is what a corpus stores (tags, entities, accelerators
and whitespace cleaned; placeholders kept, both sides have them); :func:`match_key` is what
matching, deduplication and the split compare (placeholders dropped too, case and punctuation
ignored). :func:`pair_or_reason` applies every filter and says why a pair is dropped.
"""

from __future__ import annotations

import functools
import html
import re

from modsent.corpus.gettext_po import POEntry

__all__ = ["DROP_REASONS", "MIN_ENGLISH_WORDS", "display_text", "entry_pair_or_reason", "match_key",
           "pair_or_reason", "strip_placeholders"]

MIN_ENGLISH_WORDS = 3
#: Why a pair is dropped, in the order the filters apply.
DROP_REASONS = ("fuzzy", "plural", "empty", "short", "placeholders", "same_as_english", "duplicate")

_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_ENTITY = re.compile(r"&(?:#\d+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")
_CJK_ACCELERATOR = re.compile(r"\s*[(（][&_][^\W_][)）]")
_ACCELERATOR = re.compile(r"(?<![\w&])[&_](?=[^\W_])")
_PLACEHOLDER = re.compile(
    r"\[%key:[^\]]*%\]"  # Home Assistant references to another string
    r"|%\{[^{}]*\}"  # %{count} (Ruby, i18next)
    r"|%(?:\d+\$)?(?:\([^)]*\))?[-#0+]*\d*(?:\.\d+)?[a-zA-Z%]"  # printf: %s %d %(name)s %1$s %%
    r"|\{\{[^{}]*\}\}|\$?\{[^{}]*\}"  # {{ name }} {name} {0} ${name}
)


def display_text(text: str) -> str:
    """One clean line: tags removed, entities decoded, accelerators removed, whitespace collapsed."""
    text = _TAG.sub(" ", text)
    text = _ENTITY.sub(lambda m: html.unescape(m.group(0)), text)
    text = _CJK_ACCELERATOR.sub("", text)
    text = _ACCELERATOR.sub("", text)
    return " ".join(text.split())


def strip_placeholders(text: str) -> str:
    return " ".join(_PLACEHOLDER.sub(" ", text).split())


# Cached: one English string recurs in every language of its project (~50 times), and the split compares keys often.
@functools.lru_cache(maxsize=1 << 18)
def match_key(text: str) -> str:
    """What two strings must share to count as the same string: letters and digits, casefolded,
    of the display text without placeholders."""
    return "".join(c for c in strip_placeholders(display_text(text)).casefold() if c.isalnum())


def _words(text: str) -> int:
    return sum(1 for token in strip_placeholders(text).split() if any(c.isalpha() for c in token))


def _mostly_placeholders(text: str) -> bool:
    """No letters outside placeholders, or more placeholder characters than other characters."""
    rest = strip_placeholders(text)
    if not any(c.isalpha() for c in rest):
        return True
    placeholder_chars = sum(len(m.group(0)) for m in _PLACEHOLDER.finditer(text))
    return placeholder_chars > len(rest.replace(" ", ""))


def pair_or_reason(english: str, target: str) -> tuple[str, str] | str:
    """``(english, target)`` as display text, or the reason (one of :data:`DROP_REASONS`) it is dropped.

    Dropped: an empty target; English of fewer than :data:`MIN_ENGLISH_WORDS` words (placeholders
    are not words); a target that is mostly placeholders; a target equal to the English.
    """
    english, target = display_text(english), display_text(target)
    if not target:
        return "empty"
    if _words(english) < MIN_ENGLISH_WORDS:
        return "short"
    if _mostly_placeholders(target):
        return "placeholders"
    if match_key(target) == match_key(english):
        return "same_as_english"
    return english, target


def entry_pair_or_reason(entry: POEntry) -> tuple[str, str] | str:
    """:func:`pair_or_reason` for a catalogue entry; fuzzy and plural entries are dropped first."""
    if entry.fuzzy:
        return "fuzzy"
    if entry.msgid_plural is not None:
        return "plural"
    return pair_or_reason(entry.msgid, entry.msgstr)
