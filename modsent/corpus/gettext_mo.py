"""Compiled gettext catalogues (``.mo``): some packages ship only these (gramps, trac, mayan-edms).

The GNU ``.mo`` layout: a header (magic, revision, string count N, offsets of the original and
the translation tables), then two tables of N (length, offset) pairs. An original is
``msgctxt EOT msgid`` (context optional) with ``NUL msgid_plural`` appended for plurals; a
translation holds its plural forms separated by NUL. The entry with an empty original is the
header, whose ``Content-Type`` names the charset. ``msgfmt`` leaves fuzzy entries out by default,
so an entry read here is never fuzzy.

:func:`parse_mo` returns the same :class:`~modsent.corpus.gettext_po.POEntry` as the ``.po``
reader (``line`` is the entry's index in the table), so the same filters apply to both.
"""

from __future__ import annotations

import codecs
import os
import re
import struct
from pathlib import Path

from modsent.corpus.formats import CorpusError
from modsent.corpus.gettext_po import POEntry

__all__ = ["MOFormatError", "parse_mo", "read_mo"]

_MAGIC_LE, _MAGIC_BE = 0x950412DE, 0xDE120495
_CHARSET = re.compile(r"charset=\s*([-\w.:]+)", re.IGNORECASE)


class MOFormatError(CorpusError):
    """A malformed ``.mo`` file; the message names the file, the byte offset and the problem."""

    def __init__(self, path: Path | str, offset: int, problem: str) -> None:
        super().__init__(f"{path}: byte {offset}: {problem} (recompile it: msgfmt -o FILE.mo FILE.po)")
        self.path, self.offset = path, offset


def read_mo(path: str | os.PathLike) -> list[POEntry]:
    """Entries of a compiled catalogue; the header is left out. Raises :class:`MOFormatError`."""
    path = Path(path)
    return parse_mo(path.read_bytes(), path)


def parse_mo(raw: bytes, path: Path | str) -> list[POEntry]:
    """:func:`read_mo` on a catalogue's bytes (e.g. read from a wheel); ``path`` names it in errors."""
    if len(raw) < 20:
        raise MOFormatError(path, 0, f"only {len(raw)} bytes: too short for a .mo header")
    (magic,) = struct.unpack("<I", raw[:4])
    if magic not in (_MAGIC_LE, _MAGIC_BE):
        raise MOFormatError(path, 0, f"not a .mo file (magic number {magic:#x})")
    order = "<" if magic == _MAGIC_LE else ">"
    revision, count, originals_at, translations_at = struct.unpack(order + "4I", raw[4:20])
    if revision >> 16 > 1:
        raise MOFormatError(path, 4, f"unknown major revision {revision >> 16}")

    def table(at: int) -> list[bytes]:
        if at + 8 * count > len(raw):
            raise MOFormatError(path, at, f"string table of {count} entries runs past the end ({len(raw)} bytes)")
        strings = []
        for index in range(count):
            length, offset = struct.unpack_from(order + "2I", raw, at + 8 * index)
            if offset + length > len(raw):
                raise MOFormatError(path, at + 8 * index, f"string {index} ({length} bytes at {offset}) runs past the end")
            strings.append(raw[offset:offset + length])
        return strings

    originals, translations = table(originals_at), table(translations_at)
    charset = "utf-8"
    for original, translation in zip(originals, translations):
        if original == b"":
            found = _CHARSET.search(translation.decode("ascii", errors="replace"))
            if found and found.group(1).upper() != "CHARSET":
                charset = found.group(1)
    try:
        codecs.lookup(charset)
    except LookupError:
        raise MOFormatError(path, 0, f"unknown charset {charset!r} in the header") from None

    entries = []
    for index, (original, translation) in enumerate(zip(originals, translations)):
        try:
            source, target = original.decode(charset), translation.decode(charset)
        except UnicodeDecodeError as err:
            raise MOFormatError(path, 0, f"entry {index} is not valid {charset} ({err.reason})") from None
        context, _, source = source.rpartition("\x04")
        msgid, _, plural = source.partition("\x00")
        if msgid == "" and not context:
            continue  # the header
        forms = tuple(target.split("\x00"))
        entries.append(POEntry(msgid=msgid, msgstr="" if plural else target, line=index,
                               msgctxt=context or None, msgid_plural=plural or None,
                               msgstr_plural=forms if plural else ()))
    return entries
