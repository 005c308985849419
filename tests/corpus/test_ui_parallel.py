"""pypi:ui-parallel: the project split, the resumable build, the layout reader and stats."""

from __future__ import annotations

from pathlib import Path

import pytest

import modsent.corpus.ui_parallel as ui_parallel
from modsent.corpus import corpus_stats
from modsent.corpus.parallel import parallel_languages, read_parallel_pairs
from modsent.corpus.ui_catalogues import PackagePairs
from modsent.corpus.ui_parallel import (
    UIParallelError,
    build_ui_parallel,
    choose_test_projects,
    split_by_project,
    summary_table,
)
from modsent.corpus.ui_text import match_key
from modsent.testing.catalogues import fake_packages


def _part(project: str, pairs: dict[str, list[tuple[str, str]]]) -> PackagePairs:
    return PackagePairs(project, pairs, {}, {})


def _numbered(prefix: str, lang: str, count: int) -> list[tuple[str, str]]:
    return [(f"{prefix} message number {i}", f"{lang} {prefix} {i}") for i in range(count)]


def test_split_by_project_keeps_every_training_english_string_out_of_test() -> None:
    parts = [
        _part("train-a", {"deu_Latn": [("Save the open file", "Datei speichern"),
                                       ("Open a new window", "Neues Fenster")]}),
        # "Open a new window!" has the same English as train-a's (only punctuation differs), in another language.
        _part("held", {"jpn_Jpan": [("Open a new window!", "新しいウィンドウ"),
                                    ("Print the whole page", "全ページ印刷")],
                       "deu_Latn": [("Print the whole page", "Ganze Seite drucken"),
                                    ("Save the open file", "Offene Datei speichern")]}),
        _part("train-b", {"deu_Latn": [("Save the open file", "Die Datei speichern"),
                                       ("Close every tab now", "Alle Tabs schließen")]}),
    ]
    splits = split_by_project(parts, ["held"])

    assert {lang: [(e, t, p) for e, t, p in pairs] for lang, pairs in splits["test"].items()} == {
        "deu_Latn": [("Print the whole page", "Ganze Seite drucken", "held")],
        "jpn_Jpan": [("Print the whole page", "全ページ印刷", "held")]}
    train = splits["train"]["deu_Latn"]
    assert sorted(train) == sorted([("Save the open file", "Datei speichern", "train-a"),  # first project wins
                                    ("Open a new window", "Neues Fenster", "train-a"),
                                    ("Close every tab now", "Alle Tabs schließen", "train-b")])
    trained = {match_key(e) for pairs in splits["train"].values() for e, _, _ in pairs}
    assert not trained & {match_key(e) for pairs in splits["test"].values() for e, _, _ in pairs}

    with pytest.raises(UIParallelError, match="unknown held-out project"):
        split_by_project(parts, ["nope"])
    with pytest.raises(UIParallelError, match="nothing is left to train on"):
        split_by_project(parts, ["train-a", "held", "train-b"])


def test_choose_test_projects_reaches_the_minimum_with_the_cheapest_projects() -> None:
    parts = [
        _part("big", {"deu_Latn": _numbered("big", "de", 400), "kat_Geor": _numbered("big", "ka", 40)}),
        _part("broad", {"deu_Latn": _numbered("broad", "de", 30), "kat_Geor": _numbered("broad", "ka", 25)}),
        _part("narrow", {"deu_Latn": _numbered("narrow", "de", 30)}),
        _part("rest", {"deu_Latn": _numbered("rest", "de", 20), "kat_Geor": _numbered("rest", "ka", 20)}),
    ]
    # 20 test pairs per language: "rest" and "broad" both give enough; "rest" takes fewer training pairs.
    assert choose_test_projects(parts, min_test_pairs=20) == ["rest"]
    # 40: "broad" and "rest" tie (every pair they take counts towards the shortfall; package order
    # decides), then German needs "narrow". Georgian stays at 25: holding out "rest" or "big" too
    # would leave it fewer training than test pairs ("where it can").
    assert choose_test_projects(parts, min_test_pairs=40) == ["broad", "narrow"]
    # Only the languages you evaluate count: for German alone "rest" beats "narrow" (no Georgian
    # to protect); for Georgian alone "big" is allowed (45 Georgian training pairs stay for 40 test).
    assert choose_test_projects(parts, min_test_pairs=40, languages=["de"]) == ["broad", "rest"]
    assert choose_test_projects(parts, min_test_pairs=40, languages=["kat_Geor"]) == ["big"]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_resumed_build_gives_the_same_bytes_and_redoes_only_the_unfinished_package(tmp_path: Path, monkeypatch) -> None:
    packages = fake_packages(tmp_path / "wheels")
    options = dict(wheel_dir=tmp_path / "wheels", packages=packages, test_projects=["beta"], download=False,
                   progress=False)
    build_ui_parallel(tmp_path / "whole", work_dir=tmp_path / "parts-whole", **options)

    extracted: list[str] = []
    real_extract = ui_parallel.extract_package

    def killed_at_gamma(package, wheel):
        if package.project == "gamma":
            raise KeyboardInterrupt  # the build is killed while it works on the third package
        extracted.append(package.project)
        return real_extract(package, wheel)

    monkeypatch.setattr(ui_parallel, "extract_package", killed_at_gamma)
    with pytest.raises(KeyboardInterrupt):
        build_ui_parallel(tmp_path / "resumed", work_dir=tmp_path / "parts", **options)
    assert not (tmp_path / "resumed").exists()  # no half-written corpus

    def counting(package, wheel):
        extracted.append(package.project)
        return real_extract(package, wheel)

    monkeypatch.setattr(ui_parallel, "extract_package", counting)
    build_ui_parallel(tmp_path / "resumed", work_dir=tmp_path / "parts", **options)

    assert extracted == ["alpha", "beta", "gamma"]  # alpha and beta once, before the kill; then only gamma
    assert _tree(tmp_path / "resumed") == _tree(tmp_path / "whole")


def test_built_corpus_layout_reader_counts_and_stats(tmp_path: Path) -> None:
    packages = fake_packages(tmp_path / "wheels")
    manifest = build_ui_parallel(tmp_path / "out", wheel_dir=tmp_path / "wheels", work_dir=tmp_path / "parts",
                                 packages=packages, test_projects=["beta"], download=False, progress=False)
    out = tmp_path / "out"

    # beta's "Save the current document" is alpha's too (training): removed from the test split.
    test_de = read_parallel_pairs(out, "de", "test")
    assert (test_de.english, test_de.target, test_de.projects) == (
        ["Print the report for this month"], ["Den Bericht dieses Monats drucken"], ["beta"])
    train_de = read_parallel_pairs(out, "deu_Latn", "train")
    assert sorted(zip(train_de.english, train_de.projects)) == [
        ("Choose a colour for the lights", "gamma"), ("Connect to the server now", "gamma"),
        ("Delete all selected items", "alpha"), ("Open the settings page", "alpha"),
        ("Save the current document", "alpha")]
    assert parallel_languages(out, "train") == ["deu_Latn", "jpn_Jpan", "zho_Hant"]
    assert manifest["pairs"] == {"train": {"deu_Latn": 5, "jpn_Jpan": 3, "zho_Hant": 1},
                                 "test": {"deu_Latn": 1, "jpn_Jpan": 1}}
    assert manifest["test_projects"] == ["beta"]

    counts_csv = (out / "counts.csv").read_text().splitlines()
    assert counts_csv[0] == "language,project,split,pairs"
    assert "deu_Latn,alpha,train,3" in counts_csv and "deu_Latn,beta,test,1" in counts_csv
    markdown = (out / "counts.md").read_text()
    assert "| deu_Latn | 5 | 1 | 3 | 1 | 2 |" in markdown and "beta (test)" in markdown
    assert "beta,deu_Latn,duplicate" not in (out / "drops.csv").read_text()
    summary = summary_table(out)
    assert "3 languages, 9 train and 2 test pairs; held-out projects: beta" in summary and markdown in summary

    rows = {(r["dataset"], r["language"]): r["rows"] for r in corpus_stats(out)}
    assert rows[("train/eng_Latn-deu_Latn", "deu_Latn")] == 5 and rows[("test/eng_Latn-jpn_Jpan", "eng_Latn")] == 1
