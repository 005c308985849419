"""Vocabulary trimming: the kept tokens segment the text exactly as the source did, with the source's rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from modsent.models.encoder import SentenceEncoder
from modsent.testing import synthetic_sentences, translate_synthetic
from modsent.vocab import EMBEDDINGS_FILE, EMBEDDINGS_KEY, REPORT_FILE, TOKENIZER_DIR, VocabConfig, VocabError, load_tokenizer, run_vocab
from modsent.vocab.config import MODEL_DIR
from modsent.vocab.trim import trim_vocabulary

from .conftest import TARGET_LANG


def _source_ids(source, text: str) -> list[int]:
    return source(text)["input_ids"]


def _mapped_ids(result, text: str) -> list[int]:
    return [result.source_ids[i] for i in result.tokenizer(text)["input_ids"]]


@pytest.fixture(scope="module")
def german_lines() -> list[str]:
    return translate_synthetic(synthetic_sentences(400, seed=3), TARGET_LANG)


@pytest.mark.parametrize("family", ["WordPiece", "Unigram"])
def test_trimmed_tokenizer_segments_its_text_exactly_as_the_source(family, source_tokenizer, unigram_tokenizer_dir,
                                                                   german_lines) -> None:
    source = source_tokenizer if family == "WordPiece" else load_tokenizer(unigram_tokenizer_dir)
    result = trim_vocabulary(source, iter(german_lines))
    assert len(result.tokenizer) == len(result.source_ids) < len(source)
    assert result.source_ids == sorted(set(result.source_ids))
    assert all(_mapped_ids(result, line) == _source_ids(source, line) for line in german_lines)
    special_ids = set(source.all_special_ids)
    assert special_ids <= set(result.source_ids)
    assert {result.source_ids[i] for i in result.tokenizer.all_special_ids} == special_ids
    assert result.report["text_token_coverage"] == 1.0 and result.report["lines"] == len(german_lines)


def test_a_word_never_seen_splits_into_kept_pieces_not_unk(unigram_tokenizer_dir, german_lines) -> None:
    source = load_tokenizer(unigram_tokenizer_dir)
    result = trim_vocabulary(source, iter(german_lines))
    letters = sorted(c for c in set("".join(german_lines))
                     if c.isalpha() and source.unk_token_id not in _source_ids(source, "x" + c))
    unseen_word = "".join(reversed(letters))[:12]  # letters the source can spell, in an order no line has
    assert unseen_word not in " ".join(german_lines) and len(unseen_word) >= 8
    ids = result.tokenizer(unseen_word)["input_ids"]
    assert result.tokenizer.unk_token_id not in ids and _mapped_ids(result, unseen_word) != _source_ids(source, "")
    assert result.tokenizer.decode(ids, skip_special_tokens=True).replace(" ", "") == unseen_word


def test_vocab_size_caps_and_min_count_drops_rare_tokens(unigram_tokenizer_dir, german_lines) -> None:
    source = load_tokenizer(unigram_tokenizer_dir)
    full = trim_vocabulary(source, iter(german_lines))
    frequent = trim_vocabulary(source, iter(german_lines), min_count=50)
    assert len(frequent.source_ids) < len(full.source_ids)
    assert set(frequent.source_ids) < set(full.source_ids)
    capped = trim_vocabulary(source, iter(german_lines), vocab_size=full.report["n_fallback_and_special"] + 5)
    assert len(capped.source_ids) == full.report["n_fallback_and_special"] + 5
    with pytest.raises(VocabError, match="raise vocab_size"):
        trim_vocabulary(source, iter(german_lines), vocab_size=3)


def test_min_vocab_size_fills_a_small_texts_vocabulary_with_the_most_probable_pieces(unigram_tokenizer_dir,
                                                                                     source_tokenizer):
    """Trimmed to 3 lines, most other lines split differently from the source; the floor gives many back."""
    source = load_tokenizer(unigram_tokenizer_dir)  # trained on synthetic English: many multi-letter pieces
    lines = synthetic_sentences(200, seed=7)
    small, unseen = lines[:3], lines[3:]
    bare = trim_vocabulary(source, iter(small))
    floor = len(bare.source_ids) + 100
    filled = trim_vocabulary(source, iter(small), min_vocab_size=floor)
    assert len(filled.source_ids) == floor and set(bare.source_ids) < set(filled.source_ids)
    assert filled.report["n_floor_filler"] == 100

    scores = [score for _piece, score in json.loads(source.backend_tokenizer.to_str())["model"]["vocab"]]
    added = set(filled.source_ids) - set(bare.source_ids)
    # Every added piece outscores every piece left out (pieces of one script: the text's letters are all Latin).
    left_out = [i for i in range(len(scores)) if i not in filled.source_ids and any(c.isalpha() for c in source.convert_ids_to_tokens(i))]
    assert min(scores[i] for i in added) >= max(scores[i] for i in left_out)

    def identical(result) -> float:
        return float(np.mean([_mapped_ids(result, line) == _source_ids(source, line) for line in unseen]))

    assert identical(filled) >= identical(bare) + 0.2
    assert len(trim_vocabulary(source, iter(small), vocab_size=floor - 10, min_vocab_size=floor).source_ids) == floor - 10
    with pytest.raises(VocabError, match="needs a Unigram source"):
        trim_vocabulary(source_tokenizer, iter(small), min_vocab_size=floor)


def test_bpe_tokenizers_are_refused_with_the_alternative(german_lines) -> None:
    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    backend.train_from_iterator(german_lines, trainers.BpeTrainer(vocab_size=120, special_tokens=["<unk>"],
                                                                   show_progress=False))
    bpe = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    with pytest.raises(VocabError, match="not BPE; use vocab.method: focus"):
        trim_vocabulary(bpe, iter(german_lines))


@pytest.fixture(scope="module")
def prompted_encoder_dir(source_model_dir, tmp_path_factory):
    """The tiny BERT as a sentence-transformers model with e5-style prompts."""
    path = tmp_path_factory.mktemp("prompted") / "encoder"
    SentenceEncoder.from_pretrained(source_model_dir).save(path)
    settings_file = path / "config_sentence_transformers.json"
    settings = json.loads(settings_file.read_text()) if settings_file.exists() else {}
    settings["prompts"] = {"query": "query: ", "passage": "passage: "}
    settings_file.write_text(json.dumps(settings))
    return path


def test_run_vocab_trim_writes_a_smaller_model_that_encodes_like_the_source(prompted_encoder_dir, target_text_file,
                                                                             target_lines, tmp_path) -> None:
    from sentence_transformers import SentenceTransformer

    out = run_vocab(VocabConfig(model=prompted_encoder_dir, text_files=[target_text_file], languages=["de"],
                                output_dir=tmp_path / "deu_Latn", method="trim"))
    assert sorted(p.name for p in out.iterdir()) == sorted([TOKENIZER_DIR, EMBEDDINGS_FILE, REPORT_FILE, MODEL_DIR])
    report = json.loads((out / REPORT_FILE).read_text())
    embeddings = load_file(str(out / EMBEDDINGS_FILE))[EMBEDDINGS_KEY]
    assert embeddings.shape[0] == report["n_target_tokens"] == len(load_tokenizer(out / TOKENIZER_DIR))
    assert report["embedding_params"]["target"] == embeddings.numel() < report["embedding_params"]["source"]

    source = SentenceTransformer(str(prompted_encoder_dir), device="cpu", local_files_only=True)
    trimmed = SentenceTransformer(str(out / MODEL_DIR), device="cpu", local_files_only=True)
    assert sum(p.numel() for p in trimmed.parameters()) == report["model_params"]
    assert report["model_params"] < sum(p.numel() for p in source.parameters())
    lines = target_lines[:64]
    for prompt in ("query: ", None):  # the prompt's own tokens are kept too
        np.testing.assert_allclose(trimmed.encode(lines, prompt=prompt), source.encode(lines, prompt=prompt),
                                   atol=1e-6)
    # Every kept token's row is the source's row of the same token, unchanged.
    trimmed_vocab = load_tokenizer(out / TOKENIZER_DIR).get_vocab()
    source_vocab = load_tokenizer(prompted_encoder_dir).get_vocab()
    order = sorted(trimmed_vocab, key=trimmed_vocab.get)
    source_rows = source[0].auto_model.get_input_embeddings().weight.detach()
    assert torch.equal(embeddings, source_rows[[source_vocab[token] for token in order]])


def test_run_vocab_refuses_unknown_method_and_focus_only_settings(source_model_dir, target_text_file, tmp_path) -> None:
    base = dict(model=source_model_dir, text_files=[target_text_file], languages=["de"], output_dir=tmp_path / "o")
    with pytest.raises(VocabError, match="choose one of focus, trim"):
        run_vocab(VocabConfig(**base, method="prune"))
    with pytest.raises(VocabError, match="unset target_tokenizer"):
        run_vocab(VocabConfig(**base, method="trim", target_tokenizer=source_model_dir))
    assert not (tmp_path / "o").exists()
