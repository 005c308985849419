"""gettext .po reading, Django parallel text, and split-consistent parallel corpus writing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modsent.corpus.gettext_po import (
    POEntry,
    POFormatError,
    assign_split,
    django_locale,
    django_locales,
    django_parallel_text,
    read_po,
    usable_pair,
    write_parallel_corpus,
)
from modsent.languages import UnknownLanguageError

CATALOGUE = r'''# Translators: someone
msgid ""
msgstr ""
"Content-Type: text/plain; charset=UTF-8\n"
"Language: de\n"

#: forms.py:10
msgid "Enter a valid value."
msgstr "Geben Sie einen gültigen Wert ein."

msgid ""
"Long help text that "
"spans lines.\nSecond \"paragraph\"."
msgstr "Langer Hilfetext,\tder\n\"umbricht\"."

#, fuzzy, python-format
msgid "Ensure this value is %(limit_value)s."
msgstr "Stellen Sie sicher, dass der Wert %(limit_value)s ist."

msgid "Untranslated string"
msgstr ""

msgctxt "abbrev. month"
msgid "Jan."
msgstr "Jan."

#, python-format
msgid "%(count)d item"
msgid_plural "%(count)d items"
msgstr[0] "%(count)d Element"
msgstr[1] "%(count)d Elemente"

msgid "%(name)s: %(value)s"
msgstr "%(name)s: %(value)s"

#~ msgid "Obsolete"
#~ msgstr "Veraltet"
'''


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "django.po"
    path.write_text(text, encoding="utf-8")
    return path


def test_read_po_parses_entries_flags_plurals_and_escapes(tmp_path: Path) -> None:
    entries = read_po(_write(tmp_path, CATALOGUE))

    assert [e.msgid for e in entries] == [
        "Enter a valid value.",
        "Long help text that spans lines.\nSecond \"paragraph\".",
        "Ensure this value is %(limit_value)s.",
        "Untranslated string",
        "Jan.",
        "%(count)d item",
        "%(name)s: %(value)s",
    ]
    first, multiline, fuzzy, untranslated, context, plural, placeholders = entries
    assert (first.msgstr, first.line) == ("Geben Sie einen gültigen Wert ein.", 8)
    assert multiline.msgstr == "Langer Hilfetext,\tder\n\"umbricht\"." and multiline.line == 11
    assert fuzzy.fuzzy and fuzzy.flags == {"fuzzy", "python-format"}
    assert not first.fuzzy and untranslated.msgstr == ""
    assert context.msgctxt == "abbrev. month" and context.line == 24
    assert plural.msgid_plural == "%(count)d items" and plural.msgstr == ""
    assert plural.msgstr_plural == ("%(count)d Element", "%(count)d Elemente")


def test_usable_pair_keeps_only_clean_human_translations(tmp_path: Path) -> None:
    pairs = [usable_pair(e) for e in read_po(_write(tmp_path, CATALOGUE))]
    assert pairs == [
        ("Enter a valid value.", "Geben Sie einen gültigen Wert ein."),
        # whitespace (including newlines and tabs) collapsed so a pair is one line per file
        ('Long help text that spans lines. Second "paragraph".', 'Langer Hilfetext, der "umbricht".'),
        None,  # fuzzy
        None,  # untranslated
        None,  # copied unchanged
        None,  # plural
        None,  # placeholders and punctuation only
    ]
    assert usable_pair(POEntry("Save", "Speichern", line=1)) == ("Save", "Speichern")


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ('msgid "a"\nmsgstr "b"\n\nmsgid "unterminated\nmsgstr "x"\n', 4, "one complete quoted string"),
        ('msgid "a"\nmsgstr "b"\nthis is not po\n', 3, "unexpected text"),
        ('msgstr "orphan"\n', 1, "before any msgid"),
        ('msgid "a"\nmsgstr "b"\nmsgstr "c"\n', 3, "appears twice"),
        ('msgid "a\\q"\nmsgstr "b"\n', 1, r"unknown escape \\q"),
        ('msgid "a"\n\nmsgid "b"\nmsgstr "c"\n', 3, "appears twice"),
        ('msgid "a"\nmsgid_plural "as"\nmsgstr "b"\n', 1, "needs msgstr\\[0\\]"),
        ('msgid "a"\nmsgstr "b"\n\n#, fuzzy\nmsgid "c"\n', 5, "needs exactly one msgstr"),
    ],
)
def test_malformed_po_names_file_and_line(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(POFormatError, match=problem) as caught:
        read_po(path)
    assert (caught.value.path, caught.value.line) == (path, line)
    assert str(caught.value).startswith(f"{path}:{line}: ")


def test_non_utf8_po_is_rejected_with_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.po"
    path.write_bytes('msgid "a"\nmsgstr "b"\nmsgid "Größe"\nmsgstr "x"\n'.encode("latin-1"))
    with pytest.raises(POFormatError, match=r"latin1.po:3: not UTF-8"):
        read_po(path)


def test_django_locale_maps_nllb_codes() -> None:
    pytest.importorskip("django")
    assert django_locale("deu_Latn") == "de"
    assert django_locale("spa_Latn") == "es"  # not es_AR, es_MX ...
    assert django_locale("por_Latn") == "pt_BR"
    assert django_locale("zho_Hans") == "zh_Hans" and django_locale("zh-Hant") == "zh_Hant"
    assert django_locale("jpn") == "ja"
    locales = django_locales()
    assert len(locales) > 75 and "eng_Latn" not in locales
    assert "sr_Latn" not in locales.values()  # NLLB-200 has Serbian in Cyrillic only
    with pytest.raises(UnknownLanguageError, match="no Django catalogue for hau_Latn"):
        django_locale("hau_Latn")


def test_django_parallel_text_from_installed_catalogues() -> None:
    pytest.importorskip("django")
    german = django_parallel_text("deu_Latn")
    japanese = dict(django_parallel_text("jpn_Jpan"))

    assert len(german) > 500 and len(japanese) > 500
    english = [en for en, _ in german]
    assert len(english) == len(set(english))
    assert ("Arabic", "Arabisch") in german
    assert all("\n" not in en + de and en != de for en, de in german)
    assert japanese["Arabic"] == "アラビア語"


def _pairs(lang: str, strings: list[str]) -> list[tuple[str, str]]:
    return [(s, f"{lang}:{s}") for s in strings]


def test_write_parallel_corpus_holds_out_the_same_english_for_every_language(tmp_path: Path) -> None:
    strings = [f"Sentence number {i}." for i in range(200)]
    pairs_by_lang = {
        "deu_Latn": _pairs("deu_Latn", strings),
        "rus_Cyrl": _pairs("rus_Cyrl", strings[50:]),
        "jpn_Jpan": _pairs("jpn_Jpan", strings[::2]),
    }
    manifest = write_parallel_corpus(pairs_by_lang, tmp_path / "corpus", splits={"train": 0.75, "test": 0.25}, seed=3)

    english_by_split: dict[str, set[str]] = {"train": set(), "test": set()}
    for split in ("train", "test"):
        for lang, pairs in pairs_by_lang.items():
            pair_dir = tmp_path / "corpus" / split / f"eng_Latn-{lang}"
            english = (pair_dir / "eng_Latn.txt").read_text(encoding="utf-8").splitlines()
            target = (pair_dir / f"{lang}.txt").read_text(encoding="utf-8").splitlines()
            assert [f"{lang}:{e}" for e in english] == target  # line i <-> line i
            assert manifest["pairs"][split][lang] == len(english)
            english_by_split[split] |= set(english)
    assert not english_by_split["train"] & english_by_split["test"]
    assert 30 < len(english_by_split["test"]) < 70  # ~25% of 200
    assert json.loads((tmp_path / "corpus" / "manifest.json").read_text())["seed"] == 3

    # the split is a function of the English string and the seed only
    assert all(assign_split(s, {"train": 0.75, "test": 0.25}, seed=3) == "test" for s in english_by_split["test"])
    assert assign_split("Save the file.", seed=1) == assign_split("save the file", seed=1)
    assert {assign_split(s, seed=1) for s in strings} == {"train", "test"}
    assert [assign_split(s, seed=1) for s in strings] != [assign_split(s, seed=2) for s in strings]


def test_write_parallel_corpus_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="sum to 1"):
        write_parallel_corpus({"deu_Latn": [("a", "b")]}, tmp_path / "c", splits={"train": 0.5, "test": 0.4})
    with pytest.raises(ValueError, match=r"deu_Latn pair 1: 'two\\nlines'"):
        write_parallel_corpus({"deu_Latn": [("a", "b"), ("two\nlines", "c")]}, tmp_path / "c")
    assert not (tmp_path / "c").exists()
