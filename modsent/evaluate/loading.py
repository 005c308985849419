"""``modsent evaluate``: turn the config's model paths into encoders and run the evaluation.

A directory with ``modular.json`` is a modular model (per-language encoders, adapters on for
cross-lingual tasks, off for monolingual ones); any other directory is one multilingual model
(LaBSE, e5, …) loaded as a sentence-transformers model, or as a plain ``transformers`` encoder
with mean pooling.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from modsent.dirlock import hold_directory
from modsent.errors import ModsentError
from modsent.evaluate.encoders import Encoder, SingleModelEncoder
from modsent.evaluate.runner import EVAL_MAX_SEQ_LENGTH, EvaluateConfig, run_evaluation
from modsent.io import fingerprint, sha256_json
from modsent.output_checks import check_not_overwriting
from modsent.languages import resolve

__all__ = ["ModularModelEncoder", "UnalignedView", "load_encoder", "run_evaluate"]


class ModularModelEncoder:
    """The evaluator's view of a :class:`~modsent.models.modular.ModularEncoder`."""

    def __init__(self, path: str | os.PathLike, batch_size: int = 64, max_loaded: int = 4,
                 max_seq_length: int = EVAL_MAX_SEQ_LENGTH, max_tokens: int | None = None) -> None:
        from modsent.models.modular import ModularEncoder

        self.model = ModularEncoder(path, max_loaded=max_loaded, max_seq_length=max_seq_length)
        self.batch_size, self.max_tokens = batch_size, max_tokens
        self.fingerprint = sha256_json([fingerprint(path), fingerprint(Path(path) / "modular.json"),
                                        {"max_seq_length": max_seq_length}])

    def effective_aligned(self, lang: str, aligned: bool) -> bool:
        # The pivot has no adapter: its monolingual and aligned spaces are one.
        return aligned and resolve(lang).code != self.model.pivot

    @functools.lru_cache(maxsize=None)  # noqa: B019 (one per loaded model; hashing an adapter per set is waste)
    def space_fingerprint(self, lang: str, space: bool) -> str:
        """The weights behind ``lang`` in that space: its encoder, and its adapter when aligned (the
        manifest only names them, and a redone alignment rewrites an adapter in place)."""
        module = self.model.modules.get(resolve(lang).code)  # a language it lacks fails in encode, with a message
        parts = [] if module is None else [fingerprint(module.encoder)] + (
            [fingerprint(module.adapter)] if space and module.adapter else [])
        return sha256_json([resolve(lang).code, space, parts, {"max_seq_length": self.model.max_seq_length}])

    def encode(self, texts: list[str], lang: str, aligned: bool) -> np.ndarray:
        return self.model.encode(texts, lang=lang, aligned=aligned, batch_size=self.batch_size, normalize=True,
                                 max_tokens=self.max_tokens)


class UnalignedView:
    """A modular model with its adapters switched off everywhere: the "before alignment" reference."""

    def __init__(self, modular: ModularModelEncoder) -> None:
        self.modular = modular
        self.fingerprint = sha256_json(["unaligned", modular.fingerprint])

    def effective_aligned(self, lang: str, aligned: bool) -> bool:
        return False

    def space_fingerprint(self, lang: str, space: bool) -> str:
        return self.modular.space_fingerprint(lang, False)  # the same embeddings as the model's own, adapters off

    def encode(self, texts: list[str], lang: str, aligned: bool) -> np.ndarray:
        return self.modular.encode(texts, lang, aligned=False)


def load_encoder(path: str | os.PathLike, batch_size: int = 64, max_seq_length: int = EVAL_MAX_SEQ_LENGTH,
                 max_tokens: int | None = None, trust_remote_code: bool = False) -> Encoder:
    """An encoder for a modular model directory or a single (sentence-transformers/transformers) model.

    Every model reads up to ``max_seq_length`` tokens (capped by its position table), whatever
    length it was trained at: the reference evaluates at 512.
    """
    path = Path(path)
    if not path.exists():
        raise ModsentError(f"model {path} does not exist")
    if (path / "modular.json").exists():
        return ModularModelEncoder(path, batch_size, max_seq_length=max_seq_length, max_tokens=max_tokens)
    import torch

    from modsent.models.encoder import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained(path, trust_remote_code=trust_remote_code).eval()
    if torch.cuda.is_available():  # as ModularEncoder and encode_file: a single model stayed on CPU beside a GPU
        encoder.to("cuda")
    length = encoder.set_max_seq_length(max_seq_length)
    # The encoder batches by token count itself (and caps padded tokens): one call with every text.
    return SingleModelEncoder(lambda texts: encoder.encode(texts, batch_size=batch_size, normalize=True,
                                                           max_tokens=max_tokens),
                              batch_size=None,
                              fingerprint=sha256_json([fingerprint(path), {"max_seq_length": length}]))


def run_evaluate(config: EvaluateConfig) -> dict[str, Any]:
    """Load every model named in ``config.models`` and evaluate them side by side."""
    if not config.models:
        raise ModsentError("evaluate: `models` is empty; name at least one model (name: path)")
    check_not_overwriting({"output_dir": config.output_dir}, {
        **{f"models.{name}": path for name, path in config.models.items()},
        **{f"sts {sts.name}": sts.files.values() for sts in config.sts},
        "belebele.directory": config.belebele.directory,
        **{f"bitext {bitext.name}": bitext.files.values() for bitext in config.bitext}})
    hold_directory(config.output_dir, "modsent evaluate")
    encoders = {name: load_encoder(path, config.batch_size, config.max_seq_length, config.max_batch_tokens,
                                   config.trust_remote_code)
                for name, path in config.models.items()}
    if config.compare_unaligned:
        for name, encoder in list(encoders.items()):
            if isinstance(encoder, ModularModelEncoder):
                encoders[f"{name}-unaligned"] = UnalignedView(encoder)
    return run_evaluation(config, encoders)
