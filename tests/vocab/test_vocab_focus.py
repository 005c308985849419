"""FOCUS: shared tokens copied bit for bit, new tokens sparse convex combinations of shared ones."""

from __future__ import annotations

import logging
import multiprocessing

import numpy as np
import pytest
import torch
from tokenizers import ByteLevelBPETokenizer, Tokenizer
from transformers import PreTrainedTokenizerFast

from modsent.testing import synthetic_sentences, tiny_bert_mlm, translate_synthetic
from modsent.vocab import (
    FastTextOptions,
    VocabError,
    canonical_forms,
    focus_combine,
    focus_init,
    load_tokenizer,
    shared_tokens,
    train_token_fasttext,
    train_tokenizer,
)
from modsent.vocab.stage import load_input_embeddings

RARE_LETTERS = "ŧŋ"  # the conftest's RARE_LINE letters: in the target vocabulary, seen once


def test_canonical_forms_bridge_wordpiece_and_sentencepiece(source_tokenizer, unigram_tokenizer_dir):
    unigram = load_tokenizer(unigram_tokenizer_dir)
    wordpiece_forms = canonical_forms(source_tokenizer)
    vocab = source_tokenizer.get_vocab()
    assert wordpiece_forms[vocab["the"]] == "▁the"
    continuation = next(t for t in vocab if t.startswith("##") and len(t) > 3)
    assert wordpiece_forms[vocab[continuation]] == continuation[2:]
    assert wordpiece_forms[vocab["[CLS]"]] == "▁[CLS]"

    unigram_forms = canonical_forms(unigram)
    unigram_vocab = unigram.get_vocab()
    word_start = next(t for t in unigram_vocab if t.startswith("▁") and len(t) > 2)
    assert unigram_forms[unigram_vocab[word_start]] == word_start
    inner = next(t for t in unigram_vocab if t.isalpha() and len(t) > 1)
    assert unigram_forms[unigram_vocab[inner]] == inner
    # The same word start in each notation ("▁park" / "park") and the same word-internal piece
    # ("ing" / "##ing") are one token to FOCUS.
    shared = shared_tokens(source_tokenizer, unigram)
    word = next(t for t in unigram_vocab if t.startswith("▁") and len(t) > 3 and t[1:] in vocab)
    assert shared[unigram_vocab[word]] == vocab[word[1:]]
    piece = next(t for t in unigram_vocab if t.isalpha() and len(t) > 1 and "##" + t in vocab)
    assert shared[unigram_vocab[piece]] == vocab["##" + piece]


def test_canonical_forms_of_byte_level_bpe(source_tokenizer):
    trainer = ByteLevelBPETokenizer()
    trainer.train_from_iterator(synthetic_sentences(300, seed=2), vocab_size=400, show_progress=False,
                                special_tokens=["<s>", "<pad>", "</s>", "<unk>"])
    byte_level = PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(trainer.to_str()), unk_token="<unk>")
    vocab = byte_level.get_vocab()
    forms = canonical_forms(byte_level)
    assert forms[vocab["Ġthe"]] == "▁the" and forms[vocab["<s>"]] == "<s>"
    inner = next(t for t in vocab if t.isascii() and t.isalpha() and len(t) > 2)  # no "Ġ": inside a word
    assert forms[vocab[inner]] == inner
    assert shared_tokens(source_tokenizer, byte_level)[vocab["Ġthe"]] == source_tokenizer.convert_tokens_to_ids("the")


def test_focus_combine_is_sparsemax_of_cosine_similarities():
    anchor_vectors = np.eye(3, dtype=np.float32)
    anchor_embeddings = torch.tensor([[1.0, 0.0], [0.0, 1.0], [5.0, 5.0]])
    # Cosines (0.8, 0.6, 0) -> sparsemax: threshold 0.2 -> weights (0.6, 0.4, 0).
    # A vector along anchor 2 (any length) -> all weight on anchor 2.
    new_vectors = np.array([[0.8, 0.6, 0.0], [0.0, 0.0, 3.0]], dtype=np.float32)
    embeddings, weights = focus_combine(new_vectors, anchor_vectors, anchor_embeddings)
    assert weights[0][0].tolist() == [0, 1]
    torch.testing.assert_close(weights[0][1], torch.tensor([0.6, 0.4]))
    torch.testing.assert_close(embeddings[0], torch.tensor([0.6, 0.4]))
    assert weights[1][0].tolist() == [2] and weights[1][1].tolist() == [1.0]
    assert torch.equal(embeddings[1], anchor_embeddings[2])


def test_shared_tokens_keep_their_source_embedding_bit_for_bit(focus_result, source_embeddings, source_tokenizer,
                                                               target_tokenizer):
    shared = focus_result.shared
    assert len(shared) == focus_result.report["n_shared"] > 20
    for special in source_tokenizer.all_special_tokens:
        target_id = target_tokenizer.convert_tokens_to_ids(special)
        assert shared[target_id] == source_tokenizer.convert_tokens_to_ids(special)
    for target_id, source_id in shared.items():
        assert target_tokenizer.convert_ids_to_tokens(target_id) == source_tokenizer.convert_ids_to_tokens(source_id)
        assert torch.equal(focus_result.embeddings[target_id], source_embeddings[source_id])
    assert focus_result.embeddings.dtype == source_embeddings.dtype
    assert focus_result.embeddings.shape == (len(target_tokenizer), source_embeddings.shape[1])


def test_new_tokens_are_sparse_convex_combinations_of_shared_tokens(focus_result, source_embeddings):
    report = focus_result.report
    anchors = {focus_result.shared[t] for t in focus_result.shared}
    assert len(focus_result.weights) == report["n_new_focus"] > 100
    supports = []
    for target_id, (source_ids, weights) in focus_result.weights.items():
        assert target_id not in focus_result.shared
        assert set(source_ids.tolist()) <= anchors
        assert bool((weights > 0).all())
        assert abs(weights.sum().item() - 1.0) < 1e-5
        rebuilt = (weights[:, None] * source_embeddings[source_ids]).sum(0)
        torch.testing.assert_close(focus_result.embeddings[target_id], rebuilt, atol=1e-6, rtol=1e-5)
        supports.append(len(source_ids))
    # sparsemax, not softmax: most anchors get weight exactly 0.
    assert np.mean(supports) < 0.5 * report["n_shared_with_fasttext"]
    assert report["mean_focus_support"] == pytest.approx(np.mean(supports))


def test_new_tokens_without_fasttext_vector_are_drawn_from_source_statistics(focus_result, target_tokenizer,
                                                                             source_embeddings):
    report = focus_result.report
    assert report["n_shared"] + report["n_new"] == len(target_tokenizer)
    assert report["n_new"] == report["n_new_focus"] + report["n_new_without_fasttext"]
    random_ids = set(focus_result.random_init)
    assert len(random_ids) == report["n_new_without_fasttext"]
    rare = {i for t, i in target_tokenizer.get_vocab().items() if set(t.lstrip("#")) <= set(RARE_LETTERS)}
    assert rare and rare <= random_ids  # seen once: below min_count
    drawn = focus_result.embeddings[sorted(random_ids)]
    assert torch.isfinite(drawn).all()
    # N(mean, std) of the source: the draws' spread matches the source's (not zeros, not copies).
    assert drawn.std().item() == pytest.approx(source_embeddings.std().item(), rel=0.3)


def _in_fresh_process(target) -> None:
    """Run ``target`` (a module-level function of this file) in a new interpreter; its failure fails the test.

    These fastText trainings diverged ("Encountered NaN" at every learning rate, each in ~0.1 s)
    only inside the long pytest process after most of the suite had run, never in a fresh process
    (where `modsent vocab` always runs: the CLI and the pipeline's jobs). The cause is not found
    yet; a fresh interpreter keeps what these tests check independent of what ran before them.
    """
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        pool.apply(target)


def _source() -> tuple:
    source_dir = tiny_bert_mlm()
    return load_tokenizer(source_dir), load_input_embeddings(source_dir)


def _warnings_of(logger_name: str) -> list[str]:
    """Collect the warning messages of ``logger_name`` into the returned (growing) list."""
    messages: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logging.getLogger(logger_name).addHandler(handler)
    return messages


def _target_script_without_shared_subwords_gets_random_draws() -> None:
    # Ethiopic shares no letter or punctuation mark with English: only the special tokens are
    # shared, and they never occur in running text, so no anchor has a fastText vector.
    source_tokenizer, source_embeddings = _source()
    lines = translate_synthetic(synthetic_sentences(1000, seed=4), "amh_Ethi")
    target = train_tokenizer(source_tokenizer, lambda: lines, vocab_size=200)
    warnings = _warnings_of("modsent.vocab.focus")
    result = focus_init(source_embeddings, source_tokenizer, target, iter(lines),
                        fasttext_options=FastTextOptions(dim=8, epochs=1, min_count=2, threads=1), seed=3)
    assert any("no shared token has a fastText vector" in message for message in warnings), warnings
    assert {target.convert_ids_to_tokens(t) for t in result.shared} == set(source_tokenizer.all_special_tokens)
    assert result.weights == {} and result.report["n_shared_with_fasttext"] == 0
    assert result.report["n_new_without_fasttext"] == result.report["n_new"] == len(result.random_init)
    for target_id, source_id in result.shared.items():
        assert torch.equal(result.embeddings[target_id], source_embeddings[source_id])


def test_target_script_without_shared_subwords_gets_random_draws():
    _in_fresh_process(_target_script_without_shared_subwords_gets_random_draws)


def test_min_count_above_every_token_count_is_a_clear_error(source_embeddings, source_tokenizer, target_tokenizer,
                                                            target_lines):
    options = FastTextOptions(dim=8, epochs=1, min_count=10**6, threads=1)
    with pytest.raises(VocabError, match="no token occurring fasttext.min_count=1000000 times in 300 lines"):
        focus_init(source_embeddings, source_tokenizer, target_tokenizer, iter(target_lines[:300]),
                   fasttext_options=options)


def _diverging_fasttext_is_retried_at_a_lower_learning_rate() -> None:
    """fastText sometimes stops with "Encountered NaN" on small texts: FOCUS retries at lr / 4."""
    import fasttext

    source_tokenizer, _ = _source()
    real, calls = fasttext.train_unsupervised, []

    def diverge_once(*args, **kwargs):
        calls.append(kwargs["lr"])
        if len(calls) == 1:
            raise RuntimeError("Encountered NaN.")
        return real(*args, **kwargs)

    fasttext.train_unsupervised = diverge_once
    lines = translate_synthetic(synthetic_sentences(300, seed=5), "deu_Latn")
    warnings = _warnings_of("modsent.vocab.focus")
    model, count = train_token_fasttext(source_tokenizer, iter(lines),
                                        FastTextOptions(dim=8, epochs=1, min_count=1, threads=1))
    assert calls == [0.05, 0.0125] and count == 300 and len(model.words) > 10
    assert any("diverged at lr=0.05" in message for message in warnings), warnings


def test_diverging_fasttext_is_retried_at_a_lower_learning_rate():
    _in_fresh_process(_diverging_fasttext_is_retried_at_a_lower_learning_rate)
