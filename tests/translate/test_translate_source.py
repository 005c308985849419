"""Unique, length-sorted source sentences and the map back to every occurrence."""

from __future__ import annotations

import pytest

from modsent.corpus import CorpusError, write_dataset
from modsent.translate import check_translations, load_source


def test_unique_sentences_sorted_by_length_and_scattered_back(tmp_path):
    write_dataset(tmp_path / "a", {("eng_Latn", 1): ["bb", "a", "ccc"], ("eng_Latn", 2): ["a", "dddd", "bb"]})
    write_dataset(tmp_path / "b.jsonl", {("eng_Latn", 1): ["ccc", ""], ("eng_Latn", 2): ["e", "a"],
                                         ("deu_Latn", 1): ["x", "y"], ("deu_Latn", 2): ["z", "w"]}, fmt="jsonl")
    source = load_source([tmp_path], "eng_Latn")
    assert source.sentences == ["", "a", "e", "bb", "ccc", "dddd"]
    assert source.num_occurrences == 10
    rebuilt = {(d.name, c.column): [source.sentences[r] for r in c.ranks] for d in source.datasets for c in d.columns}
    assert rebuilt == {("a", 1): ["bb", "a", "ccc"], ("a", 2): ["a", "dddd", "bb"],
                       ("b", 1): ["ccc", ""], ("b", 2): ["e", "a"]}
    assert source.shard_bounds(4) == [(0, 4), (4, 6)]
    assert source.shard_sha256(0, 4) != source.shard_sha256(4, 6)


def test_dataset_without_source_columns_and_duplicate_names(tmp_path):
    write_dataset(tmp_path / "one" / "pairs", {("deu_Latn", 1): ["x"], ("deu_Latn", 2): ["y"]})
    with pytest.raises(CorpusError, match="has no column 1 for language eng_Latn.*languages present: deu_Latn"):
        load_source([tmp_path / "one"], "eng_Latn")
    write_dataset(tmp_path / "two" / "pairs", {("eng_Latn", 1): ["x"], ("eng_Latn", 2): ["y"]})
    write_dataset(tmp_path / "three" / "pairs", {("eng_Latn", 1): ["x"], ("eng_Latn", 2): ["y"]})
    with pytest.raises(CorpusError, match="two datasets are named 'pairs'"):
        load_source([tmp_path / "two", tmp_path / "three"], "eng_Latn")


def test_quality_guards_flag_each_problem_once():
    sources = ["The old man reads a book in the park.", "A tall woman sings a song.",
               "The boy kicks the red ball.", "Dogs bark at night in the village.", "Hi", ""]
    translations = ["Der alte Mann liest ein Buch im Park.", "",
                    "The boy kicks the red ball.", "la " * 40,
                    "Hallo", ""]
    report = check_translations("deu_Latn", sources, translations, max_review=10)
    assert report.checked == 5  # the blank source is not judged
    assert dict(report.counts) == {"empty": 1, "copy": 1, "repetition": 1, "length_ratio": 1}
    assert [row["issues"] for row in report.flagged] == [["empty"], ["copy"], ["repetition", "length_ratio"]]
    assert check_translations("deu_Latn", sources[:1], translations[:1]).counts == {}


def test_a_dataset_without_rows_or_with_only_blank_lines_is_refused_and_blanks_are_counted(tmp_path):
    """Before: a 0-line corpus translated to an empty corpus and 192 blank lines to 192 blank 'translations',
    with empty=0 in the summary."""
    from modsent.translate.stage import LanguageSummary

    write_dataset(tmp_path / "none" / "pairs", {("eng_Latn", 1): [], ("eng_Latn", 2): []})
    with pytest.raises(CorpusError, match=r"dataset 'pairs' has no rows \(.*none/pairs/eng_Latn_1.txt"):
        load_source([tmp_path / "none"], "eng_Latn")
    write_dataset(tmp_path / "blank" / "pairs", {("eng_Latn", 1): [""] * 3, ("eng_Latn", 2): [" "] * 3})
    with pytest.raises(CorpusError, match=r"dataset 'pairs': all 3 eng_Latn lines are blank \(.*blank/pairs/eng_Latn_1.txt"):
        load_source([tmp_path / "blank"], "eng_Latn")
    write_dataset(tmp_path / "some" / "pairs", {("eng_Latn", 1): ["", "A cat.", ""], ("eng_Latn", 2): ["A dog.", " ", "B."]})
    corpus = load_source([tmp_path / "some"], "eng_Latn")
    assert corpus.blank_occurrences == 3
    row = LanguageSummary("deu_Latn", "German", len(corpus.sentences), corpus.num_occurrences, 1, 0, 1.0, {},
                          corpus.blank_occurrences).row()
    assert (row["lines_written"], row["blank_source_lines"], row["empty"]) == (6, 3, 0)
