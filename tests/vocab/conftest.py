"""Fixtures for the vocab stage: the shared tiny multilingual BERT MLM, synthetic target text.

The source is :func:`modsent.testing.tiny_bert_mlm`: a random-init BERT whose WordPiece vocabulary
(~2k tokens) covers ten synthetic languages, ``deu_Latn`` among them, as LaBSE's covers German.
The target is ``deu_Latn`` with a vocabulary of its own: it shares characters and frequent
subwords with the source (copied) and adds German-specific merges (FOCUS-initialised). One extra
line of letters that no synthetic language uses gives target tokens too rare for fastText
(``RARE_LINE``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import SentencePieceUnigramTokenizer
from transformers import XLMRobertaTokenizer

from modsent.testing import synthetic_sentences, tiny_bert_mlm, translate_synthetic
from modsent.vocab import FastTextOptions, focus_init, load_tokenizer, train_tokenizer
from modsent.vocab.stage import load_input_embeddings

TARGET_LANG = "deu_Latn"
RARE_LINE = "ŧŋŧ ŋŧŋ"  # letters outside both alphabets, seen once: below any min_count >= 2
TARGET_VOCAB = 600
# Small but not degenerate: on 6k lines fastText needs ~30 epochs before its vectors separate
# enough for sparsemax to drop most anchors (at 5 epochs every cosine is ~0.99 and every weight
# stays > 0). One thread keeps fastText deterministic.
FASTTEXT = FastTextOptions(dim=16, epochs=30, min_count=3, threads=1)


@pytest.fixture(scope="session")
def source_model_dir(model_cache) -> Path:
    """The shared tiny multilingual BertForMaskedLM (hidden 32; WordPiece of ~2k tokens over 10 scripts)."""
    return tiny_bert_mlm(model_cache)


@pytest.fixture(scope="session")
def source_tokenizer(source_model_dir):
    return load_tokenizer(source_model_dir)


@pytest.fixture(scope="session")
def source_embeddings(source_model_dir):
    return load_input_embeddings(source_model_dir)


@pytest.fixture(scope="session")
def target_lines() -> list[str]:
    return translate_synthetic(synthetic_sentences(6000, seed=1), TARGET_LANG) + [RARE_LINE]


@pytest.fixture(scope="session")
def target_text_file(tmp_path_factory, target_lines) -> Path:
    path = tmp_path_factory.mktemp("text") / f"{TARGET_LANG}.txt"
    path.write_text("\n".join(target_lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def target_tokenizer(source_tokenizer, target_lines):
    return train_tokenizer(source_tokenizer, lambda: target_lines, vocab_size=TARGET_VOCAB)


@pytest.fixture(scope="session")
def focus_result(source_embeddings, source_tokenizer, target_tokenizer, target_lines):
    return focus_init(source_embeddings, source_tokenizer, target_tokenizer, iter(target_lines),
                      fasttext_options=FASTTEXT, seed=7)


@pytest.fixture(scope="session")
def unigram_tokenizer_dir(tmp_path_factory) -> Path:
    """An XLM-R-style tokenizer (sentencepiece Unigram, ``▁`` word starts, <s> </s> template)."""
    path = tmp_path_factory.mktemp("unigram")
    trainer = SentencePieceUnigramTokenizer()
    trainer.train_from_iterator(synthetic_sentences(500, seed=2), vocab_size=200, show_progress=False,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], unk_token="<unk>")
    pieces = [tuple(piece) for piece in json.loads(trainer.to_str())["model"]["vocab"]]
    XLMRobertaTokenizer(vocab=pieces).save_pretrained(path)
    return path
