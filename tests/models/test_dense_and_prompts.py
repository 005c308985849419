"""LaBSE's layout (Transformer → CLS Pooling → Dense tanh → Normalize) and sentence-transformers prompts, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from modsent.config import load_config
from modsent.models.encoder import SentenceEncoder
from modsent.testing import synthetic_sentences, tiny_bert_mlm, write_synthetic_corpus

TEXTS = synthetic_sentences(12, seed=8)


def _labse_shaped(base: Path, out: Path, safe_serialization: bool = True, **prompts) -> Path:
    """A tiny model in LaBSE's layout, built and saved by sentence-transformers itself."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Dense
    from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer

    transformer = Transformer(str(base), max_seq_length=48)
    dim = transformer.get_embedding_dimension()
    torch.manual_seed(0)
    dense = Dense(dim, dim, activation_function=torch.nn.Tanh())
    model = SentenceTransformer(modules=[transformer, Pooling(dim, "cls"), dense, Normalize()], device="cpu", **prompts)
    model.save(str(out), safe_serialization=safe_serialization)
    return out


@pytest.fixture(scope="module")
def labse_dir(tmp_path_factory: pytest.TempPathFactory, model_cache: Path) -> Path:
    return _labse_shaped(tiny_bert_mlm(cache_dir=model_cache), tmp_path_factory.mktemp("labse") / "st")


def _st_encode(path: Path, texts: list[str]) -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_numpy=True)


def test_labse_layout_embeds_like_sentence_transformers(labse_dir: Path) -> None:
    encoder = SentenceEncoder.from_pretrained(labse_dir)
    assert (encoder.pooling, encoder.normalize, encoder.max_seq_length) == ("cls", True, 48)
    assert encoder.dense is not None and encoder.dense.activation == "tanh"
    np.testing.assert_allclose(encoder.encode(TEXTS), _st_encode(labse_dir, TEXTS), atol=1e-5)


def test_saved_labse_layout_keeps_its_dense_module_in_safetensors(labse_dir: Path, tmp_path: Path) -> None:
    encoder = SentenceEncoder.from_pretrained(labse_dir)
    saved = encoder.save(tmp_path / "ours")
    modules = json.loads((saved / "modules.json").read_text())
    assert [m["type"].rsplit(".", 1)[-1] for m in modules] == ["Transformer", "Pooling", "Dense", "Normalize"]
    assert (saved / "2_Dense" / "model.safetensors").is_file() and not list(saved.rglob("*.bin"))
    weights = load_file(str(saved / "2_Dense" / "model.safetensors"))
    torch.testing.assert_close(weights["linear.weight"], encoder.dense.linear.weight, rtol=0, atol=0)
    np.testing.assert_allclose(_st_encode(saved, TEXTS), encoder.encode(TEXTS), atol=1e-5)

    from modsent.models.adapter import encoder_fingerprint

    with torch.no_grad():
        encoder.dense.linear.bias.add_(0.1)  # only the Dense weights differ: adapters and pivot caches must notice
    assert encoder_fingerprint(encoder.save(tmp_path / "other_dense")) != encoder_fingerprint(saved)


def test_a_legacy_pytorch_bin_dense_module_is_read_safely(model_cache: Path, tmp_path: Path) -> None:
    legacy = _labse_shaped(tiny_bert_mlm(cache_dir=model_cache), tmp_path / "legacy", safe_serialization=False)
    assert (legacy / "2_Dense" / "pytorch_model.bin").is_file()
    np.testing.assert_allclose(SentenceEncoder.from_pretrained(legacy).encode(TEXTS), _st_encode(legacy, TEXTS),
                               atol=1e-5)


def test_contrastive_training_trains_the_dense_layer_and_keeps_cls_pooling(labse_dir: Path, tmp_path: Path) -> None:
    from modsent.train.stage import ContrastiveConfig, run as run_contrastive

    corpus = write_synthetic_corpus(tmp_path / "corpus", ["deu_Latn"], {"quora": 64}, seed=0)
    cfg = load_config(ContrastiveConfig, overrides=[
        f"model={labse_dir}", f"corpus={corpus}", "languages=[deu_Latn]", f"output_dir={tmp_path / 'run'}",
        "trainer.ds_config=zero0", "trainer.max_steps=3", "trainer.global_batch_size=16", "trainer.lr=1e-2",
        "trainer.eval_every=0", "trainer.progress_bar=false"])
    result = run_contrastive(cfg)
    trained = SentenceEncoder.from_pretrained(result.export_dir)
    before = SentenceEncoder.from_pretrained(labse_dir)
    assert trained.pooling == "cls" and trained.max_seq_length == 64 and trained.dense is not None
    assert not torch.allclose(trained.dense.linear.weight, before.dense.linear.weight)
    np.testing.assert_allclose(_st_encode(result.export_dir, TEXTS), trained.encode(TEXTS), atol=1e-5)


def test_the_default_prompt_reaches_every_encode_path(model_cache: Path, tmp_path: Path) -> None:
    from modsent.align.stage import AlignCollate
    from modsent.models.encoders import load_encoder
    from modsent.train.stage import TokenizeBatch
    from modsent.train.paraphrase_batches import ParaphraseBatch

    prompted = _labse_shaped(tiny_bert_mlm(cache_dir=model_cache), tmp_path / "prompted",
                             prompts={"query": "query: ", "passage": "passage: "}, default_prompt_name="query")
    encoder = SentenceEncoder.from_pretrained(prompted)
    assert encoder.prompt == "query: "
    with_prompt = [encoder.tokenizer("query: " + text)["input_ids"] for text in TEXTS[:2]]
    assert encoder.token_ids(TEXTS[:2]) == with_prompt
    ours = encoder.encode(TEXTS)
    np.testing.assert_allclose(ours, _st_encode(prompted, TEXTS), atol=1e-5)  # ST applies its default prompt

    batch = ParaphraseBatch("d", 0, (tuple(TEXTS[:2]), tuple(TEXTS[2:4])), (("eng_Latn",) * 2, ("deu_Latn",) * 2))
    assert TokenizeBatch(encoder)(batch)["input_ids"][0, :len(with_prompt[0])].tolist() == with_prompt[0]  # train
    aligned = AlignCollate(encoder, encoder, "eng_Latn")(batch)  # align: both sides
    assert aligned["pivot_input_ids"][0, :len(with_prompt[0])].tolist() == with_prompt[0]
    np.testing.assert_allclose(load_encoder(prompted).encode(TEXTS, "eng_Latn", aligned=False), ours, atol=1e-5)

    saved = encoder.save(tmp_path / "resaved")
    config = json.loads((saved / "config_sentence_transformers.json").read_text())
    assert config["default_prompt_name"] == "query" and config["prompts"]["passage"] == "passage: "
