"""``trainer.global_batch_size`` is what a step sees on any number of ranks: 1 and 2 ranks train the same model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from modsent.config import ConfigError, load_config
from modsent.testing import tiny_bert_mlm, write_synthetic_corpus
from modsent.train.stage import ContrastiveConfig, run as run_contrastive
from modsent.train.metrics import read_metrics
from modsent.train.trainer_config import BatchSizeError, TrainerConfig

STEPS = 6


def _without_dropout(base: Path, out: Path) -> Path:
    shutil.copytree(base, out)
    config = json.loads((out / "config.json").read_text())
    config.update(hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    (out / "config.json").write_text(json.dumps(config))
    return out


def _settings(model: Path, corpus: Path) -> dict[str, Any]:
    return {"model": str(model), "corpus": str(corpus), "languages": ["deu_Latn"], "max_seq_length": 32,
            "trainer": {"ds_config": "zero1", "global_batch_size": 16, "max_steps": STEPS, "lr": 1e-3,
                        "log_every": 1, "save_every": 0, "eval_every": 0, "eval_at_start": False,
                        "progress_bar": False, "seed": 3}}


@pytest.mark.slow
def test_one_rank_and_two_ranks_train_the_same_model(tmp_path: Path, model_cache: Path, run_torchrun) -> None:
    model = _without_dropout(tiny_bert_mlm(cache_dir=model_cache), tmp_path / "model")
    corpus = write_synthetic_corpus(tmp_path / "corpus", ["deu_Latn"], {"quora": 96, "nli": 64}, seed=0,
                                    triplet_datasets=["nli"])
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(_settings(model, corpus)))

    run_contrastive(load_config(ContrastiveConfig, config, [f"output_dir={tmp_path / 'one'}"]))
    run_torchrun(["-m", "modsent.cli", "train", "--config", str(config), f"output_dir={tmp_path / 'two'}"],
                 cwd=tmp_path)

    one, two = (read_metrics(tmp_path / name / "metrics", "train") for name in ("one", "two"))
    assert [r["step"] for r in one] == [r["step"] for r in two] == list(range(1, STEPS + 1))
    for ours, theirs in zip(two, one):
        assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-5), ours["step"]
        assert ours["epoch"] == theirs["epoch"]  # steps per epoch do not depend on the rank count
    assert one[-1]["loss"] < one[0]["loss"]  # it trains: the losses compared are not constants
    assert one[-1]["epoch"] == pytest.approx(STEPS / ((96 + 64) // 16), abs=1e-4)


def test_the_micro_batch_is_the_global_batch_split_over_ranks_and_accumulation() -> None:
    assert TrainerConfig(global_batch_size=128).micro_batch(world_size=1) == 128
    assert TrainerConfig(global_batch_size=128, grad_accum=2).micro_batch(world_size=8) == 8
    with pytest.raises(BatchSizeError, match=r"global_batch_size=30 does not divide into 2 rank\(s\) × "
                                             r"trainer.grad_accum=2; set it to a multiple of 4 \(e.g. 28 or 32\)"):
        TrainerConfig(global_batch_size=30, grad_accum=2).micro_batch(world_size=2)
    with pytest.raises(ConfigError, match="unknown key 'trainer.micro_batch_size'.*did you mean 'global_batch_size'"):
        load_config(ContrastiveConfig, overrides=["model=m", "corpus=c", "languages=[deu_Latn]",
                                                  "trainer.micro_batch_size=16"])
