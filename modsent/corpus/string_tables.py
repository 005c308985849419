"""JSON string tables: ``{"key": "text"}`` per locale, the English table beside them.

Home Assistant ships ``translations/de.json`` beside ``translations/en.json`` (nested objects),
Kolibri ``locale/de/LC_MESSAGES/<bundle>.json`` beside ``locale/en/LC_MESSAGES/<bundle>.json``
(flat). A table is flattened to dotted key paths; a target string pairs with the English string
under the same key path.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from modsent.corpus.formats import CorpusError

__all__ = ["StringTableError", "pair_tables", "parse_string_table", "read_string_table"]


class StringTableError(CorpusError):
    """A string table that is not a JSON object of strings; the message names file and line."""


def read_string_table(path: str | os.PathLike) -> dict[str, str]:
    """Flattened ``key path -> text`` of a JSON string table. Raises :class:`StringTableError`."""
    path = Path(path)
    return parse_string_table(path.read_bytes(), path)


def parse_string_table(raw: bytes, path: Path | str) -> dict[str, str]:
    """:func:`read_string_table` on a table's bytes (e.g. read from a wheel); ``path`` names it in errors.

    Nested objects become dotted paths (``{"config": {"step": "Go"}}`` -> ``config.step``);
    lists, numbers and nulls are not text to translate and are left out.
    """
    try:
        table = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise StringTableError(f"{path}:{line}: not UTF-8 (re-encode the file as UTF-8)") from None
    except json.JSONDecodeError as err:
        raise StringTableError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(table, dict):
        raise StringTableError(f"{path}:1: expected a JSON object of strings, got {type(table).__name__}")
    flat: dict[str, str] = {}

    def walk(node: dict, prefix: str) -> None:
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif isinstance(value, str):
                flat[f"{prefix}{key}"] = value

    walk(table, "")
    return flat


def pair_tables(english: dict[str, str], target: dict[str, str]) -> list[tuple[str, str]]:
    """``(english, target)`` for every key path both tables hold, in the English table's order."""
    return [(text, target[key]) for key, text in english.items() if key in target]
