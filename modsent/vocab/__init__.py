"""Language specialisation, vocabulary part: a target-language tokenizer and FOCUS embedding initialisation.

``run_vocab(VocabConfig(...))`` (:func:`modsent.vocab.stage.run`) is the stage (``modsent vocab``); ``train_tokenizer`` and
``focus_init`` are its two steps, usable on their own.
"""

from modsent.vocab.errors import EmptyTextError, SourceModelError, TokenizerFamilyError, VocabError
from modsent.vocab.focus import (
    FastTextOptions,
    FocusResult,
    canonical_forms,
    focus_combine,
    focus_init,
    shared_tokens,
    train_token_fasttext,
)
from modsent.vocab.config import EMBEDDINGS_FILE, EMBEDDINGS_KEY, REPORT_FILE, TOKENIZER_DIR, VocabConfig
from modsent.vocab.stage import run as run_vocab
from modsent.vocab.text import iter_texts, require_text
from modsent.vocab.tokenizer import DEFAULT_VOCAB_SIZE, check_same_family, load_tokenizer, tokenizer_family, train_tokenizer

__all__ = [
    "VocabError", "EmptyTextError", "SourceModelError", "TokenizerFamilyError",
    "FastTextOptions", "FocusResult", "canonical_forms", "focus_combine", "focus_init", "shared_tokens",
    "train_token_fasttext", "VocabConfig", "run_vocab", "TOKENIZER_DIR", "EMBEDDINGS_FILE", "EMBEDDINGS_KEY",
    "REPORT_FILE", "iter_texts", "require_text", "DEFAULT_VOCAB_SIZE", "check_same_family", "load_tokenizer",
    "tokenizer_family", "train_tokenizer",
]
