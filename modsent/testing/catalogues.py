"""Tiny gettext (.po, .mo) and JSON catalogues and fake wheels of them: the ui-parallel tests, offline."""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

from modsent.corpus.ui_catalogues import CataloguePackage
from modsent.io import sha256_file

MO_HEADER = "Content-Type: text/plain; charset=UTF-8\n"


def mo_bytes(messages: dict[str, str], big_endian: bool = False, encoding: str = "utf-8") -> bytes:
    """A GNU .mo file as msgfmt writes it: sorted originals, then the two (length, offset) tables.

    Keys may hold a context (``ctx\\x04msgid``) or a plural (``one\\x00many``, forms NUL-separated)."""
    order = ">" if big_endian else "<"
    keys = sorted(messages)
    originals = translations = b""
    spans = []
    for key in keys:
        source, target = key.encode(encoding), messages[key].encode(encoding)
        spans.append((len(originals), len(source), len(translations), len(target)))
        originals += source + b"\0"
        translations += target + b"\0"
    originals_at = 7 * 4
    translations_at = originals_at + 8 * len(keys)
    strings_at = translations_at + 8 * len(keys)
    table = b"".join(struct.pack(order + "2I", length, strings_at + offset) for offset, length, _, _ in spans)
    table += b"".join(struct.pack(order + "2I", length, strings_at + len(originals) + offset)
                      for _, _, offset, length in spans)
    header = struct.pack(order + "7I", 0x950412DE, 0, len(keys), originals_at, translations_at, 0, 0)
    return header + table + originals + translations


def po_text(pairs: list[tuple[str, str]], fuzzy: tuple[str, ...] = ()) -> str:
    lines = ['msgid ""', 'msgstr ""', '"Content-Type: text/plain; charset=UTF-8\\n"', ""]
    for english, target in pairs:
        if english in fuzzy:
            lines.append("#, fuzzy")
        lines += [f"msgid {json.dumps(english, ensure_ascii=False)}",
                  f"msgstr {json.dumps(target, ensure_ascii=False)}", ""]
    return "\n".join(lines)


def make_wheel(path: Path, members: dict[str, bytes | str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in sorted(members.items()):
            # A fixed timestamp: ``writestr(name, …)`` stamps the current time, and the wheel would differ per build.
            member = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(member, data.encode() if isinstance(data, str) else data)
    return path


GERMAN = [("Save the current document", "Das aktuelle Dokument speichern"),
          ("Delete all selected items", "Alle ausgewählten Elemente löschen"),
          ("Open the settings page", "Die Einstellungsseite öffnen")]
REPORT = "Print the report for this month"
JAPANESE = [("Save the current document", "現在の文書を保存"),
            ("Open the settings page", "設定ページを開く")]


def fake_packages(wheel_dir: Path) -> list[CataloguePackage]:
    """Three tiny projects, one per catalogue kind (.po, .mo, JSON tables), each in a fake wheel."""
    specs = {
        "alpha": ({
            "alpha/locale/de/LC_MESSAGES/django.po": po_text(GERMAN),
            "alpha/locale/ja/LC_MESSAGES/django.po": po_text(JAPANESE),
            "alpha/locale/zh_TW/LC_MESSAGES/django.po": po_text([("Open the settings page", "開啟設定頁面")]),
        }, r"alpha/locale/(?P<locale>[^/.]+)/LC_MESSAGES/django\.po"),
        "beta": ({
            "beta/locale/de/LC_MESSAGES/beta.mo": mo_bytes({
                "": MO_HEADER, **dict(GERMAN[:1]), REPORT: "Den Bericht dieses Monats drucken"}),
            "beta/locale/ja/LC_MESSAGES/beta.mo": mo_bytes({"": MO_HEADER, REPORT: "今月のレポートを印刷"}),
        }, r"beta/locale/(?P<locale>[^/.]+)/LC_MESSAGES/beta\.mo"),
        "gamma": ({
            "gamma/translations/en.json": json.dumps({"a": {"title": "Connect to the server now", "x": "Cancel"},
                                                      "b": "Choose a colour for the lights"}),
            "gamma/translations/de.json": json.dumps({"a": {"title": "Jetzt mit dem Server verbinden",
                                                            "x": "Abbrechen"},
                                                      "b": "Wähle eine Farbe für die Lichter"}),
            "gamma/translations/ja.json": json.dumps({"a": {"title": "今すぐサーバーに接続"}}),
        }, r"gamma/translations/(?P<locale>[^/.]+)\.json"),
    }
    packages = []
    for project, (members, pattern) in specs.items():
        wheel = make_wheel(wheel_dir / f"{project}-1.0-py3-none-any.whl", members)
        packages.append(CataloguePackage(project, "1.0", wheel.name, sha256_file(wheel), pattern))
    return packages
