"""Language identification with ``py3langid``, whose model ships inside its PyPI wheel (no download).

py3langid (a maintained fork of langid.py, Lui & Baldwin 2012) classifies text into 97 languages
with a byte n-gram naive Bayes model; it labels with ISO 639-1 codes (a few ISO 639-3), which
:func:`identify_languages` maps onto the registry's NLLB codes (``de`` -> ``deu_Latn``; a label
the registry does not know, such as ``la``, becomes ``None``). The script of an NLLB code is the
registry's default for that language (``sr`` -> ``srp_Cyrl``, ``zh`` -> ``zho_Hans``).

>>> identify_languages(["Das ist ein kleiner Hund.", "Это маленькая собака."])
['deu_Latn', 'rus_Cyrl']
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

from modsent.errors import ModsentError
from modsent.languages import resolve

__all__ = ["LanguageIdError", "identify_languages", "identifier_labels", "identification_accuracy"]


class LanguageIdError(ModsentError):
    """The language identifier is not installed, or cannot be restricted to the languages asked for."""


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError:
        raise LanguageIdError("language identification needs py3langid: pip install py3langid "
                              "(pinned in constraints.txt)") from None
    return LanguageIdentifier.from_model_file(MODEL_FILE)


@functools.lru_cache(maxsize=None)
def _nllb_code(label: str) -> str | None:
    try:
        return resolve(label).code
    except ModsentError:
        return None


def identifier_labels() -> list[str]:
    """The NLLB codes the identifier can output (labels the registry cannot resolve left out), sorted."""
    return sorted({code for code in map(_nllb_code, _identifier().labels) if code is not None})


def identify_languages(texts: Iterable[str]) -> list[str | None]:
    """The NLLB code of each text's most likely language (``None``: a label outside the registry)."""
    identifier = _identifier()
    return [_nllb_code(identifier.classify(text)[0]) for text in texts]


def identification_accuracy(texts_by_lang: dict[str, Sequence[str]]) -> dict[str, float]:
    """Per language code, the fraction (0..1) of its texts the identifier labels with that code.

    A language the identifier cannot output scores 0.0 (every one of its texts is misidentified).
    """
    accuracy = {}
    for lang, texts in texts_by_lang.items():
        code = resolve(lang).code
        found = identify_languages(texts)
        accuracy[code] = sum(label == code for label in found) / len(found) if found else float("nan")
    return accuracy
