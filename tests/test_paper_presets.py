"""configs/paper/: one preset per command of the seed's README, with the README's values and the seed's defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from modsent.config import load_config

PAPER = Path(__file__).resolve().parents[1] / "configs" / "paper"


def _load(name: str, cls: type):
    path = PAPER / f"{name}.yaml"
    header = path.read_text(encoding="utf-8").splitlines()[0]
    command = name.split("_")[0] if name.startswith(("train", "eval")) else name
    assert header.startswith(f"# modsent {command.replace('eval', 'evaluate')} --config configs/paper/{name}.yaml")
    assert "Reproduces the reference's" in path.read_text(encoding="utf-8")
    return load_config(cls, path)


def test_every_preset_is_checked() -> None:
    assert sorted(p.stem for p in PAPER.glob("*.yaml")) == sorted(
        ["vocab", "adapt", "train_mono", "train_cross", "align", "eval_sts_str", "eval_belebele"])


def test_vocab_preset() -> None:
    from modsent.vocab.config import VocabConfig

    cfg = _load("vocab", VocabConfig)
    assert (cfg.vocab_size, cfg.fasttext.dim, cfg.fasttext.epochs, cfg.fasttext.min_count) == (50_048, 300, 3, 10)


def test_adapt_preset_is_train_mlm_py() -> None:
    from modsent.adapt.config import AdaptConfig

    cfg = _load("adapt", AdaptConfig)
    t = cfg.trainer
    assert (cfg.max_seq_length, cfg.mlm_probability) == (256, 0.15)
    assert (t.lr, t.global_batch_size, t.grad_accum, t.epochs, t.max_steps) == (5e-5, 256, 2, 3.0, None)
    assert (t.weight_decay, t.warmup_steps, t.max_grad_norm, t.schedule, t.precision) == (
        0.0, 0, 0.0, "warmup_linear", "fp32")


@pytest.mark.parametrize(("name", "train_type"), [("train_mono", "mono"), ("train_cross", "cross")])
def test_contrastive_presets_are_train_sentence_encoder_py(name: str, train_type: str) -> None:
    from modsent.train.config import ContrastiveConfig

    cfg = _load(name, ContrastiveConfig)
    t = cfg.trainer
    assert (cfg.train_type, cfg.max_seq_length, cfg.pooling, cfg.loss.scale, cfg.group_by_length) == (
        train_type, 64, "mean", 20.0, False)
    assert (t.lr, t.global_batch_size, t.epochs, t.max_steps, t.adam_eps, t.schedule, t.precision) == (
        2e-5, 32, 1.0, None, 1e-6, "constant", "fp32")
    assert (t.weight_decay, t.max_grad_norm, t.warmup_steps, t.grad_accum) == (0.01, 1.0, 0, 1)
    assert len(cfg.languages) == (1 if train_type == "mono" else 6)


def test_align_preset_is_train_cla_adapter_py() -> None:
    from modsent.align.config import AlignConfig

    cfg = _load("align", AlignConfig)
    t = cfg.trainer
    assert (cfg.max_seq_length, cfg.scale, cfg.adapter.reduction_factor, cfg.adapter.scaling) == (128, 20.0, 2.0, 4.0)
    assert (t.lr, t.global_batch_size, t.epochs, t.max_steps, t.adam_eps, t.schedule, t.precision) == (
        1e-4, 128, 1.0, None, 1e-6, "constant", "fp32")
    assert (cfg.lang, cfg.pivot_lang, cfg.data.group_by_length) == ("deu_Latn", "eng_Latn", False)


@pytest.mark.parametrize(("name", "tasks", "batch"), [("eval_sts_str", ["sts"], 32),
                                                      ("eval_belebele", ["belebele", "belebele_retrieval"], 512)])
def test_evaluation_presets_read_512_tokens(name: str, tasks: list[str], batch: int) -> None:
    from modsent.evaluate.config import EvaluateConfig

    cfg = _load(name, EvaluateConfig)
    assert (cfg.max_seq_length, cfg.tasks, cfg.batch_size, cfg.baseline) == (512, tasks, batch, "labse")
