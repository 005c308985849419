"""A model named by Hugging Face hub id resolves through the standard cache; nothing is downloaded here.

The cache is seeded in the hub's on-disk layout (``models--ORG--NAME/refs/main`` naming a snapshot
directory) from the tiny local BERT, and every command runs with ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from modsent.testing import tiny_bert_mlm
from modsent.testing.ranks import child_environment

REPO = Path(__file__).resolve().parents[1]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub_home(tmp_path, model_cache) -> Path:
    """An ``HF_HOME`` whose hub cache holds ``modsent-test/tiny-bert`` at ``COMMIT`` (its ``main``)."""
    repo = tmp_path / "hf" / "hub" / "models--modsent-test--tiny-bert"
    shutil.copytree(tiny_bert_mlm(model_cache), repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return tmp_path / "hf"


def _offline(hf_home: Path) -> dict[str, str]:
    """This environment with ``hf_home`` as the only Hugging Face cache, offline."""
    env = child_environment(HF_HOME=str(hf_home), HF_HUB_OFFLINE="1",
                            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    env.pop("HF_HUB_CACHE", None)
    return env


def _modsent(args: list[str], cwd: Path, hf_home: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "modsent.cli", *args], cwd=cwd, env=_offline(hf_home),
                          capture_output=True, text=True, timeout=300)


def test_a_hub_id_with_or_without_revision_encodes_as_the_cached_snapshot(tmp_path, hub_home, model_cache):
    text = tmp_path / "in.txt"
    text.write_text("A man plays a guitar.\nThe cat sleeps.\n", encoding="utf-8")
    outputs = {}
    for name, model in (("local", str(tiny_bert_mlm(model_cache))), ("id", "modsent-test/tiny-bert"),
                        ("revision", f"modsent-test/tiny-bert@{COMMIT}")):
        done = _modsent(["encode", "--model", model, "--input", str(text), "--output", str(tmp_path / f"{name}.npy")],
                        tmp_path, hub_home)
        assert done.returncode == 0, done.stderr[-3000:]
        outputs[name] = np.load(tmp_path / f"{name}.npy")
    assert outputs["local"].shape == (2, 32)
    np.testing.assert_array_equal(outputs["id"], outputs["local"])
    np.testing.assert_array_equal(outputs["revision"], outputs["local"])


def test_an_id_not_in_the_cache_is_one_line_saying_how_to_fetch_it(tmp_path, hub_home):
    text = tmp_path / "in.txt"
    text.write_text("A sentence.\n", encoding="utf-8")
    done = _modsent(["encode", "--model", "sentence-transformers/LaBSE@v2", "--input", str(text), "--output",
                     str(tmp_path / "e.npy")], tmp_path, hub_home)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "sentence-transformers/LaBSE@v2" in done.stderr
    assert "hf download sentence-transformers/LaBSE --revision v2" in done.stderr


def test_a_local_directory_wins_over_a_hub_id_of_the_same_name(tmp_path, model_cache, monkeypatch):
    from modsent.hub import parse_hub_id

    shutil.copytree(tiny_bert_mlm(model_cache), tmp_path / "modsent-test" / "tiny-bert")
    monkeypatch.chdir(tmp_path)
    assert parse_hub_id("modsent-test/tiny-bert") is None
    assert parse_hub_id("modsent-test/other@main") == ("modsent-test/other", "main")
    assert parse_hub_id("/abs/path") is None and parse_hub_id("one-part") is None


def test_a_pipeline_input_named_by_hub_id_resolves_to_the_snapshot(tmp_path, hub_home):
    script = ("from modsent.sources import resolve_source\n"
              "print(resolve_source('modsent-test/tiny-bert'))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=_offline(hub_home), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    snapshot = hub_home / "hub" / "models--modsent-test--tiny-bert" / "snapshots" / COMMIT
    assert Path(done.stdout.strip()) == snapshot
