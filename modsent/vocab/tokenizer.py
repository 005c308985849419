"""Training a language-specific tokenizer of the source tokenizer's kind.

The new tokenizer keeps everything but the vocabulary: model family (WordPiece for BERT/LaBSE,
Unigram for XLM-R, BPE...), normaliser, pre-tokeniser, special tokens and post-processing template.
``transformers``' ``train_new_from_iterator`` does exactly this (it is also what the reference used);
we feed it a lazy stream of text batches.

Training the same text twice must give the same file, byte for byte (a job killed during the vocab
stage is redone, and its output must equal an uninterrupted run's). The ``tokenizers`` trainers
are not deterministic on their own (huggingface/tokenizers#1794):

* BPE and WordPiece create the word-internal symbols (``##e``: prefix + letter, or letter + end-of-word
  suffix) in hash-map order, so their ids change from one process to the next, and merges whose
  counts tie are broken by those ids: another process can pick other merges. We read those symbols
  from the text first (the source's own normaliser and pre-tokeniser) and hand them to the trainer
  in sorted order, as special tokens, which it numbers before it looks at the words; afterwards
  they are demoted to ordinary vocabulary entries.
* Unigram finds the same pieces, but the last bits of their log-probabilities depend on the order
  of floating-point sums over hash maps (~1e-14), and the characters the model dropped are put back
  with the scores ``min, min + 1e-4, min + 2e-4, ...`` in hash-set order. Scores are rounded to
  ``_UNIGRAM_SCORE_DECIMALS`` decimals, that ladder's scores are dealt to its characters in sorted
  order, and the pieces are ordered by (score, piece).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
from typing import Callable, Iterable, Iterator

from tokenizers import Tokenizer
from transformers import AutoTokenizer, PreTrainedTokenizerBase

from modsent.models.files import from_pretrained, require_model_dir, require_vocabulary

from .errors import EmptyTextError, SourceModelError, TokenizerFamilyError, VocabError

__all__ = ["DEFAULT_VOCAB_SIZE", "load_tokenizer", "tokenizer_family", "check_same_family", "train_tokenizer"]

logger = logging.getLogger(__name__)

DEFAULT_VOCAB_SIZE = 50_048  # the reference's size for every language (a multiple of 64 for GPU matmuls)
_TRAIN_BATCH = 1000  # lines per call into the Rust trainer; amortises the Python -> Rust hop
# A score is a log-probability; 1e-6 is far below any difference that decides a segmentation and
# far above the ~1e-14 run-to-run noise (a score within 1e-14 of a rounding boundary could still
# round both ways: odds of ~1e-8 per piece).
_UNIGRAM_SCORE_DECIMALS = 6
_UNIGRAM_LADDER_STEP = 1e-4  # the trainer's score step between the characters it puts back


def load_tokenizer(path: str | os.PathLike, trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Load a fast (``tokenizers``-backed) tokenizer from a local directory, never from the hub (nor its code
    unless ``trust_remote_code``)."""
    path = require_model_dir(path, SourceModelError, "tokenizer directory")
    try:
        tokenizer = from_pretrained(AutoTokenizer.from_pretrained, path, SourceModelError, trust_remote_code,
                                    local_files_only=True)
    except SourceModelError:
        raise
    except (OSError, ValueError) as err:
        raise SourceModelError(f"{path}: cannot load a tokenizer ({err}); expected tokenizer.json or vocab files "
                               "written by save_pretrained") from None
    if getattr(tokenizer, "backend_tokenizer", None) is None:
        raise SourceModelError(f"{path}: {type(tokenizer).__name__} is not backed by `tokenizers`; "
                               "save a fast tokenizer (tokenizer.json) for the model")
    return require_vocabulary(tokenizer, path, SourceModelError)


def tokenizer_family(tokenizer: PreTrainedTokenizerBase) -> str:
    """The subword model family of a fast tokenizer: ``"WordPiece"``, ``"BPE"``, ``"Unigram"`` or ``"WordLevel"``."""
    return type(tokenizer.backend_tokenizer.model).__name__


def check_same_family(source: PreTrainedTokenizerBase, target: PreTrainedTokenizerBase) -> None:
    """Raise :class:`TokenizerFamilyError` unless both tokenizers share model family and special tokens.

    The specialised model keeps the source model's config (special-token roles, input template), so
    a target tokenizer of another family, or with other special tokens, would not fit it.
    """
    source_family, target_family = tokenizer_family(source), tokenizer_family(target)
    if source_family != target_family:
        raise TokenizerFamilyError(
            f"target tokenizer is {target_family} ({target.name_or_path}) but the source model's is {source_family} "
            f"({source.name_or_path}); train the target tokenizer from the source one (leave target_tokenizer unset)")
    source_special, target_special = set(source.all_special_tokens), set(target.all_special_tokens)
    if source_special != target_special:
        raise TokenizerFamilyError(
            f"special tokens differ: source {sorted(source_special)} vs target {sorted(target_special)} "
            f"({target.name_or_path}); the target tokenizer must keep the source model's special tokens")


def _batches(texts: Iterable[str], counter: list[int]) -> Iterator[list[str]]:
    iterator = iter(texts)
    while batch := list(itertools.islice(iterator, _TRAIN_BATCH)):
        counter[0] += len(batch)
        yield batch


def _word_internal_symbols(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> list[str]:
    """The symbols a BPE/WordPiece trainer would create lazily for ``texts``, sorted; ``[]`` for other models.

    A letter inside a word becomes ``prefix + letter`` (WordPiece's ``##e``), the last letter of a
    word ``letter + suffix``; the words are those the trainer sees (normalised, pre-tokenised).
    """
    backend = tokenizer.backend_tokenizer
    prefix = getattr(backend.model, "continuing_subword_prefix", None) or ""
    suffix = getattr(backend.model, "end_of_word_suffix", None) or ""
    if tokenizer_family(tokenizer) not in ("BPE", "WordPiece") or not (prefix or suffix):
        return []
    words: set[str] = set()  # each distinct word is spelt out once, however often it occurs
    for text in texts:
        normalised = backend.normalizer.normalize_str(text) if backend.normalizer is not None else text
        if backend.pre_tokenizer is None:
            words.add(normalised)
        else:
            words.update(word for word, _ in backend.pre_tokenizer.pre_tokenize_str(normalised))
    symbols: set[str] = set()
    for word in words:
        last = len(word) - 1
        for position, letter in enumerate(word):
            symbol = (prefix if position else "") + letter + (suffix if position == last else "")
            if symbol != letter:
                symbols.add(symbol)
    return sorted(symbols)


def _canonical_unigram_pieces(pieces: list[list]) -> list[list]:
    """Trained Unigram ``[piece, score]`` rows made canonical (see the module docstring)."""
    rows = [list(row) for row in pieces]
    if rows:
        # The ladder: single characters at lowest + k * step for k = 0, 1, 2, ... without a gap
        # (raw scores: their noise is ~1e-14, so a real piece lands on a step by chance only at ~1e-9).
        lowest = min(score for _, score in rows)
        by_step: dict[int, list[list]] = {}
        for row in rows:
            steps = (row[1] - lowest) / _UNIGRAM_LADDER_STEP
            if len(row[0]) == 1 and abs(steps - round(steps)) < 1e-5:
                by_step.setdefault(round(steps), []).append(row)
        ladder = [row for k in itertools.takewhile(by_step.__contains__, itertools.count()) for row in by_step[k]]
        for row, score in zip(sorted(ladder, key=lambda row: row[0]), sorted(row[1] for row in ladder)):
            row[1] = score
    rounded = [[piece, round(score, _UNIGRAM_SCORE_DECIMALS)] for piece, score in rows]
    return sorted(rounded, key=lambda row: (-row[1], row[0]))


def _canonical(trained: PreTrainedTokenizerBase, word_internal: list[str]) -> PreTrainedTokenizerBase:
    """``trained`` with the word-internal symbols demoted from special tokens and Unigram scores canonical."""
    if not word_internal and tokenizer_family(trained) != "Unigram":  # e.g. byte-level BPE: already deterministic
        return trained
    state = json.loads(trained.backend_tokenizer.to_str())
    demoted = set(word_internal)
    state["added_tokens"] = [token for token in state["added_tokens"] if token["content"] not in demoted]
    if state["model"]["type"] == "Unigram":
        special = {token["id"] for token in state["added_tokens"]}
        pieces = state["model"]["vocab"]
        trained_ids = [i for i in range(len(pieces)) if i not in special]
        canonical = _canonical_unigram_pieces([pieces[i] for i in trained_ids])
        # Specials keep their ids (the unknown token's id is recorded in the model); the rest are reordered.
        for i, piece in zip(trained_ids, canonical):
            pieces[i] = piece
    init_kwargs = {key: value for key, value in trained.init_kwargs.items() if key != "extra_special_tokens"}
    return type(trained)(tokenizer_object=Tokenizer.from_str(json.dumps(state)), **init_kwargs)


def train_tokenizer(
    source_tokenizer: PreTrainedTokenizerBase | str | os.PathLike,
    texts: Callable[[], Iterable[str]],
    vocab_size: int = DEFAULT_VOCAB_SIZE,
) -> PreTrainedTokenizerBase:
    """Train a tokenizer of the source tokenizer's family and settings on target-language text.

    ``source_tokenizer`` is a loaded fast tokenizer or its directory; ``texts`` a function that
    returns a fresh iterable of lines each time it is called (read lazily, once or twice: BPE and
    WordPiece read the text once more to number their symbols deterministically). Returns a
    tokenizer whose ``save_pretrained`` directory loads with ``AutoTokenizer.from_pretrained``,
    with the source's special tokens and template; the same text gives the same tokenizer.

    >>> tok = train_tokenizer("models/labse", lambda: iter_texts(["de.txt"], "deu_Latn"))  # doctest: +SKIP
    >>> tok.tokenize("Guten Morgen")  # doctest: +SKIP
    ['guten', 'morgen']
    """
    if not isinstance(source_tokenizer, PreTrainedTokenizerBase):
        source_tokenizer = load_tokenizer(source_tokenizer)
    n_special = len(set(source_tokenizer.all_special_tokens))
    if vocab_size <= n_special:
        raise VocabError(f"vocab_size={vocab_size} leaves no room beside the {n_special} special tokens")
    word_internal = _word_internal_symbols(source_tokenizer, texts())
    lines_seen = [0]
    trained = source_tokenizer.train_new_from_iterator(_batches(texts(), lines_seen), vocab_size=vocab_size,
                                                       new_special_tokens=word_internal or None)
    if lines_seen[0] == 0:
        raise EmptyTextError("the tokenizer training text is empty; give text_files with target-language lines")
    target = _canonical(trained, word_internal)
    logger.info("trained a %s tokenizer of %d tokens on %d lines", tokenizer_family(target), len(target), lines_seen[0])
    return target
