"""Checks on model directories where ``transformers`` would load something wrong or raise a raw error.

* a path that is a file, or does not exist (say which);
* damaged weights: a truncated or overwritten ``model.safetensors`` raises ``SafetensorError``
  (not an ``OSError``), which callers did not expect;
* no tokenizer files: ``AutoTokenizer.from_pretrained`` on a directory with only ``config.json``
  builds the config's tokenizer class with nothing but its special tokens, so every word becomes
  ``[UNK]`` — a model that encodes and trains without complaint and means nothing.

Every stage that loads a model calls these, with its own :class:`~modsent.errors.ModsentError` subclass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, TypeVar

from modsent.errors import ModsentError

__all__ = ["require_model_dir", "load_weights", "require_vocabulary", "TOKENIZER_FILES"]

T = TypeVar("T")

#: Files any ``transformers`` tokenizer is built from (fast, WordPiece, BPE, sentencepiece variants).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model",
                   "tokenizer.model", "sentencepiece.model", "spm.model")


def require_model_dir(path: str | Path, error: type[ModsentError], what: str = "model directory") -> Path:
    """``path`` as a Path if it is a directory; else ``error`` saying whether it is a file or missing."""
    path = Path(path)
    if path.is_file():
        raise error(f"{path} is a file, not a {what}; give the directory that holds config.json "
                    "(and model.safetensors, the tokenizer files)")
    if not path.is_dir():
        raise error(f"{path}: {what} does not exist")
    return path


def load_weights(load: Callable[..., T], path: str | Path, error: type[ModsentError], **kwargs: Any) -> T:
    """``load(path, **kwargs)`` (a ``from_pretrained``), with damaged or missing weights as ``error``."""
    from safetensors import SafetensorError

    try:
        return load(str(path), **kwargs)
    except SafetensorError as err:
        raise error(f"{path}: the weights file is damaged or incomplete ({err}); copy or export the model again") \
            from None
    except (OSError, ValueError) as err:
        raise error(f"{path}: cannot load the model ({err})") from None


def require_vocabulary(tokenizer: Any, directory: str | Path, error: type[ModsentError]) -> Any:
    """Return ``tokenizer`` unless it has no vocabulary beyond its special tokens (see the module docstring)."""
    if len(tokenizer) > len(set(tokenizer.all_special_ids)):
        return tokenizer
    present = [name for name in TOKENIZER_FILES if (Path(directory) / name).is_file()]
    found = f"it has {', '.join(present)} but" if present else "it has no tokenizer files (tokenizer.json, vocab.txt, …):"
    raise error(f"{directory}: {found} the tokenizer loaded from it knows only its {len(tokenizer)} special tokens, "
                f"so every word would become {tokenizer.unk_token}; save the model's tokenizer into the directory "
                "(tokenizer.save_pretrained(DIR))")
