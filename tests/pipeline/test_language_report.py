"""The one-row-per-language report of a run: its test sets, sort order, goals, groups and plot."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from modsent.config import from_dict
from modsent.corpus import write_dataset
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.language_report import resource_tier, write_language_report
from modsent.pipeline.plan import plan_jobs
from modsent.pipeline import report

#: (lang -> (e5-small, modular, Single_c)) P@1 X → eng; eng → X is 2 points lower for every system.
SCORES = {"deu_Latn": (90.0, 95.0, 96.0), "ell_Grek": (60.0, 75.0, 74.5), "kat_Geor": (70.0, 68.0, 71.0)}


def _pairs(root: Path, split: str, lang: str, count: int) -> None:
    pair = root / split / f"eng_Latn-{lang}"
    pair.mkdir(parents=True)
    for code in ("eng_Latn", lang):
        (pair / f"{code}.txt").write_text("".join(f"{code} {split} {i}\n" for i in range(count)), encoding="utf-8")


@pytest.fixture()
def planner(tmp_path):
    write_dataset(tmp_path / "corpus" / "en", {("eng_Latn", 1): ["a", "b"], ("eng_Latn", 2): ["b", "a"]})
    parallel = tmp_path / "parallel"
    for lang, train, test in (("deu_Latn", 6000, 50), ("ell_Grek", 90, 0), ("kat_Geor", 1200, 45)):
        _pairs(parallel, "train", lang, train)
        if test:
            _pairs(parallel, "test", lang, test)
    cfg = from_dict(PipelineConfig, {
        "run_dir": str(tmp_path / "run"), "languages": ["eng_Latn", *SCORES], "source_model": str(tmp_path / "m"),
        "corpus": str(tmp_path / "corpus"), "stages": ["train", "align", "evaluate"], "parallel_text": str(parallel),
        "parallel_text_max_pairs": 64, "parallel_text_min_test_pairs": 40, "single_c": {},
        "baselines": {"e5-small": str(tmp_path / "m")}, "stage_languages": {"train": ["eng_Latn"]},
        "align": {"use_corpus": False, "trainer": {"global_batch_size": 16}}, "train": {"trainer": {"max_steps": 3}}})
    planner, jobs = plan_jobs(cfg, "run.yaml")
    next(job for job in jobs if job.stage == "evaluate").prepare()
    return planner


def _results() -> dict:
    scores = []
    for lang, values in SCORES.items():
        dataset = f"indomain-{lang}" if lang == "ell_Grek" else f"heldout-{lang}"
        for encoder, value in zip(("e5-small", "modular", "Single_c"), values):
            for lang1, lang2, v in ((lang, "eng_Latn", value), ("eng_Latn", lang, value - 2)):
                scores.append({"task": "bitext", "dataset": dataset, "metric": "p_at_1_cosine", "encoder": encoder,
                               "lang1": lang1, "lang2": lang2, "value": v, "directed": True})
    # Georgian's held-out pairs are evaluated too, but a language's in-domain set (Greek's) is its row.
    return {"scores": scores}


def test_one_row_per_language_weakest_baseline_first_with_its_test_set(planner):
    markdown = write_language_report(_results(), planner)
    out = planner.run.root / "languages"
    with open(out / "languages.csv", encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["language"] for row in rows] == ["ell_Grek", "kat_Geor", "deu_Latn"]  # e5-small 59, 69, 89
    greek, georgian, german = rows
    # Greek: no held-out project, 30 of its 90 pairs (a third) set aside, 60 left of which 64 are allowed.
    assert (greek["test set"], greek["test pairs"], greek["pairs used"], greek["corpus pairs"]) == (
        "in-domain", "30", "60", "90")
    assert (german["test set"], german["test pairs"], german["pairs used"]) == ("held-out projects", "50", "64")
    assert georgian["test set"] == "held-out projects" and georgian["script"] == "Geor"
    assert (greek["modular X → eng"], greek["modular eng → X"], greek["gain over e5-small"]) == ("75.00", "73.00", "15.00")

    # Goals: modular >= e5-small in 2 of 3; gains 15, -2, 5; against Single_c +0.5, -3, -1.
    assert "| modular ≥ e5-small (share of languages, %) | 66.67 |" in markdown
    assert "| mean gain over e5-small (P@1 points) | 6.00 |" in markdown
    assert "| mean gain, weakest quarter by e5-small (1 languages) | 15.00 |" in markdown
    assert "| modular − Single_c, mean (P@1 points) | -1.17 |" in markdown
    assert "| modular ≥ Single_c − 1 (share of languages, %) | 66.67 |" in markdown
    assert "| Latn | 1 |" in markdown and "### By resource tier" in markdown
    assert [resource_tier(n) for n in (90, 1200, 6000)] == ["low (< 1000)", "mid (1000–4999)", "high (≥ 5000)"]
    png = (out / "gain.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    write_language_report(_results(), planner)
    assert (out / "gain.png").read_bytes() == png  # the same bytes every time


def test_a_run_of_many_languages_summarises_one_row_per_language(planner, monkeypatch, capsys):
    import json

    results = planner.run.results()
    results.parent.mkdir(parents=True)
    results.write_text(json.dumps(_results()), encoding="utf-8")
    report.print_summary(planner, evaluated=True)
    assert "Every language" not in planner.run.summary().read_text(encoding="utf-8")  # 3 languages: the usual tables
    monkeypatch.setattr(report, "MANY_LANGUAGES", 2)
    report.print_summary(planner, evaluated=True)
    summary = planner.run.summary().read_text(encoding="utf-8")
    assert summary.startswith("## Every language (3)") and "| system |" not in summary
    assert "### Goals" in capsys.readouterr().out
