"""`modsent train` end to end on a tiny model: it learns, resumes exactly, exports a sentence-transformers model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from modsent.config import load_config
from modsent.testing import tiny_bert_mlm, tiny_nllb, write_synthetic_corpus
from modsent.train.stage import ContrastiveConfig, ContrastiveConfigError, run as run_contrastive
from modsent.train.metrics import read_metrics

STEPS, STOP_AT = 40, 20


def _config(model: Path, corpus: Path, output: Path, *overrides: str) -> ContrastiveConfig:
    return load_config(ContrastiveConfig, overrides=[
        f"model={model}", f"corpus={corpus}", "languages=[deu_Latn]", f"output_dir={output}",
        "trainer.ds_config=zero1", f"trainer.max_steps={STEPS}", "trainer.global_batch_size=16", "trainer.lr=1e-3",
        "trainer.schedule=constant", "trainer.adam_eps=1e-6", "trainer.save_every=20", "trainer.eval_every=0",
        "trainer.log_every=1", "trainer.progress_bar=false", "trainer.seed=3", *overrides])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("contrastive")
    train = write_synthetic_corpus(root / "train", ["deu_Latn", "fra_Latn"], {"quora": 400, "nli": 240}, seed=0,
                                   triplet_datasets=["nli"])
    held_out = write_synthetic_corpus(root / "eval", ["deu_Latn", "fra_Latn"], {"held_out": 200}, seed=99)
    return {"root": root, "train": train, "eval": held_out}


@pytest.fixture(scope="module")
def mono_runs(data: dict[str, Path], model_cache: Path) -> dict[str, Path]:
    """An uninterrupted run and one stopped at step STOP_AT, then resumed by a second call."""
    model = tiny_bert_mlm(cache_dir=model_cache)
    eval_options = (f"eval_corpus={data['eval']}", "eval_rows=200")
    full = data["root"] / "full"
    run_contrastive(_config(model, data["train"], full, *eval_options))
    resumed = data["root"] / "resumed"
    first = run_contrastive(_config(model, data["train"], resumed, *eval_options, f"trainer.stop_at_step={STOP_AT}"))
    assert (first.step, first.completed, first.export_dir) == (STOP_AT, False, None)
    second = run_contrastive(_config(model, data["train"], resumed, *eval_options))
    assert second.resumed_from is not None and second.resumed_from.name == f"step-{STOP_AT:08d}"
    return {"full": full, "resumed": resumed}


def test_training_raises_held_out_retrieval_accuracy(mono_runs: dict[str, Path]) -> None:
    evals = read_metrics(mono_runs["full"] / "metrics", "eval")
    before, after = evals[0], evals[-1]
    assert (before["step"], after["step"]) == (0, STEPS)
    assert after["retrieval_acc_deu_Latn"] > before["retrieval_acc_deu_Latn"] + 0.1, (before, after)
    losses = [r["loss"] for r in read_metrics(mono_runs["full"] / "metrics", "train")]
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_resume_is_exact(mono_runs: dict[str, Path]) -> None:
    full = read_metrics(mono_runs["full"] / "metrics", "train")
    resumed = read_metrics(mono_runs["resumed"] / "metrics", "train")
    assert [r["step"] for r in resumed] == list(range(1, STEPS + 1))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in full]
    weights = [load_file(str(mono_runs[name] / "artifacts" / "model" / "model.safetensors")) for name in ("full", "resumed")]
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        assert (weights[0][key] == weights[1][key]).all(), key


def test_export_is_a_sentence_transformers_model(mono_runs: dict[str, Path], data: dict[str, Path]) -> None:
    from sentence_transformers import SentenceTransformer

    from modsent.models import SentenceEncoder

    export = mono_runs["full"] / "artifacts" / "model"
    texts = (data["eval"] / "held_out" / "deu_Latn_1.txt").read_text(encoding="utf-8").splitlines()[:20]
    ours = SentenceEncoder.from_pretrained(export)
    assert (ours.pooling, ours.max_seq_length) == ("mean", 64)
    np.testing.assert_allclose(SentenceTransformer(str(export), device="cpu").encode(texts), ours.encode(texts),
                               atol=1e-5)
    # The export holds the trained weights: it reproduces the last held-out retrieval accuracy.
    anchors, positives = ((data["eval"] / "held_out" / f"deu_Latn_{col}.txt").read_text(encoding="utf-8").splitlines()
                          for col in (1, 2))
    scores = ours.encode(anchors, normalize=True) @ ours.encode(positives, normalize=True).T
    accuracy = float(np.mean(scores.argmax(axis=1) == np.arange(len(anchors))))
    final = read_metrics(mono_runs["full"] / "metrics", "eval")[-1]["retrieval_acc_deu_Latn"]
    assert accuracy == pytest.approx(final, abs=0.011)


def test_cross_lingual_training_of_an_nllb_encoder(data: dict[str, Path], model_cache: Path) -> None:
    output = data["root"] / "cross"
    cfg = _config(tiny_nllb(cache_dir=model_cache), data["train"], output, "train_type=cross",
                  "languages=[eng_Latn, deu_Latn, fra_Latn]", "group_by_length=true", "trainer.max_steps=6",
                  f"eval_corpus={data['eval']}", "eval_rows=50", "loss.symmetric=true")
    result = run_contrastive(cfg)
    assert result.completed and result.step == 6
    assert {"retrieval_acc", "retrieval_acc_cross", "retrieval_acc_eng_Latn"} <= result.eval_metrics.keys()
    train = read_metrics(output / "metrics", "train")
    assert all(np.isfinite(r["loss"]) for r in train) and len(train) == 6
    from modsent.models import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(result.export_dir)
    assert type(encoder.backbone).__name__ == "M2M100Encoder" and encoder.needs_lang


def test_cached_loss_trains_with_zero1_and_refuses_zero2(data: dict[str, Path], model_cache: Path) -> None:
    model = tiny_bert_mlm(cache_dir=model_cache)
    output = data["root"] / "cached"
    result = run_contrastive(_config(model, data["train"], output, "loss.cached=true", "loss.mini_batch_size=5",
                                     "trainer.max_steps=4"))
    assert result.completed and all(np.isfinite(r["loss"]) for r in read_metrics(output / "metrics", "train"))
    with pytest.raises(ContrastiveConfigError, match="ZeRO stage 0 or 1"):
        run_contrastive(_config(model, data["train"], data["root"] / "cached2", "loss.cached=true",
                                "trainer.ds_config=zero2"))


def test_unknown_dataset_name_is_a_clear_error(data: dict[str, Path], model_cache: Path) -> None:
    with pytest.raises(ContrastiveConfigError, match=r"\['paws'\] are not in"):
        run_contrastive(_config(tiny_bert_mlm(cache_dir=model_cache), data["train"], data["root"] / "bad",
                                "datasets=[quora, paws]"))


@pytest.mark.parametrize("name", ["train_mono.yaml", "train_cross.yaml"])
def test_shipped_contrastive_configs_use_the_reference_random_batches(name):
    """Length grouping changes which in-batch negatives a row sees: the reference draws batches at random."""
    configs = Path(__file__).resolve().parents[2] / "configs"
    assert load_config(ContrastiveConfig, configs / name).group_by_length is False

