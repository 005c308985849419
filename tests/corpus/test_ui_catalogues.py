"""Catalogue readers (.mo, JSON tables, .po from bytes), UI-string filters, locale mapping, extraction."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modsent.corpus.gettext_mo import MOFormatError, read_mo
from modsent.corpus.gettext_po import POEntry, parse_po
from modsent.corpus.string_tables import StringTableError, pair_tables, read_string_table
from modsent.corpus.ui_catalogues import (
    CatalogueFetchError,
    CataloguePackage,
    extract_package,
    fetch_wheels,
    locale_code,
)
from modsent.corpus.ui_text import display_text, entry_pair_or_reason, match_key, pair_or_reason
from modsent.languages import UnknownLanguageError
from modsent.testing.catalogues import MO_HEADER, make_wheel, mo_bytes, po_text


@pytest.mark.parametrize("big_endian", [False, True])
def test_read_mo_entries_context_and_plurals(tmp_path: Path, big_endian: bool) -> None:
    path = tmp_path / "django.mo"
    path.write_bytes(mo_bytes({"": MO_HEADER, "Save the file": "Datei speichern",
                               "menu\x04Open the file": "Datei öffnen",
                               "%d item\x00%d items": "%d Element\x00%d Elemente"}, big_endian))
    entries = {e.msgid: e for e in read_mo(path)}

    assert set(entries) == {"Save the file", "Open the file", "%d item"}  # header left out
    assert entries["Save the file"].msgstr == "Datei speichern" and entries["Save the file"].msgctxt is None
    assert entries["Open the file"].msgctxt == "menu" and entries["Open the file"].msgstr == "Datei öffnen"
    plural = entries["%d item"]
    assert plural.msgid_plural == "%d items" and plural.msgstr_plural == ("%d Element", "%d Elemente")
    assert plural.msgstr == ""


def test_read_mo_uses_the_header_charset(tmp_path: Path) -> None:
    path = tmp_path / "latin1.mo"
    path.write_bytes(mo_bytes({"": "Content-Type: text/plain; charset=ISO-8859-1\n", "Close": "Schließen"},
                              encoding="latin-1"))
    assert [(e.msgid, e.msgstr) for e in read_mo(path)] == [("Close", "Schließen")]


@pytest.mark.parametrize("raw,problem", [
    (b"\x00" * 8, "too short"),
    (b"\x00" * 28, "not a .mo file"),
    (mo_bytes({"Save the file": "Datei speichern"})[:-10], "runs past the end"),
])
def test_malformed_mo_names_the_file_and_offset(tmp_path: Path, raw: bytes, problem: str) -> None:
    path = tmp_path / "bad.mo"
    path.write_bytes(raw)
    with pytest.raises(MOFormatError, match=rf"bad\.mo: byte \d+: .*{problem}.*msgfmt"):
        read_mo(path)


def test_parse_po_from_bytes_names_the_archive_member_in_errors() -> None:
    entries = parse_po(po_text([("Save the file", "Datei speichern")]).encode(), "pkg.whl/de/django.po")
    assert [(e.msgid, e.msgstr) for e in entries] == [("Save the file", "Datei speichern")]
    with pytest.raises(ValueError, match=r"pkg\.whl/de/django\.po:2: "):
        parse_po(b'msgid "a"\nmsgstr "unterminated\n', "pkg.whl/de/django.po")


def test_string_tables_flatten_and_pair_by_key(tmp_path: Path) -> None:
    (tmp_path / "en.json").write_text(json.dumps({"config": {"step": {"title": "Pick a device"}, "n": 3},
                                                  "only_en": "Not translated yet"}))
    (tmp_path / "de.json").write_text(json.dumps({"config": {"step": {"title": "Wähle ein Gerät"}},
                                                  "extra": "Nur hier"}))
    english, german = read_string_table(tmp_path / "en.json"), read_string_table(tmp_path / "de.json")

    assert english == {"config.step.title": "Pick a device", "only_en": "Not translated yet"}  # numbers left out
    assert pair_tables(english, german) == [("Pick a device", "Wähle ein Gerät")]


@pytest.mark.parametrize("text,problem", [('{"a": "b",\n"c": }', r"de\.json:2: not valid JSON"),
                                          ('["a", "b"]', r"de\.json:1: expected a JSON object")])
def test_bad_string_table_names_file_and_line(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "de.json").write_text(text)
    with pytest.raises(StringTableError, match=problem):
        read_string_table(tmp_path / "de.json")


def test_display_text_cleans_markup_accelerators_and_whitespace() -> None:
    assert display_text("Open <b>the</b>\n  &File&hellip;") == "Open the File…"
    assert display_text("_Edit the tree") == "Edit the tree"
    assert display_text("ファイルを開く(&F)") == "ファイルを開く"
    assert display_text("R&D and snake_case stay") == "R&D and snake_case stay"
    assert display_text("Welcome %(name)s to {site}") == "Welcome %(name)s to {site}"  # placeholders kept
    assert match_key("Welcome, %(name)s!") == match_key("welcome {user}") == match_key("Welcome ${user}") == "welcome"


@pytest.mark.parametrize("english,target,expected", [
    # each filter: a pair it drops, and a pair it keeps
    ("Save the current file", "", "empty"),
    ("Save the current file", "<br/> ", "empty"),
    ("Save %(count)s files", "%(count)s Dateien speichern", "short"),  # placeholders are not words
    ("Save all open files", "Alle Dateien speichern", ("Save all open files", "Alle Dateien speichern")),
    ("Connected to %(host)s on port %(port)s", "%(host)s:%(port)s", "placeholders"),
    ("Connected to %(host)s on port %(port)s", "Verbunden mit %(host)s an Port %(port)s",
     ("Connected to %(host)s on port %(port)s", "Verbunden mit %(host)s an Port %(port)s")),
    ("Open Source Software", "Open source software!", "same_as_english"),
    ("Open Source Software", "Quelloffene Software", ("Open Source Software", "Quelloffene Software")),
])
def test_pair_filters_drop_and_keep(english: str, target: str, expected) -> None:
    assert pair_or_reason(english, target) == expected


def test_entry_filters_drop_fuzzy_and_plural_entries() -> None:
    plain = POEntry("Save all open files", "Alle Dateien speichern", 1)
    assert entry_pair_or_reason(plain) == ("Save all open files", "Alle Dateien speichern")
    assert entry_pair_or_reason(POEntry("Save all open files", "Alle speichern", 1, flags=frozenset({"fuzzy"}))) == "fuzzy"
    assert entry_pair_or_reason(POEntry("One file was saved", "", 1, msgid_plural="%d files were saved",
                                        msgstr_plural=("Eine Datei", "%d Dateien"))) == "plural"


@pytest.mark.parametrize("locale,code", [
    ("zh_CN", "zho_Hans"), ("zh_Hans", "zho_Hans"), ("zh-hans", "zho_Hans"), ("zh_TW", "zho_Hant"),
    ("zh_Hant", "zho_Hant"), ("pt_BR", "por_Latn"), ("pt-BR", "por_Latn"), ("de", "deu_Latn"), ("he", "heb_Hebr"),
    ("ka", "kat_Geor"), ("cy", "cym_Latn"), ("sr", "srp_Cyrl"), ("uz@cyrillic", "uzn_Cyrl"),
])
def test_locale_codes_map_through_the_registry(locale: str, code: str) -> None:
    if code == "uzn_Cyrl":  # NLLB has Uzbek in Latin script only: the script is named, not guessed away
        with pytest.raises(UnknownLanguageError, match="no Cyrl script"):
            locale_code(locale)
        return
    assert locale_code(locale) == code


@pytest.mark.parametrize("locale", ["tlh", "ca@valencia", "de_Informal", "sr@Latn"])
def test_unplaceable_locales_are_refused(locale: str) -> None:
    with pytest.raises(UnknownLanguageError):
        locale_code(locale)


def _package(wheel: Path, pattern: str, exclude: frozenset[str] = frozenset()) -> CataloguePackage:
    from modsent.io import sha256_file

    return CataloguePackage("demo", "1.0", wheel.name, sha256_file(wheel), pattern, exclude)


def test_extract_package_maps_locales_filters_and_counts(tmp_path: Path) -> None:
    german = [("Save all open files", "Alle Dateien speichern"),
              ("Save all open files!", "Alle offenen Dateien speichern"),  # same English string: duplicate
              ("Open the settings page", "Einstellungen öffnen"),
              ("Close", "Schließen")]  # short
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {
        "demo/locale/de/LC_MESSAGES/django.po": po_text(german, fuzzy=("Open the settings page",)),
        "demo/locale/de_CH/LC_MESSAGES/django.po": po_text([("Print the whole page", "Die ganze Seite drucken")]),
        "demo/locale/en_GB/LC_MESSAGES/django.po": po_text([("Print the whole page", "Print the whole page")]),
        "demo/locale/tlh/LC_MESSAGES/django.po": po_text([("Print the whole page", "nIqHom")]),
        "demo/locale/ach/LC_MESSAGES/django.po": po_text([("Print the whole page", "crwdns1:0crwdne1:0")]),
        "demo/locale/zh_TW/LC_MESSAGES/django.mo": mo_bytes({"": MO_HEADER, "Print the whole page": "列印整頁"}),
        "demo/locale/zh_TW/LC_MESSAGES/django.po": po_text([("Print the whole page", "列印整頁")]),
        "demo/locale/zh_HK/LC_MESSAGES/django.po": po_text([("Print the whole page", "列印整頁")]),
    })
    package = _package(wheel, r"demo/locale/(?P<locale>[^/.]+)/LC_MESSAGES/django\.(?:po|mo)", frozenset({"ach"}))
    result = extract_package(package, wheel)

    assert result.pairs == {"deu_Latn": [("Save all open files", "Alle Dateien speichern")],
                            "zho_Hant": [("Print the whole page", "列印整頁")]}
    assert result.drops["deu_Latn"] == {"duplicate": 1, "fuzzy": 1, "short": 1}
    assert result.drops["zho_Hant"] == {"duplicate": 1}  # the .mo and the .po of one locale
    assert result.locales["de"] == "deu_Latn" and result.locales["de_CH"].startswith("skipped: variant of de")
    assert result.locales["zh_TW"] == "zho_Hant" and result.locales["zh_HK"].startswith("skipped: variant of zh_TW")
    assert result.locales["en_GB"] == "skipped: English"
    assert result.locales["ach"] == "skipped: pseudo-locale"
    assert result.locales["tlh"].startswith("skipped: not placeable")


def test_extract_json_tables_pairs_with_the_english_table(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "demo-1.0-py3-none-any.whl", {
        "demo/c/translations/en.json": json.dumps({"t": "Connect to the server now", "r": "[%key:common::x%]"}),
        "demo/c/translations/de.json": json.dumps({"t": "Jetzt mit dem Server verbinden", "r": "[%key:common::x%]"}),
        "demo/c/translations/sensor.en.json": json.dumps({"s": "Battery is running low"}),
        "demo/c/translations/sensor.de.json": json.dumps({"s": "Batterie ist fast leer"}),
        "demo/d/translations/de.json": json.dumps({"t": "Ohne englische Tabelle"}),
    })
    package = _package(wheel, r"demo/c/translations/(?:[a-z]+\.)?(?P<locale>[^/.]+)\.json")
    result = extract_package(package, wheel)
    assert result.pairs["deu_Latn"] == [("Connect to the server now", "Jetzt mit dem Server verbinden"),
                                        ("Battery is running low", "Batterie ist fast leer")]
    assert result.drops["deu_Latn"] == {"short": 1}  # a reference to another string has no words

    orphan = _package(wheel, r"demo/d/translations/(?P<locale>[^/.]+)\.json")
    with pytest.raises(ValueError, match=r"demo/d/translations/de\.json: no English table demo/d/translations/en\.json"):
        extract_package(orphan, wheel)


def test_fetch_without_registry_names_the_wheels_and_the_directory_option(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path / "have" / "demo-1.0-py3-none-any.whl", {"x": "y"})
    present = _package(wheel, "x")
    absent = CataloguePackage("absent", "2.0", "absent-2.0-py3-none-any.whl", "0" * 64, "x")

    with pytest.raises(CatalogueFetchError) as err:
        fetch_wheels([present, absent], tmp_path / "have", download=False)
    message = str(err.value)
    assert "absent-2.0-py3-none-any.whl" in message and "demo-1.0" not in message
    assert "pip download --no-deps" in message and "absent==2.0" in message and "--wheel-dir" in message

    assert fetch_wheels([present], tmp_path / "have", download=False) == {"demo": wheel}
    wheel.write_bytes(b"tampered")
    with pytest.raises(CatalogueFetchError, match="is not the pinned"):
        fetch_wheels([present], tmp_path / "have", download=False)
