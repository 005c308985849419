"""SentenceEncoder: loading, per-language tokenisation, the sentence-transformers format, `modsent encode`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modsent.cli import main as cli_main
from modsent.models.encoder import EncoderLoadError, LanguageRequiredError, SentenceEncoder
from modsent.models.batching import length_batches, pad_token_ids
from modsent.testing import tiny_bert_mlm, tiny_nllb, translate_synthetic
from modsent.testing.synthetic import synthetic_sentences

TEXTS = synthetic_sentences(9, seed=3) + ["Short.", "A much, much longer sentence with many words " * 3]


@pytest.fixture(scope="module")
def bert_dir(model_cache: Path) -> Path:
    return tiny_bert_mlm(cache_dir=model_cache)


@pytest.fixture(scope="module")
def nllb_dir(model_cache: Path) -> Path:
    return tiny_nllb(cache_dir=model_cache)


def test_plain_transformers_dir_gives_mean_pooling_over_the_masked_lm_encoder(bert_dir: Path) -> None:
    from transformers import AutoModelForMaskedLM

    encoder = SentenceEncoder.from_pretrained(bert_dir)
    assert (encoder.pooling, encoder.max_seq_length, encoder.normalize) == ("mean", 128, False)
    mlm = AutoModelForMaskedLM.from_pretrained(bert_dir).eval()
    features = encoder.tokenize(TEXTS[:3])
    with torch.no_grad():
        hidden = mlm.bert(**features).last_hidden_state
    mask = features["attention_mask"].unsqueeze(-1).float()
    expected = (hidden * mask).sum(1) / mask.sum(1)
    np.testing.assert_allclose(encoder.encode(TEXTS[:3]), expected.numpy(), atol=1e-6)


def test_encode_keeps_input_order_whatever_the_batching(bert_dir: Path) -> None:
    encoder = SentenceEncoder.from_pretrained(bert_dir, max_seq_length=16)
    one_by_one = np.stack([encoder.encode([text])[0] for text in TEXTS])
    np.testing.assert_allclose(encoder.encode(TEXTS, batch_size=4), one_by_one, atol=1e-5)
    normalized = encoder.encode(TEXTS, normalize=True)
    np.testing.assert_allclose(np.linalg.norm(normalized, axis=1), 1.0, atol=1e-5)
    assert max(len(ids) for ids in encoder.token_ids(TEXTS)) == 16  # truncated to max_seq_length


def test_a_token_budget_splits_padded_batches_without_changing_the_embeddings(bert_dir: Path) -> None:
    encoder = SentenceEncoder.from_pretrained(bert_dir, max_seq_length=32)
    lengths = [len(ids) for ids in encoder.token_ids(TEXTS)]
    capped, plain = length_batches(lengths, 8, max_tokens=64), length_batches(lengths, 8)
    assert sorted(i for batch in capped for i in batch) == list(range(len(TEXTS)))
    padded = [len(batch) * max(lengths[i] for i in batch) for batch in capped]
    assert all(tokens <= 64 or len(batch) == 1 for tokens, batch in zip(padded, capped))
    assert sum(padded) < sum(len(batch) * max(lengths[i] for i in batch) for batch in plain)
    assert [lengths[batch[0]] for batch in capped] == sorted((lengths[batch[0]] for batch in capped), reverse=True)
    np.testing.assert_allclose(encoder.encode(TEXTS, batch_size=8, max_tokens=64), encoder.encode(TEXTS, batch_size=8),
                               atol=1e-5)
    with pytest.raises(ValueError, match="max_tokens must be >= 1"):
        length_batches(lengths, 8, max_tokens=0)


@pytest.mark.parametrize("pooling, normalize", [("mean", False), ("cls", False), ("max", True)])
def test_saved_model_loads_in_sentence_transformers_with_identical_embeddings(
        bert_dir: Path, tmp_path: Path, pooling: str, normalize: bool) -> None:
    from sentence_transformers import SentenceTransformer

    encoder = SentenceEncoder.from_pretrained(bert_dir, pooling=pooling, max_seq_length=24, normalize=normalize)
    saved = encoder.save(tmp_path / "model")
    for name in ("modules.json", "config_sentence_transformers.json", "sentence_bert_config.json",
                 "1_Pooling/config.json", "model.safetensors", "config.json", "tokenizer.json"):
        assert (saved / name).is_file(), name
    assert json.loads((saved / "sentence_bert_config.json").read_text())["max_seq_length"] == 24
    ours = encoder.encode(TEXTS)
    theirs = SentenceTransformer(str(saved), device="cpu").encode(TEXTS, convert_to_numpy=True)
    np.testing.assert_allclose(theirs, ours, atol=1e-5)
    reloaded = SentenceEncoder.from_pretrained(saved)
    assert (reloaded.pooling, reloaded.max_seq_length, reloaded.normalize) == (pooling, 24, normalize)
    np.testing.assert_allclose(reloaded.encode(TEXTS), ours, atol=1e-6)


def test_reads_a_directory_saved_by_sentence_transformers_itself(bert_dir: Path, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    transformer = Transformer(str(bert_dir), max_seq_length=20)
    model = SentenceTransformer(modules=[transformer, Pooling(transformer.get_embedding_dimension(), "cls")],
                                device="cpu")
    model.save(str(tmp_path / "st"))
    encoder = SentenceEncoder.from_pretrained(tmp_path / "st")
    assert (encoder.pooling, encoder.max_seq_length) == ("cls", 20)
    np.testing.assert_allclose(encoder.encode(TEXTS), model.encode(TEXTS), atol=1e-5)


def test_modsent_encode_matches_sentence_transformers(bert_dir: Path, tmp_path: Path, capsys) -> None:
    from sentence_transformers import SentenceTransformer

    saved = SentenceEncoder.from_pretrained(bert_dir, max_seq_length=32).save(tmp_path / "model")
    lines = tmp_path / "lines.txt"
    lines.write_text("".join(t + "\n" for t in TEXTS), encoding="utf-8")
    out = tmp_path / "emb.npy"
    assert cli_main(["encode", "--model", str(saved), "--input", str(lines), "--output", str(out),
                     "--batch-size", "4"]) == 0
    assert "11 x 32" in capsys.readouterr().out
    ours = np.load(out)
    assert ours.dtype == np.float32 and ours.shape == (len(TEXTS), 32)
    np.testing.assert_allclose(SentenceTransformer(str(saved), device="cpu").encode(TEXTS), ours, atol=1e-5)


def test_nllb_translation_model_gives_its_trained_encoder_and_per_language_tokens(nllb_dir: Path,
                                                                                  tmp_path: Path) -> None:
    from transformers import AutoModelForSeq2SeqLM

    encoder = SentenceEncoder.from_pretrained(nllb_dir)
    full = AutoModelForSeq2SeqLM.from_pretrained(nllb_dir)
    # The encoder's weights are the translation model's, not a fresh initialisation.
    torch.testing.assert_close(encoder.backbone.layers[0].fc1.weight, full.model.encoder.layers[0].fc1.weight)
    torch.testing.assert_close(encoder.backbone.embed_tokens.weight, full.model.shared.weight)
    assert encoder.needs_lang
    german, french = translate_synthetic(TEXTS[:2], "deu_Latn"), translate_synthetic(TEXTS[:2], "fra_Latn")
    ids = encoder.token_ids(german + french, ["deu_Latn"] * 2 + ["fra_Latn"] * 2)
    deu, fra = (encoder.tokenizer.convert_tokens_to_ids(code) for code in ("deu_Latn", "fra_Latn"))
    assert [row[0] for row in ids] == [deu, deu, fra, fra]  # NLLB puts the source language token first
    assert ids[0] == encoder.token_ids(german[:1], "deu_Latn")[0]  # mixed-language batches tokenise per language
    with pytest.raises(LanguageRequiredError, match="pass lang="):
        encoder.encode(german)
    with pytest.raises(LanguageRequiredError, match="not a language token"):
        encoder.encode(german, lang="xx_Fake")
    ours = encoder.encode(german, lang="deu_Latn")
    saved = encoder.save(tmp_path / "sonar")
    np.testing.assert_allclose(SentenceEncoder.from_pretrained(saved).encode(german, lang="deu_Latn"), ours, atol=1e-6)
    # sentence-transformers loads the encoder half too; it tokenises with the tokenizer's saved src_lang.
    from sentence_transformers import SentenceTransformer

    st_model = SentenceTransformer(str(saved), device="cpu")
    st_model.tokenizer.src_lang = "deu_Latn"
    np.testing.assert_allclose(st_model.encode(german), ours, atol=1e-5)


def test_pad_token_ids_right_pads() -> None:
    features = pad_token_ids([[7, 8, 9], [5]], pad_id=1)
    assert features["input_ids"].tolist() == [[7, 8, 9], [5, 1, 1]]
    assert features["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_bad_model_directories_are_clear_errors(bert_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(EncoderLoadError, match="does not exist"):
        SentenceEncoder.from_pretrained(tmp_path / "nowhere")
    # Weights that do not fit the architecture must not be silently replaced by random ones.
    from safetensors.torch import save_file

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((bert_dir / "config.json").read_text())
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (broken / name).write_text((bert_dir / name).read_text())
    save_file({"something.else": torch.zeros(2)}, str(broken / "model.safetensors"))
    with pytest.raises(EncoderLoadError, match="lacks .* weight"):
        SentenceEncoder.from_pretrained(broken)
    other = SentenceEncoder.from_pretrained(bert_dir).save(tmp_path / "other")
    modules = json.loads((other / "modules.json").read_text())
    modules.append({"idx": 2, "name": "2", "path": "2_LayerNorm", "type": "sentence_transformers.models.LayerNorm"})
    (other / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(EncoderLoadError, match="LayerNorm.* not supported"):
        SentenceEncoder.from_pretrained(other)
    modules[1:] = [{"idx": 1, "name": "1", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}]
    (other / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(EncoderLoadError, match=r"not Transformer → Pooling → \[Dense\]"):
        SentenceEncoder.from_pretrained(other)  # a Dense with nothing pooled before it
