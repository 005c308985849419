"""Tokenizer training: same family, special tokens and template as the source; round trips; errors."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from modsent.testing import synthetic_sentences, translate_synthetic
from modsent.vocab import (
    EmptyTextError,
    TokenizerFamilyError,
    check_same_family,
    iter_texts,
    load_tokenizer,
    require_text,
    tokenizer_family,
    train_tokenizer,
)


def _held_out(n: int = 50) -> list[str]:
    return translate_synthetic(synthetic_sentences(n, seed=99), "deu_Latn")


def test_trained_tokenizer_keeps_family_special_tokens_and_template(source_tokenizer, target_tokenizer, tmp_path):
    assert tokenizer_family(target_tokenizer) == "WordPiece"
    assert target_tokenizer.all_special_tokens == source_tokenizer.all_special_tokens
    assert len(target_tokenizer) <= 600
    # The vocabulary is the target language's: its most common words are single tokens.
    assert target_tokenizer.get_vocab().keys() != source_tokenizer.get_vocab().keys()

    target_tokenizer.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    text = _held_out(1)[0]
    ids = reloaded(text)["input_ids"]
    assert ids == target_tokenizer(text)["input_ids"]
    assert ids[0] == reloaded.cls_token_id and ids[-1] == reloaded.sep_token_id
    pair = reloaded(text, text)
    assert pair["input_ids"].count(reloaded.sep_token_id) == 2 and set(pair["token_type_ids"]) == {0, 1}


def test_round_trip_gives_normalised_text(target_tokenizer):
    normalizer = target_tokenizer.backend_tokenizer.normalizer
    for text in _held_out():
        ids = target_tokenizer(text)["input_ids"]
        assert target_tokenizer.unk_token_id not in ids, text
        assert target_tokenizer.decode(ids, skip_special_tokens=True) == normalizer.normalize_str(text)


def test_target_tokenizer_segments_target_text_more_compactly(source_tokenizer, target_tokenizer):
    text = " ".join(_held_out())
    assert len(target_tokenizer.tokenize(text)) < 0.8 * len(source_tokenizer.tokenize(text))


def test_unigram_source_trains_unigram_target(unigram_tokenizer_dir):
    source = load_tokenizer(unigram_tokenizer_dir)
    lines = translate_synthetic(synthetic_sentences(500, seed=3), "deu_Latn")
    target = train_tokenizer(unigram_tokenizer_dir, lambda: lines, vocab_size=150)
    assert tokenizer_family(target) == "Unigram"
    assert target.all_special_tokens == source.all_special_tokens
    text = lines[0]
    ids = target(text)["input_ids"]
    assert ids[0] == target.bos_token_id and ids[-1] == target.eos_token_id
    assert target.decode(ids, skip_special_tokens=True) == text


def _train_and_save(source_dir: Path, vocab_size: int, output_dir: Path) -> int:
    lines = translate_synthetic(synthetic_sentences(3000, seed=1), "deu_Latn")
    train_tokenizer(source_dir, lambda: lines, vocab_size=vocab_size).save_pretrained(output_dir)
    return os.getpid()


@pytest.mark.parametrize("family", ["WordPiece", "Unigram"])
def test_same_text_gives_the_same_tokenizer_file_in_another_process(family, source_model_dir, unigram_tokenizer_dir,
                                                                     tmp_path):
    # tokenizers numbers WordPiece's "##" symbols in hash-map order and sums Unigram's scores over
    # hash maps, both seeded afresh per process: two processes gave different files (4 of 4 runs).
    source_dir, vocab_size = (source_model_dir, 400) if family == "WordPiece" else (unigram_tokenizer_dir, 300)
    runs = [(source_dir, vocab_size, tmp_path / str(run)) for run in range(2)]
    with multiprocessing.get_context("spawn").Pool(1, maxtasksperchild=1) as pool:
        pids = pool.starmap(_train_and_save, runs)
    assert pids[0] != pids[1]
    first, second = ((output / "tokenizer.json").read_bytes() for _, _, output in runs)
    assert first == second
    trained = json.loads(first)
    assert trained["model"]["type"] == family
    # The symbols numbered up front are ordinary vocabulary, not special tokens.
    assert len(trained["added_tokens"]) == 5
    assert load_tokenizer(tmp_path / "0").all_special_tokens == load_tokenizer(source_dir).all_special_tokens


def test_different_families_are_refused(source_tokenizer, unigram_tokenizer_dir):
    unigram = load_tokenizer(unigram_tokenizer_dir)
    with pytest.raises(TokenizerFamilyError, match="Unigram.*WordPiece"):
        check_same_family(source_tokenizer, unigram)


def test_empty_training_text_is_refused(source_tokenizer):
    with pytest.raises(EmptyTextError, match="empty"):
        train_tokenizer(source_tokenizer, lambda: [], vocab_size=100)


def test_require_text_names_the_empty_file(tmp_path):
    good, empty = tmp_path / "good.txt", tmp_path / "blank.txt"
    good.write_text("Ein Satz.\n", encoding="utf-8")
    empty.write_text("\n   \n\n", encoding="utf-8")
    require_text([good], "deu_Latn")
    with pytest.raises(EmptyTextError, match="blank.txt: no non-blank line"):
        require_text([good, empty], "deu_Latn")


def test_iter_texts_streams_text_files_and_corpus_columns(tmp_path):
    text = tmp_path / "plain.txt"
    text.write_text("  first line \n\nsecond line\n", encoding="utf-8")
    corpus = tmp_path / "corpus" / "quora"
    corpus.mkdir(parents=True)
    (corpus / "deu_Latn_1.txt").write_text("a1\na2\n", encoding="utf-8")
    (corpus / "deu_Latn_2.txt").write_text("b1\nb2\n", encoding="utf-8")
    (corpus / "eng_Latn_1.txt").write_text("e1\ne2\n", encoding="utf-8")
    assert list(iter_texts([text, tmp_path / "corpus"], "deu_Latn")) == ["first line", "second line", "a1", "b1", "a2", "b2"]
    with pytest.raises(EmptyTextError, match="no fra_Latn sentences"):
        require_text([tmp_path / "corpus"], "fra_Latn")
