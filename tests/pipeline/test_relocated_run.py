"""A run directory copied or moved elsewhere exports, verifies and resumes as itself (issue 28).

Before: ``model/modular.json`` held absolute paths, so a copy's export packed the original run's
adapter (even after the copy's adapter changed, which ``status --verify`` on the copy did flag),
and ``modsent run COPY/config.yaml`` ran the original directory its ``run_dir`` named.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from modsent.cli import main
from modsent.config import from_dict
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.manifest import Manifest
from modsent.pipeline.execute import run_pipeline
from modsent.testing.synthetic import write_parallel_text, write_synthetic_corpus
from modsent.testing.tiny_models import tiny_bert_mlm

LANGS = ["deu_Latn", "fra_Latn"]
ADAPTER = Path("artifacts/align/deu_Latn/artifacts/adapter/adapter.safetensors")
TRAINER = {"global_batch_size": 4, "max_steps": 1, "save_every": 0, "eval_every": 0, "eval_at_start": False,
           "progress_bar": False, "schedule": "constant"}


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, model_cache) -> Path:
    """The smallest real run with adapters and a modular model: German and French aligned to English (all
    the tiny source model, frozen), then evaluated on held-out pairs — three jobs, under a minute."""
    root = tmp_path_factory.mktemp("relocated")
    for lang in LANGS:
        for split, lines, seed in (("train", 24, 7), ("test", 8, 8)):
            write_parallel_text(root / "bitext" / split / f"eng_Latn-{lang}", lang, lines, seed=seed)
    data = {"run_dir": str(root / "runs" / "demo"), "languages": ["eng_Latn", *LANGS],
            "source_model": str(tiny_bert_mlm(model_cache)),
            "corpus": str(write_synthetic_corpus(root / "corpus", ["eng_Latn", *LANGS], {"para": 16})),
            "parallel_text": str(root / "bitext"), "stages": ["align", "evaluate"],
            "align": {"use_corpus": False, "max_seq_length": 16, "trainer": TRAINER},
            "resources": {"ranks_per_job": 1, "parallel_jobs": 1, "retries": 0}}
    results = run_pipeline(from_dict(PipelineConfig, data))
    assert {name: r.status for name, r in results.items()} == {
        "deu_Latn/align": "done", "fra_Latn/align": "done", "all/evaluate": "done"}
    return root / "runs" / "demo"


def finished(run: Path) -> dict[str, float]:
    return {key: entry.finished for key, entry in Manifest(run).entries.items()}


def naming(run: Path, directory: Path) -> list[str]:
    """The files the run writes for itself (model, configs, manifest) that name ``directory``."""
    files = [run / "manifest.json", run / "config.yaml", *(run / "model").rglob("*.json"),
             *(run / "configs").rglob("*.yaml")]
    return sorted(str(f.relative_to(run)) for f in files if str(directory) in f.read_text())


def test_a_copied_run_exports_verifies_and_resumes_as_itself(finished_run, tmp_path, capsys):
    original_bytes, original_finished = (finished_run / ADAPTER).read_bytes(), finished(finished_run)
    copy = tmp_path / "copy"
    shutil.copytree(finished_run, copy, symlinks=True)
    changed = bytearray(original_bytes)
    changed[-1] ^= 1  # one byte of the copy's adapter weights
    (copy / ADAPTER).write_bytes(bytes(changed))

    assert main(["export", str(copy), str(tmp_path / "export")]) == 0
    assert (tmp_path / "export" / "adapters" / "deu_Latn" / ADAPTER.name).read_bytes() == bytes(changed)
    capsys.readouterr()
    assert main(["status", str(copy), "--verify"]) == 1  # the export shipped what verify flags: the copy's bytes
    assert f"deu_Latn/align: {ADAPTER.parent}/{ADAPTER.name}: content changed" in capsys.readouterr().err
    assert main(["status", str(finished_run), "--verify"]) == 0

    assert main(["run", str(copy / "config.yaml")]) == 0  # the copy's own config runs the copy
    redone = sorted(key for key, when in finished(copy).items() if when != original_finished[key])
    # The changed adapter alone: it retrains to the original's bytes, so nothing that reads it (the evaluation)
    # and nothing else (French's alignment) is redone.
    assert redone == ["deu_Latn/align"]
    assert (copy / ADAPTER).read_bytes() == original_bytes  # retrained to the same weights
    assert finished(finished_run) == original_finished and (finished_run / ADAPTER).read_bytes() == original_bytes
    assert naming(copy, finished_run) == []
    modules = json.loads((copy / "model" / "modular.json").read_text())["languages"]
    assert modules["deu_Latn"]["adapter"] == "../artifacts/align/deu_Latn/artifacts/adapter"


def test_a_moved_run_exports_verifies_and_resumes_as_itself(finished_run, tmp_path):
    before = finished(finished_run)
    moved = tmp_path / "moved"
    finished_run.rename(moved)
    try:
        assert main(["export", str(moved), str(tmp_path / "export")]) == 0
        exported = tmp_path / "export" / "adapters" / "deu_Latn" / ADAPTER.name
        assert exported.read_bytes() == (moved / ADAPTER).read_bytes()
        assert main(["status", str(moved), "--verify"]) == 0
        assert main(["run", str(moved / "config.yaml")]) == 0
        assert finished(moved) == before  # nothing changed, nothing redone
        assert not finished_run.exists()  # the run did not recreate the directory it was moved from
        assert naming(moved, finished_run) == []
    finally:
        if not finished_run.exists():
            moved.rename(finished_run)
