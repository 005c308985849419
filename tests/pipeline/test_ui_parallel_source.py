"""pypi:ui-parallel in a run: the CLI builds it (or explains how to place the wheels), align reads it capped."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from modsent.align.recipe import AlignDataConfig, parallel_dataset
from modsent.config import from_dict
from modsent.corpus.ui_catalogues import PACKAGES
from modsent.corpus.ui_parallel import build_ui_parallel
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.run import plan_jobs
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


def test_alignment_reads_the_ui_corpus_with_a_pair_cap(tmp_path: Path) -> None:
    corpus = tmp_path / "ui"
    build_ui_parallel(corpus, wheel_dir=tmp_path / "wheels", work_dir=tmp_path / "parts",
                      packages=fake_packages(tmp_path / "wheels"), test_projects=["beta"], download=False,
                      progress=False)
    cfg = from_dict(PipelineConfig, {
        "run_dir": str(tmp_path / "run"), "languages": ["eng_Latn", "deu_Latn", "jpn_Jpan"],
        "source_model": str(tmp_path / "model"), "corpus": str(tmp_path / "paraphrases"),
        "parallel_text": str(corpus), "stages": ["align", "evaluate"],
        "align": {"data": {"max_parallel_pairs": 2}}})
    _, jobs = plan_jobs(cfg)
    align = {job.lang: job.config for job in jobs if job.stage == "align"}

    data = align["deu_Latn"].data
    assert data.parallel == [str(corpus / "train" / "eng_Latn-deu_Latn")]
    assert data.eval_parallel == str(corpus / "test" / "eng_Latn-deu_Latn")
    assert data.max_parallel_pairs == 2 and data.paraphrase == []
    dataset = parallel_dataset(data.parallel[0], "eng_Latn", "deu_Latn", data.max_parallel_pairs)
    rows = list(dataset.iter_rows([("eng_Latn", 1), ("deu_Latn", 2)]))
    english = (corpus / "train" / "eng_Latn-deu_Latn" / "eng_Latn.txt").read_text().splitlines()
    assert [r[0] for r in rows] == english[:2] and len(english) == 5

    evaluate = next(job.config for job in jobs if job.stage == "evaluate")
    held_out = {entry.name: entry.files for entry in evaluate.bitext}
    assert str(held_out["heldout-jpn_Jpan"]["jpn_Jpan"]) == str(corpus / "test" / "eng_Latn-jpn_Jpan" / "jpn_Jpan.txt")


def test_pair_cap_must_be_positive() -> None:
    assert AlignDataConfig(max_parallel_pairs=1).max_parallel_pairs == 1
    with pytest.raises(ValueError, match="max_parallel_pairs must be >= 1"):
        AlignDataConfig(max_parallel_pairs=0)
