"""Any model directory as an :class:`Encoder`: what evaluation and mining-evaluation need from a model.

:func:`load_encoder` reads a modular model directory (``modular.json``: per-language encoders, adapters on for
cross-lingual tasks, off for monolingual ones) or one multilingual model (LaBSE, e5, …: a sentence-transformers
directory, or a plain ``transformers`` encoder with mean pooling).

An encoder maps texts of one language to L2-normalised float32 rows. ``aligned`` picks the
embedding space: ``False`` for monolingual tasks (a language's own encoder, no adapter), ``True``
for cross-lingual ones (the encoder with its alignment adapter, i.e. the English pivot space; the
English encoder is the same either way). A single multilingual model ignores ``aligned``.

Optional attributes the evaluator reads when present:

- ``fingerprint: str | None`` identifies the weights (e.g. a hash of the model directory); the
  on-disk embedding cache is used only for encoders that have one, so it never mixes models;
- ``effective_aligned(lang, aligned) -> bool`` names the space ``encode(texts, lang, aligned)``
  really produces, so equal spaces are encoded once (a multilingual model returns ``False``
  always; a modular one returns ``aligned and lang != pivot``);
- ``space_fingerprint(lang, space) -> str`` identifies the weights that embed ``lang`` in that
  space, in place of ``fingerprint`` in the on-disk cache: two views of one modular model (with
  adapters and without) then share what they embed alike, the pivot's texts.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from modsent.errors import ModsentError
from modsent.io import atomic_write, fingerprint, sha256_json
from modsent.languages import resolve

__all__ = ["Encoder", "SingleModelEncoder", "ModularModelEncoder", "UnalignedView", "load_encoder", "encode_file", "effective_aligned",
           "encode_length_sorted", "normalize_rows", "EVAL_MAX_SEQ_LENGTH"]

#: The reference evaluates every encoder at 512 tokens (eval_utils.py, eval_sts_str.py), not at its training length.
EVAL_MAX_SEQ_LENGTH = 512


@runtime_checkable
class Encoder(Protocol):
    """Anything with ``encode(texts, lang, aligned) -> (len(texts), dim) float32, L2-normalised rows``."""

    def encode(self, texts: list[str], lang: str, aligned: bool) -> np.ndarray:
        ...


def effective_aligned(encoder: Encoder, lang: str, aligned: bool) -> bool:
    """The embedding space ``encoder.encode(texts, lang, aligned)`` produces (see the module docstring)."""
    resolve = getattr(encoder, "effective_aligned", None)
    return bool(resolve(lang, aligned)) if resolve is not None else aligned


def normalize_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), as float32."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.maximum(norms, np.finfo(np.float32).tiny)


def encode_length_sorted(encode_batch: Callable[[list[str]], Any], texts: Sequence[str], batch_size: int,
                         sort_by_length: bool = True) -> np.ndarray:
    """Encode ``texts`` in batches of similar length and return the rows in the input order.

    Sorting by length (longest first, so a too-large batch fails at once) keeps the padding of
    each batch small; ``sort_by_length=False`` batches in input order (the benchmark's baseline).
    ``encode_batch`` maps a list of texts to an array-like (or torch tensor) of rows.

    >>> encode_length_sorted(lambda b: [[len(t)] for t in b], ["a", "ccc", "bb"], batch_size=2).ravel()
    array([1., 3., 2.], dtype=float32)
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i])) if sort_by_length else list(range(len(texts)))
    result: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        batch_ids = order[start:start + batch_size]
        output = encode_batch([texts[i] for i in batch_ids])
        if hasattr(output, "detach"):  # torch tensor
            output = output.detach().float().cpu().numpy()
        rows = np.asarray(output, dtype=np.float32)
        if rows.ndim != 2 or rows.shape[0] != len(batch_ids):
            raise ValueError(f"encode_batch returned shape {rows.shape} for {len(batch_ids)} texts; "
                             "expected (number of texts, dimension)")
        if result is None:
            result = np.empty((len(texts), rows.shape[1]), dtype=np.float32)
        result[batch_ids] = rows
    return result if result is not None else np.zeros((0, 0), dtype=np.float32)


class SingleModelEncoder:
    """One multilingual model for every language: a ``SentenceTransformer`` or any ``callable(texts) -> rows``.

    ``lang`` and ``aligned`` are ignored (``effective_aligned`` is always ``False``, so the
    evaluator encodes each language once). Rows are L2-normalised here. Texts go to the model in
    length-sorted batches of ``batch_size``; ``None`` hands it every text in one call, for a model
    that batches by itself (:meth:`~modsent.models.encoder.SentenceEncoder.encode`).

    >>> enc = SingleModelEncoder(lambda texts: [[1.0, float(len(t))] for t in texts], fingerprint="toy")
    >>> enc.encode(["ab"], lang="deu_Latn", aligned=True).shape
    (1, 2)
    """

    def __init__(self, model: Any, batch_size: int | None = 64, fingerprint: str | None = None) -> None:
        if hasattr(model, "encode") and callable(model.encode):
            self._encode_batch = lambda batch: model.encode(batch, batch_size=len(batch), convert_to_numpy=True,
                                                            show_progress_bar=False)
        elif callable(model):
            self._encode_batch = model
        else:
            raise TypeError(f"{type(model).__name__} is neither a SentenceTransformer nor a callable(texts)")
        self.batch_size = batch_size
        self.fingerprint = fingerprint

    def effective_aligned(self, lang: str, aligned: bool) -> bool:
        return False

    def encode(self, texts: list[str], lang: str, aligned: bool) -> np.ndarray:
        if self.batch_size is None:
            return normalize_rows(encode_length_sorted(self._encode_batch, texts, max(1, len(texts)),
                                                       sort_by_length=False))
        return normalize_rows(encode_length_sorted(self._encode_batch, texts, self.batch_size))


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
        # The pivot has no adapter: its monolingual and aligned spaces are one. A target without an adapter
        # (a model of the steps before alignment) is compared across languages in its own space, as with
        # adapters off.
        code = resolve(lang).code
        module = self.model.modules.get(code)
        return aligned and code != self.model.pivot and (module is None or module.adapter is not None)

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
    from modsent.models.files import require_model_dir

    path = require_model_dir(path, ModsentError)  # a pypi: name or a hub id as every stage reads it
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


def encode_file(model_dir: str | os.PathLike, input_path: str | os.PathLike, output_path: str | os.PathLike,
                lang: str | None = None, batch_size: int = 32, normalize: bool = False,
                trust_remote_code: bool = False) -> np.ndarray:
    """Embed every line of a UTF-8 text file with the model in ``model_dir``; save a ``.npy`` atomically.

    Returns the ``(lines, dim)`` float32 array it saved. ``lang`` (an NLLB code) is required for
    NLLB/M2M100 encoders and ignored otherwise.

    >>> encode_file("model", "sentences.txt", "emb.npy", lang="deu_Latn")  # doctest: +SKIP
    """
    import torch

    from modsent.corpus import read_lines
    from modsent.dirlock import claim_output
    from modsent.models.encoder import SentenceEncoder
    from modsent.output_checks import check_not_overwriting, check_output_file
    from modsent.progress import Progress

    if batch_size < 1:
        raise ModsentError(f"batch size must be >= 1, got {batch_size}")
    code = resolve(lang).code if lang else None
    check_output_file(output_path, "embeddings file (--output)")  # first: a directory given as --output is named so
    check_not_overwriting({"--output": output_path}, {"--input": input_path, "--model": model_dir})
    encoder = SentenceEncoder.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
    if torch.cuda.is_available():
        encoder.to("cuda")
    texts = list(read_lines(input_path))
    check_output_file(output_path, "embeddings file (--output)", need_bytes=4 * len(texts) * encoder.embedding_dim)
    claim_output(output_path, "modsent encode")  # and remove what a killed encode of it left
    with Progress(len(texts), "encode", "texts") as progress:
        embeddings = encoder.encode(texts, lang=code, batch_size=batch_size, normalize=normalize,
                                    on_batch=progress.update)
    with atomic_write(output_path, "wb", encoding=None) as handle:
        np.save(handle, embeddings)
    return embeddings
