"""Evaluation sets named by Hugging Face hub dataset id read the cached files with the local readers.

The hub cache is seeded in its on-disk layout (``datasets--ORG--NAME/refs/main`` naming a snapshot
directory, the dataset card's ``configs`` naming each config's files) and the hub is offline: nothing
is downloaded. A set read by hub id must score exactly as the same files given by path.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from modsent.evaluate.runner import run_evaluation
from modsent.evaluate.config import BelebeleConfig, EvaluateConfig, STSDatasetConfig
from modsent.hub import HubDatasetError, hub_dataset_files

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
PAIRS = {"en-de": ("eng", "deu"), "en-en": ("eng", "eng")}


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """An empty hub cache, offline (as ``HF_HUB_CACHE=… HF_HUB_OFFLINE=1`` would make it)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    return cache


def seed_dataset(cache: Path, repo_id: str, files: dict[str, str], configs: dict[str, str] | None) -> Path:
    """A cached snapshot of ``repo_id`` holding ``files``; ``configs`` (config -> test file) go into its card."""
    repo = cache / f"datasets--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    for name, text in files.items():
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_text(text, encoding="utf-8")
    if configs is not None:
        card = ["---", "configs:"] + [f"- config_name: {name}\n  data_files:\n  - split: test\n    path: {path}"
                                      for name, path in configs.items()] + ["---", "# a dataset card"]
        (snapshot / "README.md").write_text("\n".join(card) + "\n", encoding="utf-8")
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    return snapshot


def sts_rows(pair: str) -> str:
    rows = [{"sentence1": f"{pair} first {i}", "sentence2": f"{pair} second {i % 3}", "score": float(i % 5)}
            for i in range(12)]
    return "".join(json.dumps(row) + "\n" for row in rows)


def belebele_rows(fakes, lang: str) -> str:
    return "".join(json.dumps(record) + "\n" for record in fakes.belebele_records(lang))


def evaluate(tmp_path: Path, fakes, name: str, sts_files: dict, belebele: str | Path) -> list[dict]:
    config = EvaluateConfig(output_dir=tmp_path / name, heatmaps=False,
                            sts=[STSDatasetConfig(name="sts17", format="mteb", files=sts_files)],
                            belebele=BelebeleConfig(directory=belebele, languages=["eng_Latn", "deu_Latn"]))
    scores = run_evaluation(config, {"hash": fakes.HashEncoder()})["scores"]
    assert {s["task"] for s in scores} >= {"sts", "belebele"}
    return scores


def test_sts_and_belebele_by_hub_id_score_as_the_same_files_by_path(tmp_path, fakes, hub_cache):
    sts = seed_dataset(hub_cache, "modsent-test/sts17", {f"{pair}/test.jsonl": sts_rows(pair) for pair in PAIRS},
                       {pair: f"{pair}/test.jsonl" for pair in PAIRS})
    belebele = seed_dataset(hub_cache, "modsent-test/belebele",
                            {f"data/{lang}.jsonl": belebele_rows(fakes, lang) for lang in ("eng_Latn", "deu_Latn")},
                            {lang: f"data/{lang}.jsonl" for lang in ("eng_Latn", "deu_Latn")})
    by_path = evaluate(tmp_path, fakes, "local", {pair: sts / pair / "test.jsonl" for pair in PAIRS}, belebele / "data")
    by_config = evaluate(tmp_path, fakes, "hub", {pair: "modsent-test/sts17" for pair in PAIRS}, "modsent-test/belebele")
    every_config = evaluate(tmp_path, fakes, "hub-all", {"*": f"modsent-test/sts17@{COMMIT}"}, "modsent-test/belebele")
    assert len(by_path) > 4
    assert by_config == by_path
    assert every_config == by_path


def test_a_card_without_configs_falls_back_to_the_config_directory(hub_cache):
    snapshot = seed_dataset(hub_cache, "modsent-test/plain", {"en-de/test-00000-of-00001.jsonl": sts_rows("en-de"),
                                                              "en-de/train.jsonl": sts_rows("en-de")}, None)
    assert hub_dataset_files("modsent-test/plain", ["en-de"])["en-de"] == [snapshot / "en-de" / "test-00000-of-00001.jsonl"]


def test_an_uncached_dataset_or_config_is_one_line_saying_how_to_fetch_it(hub_cache):
    seed_dataset(hub_cache, "modsent-test/sts17", {"en-de/test.jsonl": sts_rows("en-de")}, {"en-de": "en-de/test.jsonl"})
    with pytest.raises(HubDatasetError) as missing:
        hub_dataset_files("mteb/sts17-crosslingual-sts", ["en-de"])
    assert "hf download mteb/sts17-crosslingual-sts --repo-type dataset" in str(missing.value)
    with pytest.raises(HubDatasetError) as unknown_config:
        hub_dataset_files("modsent-test/sts17", ["fr-en"])
    assert "config 'fr-en'" in str(unknown_config.value) and "\n" not in str(unknown_config.value)


def test_a_hub_id_for_a_format_read_from_local_files_only_is_refused(tmp_path, fakes, hub_cache):
    config = EvaluateConfig(output_dir=tmp_path / "out", sts=[STSDatasetConfig(
        name="stsb", format="stsb", files={"en": "sentence-transformers/stsb"})])
    with pytest.raises(HubDatasetError, match="format 'mteb'"):
        run_evaluation(config, {"hash": fakes.HashEncoder()})
