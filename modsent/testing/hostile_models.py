"""Model directories built to be refused: code that runs at import, weights that disagree with their config.

Each is a copy of the cached tiny BERT (:func:`~modsent.testing.tiny_bert_mlm`) changed in one
way, written to a directory the caller names; every byte is deterministic. The tests and
``bench/bad_inputs.py`` use them to check that modsent refuses each at load with one line.

>>> model = remote_code_model(tmp / "model", marker=tmp / "ran")  # doctest: +SKIP
>>> # `modsent encode --model {model} …` with "y" on stdin must fail, and `ran` must not exist
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from modsent.testing.tiny_models import tiny_bert_mlm

__all__ = ["remote_code_model", "mismatched_model", "long_sequence_model", "dense_model", "pickled_model"]

_WRITE_MARKER = "from pathlib import Path\n\nPath({marker!r}).write_text({what!r})\n"


def _copy_tiny_bert(directory: Path) -> Path:
    shutil.copytree(tiny_bert_mlm(), directory)
    return directory


def _edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")


def remote_code_model(directory: str | os.PathLike, marker: str | os.PathLike, where: str = "config") -> Path:
    """The tiny BERT asking ``transformers`` to import its own ``configuration_evil.py`` /
    ``modeling_evil.py`` / ``tokenization_evil.py``, each of which writes ``marker`` when imported.

    ``where="config"``: ``config.json`` has ``auto_map`` and a ``model_type`` transformers does not
    know (then transformers asks ``[y/N]`` on stdin unless ``trust_remote_code`` is passed);
    ``where="tokenizer"``: ``tokenizer_config.json`` has the ``auto_map``.
    """
    directory = _copy_tiny_bert(Path(directory))
    for module in ("configuration_evil", "modeling_evil", "tokenization_evil"):
        (directory / f"{module}.py").write_text(
            _WRITE_MARKER.format(marker=str(Path(marker).resolve()), what=f"{module} ran\n"), encoding="utf-8")
    if where == "config":
        _edit_json(directory / "config.json", model_type="evil-bert",
                   auto_map={"AutoConfig": "configuration_evil.EvilConfig", "AutoModel": "modeling_evil.EvilModel",
                             "AutoModelForMaskedLM": "modeling_evil.EvilModel"})
    elif where == "tokenizer":
        _edit_json(directory / "tokenizer_config.json", auto_map={"AutoTokenizer": [None, "tokenization_evil.Evil"]})
    else:
        raise ValueError(f"where must be config or tokenizer, got {where!r}")
    return directory


def mismatched_model(directory: str | os.PathLike, **config: object) -> Path:
    """The tiny BERT's weights under a ``config.json`` changed by ``config`` (e.g. ``num_hidden_layers=1``:
    the checkpoint holds a layer more; ``hidden_size=64``: every tensor has another shape;
    ``max_position_embeddings`` fewer than a ``sentence_bert_config.json`` asks for)."""
    directory = _copy_tiny_bert(Path(directory))
    _edit_json(directory / "config.json", **config)
    return directory


def long_sequence_model(directory: str | os.PathLike, max_seq_length: int) -> Path:
    """The tiny BERT as a sentence-transformers directory whose ``sentence_bert_config.json`` asks for
    ``max_seq_length`` tokens (its position table holds 128)."""
    from modsent.models.encoder import SentenceEncoder

    directory = SentenceEncoder.from_pretrained(tiny_bert_mlm()).save(directory)
    _edit_json(directory / "sentence_bert_config.json", max_seq_length=max_seq_length)
    return directory


def dense_model(directory: str | os.PathLike, damage: str | None = None) -> Path:
    """The tiny BERT as a sentence-transformers directory with a 32→16 ``2_Dense`` module.

    ``damage="truncated"`` cuts ``2_Dense/model.safetensors`` in half; ``"shape"`` stores a 16→16
    weight under the 32→16 config.
    """
    from safetensors.torch import save_file

    from modsent.models.dense import DenseHead
    from modsent.models.encoder import SentenceEncoder

    directory = Path(directory)
    encoder = SentenceEncoder.from_pretrained(tiny_bert_mlm())
    torch.manual_seed(0)
    encoder.dense = DenseHead(encoder.embedding_dim, 16)
    encoder.save(directory)
    weights = directory / "2_Dense" / "model.safetensors"
    if damage == "truncated":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif damage == "shape":
        save_file({"linear.weight": torch.zeros(16, 16), "linear.bias": torch.zeros(16)}, str(weights))
    elif damage is not None:
        raise ValueError(f"damage must be truncated, shape or None, got {damage!r}")
    return directory


class _RunsCommand:
    """Unpickling this calls ``os.system(command)``: what a hostile ``pytorch_model.bin`` holds."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple:
        return os.system, (self.command,)


def pickled_model(directory: str | os.PathLike, marker: str | os.PathLike) -> Path:
    """The tiny BERT with its weights in a ``pytorch_model.bin`` that also holds a pickle writing ``marker``
    (``model.safetensors`` removed)."""
    from safetensors.torch import load_file

    directory = _copy_tiny_bert(Path(directory))
    weights = load_file(str(directory / "model.safetensors"))
    (directory / "model.safetensors").unlink()
    torch.save({**weights, "payload": _RunsCommand(f"touch {Path(marker).resolve()}")}, directory / "pytorch_model.bin")
    return directory
