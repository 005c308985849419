"""The sentence-transformers ``Dense`` module: a linear layer + activation on the pooled embedding.

LaBSE (the paper's source model) is Transformer → CLS pooling → Dense(768→768, tanh) → Normalize.
:class:`DenseHead` holds the same weights under the same names (``linear.weight``,
``linear.bias``) and reads and writes the module's folder (``config.json`` +
``model.safetensors``, or a legacy ``pytorch_model.bin`` read with ``weights_only=True``), so a
directory round-trips through sentence-transformers unchanged.

>>> import torch
>>> head = DenseHead(4, 2, activation="tanh")
>>> head(torch.zeros(3, 4)).shape
torch.Size([3, 2])
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from modsent.errors import ModsentError, first_line
from modsent.io import atomic_write_json
from modsent.models.files import refuse_pickle

__all__ = ["DenseHead", "DenseModuleError", "ACTIVATIONS"]

#: Activations by our name -> the class path sentence-transformers writes in ``config.json``.
ACTIVATIONS = {"tanh": "torch.nn.modules.activation.Tanh", "identity": "torch.nn.modules.linear.Identity"}
_BY_CLASS_PATH = {path: name for name, path in ACTIVATIONS.items()}
_BY_CLASS_PATH["torch.nn.Tanh"], _BY_CLASS_PATH["torch.nn.Identity"] = "tanh", "identity"
_WEIGHTS = "model.safetensors"
_LEGACY_WEIGHTS = "pytorch_model.bin"


class DenseModuleError(ModsentError):
    """A ``Dense`` module folder is incomplete or uses options modsent does not run."""


class DenseHead(nn.Module):
    """``activation(linear(x))`` on sentence embeddings: sentence-transformers' ``Dense``, same weight names."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, activation: str = "tanh") -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise DenseModuleError(
                f"Dense activation {activation!r} is not supported; use one of {', '.join(ACTIVATIONS)}")
        self.in_features, self.out_features, self.activation = int(in_features), int(out_features), activation
        self.linear = nn.Linear(self.in_features, self.out_features, bias=bias)

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        out = self.linear(embeddings)
        return torch.tanh(out) if self.activation == "tanh" else out

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "DenseHead":
        """Read a sentence-transformers ``Dense`` folder (``config.json`` + weights)."""
        directory = Path(directory)
        config_path = directory / "config.json"
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as err:
            raise DenseModuleError(f"{config_path}: cannot read the Dense module's config ({err})") from None
        class_path = config.get("activation_function", ACTIVATIONS["tanh"])
        if class_path not in _BY_CLASS_PATH:
            raise DenseModuleError(f"{config_path}: activation_function {class_path!r} is not supported "
                                   f"(only {', '.join(ACTIVATIONS.values())})")
        if config.get("use_residual") or config.get("module_input_name", "sentence_embedding") != "sentence_embedding":
            raise DenseModuleError(f"{config_path}: a residual Dense or one reading another input than the sentence "
                                   "embedding is not supported")
        try:
            head = cls(config["in_features"], config["out_features"], bool(config.get("bias", True)),
                       _BY_CLASS_PATH[class_path])
        except KeyError as err:
            raise DenseModuleError(f"{config_path}: missing {err}") from None
        weights = _read_weights(directory)
        expected = {key: tuple(value.shape) for key, value in head.state_dict().items()}
        found = {key: tuple(value.shape) for key, value in weights.items()}
        if found != expected:
            raise DenseModuleError(f"{directory}: the Dense weights {found} do not match its config.json "
                                   f"(in_features {head.in_features}, out_features {head.out_features}: {expected}); "
                                   "use the config.json saved with these weights, or export the model again")
        head.load_state_dict(weights)
        return head

    def write(self, directory: str | os.PathLike, state_dict: Mapping[str, torch.Tensor] | None = None) -> None:
        """Write the folder sentence-transformers' ``Dense.load`` reads; ``state_dict`` replaces the live weights."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_json(directory / "config.json", {
            "in_features": self.in_features, "out_features": self.out_features,
            "bias": self.linear.bias is not None, "activation_function": ACTIVATIONS[self.activation]})
        weights = state_dict if state_dict is not None else self.state_dict()
        save_file({key: value.detach().contiguous().cpu() for key, value in weights.items()},
                  str(directory / _WEIGHTS), metadata={"format": "pt"})


def _read_weights(directory: Path) -> dict[str, Any]:
    if (directory / _WEIGHTS).is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(directory / _WEIGHTS))
        except SafetensorError as err:
            raise DenseModuleError(f"{directory / _WEIGHTS}: the Dense weights are damaged or incomplete ({err}); "
                                   "copy or export the model again") from None
    if (directory / _LEGACY_WEIGHTS).is_file():
        try:
            return torch.load(directory / _LEGACY_WEIGHTS, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as err:
            raise refuse_pickle(directory / _LEGACY_WEIGHTS, err, DenseModuleError) from None
        except (RuntimeError, EOFError) as err:
            raise DenseModuleError(f"{directory / _LEGACY_WEIGHTS}: the Dense weights are damaged or incomplete "
                                   f"({first_line(err)}); copy or export the model again") from None
    raise DenseModuleError(f"{directory}: the Dense module has no {_WEIGHTS} (or {_LEGACY_WEIGHTS})")
