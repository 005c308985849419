"""Checks on model directories where ``transformers`` would load something wrong or raise a raw error.

* a path that is a file, or does not exist (say which);
* damaged weights: a truncated or overwritten ``model.safetensors`` raises ``SafetensorError``
  (not an ``OSError``), which callers did not expect;
* no tokenizer files: ``AutoTokenizer.from_pretrained`` on a directory with only ``config.json``
  builds the config's tokenizer class with nothing but its special tokens, so every word becomes
  ``[UNK]`` — a model that encodes and trains without complaint and means nothing;
* code in the directory: ``auto_map`` in ``config.json`` or ``tokenizer_config.json`` makes
  ``transformers`` import the directory's ``*.py`` files, and for an unknown ``model_type`` it
  asks ``[y/N]`` on stdin when ``trust_remote_code`` is not given, so a ``y`` piped into any
  command ran them. Every load goes through :func:`from_pretrained`, which refuses such a
  directory unless the config sets ``trust_remote_code: true`` and always passes the flag explicitly;
* weights that disagree with ``config.json``: a tensor of another shape (``hidden_size``) makes
  ``transformers`` raise a bare ``RuntimeError`` after a table of keys; with ``may_lack``,
  :func:`load_weights` also refuses weights the checkpoint lacks or has beyond the model (a layer
  more than ``num_hidden_layers``), which ``transformers`` only reports and drops;
* a pickled ``pytorch_model.bin`` that ``torch.load(weights_only=True)`` refuses: ``torch``'s own
  message suggests ``weights_only=False``, which would run the pickle.

Every stage that loads a model calls these, with its own :class:`~modsent.errors.ModsentError` subclass.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Iterable
from pathlib import Path
from typing import Any, Callable, TypeVar

from modsent.errors import ModsentError, first_line
from modsent.hub import hub_model_dir, parse_hub_id
from modsent.sources import is_reference, resolve_source

__all__ = ["require_model_dir", "from_pretrained", "load_weights", "require_vocabulary", "refuse_pickle",
           "TOKENIZER_FILES"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: Files any ``transformers`` tokenizer is built from (fast, WordPiece, BPE, sentencepiece variants).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "sentencepiece.bpe.model", "spiece.model",
                   "tokenizer.model", "sentencepiece.model", "spm.model")


def require_model_dir(path: str | Path, error: type[ModsentError], what: str = "model directory") -> Path:
    """``path`` as a Path if it is a directory, the snapshot directory if it is a hub id
    (:mod:`modsent.hub`); else ``error`` saying whether it is a file or missing."""
    if is_reference(path):  # pypi:NAME, converted once into the cache as every stage converts it
        return resolve_source(path)
    if parse_hub_id(path) is not None:
        return hub_model_dir(path, error)
    path = Path(path)
    if path.is_file():
        raise error(f"{path} is a file, not a {what}; give the directory that holds config.json "
                    "(and model.safetensors, the tokenizer files)")
    if not path.is_dir():
        raise error(f"{path}: {what} does not exist")
    return path


def _refuse_remote_code(path: Path, error: type[ModsentError]) -> None:
    for name in ("config.json", "tokenizer_config.json"):
        try:
            auto_map = json.loads((path / name).read_text(encoding="utf-8")).get("auto_map")
        except (OSError, ValueError, AttributeError):
            continue  # absent or unreadable: the load itself says so
        if auto_map:
            raise error(f"{path / name}: the model directory asks to run its own Python code (auto_map: "
                        f"{', '.join(sorted(auto_map)) if isinstance(auto_map, dict) else auto_map}); modsent runs "
                        "no code from a model directory unless you set trust_remote_code: true in the stage's config "
                        f"(--trust-remote-code for encode and mine), and only if you trust {path}")


def from_pretrained(load: Callable[..., T], path: str | Path, error: type[ModsentError],
                    trust_remote_code: bool = False, **kwargs: Any) -> T:
    """``load(path, trust_remote_code=…, **kwargs)`` (any ``from_pretrained``: config, tokenizer, model).

    Unless ``trust_remote_code``, a directory that ships code (``auto_map``) is refused as ``error``
    before ``transformers`` sees it; the flag is always passed, so ``transformers`` never asks on stdin.
    """
    if not trust_remote_code:
        _refuse_remote_code(Path(path), error)
    return load(str(path), trust_remote_code=trust_remote_code, **kwargs)


def refuse_pickle(path: str | Path, err: Exception, error: type[ModsentError]) -> ModsentError:
    """``error`` for a pickle ``torch.load(weights_only=True)`` refused, without ``torch``'s advice to unpickle it."""
    # torch's message is advice to retry with weights_only=False, then what it refused, then a link: keep the middle.
    refused = [line for line in str(err).splitlines() if "GLOBAL" in line or "Unsupported" in line][:1]
    return error(f"{path}: refused to load this pickled checkpoint: it holds more than tensors and unpickling it "
                 f"could run code ({refused[0].strip() if refused else type(err).__name__}); use the model's "
                 "model.safetensors, or convert the file to safetensors with a tool you trust")


def _shown(keys: Iterable[str]) -> str:
    keys = sorted(keys)
    return ", ".join(keys[:5]) + (" …" if len(keys) > 5 else "")


def load_weights(load: Callable[..., T], path: str | Path, error: type[ModsentError],
                 may_lack: Collection[str] | None = None, trust_remote_code: bool = False, **kwargs: Any) -> T:
    """``load(path, **kwargs)`` (a model's ``from_pretrained``, via :func:`from_pretrained`), with damaged,
    pickled or mis-shaped weights as ``error``.

    With ``may_lack`` (key fragments the checkpoint may lack, e.g. an unused pooler) the checkpoint
    must hold the model's weights exactly: missing ones, and ones inside the model's own modules
    that it has no place for, are refused; weights of other heads (an MLM head) are not.
    """
    import pickle

    from safetensors import SafetensorError

    # We report what does not fit ourselves, in one line; transformers' table of keys would precede it.
    report = logging.getLogger("transformers.modeling_utils")
    level = report.level
    report.setLevel(logging.ERROR)
    try:
        model, info = from_pretrained(load, path, error, trust_remote_code, output_loading_info=True,
                                      ignore_mismatched_sizes=True, **kwargs)
    except SafetensorError as err:
        raise error(f"{path}: the weights file is damaged or incomplete ({err}); copy or export the model again") \
            from None
    except pickle.UnpicklingError as err:
        raise refuse_pickle(path, err, error) from None
    except ModsentError:
        raise  # already one line (a directory that ships code); a ValueError too, but not to be wrapped
    except (OSError, ValueError) as err:
        raise error(f"{path}: cannot load the model ({first_line(err)})") from None
    finally:
        report.setLevel(level)
    if info["mismatched_keys"]:
        key, stored, built = sorted(info["mismatched_keys"])[0]
        raise error(f"{path}: {len(info['mismatched_keys'])} weight(s) do not have the shape config.json gives "
                    f"(e.g. {key}: {tuple(stored)} stored, {tuple(built)} from config.json); use the config.json "
                    "saved with these weights")
    if may_lack is not None:
        _zero_lacking_parameters(model, info["missing_keys"])
        missing = [key for key in info["missing_keys"] if not any(part in key for part in may_lack)]
        if missing:
            raise error(f"{path}: the checkpoint lacks {len(missing)} weight(s) of the model ({_shown(missing)}); they "
                        "would be randomly initialised. Point at a complete checkpoint (or its sentence-transformers "
                        "directory)")
        # A checkpoint saved with a head keeps the base model under base_model_prefix ("bert.").
        prefix = getattr(model, "base_model_prefix", "")
        modules = {name for name, _ in model.named_children()}
        extra = [key for key in info["unexpected_keys"]
                 if (key.removeprefix(f"{prefix}.") if prefix else key).split(".", 1)[0] in modules]
        if extra:
            raise error(f"{path}: the checkpoint holds {len(extra)} weight(s) config.json has no place for "
                        f"({_shown(extra)}), e.g. more layers than num_hidden_layers; they would be dropped. Use the "
                        "config.json saved with these weights")
    elif info["missing_keys"] or info["unexpected_keys"]:
        logger.warning("%s: %d weight(s) not in the checkpoint start at random (%s); %d of its weights are not used "
                       "(%s)", path, len(info["missing_keys"]), _shown(info["missing_keys"]),
                       len(info["unexpected_keys"]), _shown(info["unexpected_keys"]))
    return model


def _zero_lacking_parameters(model: Any, missing_keys: Collection[str]) -> None:
    """Zero the parameters a checkpoint lacked (e.g. the pooler of a masked-LM checkpoint).

    ``transformers`` draws them from the process's random state, so a model loaded and saved again
    would differ from one process (and CPU) to the next; those allowed to be missing are never used.
    """
    import torch

    parameters = dict(model.named_parameters())
    with torch.no_grad():
        for key in missing_keys:
            if key in parameters:
                parameters[key].zero_()


#: The layout of a vocabulary artifact (``modsent vocab``'s output, read by ``modsent adapt``).
VOCAB_TOKENIZER_DIR = "tokenizer"
VOCAB_EMBEDDINGS_FILE = "embeddings.safetensors"
VOCAB_EMBEDDINGS_KEY = "embeddings"


def require_vocabulary(tokenizer: Any, directory: str | Path, error: type[ModsentError]) -> Any:
    """Return ``tokenizer`` unless it has no vocabulary beyond its special tokens (see the module docstring)."""
    if len(tokenizer) > len(set(tokenizer.all_special_ids)):
        return tokenizer
    present = [name for name in TOKENIZER_FILES if (Path(directory) / name).is_file()]
    found = f"it has {', '.join(present)} but" if present else "it has no tokenizer files (tokenizer.json, vocab.txt, …):"
    raise error(f"{directory}: {found} the tokenizer loaded from it knows only its {len(tokenizer)} special tokens, "
                f"so every word would become {tokenizer.unk_token}; save the model's tokenizer into the directory "
                "(tokenizer.save_pretrained(DIR))")
