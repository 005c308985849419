"""Parallel bottleneck adapters (ParBn, He et al. 2021) on a frozen BERT-family encoder.

The alignment stage trains one of these per language, on the language's frozen encoder, so that
its embeddings land in the English pivot's space. The definition follows the ``adapters``
library's ``ParBnConfig()`` (which the reference uses) exactly:

* one adapter per transformer layer, on the feed-forward (FFN) block only — not on attention;
* *parallel* to the FFN: its input is the FFN block's input ``x`` (the attention sub-layer's
  output), not the FFN's output;
* ``down`` (hidden -> hidden // 2, reduction factor 2), ReLU, ``up`` (-> hidden), output × 4.0;
* added to the FFN output before the layer's own LayerNorm::

      layer_out = LayerNorm(ffn_out + adapter_out + x)      # was LayerNorm(ffn_out + x)

* ``adapters``' ``mam_adapter`` init: ``down.weight`` Kaiming-uniform (a=√5, torch's Linear
  default), ``down.bias`` zero, ``up.weight`` and ``up.bias`` zero — so an untrained adapter adds
  exactly 0 and leaves every output bit-identical. ``residual_before_ln``,
  ``original_ln_before`` and ``ln_before/after`` are ignored for parallel adapters (its
  ``ParallelAdapter.pre_forward`` returns the FFN input whatever they say), and
  ``original_ln_after=True`` is the LayerNorm above. Adapter dropout is 0.

The ``adapters`` package itself cannot be a dependency: ``adapters`` 1.3.0 requires
``transformers~=4.57.6`` and cannot coexist with transformers 5.x, so the tests check this module
against the formula computed by hand from a layer's submodules.

Implementation: the encoder's modules are never edited. :meth:`ParallelAdapter.attach` registers
a forward pre-hook on every layer's FFN output module (``BertOutput``, ``XLMRobertaOutput`` …,
whose ``forward(hidden_states, input_tensor)`` computes ``LayerNorm(dropout(dense(h)) +
input_tensor)``) that passes ``input_tensor + adapter(input_tensor)`` instead — the same sum.
The base model's ``state_dict`` keeps its names, the adapter's weights live in the
:class:`ParallelAdapter` module alone, and ``adapter.enabled = False`` (or
:meth:`ParallelAdapter.disabled`) switches it off for monolingual use.

Saved layout (an adapter directory)::

    adapter_config.json     format, sizes, ParBn settings, base encoder (path + weights fingerprint), extra metadata
    adapter.safetensors     layers.{i}.down.weight/bias, layers.{i}.up.weight/bias

>>> encoder = SentenceEncoder.from_pretrained("runs/train/deu_Latn/artifacts/model")  # doctest: +SKIP
>>> adapter = ParallelAdapter.for_model(encoder).attach(encoder)                       # doctest: +SKIP
>>> adapter.save("adapters/deu_Latn", base_path="runs/train/deu_Latn/artifacts/model")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import inspect
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from torch import nn

from modsent.errors import ModsentError
from modsent.io import (
    atomic_directory,
    atomic_write_bytes,
    atomic_write_json,
    cache_root,
    read_format_json,
    relative_path,
    sha256_file,
)

__all__ = [
    "ADAPTER_CONFIG_FILE",
    "ADAPTER_WEIGHTS_FILE",
    "AdapterError",
    "AdapterMismatchError",
    "UnsupportedArchitectureError",
    "ParBnConfig",
    "BottleneckAdapter",
    "ParallelAdapter",
    "ffn_output_modules",
    "encoder_fingerprint",
    "count_parameters",
]

ADAPTER_CONFIG_FILE = "adapter_config.json"
ADAPTER_WEIGHTS_FILE = "adapter.safetensors"
ADAPTER_FORMAT = "modsent-parallel-adapter"
ADAPTER_FORMAT_VERSION = 1


class AdapterError(ModsentError):
    """An adapter directory is missing, incomplete or malformed."""


class AdapterMismatchError(AdapterError):
    """An adapter was trained on another base encoder (different weights or shapes) than the one given."""


class UnsupportedArchitectureError(ModsentError):
    """The encoder's layers are not BERT-family layers the adapter knows how to wrap."""


@dataclass(frozen=True)
class ParBnConfig:
    """The adapter's shape: ``adapters.ParBnConfig()`` defaults (reduction factor 2, scaling 4.0, ReLU).

    >>> ParBnConfig().bottleneck_size(768)
    384
    """

    reduction_factor: float = 2.0
    scaling: float = 4.0

    def __post_init__(self) -> None:
        if not self.reduction_factor > 0:
            raise AdapterError(f"adapter reduction_factor must be > 0, got {self.reduction_factor}")
        if not math.isfinite(self.scaling):
            raise AdapterError(f"adapter scaling must be a finite number, got {self.scaling}")

    def bottleneck_size(self, hidden_size: int) -> int:
        """``int(hidden // reduction_factor)``, at least 1 — as ``adapters`` computes it."""
        return max(1, int(hidden_size // self.reduction_factor))


class BottleneckAdapter(nn.Module):
    """``scaling * up(relu(down(x)))`` with the ``mam_adapter`` init (``up`` zero: outputs 0 until trained)."""

    def __init__(self, hidden_size: int, bottleneck_size: int, scaling: float) -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck_size)
        self.up = nn.Linear(bottleneck_size, hidden_size)
        self.scaling = float(scaling)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        with torch.no_grad():
            nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
            nn.init.zeros_(self.down.bias)
            nn.init.zeros_(self.up.weight)
            nn.init.zeros_(self.up.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(torch.relu(self.down(x))) * self.scaling

    def extra_repr(self) -> str:
        return f"scaling={self.scaling}"


# ---------------------------------------------------------------------------------------------
# Finding the FFN blocks
# ---------------------------------------------------------------------------------------------

_FFN_OUTPUT_PARTS = ("dense", "dropout", "LayerNorm")


def _backbone(model: nn.Module) -> nn.Module:
    """The ``transformers`` network inside a :class:`~modsent.models.encoder.SentenceEncoder`, a
    sentence-transformers ``Transformer`` module or a task model (``BertForMaskedLM`` …)."""
    for attribute in ("backbone", "auto_model"):
        inner = getattr(model, attribute, None)
        if isinstance(inner, nn.Module):
            model = inner
            break
    base = getattr(model, "base_model", None)
    return base if isinstance(base, nn.Module) else model


def _is_ffn_output(module: Any) -> bool:
    if not isinstance(module, nn.Module) or not all(hasattr(module, part) for part in _FFN_OUTPUT_PARTS):
        return False
    if not isinstance(module.dense, nn.Linear) or not isinstance(module.LayerNorm, nn.LayerNorm):
        return False
    params = list(inspect.signature(module.forward).parameters)
    return params[:2] == ["hidden_states", "input_tensor"]


def ffn_output_modules(model: nn.Module) -> list[nn.Module]:
    """Every layer's FFN output module (``BertOutput`` and its BERT/RoBERTa/XLM-R/ELECTRA copies), in layer order.

    Raises :class:`UnsupportedArchitectureError` for any other architecture, naming what it found.
    """
    backbone = _backbone(model)
    layers = getattr(getattr(backbone, "encoder", None), "layer", None)
    name = type(backbone).__name__
    if not isinstance(layers, nn.ModuleList) or len(layers) == 0:
        raise UnsupportedArchitectureError(
            f"{name} has no encoder.layer list; the parallel adapter supports BERT-family encoders "
            "(BERT, RoBERTa, XLM-R, ELECTRA, CamemBERT), whose layers end in BertOutput-style FFN modules")
    outputs = []
    for index, layer in enumerate(layers):
        output = getattr(layer, "output", None)
        if not (_is_ffn_output(output) and hasattr(layer, "intermediate")):
            raise UnsupportedArchitectureError(
                f"{name} layer {index} ({type(layer).__name__}) has no BertOutput-style FFN output module "
                "(dense, dropout, LayerNorm; forward(hidden_states, input_tensor)); the parallel adapter supports "
                "BERT-family encoders (BERT, RoBERTa, XLM-R, ELECTRA, CamemBERT)")
        outputs.append(output)
    return outputs


def count_parameters(module: nn.Module) -> int:
    """Number of scalar parameters of ``module`` (shared tensors once)."""
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values())


# ---------------------------------------------------------------------------------------------
# Base encoder fingerprint
# ---------------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _cached_file_hash(path: str, size: int, mtime_ns: int) -> str:
    return sha256_file(path)


def _recorded_base_path(base_path: str | os.PathLike, directory: str | os.PathLike) -> str:
    """How an adapter in ``directory`` names its base encoder (only the fingerprint is checked on load).

    Relative to the adapter, so a copied or moved model or run records the same bytes (:meth:`ParallelAdapter.save`
    stages beside its target, at the same depth); absolute for a base in modsent's cache (an imported or
    tiny model), which stays where it is when a run moves.
    """
    base = Path(base_path).resolve()
    if base.is_relative_to(cache_root().resolve()):
        return base.as_posix()
    return relative_path(base, directory)


def encoder_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 over the weight files (``*.safetensors``) at the top of an encoder directory and its Dense module.

    Identifies the weights an adapter was trained on, whatever the directory is called or where
    it was copied; an adapter directory or other sub-folders inside it do not count (a
    sentence-transformers ``*_Dense/model.safetensors`` does: it changes the embeddings). File hashes
    are memoised per (path, size, mtime), so routing back to an encoder costs no rehash.

    >>> encoder_fingerprint("runs/train/deu_Latn/artifacts/model")  # doctest: +SKIP
    '3f7a…'
    """
    root = Path(path)
    files = []
    if root.is_dir():
        files = sorted(root.glob("*.safetensors")) + sorted(root.glob("*_Dense/model.safetensors"))
    if not files:
        raise AdapterError(f"{root}: no *.safetensors weights found; the base encoder must be a directory written "
                           "by SentenceEncoder.save or save_pretrained(safe_serialization=True)")
    digest = hashlib.sha256()
    for file in files:
        stat = file.stat()
        content = _cached_file_hash(str(file.resolve()), stat.st_size, stat.st_mtime_ns)
        digest.update(file.relative_to(root).as_posix().encode() + b"\0" + content.encode())
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------
# The adapter set
# ---------------------------------------------------------------------------------------------

class ParallelAdapter(nn.Module):
    """One :class:`BottleneckAdapter` per encoder layer, hooked in parallel to each FFN block.

    Build it for an encoder with :meth:`for_model`, or load a trained one with :meth:`load`; then
    :meth:`attach` it. ``enabled`` switches it on (cross-lingual embeddings) or off (the
    encoder's own, monolingual embeddings) without detaching. Only this module's parameters are
    trained; the encoder stays frozen.
    """

    def __init__(self, num_layers: int, hidden_size: int, config: ParBnConfig | None = None,
                 metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        if num_layers < 1 or hidden_size < 1:
            raise AdapterError(f"an adapter needs >= 1 layer and hidden size, got {num_layers} and {hidden_size}")
        self.config = config or ParBnConfig()
        self.hidden_size = int(hidden_size)
        self.bottleneck_size = self.config.bottleneck_size(hidden_size)
        self.layers = nn.ModuleList(
            BottleneckAdapter(hidden_size, self.bottleneck_size, self.config.scaling) for _ in range(num_layers))
        self.enabled = True
        #: What :meth:`load` read from ``adapter_config.json`` (base encoder, language …); saved back by :meth:`save`.
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._hooks: list[torch.utils.hooks.RemovableHandle] = []

    @classmethod
    def for_model(cls, model: nn.Module, config: ParBnConfig | None = None) -> "ParallelAdapter":
        """A fresh (output-preserving) adapter sized for ``model``'s layers and hidden size."""
        outputs = ffn_output_modules(model)
        return cls(len(outputs), outputs[0].dense.out_features, config)

    # ------------------------------------------------------------------ hooking in
    @property
    def attached(self) -> bool:
        return bool(self._hooks)

    def attach(self, model: nn.Module) -> "ParallelAdapter":
        """Hook the adapter into ``model`` (a SentenceEncoder, sentence-transformers Transformer or ``transformers`` model).

        Moves the adapter to the model's device and dtype. Raises :class:`AdapterMismatchError`
        when the layer count or hidden size differ, and ``RuntimeError`` if already attached.
        """
        if self._hooks:
            raise RuntimeError("this adapter is already attached to a model; detach() it first")
        outputs = ffn_output_modules(model)
        hidden = outputs[0].dense.out_features
        if len(outputs) != len(self.layers) or hidden != self.hidden_size:
            raise AdapterMismatchError(
                f"adapter has {len(self.layers)} layers of hidden size {self.hidden_size}, the encoder "
                f"{len(outputs)} layers of hidden size {hidden}; it was trained for another base encoder")
        weight = outputs[0].dense.weight
        self.to(device=weight.device, dtype=weight.dtype)
        for index, output in enumerate(outputs):
            self._hooks.append(output.register_forward_pre_hook(
                functools.partial(self._add_adapter, index), with_kwargs=True))
        return self

    def detach(self) -> None:
        """Remove the hooks: the model computes exactly what it did before :meth:`attach`."""
        for handle in self._hooks:
            handle.remove()
        self._hooks.clear()

    def _add_adapter(self, index: int, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        # FFN output modules compute LayerNorm(dropout(dense(h)) + input_tensor); feeding them
        # input_tensor + adapter(input_tensor) yields LayerNorm(ffn_out + adapter_out + x).
        if not self.enabled:
            return None
        if len(args) >= 2:
            residual = args[1]
            return (args[0], residual + self.layers[index](residual), *args[2:]), kwargs
        residual = kwargs["input_tensor"]
        return args, {**kwargs, "input_tensor": residual + self.layers[index](residual)}

    @contextlib.contextmanager
    def disabled(self) -> Iterator["ParallelAdapter"]:
        """Within the block, the attached model computes its own (adapter-free) embeddings."""
        previous, self.enabled = self.enabled, False
        try:
            yield self
        finally:
            self.enabled = previous

    # ------------------------------------------------------------------ saving and loading
    def save(self, path: str | os.PathLike, base_path: str | os.PathLike,
             metadata: Mapping[str, Any] | None = None) -> Path:
        """Write the adapter directory ``path`` atomically (complete or absent) and return it; see :meth:`write`."""
        with atomic_directory(path) as staging:
            self.write(staging, base_path, metadata)
        return Path(path)

    def write(self, directory: str | os.PathLike, base_path: str | os.PathLike,
              metadata: Mapping[str, Any] | None = None) -> None:
        """Write ``adapter_config.json`` + ``adapter.safetensors`` into the existing ``directory``.

        ``base_path`` is the base encoder directory: its path (see :func:`_recorded_base_path`) and
        weights fingerprint go into the config so that :meth:`load` refuses any other base. ``metadata`` (language, pivot …) is
        stored alongside, merged over :attr:`metadata`.
        """
        from safetensors.torch import save

        tensors = {name: value.detach().to("cpu", torch.float32).contiguous()
                   for name, value in self.state_dict().items()}
        config = {
            "format": ADAPTER_FORMAT,
            "format_version": ADAPTER_FORMAT_VERSION,
            "method": "ParBn",
            "location": "parallel to every layer's feed-forward block, before its LayerNorm",
            "num_layers": len(self.layers),
            "hidden_size": self.hidden_size,
            "bottleneck_size": self.bottleneck_size,
            "non_linearity": "relu",
            **asdict(self.config),
            "base": {"path": _recorded_base_path(base_path, directory), "fingerprint": encoder_fingerprint(base_path)},
            "metadata": {**self.metadata, **dict(metadata or {})},
        }
        directory = Path(directory)
        atomic_write_bytes(directory / ADAPTER_WEIGHTS_FILE, save(tensors, metadata={"format": "pt"}))
        atomic_write_json(directory / ADAPTER_CONFIG_FILE, config)

    @staticmethod
    def read_config(path: str | os.PathLike) -> dict[str, Any]:
        """The ``adapter_config.json`` of an adapter directory, checked for format and required keys."""
        config_path = Path(path) / ADAPTER_CONFIG_FILE
        config = read_format_json(config_path, ADAPTER_FORMAT, ADAPTER_FORMAT_VERSION, AdapterError,
                                  "not an adapter directory; point at the directory `modsent align` wrote "
                                  "(artifacts/adapter)")
        missing = [k for k in ("num_layers", "hidden_size", "reduction_factor", "scaling", "base") if k not in config]
        if missing:
            raise AdapterError(f"{config_path}: missing keys {', '.join(missing)}")
        return config

    @classmethod
    def load(cls, path: str | os.PathLike, base_path: str | os.PathLike | None = None) -> "ParallelAdapter":
        """Load an adapter directory written by :meth:`save`.

        With ``base_path`` (the encoder directory it will be attached to), refuse with
        :class:`AdapterMismatchError` unless that encoder's weights fingerprint is the one the
        adapter was trained on.
        """
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        config = cls.read_config(path)
        if base_path is not None:
            expected = config["base"].get("fingerprint")
            actual = encoder_fingerprint(base_path)
            if actual != expected:
                raise AdapterMismatchError(
                    f"adapter {path} was trained on the encoder {config['base'].get('path')} (weights "
                    f"{str(expected)[:12]}…), not on {base_path} (weights {actual[:12]}…); use the adapter trained "
                    "for this encoder, or re-run `modsent align` on it")
        adapter = cls(int(config["num_layers"]), int(config["hidden_size"]),
                      ParBnConfig(float(config["reduction_factor"]), float(config["scaling"])),
                      metadata=config.get("metadata"))
        weights_path = Path(path) / ADAPTER_WEIGHTS_FILE
        try:
            state = load_file(weights_path)
        except (OSError, SafetensorError) as err:
            raise AdapterError(f"{weights_path}: cannot read the adapter weights ({err})") from None
        expected_shapes = {name: tuple(value.shape) for name, value in adapter.state_dict().items()}
        found_shapes = {name: tuple(value.shape) for name, value in state.items()}
        if found_shapes != expected_shapes:
            raise AdapterError(f"{weights_path}: tensors do not match {Path(path) / ADAPTER_CONFIG_FILE} "
                               f"({len(found_shapes)} tensors found, {len(expected_shapes)} expected)")
        adapter.load_state_dict(state)
        return adapter

    def extra_repr(self) -> str:
        return f"hidden={self.hidden_size}, bottleneck={self.bottleneck_size}, enabled={self.enabled}"
