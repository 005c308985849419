"""Input errors of the vocab stage; each message names the file or tokenizer and the fix."""

from __future__ import annotations

from modsent.errors import ModsentError

__all__ = ["VocabError", "EmptyTextError", "SourceModelError", "TokenizerFamilyError"]


class VocabError(ModsentError):
    """Bad input to the vocab stage."""


class EmptyTextError(VocabError):
    """A text file (or the whole text stream) holds no non-blank line to train on."""


class SourceModelError(VocabError):
    """The source model directory lacks a file the stage needs (config, weights, fast tokenizer)."""


class TokenizerFamilyError(VocabError):
    """Source and target tokenizers are of different model families or special-token sets."""
