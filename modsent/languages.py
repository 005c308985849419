"""The registry of NLLB-200 / FLORES-200 languages and code resolution.

Every stage names languages by NLLB code (``deu_Latn``); users may write ``de``, ``deu``,
``deu_Latn``, ``de-DE`` or ``zh-Hant`` and get the same :class:`Language`:

>>> resolve("de").code
'deu_Latn'
>>> resolve("zh-Hant").code
'zho_Hant'

The table is committed data (``modsent/data/languages.tsv``), checked in the tests against the
code list that ships inside ``transformers``' NLLB tokenizer.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Iterable

from modsent.errors import ModsentError

__all__ = ["Language", "UnknownLanguageError", "all_languages", "nllb_codes", "resolve", "resolve_many", "named_list"]


class UnknownLanguageError(ModsentError):
    """A language code that the registry cannot resolve; the message lists the closest matches."""


@dataclass(frozen=True)
class Language:
    code: str  # NLLB / FLORES-200 code, e.g. "deu_Latn"
    iso639_3: str
    iso639_1: str | None
    script: str  # ISO 15924, e.g. "Latn"
    script_name: str
    name: str  # English name

    def __str__(self) -> str:
        return self.code


@functools.lru_cache(maxsize=1)
def _table() -> tuple[tuple[Language, ...], dict[str, Language]]:
    text = resources.files("modsent.data").joinpath("languages.tsv").read_text(encoding="utf-8")
    languages: list[Language] = []
    index: dict[str, Language] = {}
    shared: dict[str, list[tuple[Language, bool]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        code, iso3, iso1, script, script_name, name, default, aliases = line.split("\t")
        lang = Language(code, iso3, iso1 or None, script, script_name, name)
        languages.append(lang)
        index[code.lower()] = lang
        for alias in (iso3, iso1, *aliases.split()):
            if alias:
                shared.setdefault(alias.lower(), []).append((lang, default == "1"))
    for alias, candidates in shared.items():
        if alias in index:
            continue
        chosen = [lang for lang, is_default in candidates if is_default] or [candidates[0][0]]
        index[alias] = chosen[0]
    return tuple(languages), index


def all_languages() -> tuple[Language, ...]:
    """Every registered language, in NLLB order."""
    return _table()[0]


def nllb_codes() -> list[str]:
    return [lang.code for lang in all_languages()]


# Regions whose usual script differs from the language's default (CLDR likely subtags), for the
# languages of this registry: (ISO 639-3 code of the base entry, region) -> the NLLB code meant.
# Where a region's script makes it another individual language (Azerbaijani in Iran is South
# Azerbaijani), the code is that language's. Codes NLLB lacks are refused by resolve().
_REGION_CODES = {
    ("zho", "TW"): "zho_Hant", ("zho", "HK"): "zho_Hant", ("zho", "MO"): "zho_Hant",
    ("yue", "CN"): "yue_Hans",
    ("srp", "ME"): "srp_Latn",
    ("pan", "PK"): "pnb_Arab",
    ("azj", "IR"): "azb_Arab", ("azj", "IQ"): "azb_Arab",
    ("uzn", "AF"): "uzs_Arab",
    ("kaz", "CN"): "kaz_Arab", ("kir", "CN"): "kir_Arab",
    ("khk", "CN"): "mvf_Mong",
    ("snd", "IN"): "snd_Deva",
    ("tgk", "PK"): "tgk_Arab",
    ("hau", "SD"): "hau_Arab",
}
_SCRIPT_NAMES = {"Hant": "Traditional Han", "Hans": "Simplified Han", "Latn": "Latin", "Arab": "Arabic",
                 "Mong": "Mongolian", "Deva": "Devanagari"}

_TAG = re.compile(r"^(?P<lang>[A-Za-z]{2,3})(?:[-_](?P<script>[A-Za-z]{4}))?(?:[-_](?P<region>[A-Za-z]{2}|\d{3}))?$")


def resolve(code: str) -> Language:
    """Resolve an NLLB code, ISO 639-1/639-3 code or BCP-47-style tag (``pt-BR``, ``sr_Latn``).

    Raises :class:`UnknownLanguageError` with the closest known codes.
    """
    languages, index = _table()
    key = code.strip()
    found = index.get(key.lower())
    if found is not None:
        return found
    match = _TAG.match(key)
    if match:
        base = index.get(match["lang"].lower())
        script = match["script"]
        if base is not None and script:
            scripted = index.get(f"{base.iso639_3}_{script.capitalize()}".lower())
            if scripted is not None:
                return scripted
            scripts = [lang.code for lang in languages if lang.iso639_3 == base.iso639_3]
            raise UnknownLanguageError(
                f"'{code}': NLLB has no {script.capitalize()} script for {base.name}; "
                f"available: {', '.join(scripts)}")
        elif base is not None:
            region = (match["region"] or "").upper()
            meant = _REGION_CODES.get((base.iso639_3, region))
            if meant is None:
                return base
            if meant.lower() in index:
                return index[meant.lower()]
            script = _SCRIPT_NAMES[meant.split("_")[1]]
            scripts = [lang.code for lang in languages if lang.iso639_3 == base.iso639_3]
            raise UnknownLanguageError(
                f"'{code}': {base.name} in region {region} is written in {script} script ({meant}), which NLLB "
                f"does not cover; available: {', '.join(scripts)} (write one of them if that is what you mean)")
    # Short codes differ from every neighbour by a large fraction, so relax the cutoff for them.
    candidates = (difflib.get_close_matches(key.lower(), list(index), n=5, cutoff=0.6)
                  or difflib.get_close_matches(key.lower(), list(index), n=5, cutoff=0.4))
    suggestions = list(dict.fromkeys(index[c].code for c in candidates))
    hint = f"; closest: {', '.join(suggestions)}" if suggestions else ""
    raise UnknownLanguageError(
        f"unknown language code '{code}'{hint} (use an NLLB code such as deu_Latn, or ISO 639-1/3; "
        f"`modsent languages list` shows all {len(languages)})"
    )


# Named lists users can put in a config instead of spelling out codes.
_NAMED_LISTS: dict[str, tuple[str, ...]] = {
    # English plus the 22 target languages of the paper (Huang et al., 2024).
    "paper22": (
        "eng_Latn", "ces_Latn", "fra_Latn", "deu_Latn", "tur_Latn", "tel_Telu", "hau_Latn", "amh_Ethi",
        "mar_Deva", "spa_Latn", "arb_Arab", "azj_Latn", "kaz_Cyrl", "kir_Cyrl", "uig_Arab", "uzn_Latn",
        "ita_Latn", "nld_Latn", "kor_Hang", "kin_Latn", "pol_Latn", "rus_Cyrl", "zho_Hans",
    ),
}


_RENAMED_LISTS = {"seed22": "paper22"}  # refused with the new name for one release


def named_list(name: str) -> list[str]:
    """``all`` (every NLLB language) or a named list such as ``paper22``."""
    if name == "all":
        return nllb_codes()
    if name in _RENAMED_LISTS:
        raise UnknownLanguageError(f"the language list '{name}' was renamed to '{_RENAMED_LISTS[name]}': write "
                                   f"@{_RENAMED_LISTS[name]}")
    if name not in _NAMED_LISTS:
        options = ["all", *_NAMED_LISTS]
        close = difflib.get_close_matches(name, options, n=1)
        raise UnknownLanguageError(f"unknown language list '{name}' (known: {', '.join(options)})"
                                   + (f"; did you mean '{close[0]}'?" if close else ""))
    return list(_NAMED_LISTS[name])


def resolve_many(codes: Iterable[str], allow_duplicates: bool = False) -> list[Language]:
    """Resolve a list of codes (``@paper22`` / ``@all`` expand named lists), rejecting duplicates.

    Two spellings of one language (``de`` and ``deu_Latn``) count as a duplicate.
    """
    result: list[Language] = []
    seen: dict[str, str] = {}
    for code in codes:
        expanded = named_list(code[1:]) if code.startswith("@") else [code]
        for item in expanded:
            lang = resolve(item)
            if lang.code in seen and not allow_duplicates:
                raise UnknownLanguageError(
                    f"language '{item}' is listed twice (as '{seen[lang.code]}' and '{item}', both {lang.code}); "
                    "remove one")
            seen.setdefault(lang.code, item)
            result.append(lang)
    return result


def single_language(languages: list[str], stage: str) -> str:
    """The registry code of the one language of a per-language stage's ``languages`` (a ``ValueError`` otherwise)."""
    if len(languages) != 1:
        raise ValueError(f"languages: {stage} works on one language at a time; give exactly one (e.g. languages: "
                         f"[deu_Latn]), got {len(languages)}: {languages}")
    return resolve(languages[0]).code
