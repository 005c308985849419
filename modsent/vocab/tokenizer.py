"""Training a language-specific tokenizer of the source tokenizer's kind.

The new tokenizer keeps everything but the vocabulary: model family (WordPiece for BERT/LaBSE,
Unigram for XLM-R, BPE...), normaliser, pre-tokeniser, special tokens and post-processing template.
``transformers``' ``train_new_from_iterator`` does exactly this (it is also what the seed used);
we feed it a lazy stream of text batches.
"""

from __future__ import annotations

import itertools
import logging
import os
from typing import Iterable, Iterator

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from modsent.models.files import require_model_dir, require_vocabulary

from .errors import EmptyTextError, SourceModelError, TokenizerFamilyError, VocabError

__all__ = ["DEFAULT_VOCAB_SIZE", "load_tokenizer", "tokenizer_family", "check_same_family", "train_tokenizer"]

logger = logging.getLogger(__name__)

DEFAULT_VOCAB_SIZE = 50_048  # the seed's size for every language (a multiple of 64 for GPU matmuls)
_TRAIN_BATCH = 1000  # lines per call into the Rust trainer; amortises the Python -> Rust hop


def load_tokenizer(path: str | os.PathLike) -> PreTrainedTokenizerBase:
    """Load a fast (``tokenizers``-backed) tokenizer from a local directory, never from the hub."""
    path = require_model_dir(path, SourceModelError, "tokenizer directory")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
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


def train_tokenizer(
    source_tokenizer: PreTrainedTokenizerBase | str | os.PathLike,
    texts: Iterable[str],
    vocab_size: int = DEFAULT_VOCAB_SIZE,
) -> PreTrainedTokenizerBase:
    """Train a tokenizer of the source tokenizer's family and settings on a stream of target-language text.

    ``source_tokenizer`` is a loaded fast tokenizer or its directory; ``texts`` any iterable of
    strings (consumed once, lazily). Returns a tokenizer whose ``save_pretrained`` directory loads
    with ``AutoTokenizer.from_pretrained``, with the source's special tokens and template.

    >>> tok = train_tokenizer("models/labse", iter_texts(["de.txt"], "deu_Latn"))  # doctest: +SKIP
    >>> tok.tokenize("Guten Morgen")  # doctest: +SKIP
    ['guten', 'morgen']
    """
    if not isinstance(source_tokenizer, PreTrainedTokenizerBase):
        source_tokenizer = load_tokenizer(source_tokenizer)
    n_special = len(set(source_tokenizer.all_special_tokens))
    if vocab_size <= n_special:
        raise VocabError(f"vocab_size={vocab_size} leaves no room beside the {n_special} special tokens")
    lines_seen = [0]
    target = source_tokenizer.train_new_from_iterator(_batches(texts, lines_seen), vocab_size=vocab_size)
    if lines_seen[0] == 0:
        raise EmptyTextError("the tokenizer training text is empty; give text_files with target-language lines")
    logger.info("trained a %s tokenizer of %d tokens on %d lines", tokenizer_family(target), len(target), lines_seen[0])
    return target
