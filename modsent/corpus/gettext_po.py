"""Human-translated parallel text from gettext ``.po`` catalogues (Django ships ~98 languages).

Every Django catalogue pairs an English UI string (``msgid``) with a human translation
(``msgstr``). :func:`django_parallel_text` turns one language's catalogues into clean
English -> target sentence pairs; :func:`write_parallel_corpus` writes several languages at once
with train / held-out splits decided by the *English* string, so a string held out for one
language is held out for every language (no leakage through the pivot).

The ``.po`` reader is strict on purpose: ``polib`` silently drops an entry whose string lacks its
closing quote, while :func:`read_po` stops with the file and line.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from modsent.corpus.formats import CorpusError
from modsent.io import atomic_directory, atomic_write_json, atomic_write_text
from modsent.languages import UnknownLanguageError, resolve

DJANGO_INSTALL = "pip install django"
SOURCE_LANG = "eng_Latn"
DEFAULT_SPLITS: Mapping[str, float] = MappingProxyType({"train": 0.8, "test": 0.2})

# NLLB-200's Portuguese (FLORES por_Latn) is Brazilian; elsewhere the plain locale (``es``, ``ar``,
# ``de``) beats its regional variants (``es_AR``, ``ar_DZ``, ``de_CH``).
_PREFERRED_LOCALE = MappingProxyType({"por_Latn": "pt_BR"})

_KEYWORD = re.compile(r"(msgctxt|msgid_plural|msgid|msgstr)(?:\[(\d+)\])?\s+(\".*)")
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"\s*')
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_ESCAPE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9A-Fa-f]+)|(.))")
# printf-style (%s, %(name)s, %%), str.format ({name}) placeholders and HTML tags: not words.
_NON_WORDS = re.compile(r"%(?:\([^)]*\))?[-#0 +]*\d*(?:\.\d+)?[a-zA-Z%]|\{[^{}]*\}|<[^<>]*>")


class POFormatError(CorpusError):
    """A malformed ``.po`` file; the message names the file, the line and what was expected.

    ``path`` is a file path or, for a catalogue read from an archive, ``archive/member``."""

    def __init__(self, path: Path | str, line: int, problem: str) -> None:
        super().__init__(f"{path}:{line}: {problem}")
        self.path, self.line = path, line


@dataclass(frozen=True)
class POEntry:
    """One catalogue message. ``msgstr`` is ``""`` when untranslated and for plural messages,
    whose forms are in ``msgstr_plural``. ``line`` is where the entry's ``msgid`` stands."""

    msgid: str
    msgstr: str
    line: int
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr_plural: tuple[str, ...] = ()
    flags: frozenset[str] = frozenset()

    @property
    def fuzzy(self) -> bool:
        return "fuzzy" in self.flags


@dataclass
class _Draft:
    """An entry while its lines are read; ``fields`` maps ``msgid`` / ``msgstr[1]`` ... to text."""

    flags: set[str] = field(default_factory=set)
    fields: dict[str, str] = field(default_factory=dict)
    line: int = 0


def _unescape(text: str, path: Path | str, line: int) -> str:
    def replace(match: re.Match) -> str:
        octal, hexa, char = match.groups()
        if octal or hexa:
            return chr(int(octal, 8) if octal else int(hexa, 16))
        if char not in _ESCAPES:
            raise POFormatError(path, line, f"unknown escape \\{char} (write \\\\ for a backslash)")
        return _ESCAPES[char]

    return _ESCAPE.sub(replace, text)


def _finish(draft: _Draft, path: Path | str) -> POEntry | None:
    """Turn a complete draft into an entry (``None`` for the header and for comment-only drafts)."""
    fields = draft.fields
    if not fields:
        return None
    if "msgid" not in fields:
        raise POFormatError(path, draft.line, "msgctxt without a following msgid")
    plural_forms = sorted((k for k in fields if k.startswith("msgstr[")), key=lambda k: int(k[7:-1]))
    if "msgid_plural" in fields:
        if not plural_forms or "msgstr" in fields:
            raise POFormatError(path, draft.line, f"plural entry {fields['msgid']!r} needs msgstr[0], msgstr[1] ...")
        if [int(k[7:-1]) for k in plural_forms] != list(range(len(plural_forms))):
            raise POFormatError(path, draft.line, f"plural forms of {fields['msgid']!r} are not numbered 0, 1, ...")
    elif "msgstr" not in fields or plural_forms:
        raise POFormatError(path, draft.line, f"entry {fields['msgid']!r} needs exactly one msgstr")
    if fields["msgid"] == "" and "msgctxt" not in fields:
        return None  # the header (metadata, not a message)
    return POEntry(
        msgid=fields["msgid"],
        msgstr=fields.get("msgstr", ""),
        line=draft.line,
        msgctxt=fields.get("msgctxt"),
        msgid_plural=fields.get("msgid_plural"),
        msgstr_plural=tuple(fields[k] for k in plural_forms),
        flags=frozenset(draft.flags),
    )


def _lines(raw: bytes, path: Path | str) -> Iterator[tuple[int, str]]:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise POFormatError(path, line, "not UTF-8 (convert the file: msgconv --to-code=UTF-8)") from None
    for number, line in enumerate(text.split("\n"), start=1):
        yield number, line.strip()


def read_po(path: str | os.PathLike) -> list[POEntry]:
    """Parse a gettext ``.po`` file strictly; obsolete (``#~``) entries and the header are left out.

    Raises :class:`POFormatError` (a ``ValueError``) naming the file and line of the first
    malformed construct: an unterminated string, a stray line, msgstr without msgid, a bad escape.

    >>> [(e.msgid, e.msgstr) for e in read_po("django.po")][:1]  # doctest: +SKIP
    [('Afrikaans', 'Afrikaans')]
    """
    path = Path(path)
    return parse_po(path.read_bytes(), path)


def parse_po(raw: bytes, path: Path | str) -> list[POEntry]:
    """:func:`read_po` on a catalogue's bytes (e.g. read from a wheel); ``path`` names it in errors."""
    entries: list[POEntry] = []
    draft, last_key = _Draft(), None

    def start_new_entry() -> None:
        nonlocal draft, last_key
        entry = _finish(draft, path)
        if entry is not None:
            entries.append(entry)
        draft, last_key = _Draft(), None

    for number, line in _lines(raw, path):
        if not line:
            continue
        if line.startswith("#"):
            if "msgid" in draft.fields:  # comments introduce the next entry
                start_new_entry()
            if line.startswith("#,"):
                draft.flags.update(flag.strip() for flag in line[2:].split(",") if flag.strip())
            continue
        keyword = _KEYWORD.fullmatch(line)
        if keyword:
            name, index, rest = keyword.groups()
            key = f"{name}[{index}]" if index is not None else name
            if index is not None and name != "msgstr":
                raise POFormatError(path, number, f"{name} takes no [index]")
            starts_entry = name in ("msgctxt", "msgid") and any(k.startswith("msgstr") for k in draft.fields)
            if starts_entry or (name == "msgctxt" and "msgid" in draft.fields):
                start_new_entry()
            if key in draft.fields:
                raise POFormatError(path, number, f"{key} appears twice in one entry (missing blank line or msgid?)")
            if name != "msgctxt" and name != "msgid" and "msgid" not in draft.fields:
                raise POFormatError(path, number, f"{key} before any msgid")
            if not draft.fields:
                draft.line = number
            if name == "msgid":
                draft.line = number
            last_key, line = key, rest
            draft.fields[key] = ""
        elif last_key is None or not line.startswith('"'):
            raise POFormatError(path, number, f"unexpected text {line[:40]!r}: expected a comment, a keyword or a string")
        quoted = _QUOTED.fullmatch(line)
        if quoted is None:
            raise POFormatError(path, number, f"expected one complete quoted string, got {line[:60]!r}")
        draft.fields[last_key] += _unescape(quoted.group(1), path, number)
    start_new_entry()
    return entries


def django_root() -> Path:
    """Directory of the installed ``django`` package (only its ``.po`` catalogues are read)."""
    spec = importlib.util.find_spec("django")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"Django's translation catalogues need the django package; run: {DJANGO_INSTALL}")
    return Path(spec.origin).parent


def django_catalogues() -> dict[str, list[Path]]:
    """Django locale name (``de``, ``pt_BR``, ``zh_Hans`` ...) -> its ``django.po`` and
    ``djangojs.po`` (admin JavaScript strings) files.

    Core (``conf/locale``) first, then ``contrib/<app>/locale`` in app order; this order decides
    which translation wins when an English string occurs in several catalogues.
    """
    return {locale: list(paths) for locale, paths in _scan_catalogues(django_root())}


def django_locales() -> dict[str, str]:
    """NLLB code -> the Django locale whose catalogues provide it, for every non-English locale
    the language registry knows (``deu_Latn`` -> ``de``, ``por_Latn`` -> ``pt_BR``). Locales of
    languages NLLB-200 lacks (``br``, ``ia``, ``sr_Latn`` ...) are left out."""
    by_code: dict[str, str] = {}
    for locale, _ in _scan_catalogues(django_root()):  # sorted: "es" comes before "es_AR"
        code = _nllb_code(locale)
        if code is not None and code != SOURCE_LANG and (code not in by_code or _PREFERRED_LOCALE.get(code) == locale):
            by_code[code] = locale
    return by_code


# Cached: an installed package does not change while the process runs, and scanning ~1,200 files
# or resolving the locales NLLB lacks (the registry then computes fuzzy suggestions) is slow.
@functools.lru_cache(maxsize=4)
def _scan_catalogues(root: Path) -> tuple[tuple[str, tuple[Path, ...]], ...]:
    apps = [root / "conf"] + sorted(p for p in (root / "contrib").iterdir() if (p / "locale").is_dir())
    catalogues: dict[str, list[Path]] = {}
    for app in apps:
        for po in sorted((app / "locale").glob("*/LC_MESSAGES/django*.po")):
            catalogues.setdefault(po.parent.parent.name, []).append(po)
    return tuple((locale, tuple(paths)) for locale, paths in sorted(catalogues.items()))


@functools.lru_cache(maxsize=None)
def _nllb_code(locale: str) -> str | None:
    try:
        return resolve(locale).code
    except UnknownLanguageError:
        return None


def django_locale(lang_code: str) -> str:
    """The Django locale for any code the registry resolves (``deu_Latn``, ``de``, ``deu`` -> ``de``)."""
    code = resolve(lang_code).code
    locales = django_locales()
    if code not in locales:
        raise UnknownLanguageError(f"no Django catalogue for {code} ({lang_code!r}); Django covers: {', '.join(sorted(locales))}")
    return locales[code]


def _clean(text: str) -> str:
    """One line of text: every whitespace run (newlines, NBSP, U+2028 ...) becomes one space."""
    return " ".join(text.split())


def _has_words(text: str) -> bool:
    """True when something besides placeholders, markup, digits and punctuation is left."""
    return any(unicodedata.category(c).startswith("L") for c in _NON_WORDS.sub(" ", text))


def usable_pair(entry: POEntry) -> tuple[str, str] | None:
    """``(english, translation)`` for a translated, non-fuzzy, singular entry with words on both
    sides that differ (a copied English string is not a translation); ``None`` otherwise."""
    if entry.fuzzy or entry.msgid_plural is not None:
        return None
    english, target = _clean(entry.msgid), _clean(entry.msgstr)
    if not _has_words(english) or not _has_words(target) or english.casefold() == target.casefold():
        return None
    return english, target


def django_parallel_text(lang_code: str) -> list[tuple[str, str]]:
    """English -> ``lang_code`` pairs from every Django catalogue of that language.

    ``lang_code`` is any code the registry resolves (``deu_Latn``, ``de``). Untranslated,
    fuzzy, plural, placeholder-only and copied entries are skipped; each English string appears
    once (first catalogue in :func:`django_catalogues` order wins); text is unescaped and on one line.

    >>> django_parallel_text("deu_Latn")[:1]  # doctest: +SKIP
    [('Arabic', 'Arabisch')]
    """
    pairs: dict[str, str] = {}
    for path in django_catalogues()[django_locale(lang_code)]:
        for entry in read_po(path):
            pair = usable_pair(entry)
            if pair is not None and pair[0] not in pairs:
                pairs[pair[0]] = pair[1]
    return list(pairs.items())


def _split_key(english: str) -> str:
    """Strings that differ only in case, punctuation or spacing share a split (no near-copy leaks)."""
    return "".join(c for c in english.casefold() if c.isalnum())


def assign_split(english: str, splits: Mapping[str, float] = DEFAULT_SPLITS, seed: int = 0) -> str:
    """The split of an English string: a seeded hash, so it is the same for every language and run."""
    digest = hashlib.sha256(f"{seed}\0{_split_key(english)}".encode()).digest()
    position = int.from_bytes(digest[:8], "big") / 2**64
    cumulative = 0.0
    for name, fraction in splits.items():
        cumulative += fraction
        if position < cumulative:
            return name
    return list(splits)[-1]  # float rounding at the very top of [0, 1)


def write_parallel_corpus(
    pairs_by_lang: Mapping[str, Sequence[tuple[str, str]]],
    out_dir: str | os.PathLike,
    splits: Mapping[str, float] = DEFAULT_SPLITS,
    seed: int = 0,
) -> dict[str, Any]:
    """Write line-aligned English -> target text per language and split; returns the manifest.

    Layout (line i of the two files is one translation pair)::

        out_dir/manifest.json                         splits, seed, pair counts
        out_dir/<split>/eng_Latn-<lang>/eng_Latn.txt
        out_dir/<split>/eng_Latn-<lang>/<lang>.txt

    The split of a pair depends only on its English string (:func:`assign_split`), so held-out
    English strings are held out for every language. The directory appears atomically.

    >>> write_parallel_corpus({"deu_Latn": django_parallel_text("deu_Latn")}, "data/django")  # doctest: +SKIP
    """
    if not splits or any(f <= 0 for f in splits.values()) or abs(sum(splits.values()) - 1) > 1e-9:
        raise ValueError(f"split fractions must be positive and sum to 1, got {dict(splits)}")
    counts: dict[str, dict[str, int]] = {name: {} for name in splits}
    with atomic_directory(out_dir) as staging:
        for lang, pairs in sorted(pairs_by_lang.items()):
            by_split: dict[str, list[tuple[str, str]]] = {name: [] for name in splits}
            for index, (english, target) in enumerate(pairs):
                for text in (english, target):
                    if not text.strip() or _clean(text) != text:
                        raise ValueError(
                            f"{lang} pair {index}: {text!r} is empty or not one clean line; "
                            "collapse whitespace first (django_parallel_text does)"
                        )
                by_split[assign_split(english, splits, seed)].append((english, target))
            for name, selected in by_split.items():
                counts[name][lang] = len(selected)
                pair_dir = staging / name / f"{SOURCE_LANG}-{lang}"
                atomic_write_text(pair_dir / f"{SOURCE_LANG}.txt", "".join(e + "\n" for e, _ in selected))
                atomic_write_text(pair_dir / f"{lang}.txt", "".join(t + "\n" for _, t in selected))
        manifest = {"source_lang": SOURCE_LANG, "splits": dict(splits), "seed": seed, "pairs": counts}
        atomic_write_json(staging / "manifest.json", manifest)
    return manifest
