"""Model directories that used to load wrong (no tokenizer files) or raise raw errors (damaged weights, a file)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from modsent.models import EncoderLoadError, SentenceEncoder
from modsent.testing.tiny_models import tiny_bert_mlm


@pytest.fixture(scope="module")
def bert_dir(model_cache: Path) -> Path:
    return tiny_bert_mlm(cache_dir=model_cache)


def _copy_without_tokenizer(bert_dir: Path, out: Path) -> Path:
    return shutil.copytree(bert_dir, out, ignore=shutil.ignore_patterns("tokenizer*", "vocab*", "special_tokens*"))


def test_a_model_without_tokenizer_files_is_refused_by_every_loader(bert_dir, tmp_path):
    from modsent.adapt.stage import ModelSourceError, load_mlm_model
    from modsent.vocab.errors import SourceModelError
    from modsent.vocab.tokenizer import load_tokenizer

    bare = _copy_without_tokenizer(bert_dir, tmp_path / "bare")
    # Before: transformers built a 5-token BertTokenizer; every word became [UNK], encode exited 0.
    with pytest.raises(EncoderLoadError, match=rf"{bare}: it has no tokenizer files .* only its 5 special tokens"):
        SentenceEncoder.from_pretrained(bare)
    with pytest.raises(ModelSourceError, match="no tokenizer files"):
        load_mlm_model(bare)
    with pytest.raises(SourceModelError, match="no tokenizer files"):
        load_tokenizer(bare)
    assert SentenceEncoder.from_pretrained(bert_dir).encode(["a sentence"]).shape[0] == 1  # the complete one loads


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_damaged_weights_are_a_clear_error(bert_dir, tmp_path, damage):
    from modsent.adapt.stage import ModelSourceError, load_mlm_model

    model = shutil.copytree(bert_dir, tmp_path / "model")
    weights = model / "model.safetensors"
    size = weights.stat().st_size
    weights.write_bytes(weights.read_bytes()[:size // 2] if damage == "truncated" else os.urandom(size))
    with pytest.raises(EncoderLoadError, match=rf"{weights.parent}: the weights file is damaged or incomplete"):
        SentenceEncoder.from_pretrained(model)
    with pytest.raises(ModelSourceError, match="damaged or incomplete"):
        load_mlm_model(model)


def test_a_file_given_as_model_directory_says_so(bert_dir, tmp_path):
    weights = bert_dir / "model.safetensors"
    with pytest.raises(EncoderLoadError, match=f"{weights} is a file, not a model directory"):
        SentenceEncoder.from_pretrained(weights)
    with pytest.raises(EncoderLoadError, match=f"{tmp_path / 'nowhere'}: model directory does not exist"):
        SentenceEncoder.from_pretrained(tmp_path / "nowhere")


def test_encode_output_naming_a_directory_fails_before_loading_the_model(tmp_path):
    """Before: `encode --output DIR` encoded everything, then failed with IsADirectoryError."""
    from modsent.output_checks import OutputError
    from modsent.models.encoders import encode_file

    (tmp_path / "in.txt").write_text("a\n")
    with pytest.raises(OutputError, match=rf"{tmp_path} is a directory; the embeddings file \(--output\) must be a file"):
        encode_file(tmp_path / "no-model-needed", tmp_path / "in.txt", tmp_path)
