"""ModularEncoder: one encoder per language, routed by language, with the cross-lingual adapter on or off.

A modular model directory holds ``modular.json`` plus the per-language encoders and adapters it
points to (the pipeline writes it with :func:`write_modular_manifest`)::

    MODEL_DIR/
      modular.json
      encoders/eng_Latn/        SentenceEncoder directories (sentence-transformers layout)
      encoders/deu_Latn/
      adapters/deu_Latn/        `modsent align` output (adapter_config.json + adapter.safetensors)

    modular.json = {"format": "modsent-modular", "format_version": 1, "pivot": "eng_Latn",
                    "languages": {"eng_Latn": {"encoder": "encoders/eng_Latn", "adapter": null},
                                  "deu_Latn": {"encoder": "encoders/deu_Latn", "adapter": "adapters/deu_Latn"}}}

Paths are relative to ``MODEL_DIR`` (absolute paths also work). The pivot language has no
adapter: its space *is* the shared space.

:meth:`ModularEncoder.encode` routes every text to its language's encoder. ``aligned=True``
(default) switches each language's adapter on — embeddings of every language land in the
pivot's space, for cross-lingual use; ``aligned=False`` gives each encoder's own, monolingual
embeddings. Encoders load lazily, and at most ``max_loaded`` stay in memory (least recently
used first out), so a model with 100+ languages keeps a flat footprint.

:meth:`ModularEncoder.export_sentence_transformer` writes one aligned language as a
sentence-transformers directory whose first module, :class:`AlignedTransformer` (a
sentence-transformers ``Transformer`` that attaches the adapter), makes
``SentenceTransformer(path, trust_remote_code=True)`` return the aligned embeddings with modsent
installed. (sentence-transformers >= 6 asks for ``trust_remote_code`` before importing *any*
module class outside its own package, installed ones included; the export contains no code.)

>>> model = ModularEncoder("runs/modular")                                          # doctest: +SKIP
>>> model.encode(["Ein Hund.", "A dog.", "Un chien."], lang=["deu_Latn", "eng_Latn", "fra_Latn"]).shape  # doctest: +SKIP
(3, 768)
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from modsent.errors import ModsentError
from modsent.io import atomic_directory, atomic_write_json, read_format_json, relative_path
from modsent.languages import resolve
from modsent.models.adapter import ParallelAdapter
from modsent.models.encoder import SentenceEncoder

__all__ = [
    "MODULAR_FILE",
    "encode_modular_file",
    "is_modular_model",
    "ModularModelError",
    "LanguageModule",
    "ModularEncoder",
    "write_modular_manifest",
    "read_modular_manifest",
    "AlignedTransformer",
]

MODULAR_FILE = "modular.json"
MODULAR_FORMAT = "modsent-modular"
MODULAR_FORMAT_VERSION = 1
#: Where an exported sentence-transformers directory keeps the adapter.
EXPORT_ADAPTER_DIR = "adapter"


class ModularModelError(ModsentError):
    """A modular model directory is malformed, or a language/mode it cannot serve was asked for."""


@dataclass(frozen=True)
class LanguageModule:
    """One language of a modular model: its encoder directory and (except the pivot) its adapter directory."""

    encoder: Path
    adapter: Path | None


def _relative(path: str | os.PathLike, root: Path, within: Path) -> str:
    path = Path(path).resolve()
    if not path.is_relative_to(within.resolve()):
        return str(path)  # a model outside (a cache import) stays where it is when the directory moves
    return relative_path(path, root)


def write_modular_manifest(root: str | os.PathLike, pivot: str,
                           languages: Mapping[str, tuple[str | os.PathLike, str | os.PathLike | None]],
                           within: str | os.PathLike | None = None) -> Path:
    """Write ``root/modular.json`` for ``languages`` = {code: (encoder dir, adapter dir or None)}; return its path.

    Codes are normalised (``de`` -> ``deu_Latn``); paths inside ``within`` (default: ``root``) are
    stored relative to ``root`` (``../`` where needed), so copying or moving ``within`` keeps them
    pointing at its own files — a run passes its run directory, which holds ``root``. The pivot must
    be listed, without an adapter.

    >>> write_modular_manifest("runs/modular", "eng_Latn", {"eng_Latn": ("runs/train/eng/artifacts/model", None),
    ...     "deu_Latn": ("runs/train/deu/artifacts/model", "runs/align/deu/artifacts/adapter")})  # doctest: +SKIP
    """
    root = Path(root)
    within = root if within is None else Path(within)
    pivot = resolve(pivot).code
    entries: dict[str, dict[str, str | None]] = {}
    for code, (encoder, adapter) in languages.items():
        code = resolve(code).code
        entries[code] = {"encoder": _relative(encoder, root, within),
                         "adapter": None if adapter is None else _relative(adapter, root, within)}
    if pivot not in entries or entries[pivot]["adapter"] is not None:
        raise ModularModelError(f"the pivot {pivot} must be among the languages, without an adapter")
    path = root / MODULAR_FILE
    atomic_write_json(path, {"format": MODULAR_FORMAT, "format_version": MODULAR_FORMAT_VERSION, "pivot": pivot,
                             "languages": entries})
    return path


def read_modular_manifest(root: str | os.PathLike) -> tuple[str, dict[str, LanguageModule]]:
    """(pivot code, {code: LanguageModule}) of a modular model directory, paths resolved; checked, not loaded."""
    root = Path(root)
    path = root / MODULAR_FILE
    manifest = read_format_json(path, MODULAR_FORMAT, MODULAR_FORMAT_VERSION, ModularModelError,
                                "not a modular model directory; build one with "
                                "modsent.models.modular.write_modular_manifest or the pipeline")
    languages: dict[str, LanguageModule] = {}
    for code, entry in (manifest.get("languages") or {}).items():
        if not isinstance(entry, dict) or not entry.get("encoder"):
            raise ModularModelError(f"{path}: languages.{code} needs an 'encoder' path (and 'adapter': path or null)")
        try:
            resolved = resolve(code).code
        except ModsentError as err:
            raise ModularModelError(f"{path}: languages.{code}: {err}") from None
        adapter = entry.get("adapter")
        languages[resolved] = LanguageModule(root / entry["encoder"], None if adapter is None else root / adapter)
    pivot = manifest.get("pivot")
    if pivot not in languages:
        raise ModularModelError(f"{path}: pivot {pivot!r} is not among languages {sorted(languages)}")
    return pivot, languages


class _Loaded:
    """A language's encoder in memory, with its adapter attached (if it has one)."""

    def __init__(self, module: LanguageModule, device: torch.device, max_seq_length: int | None) -> None:
        self.encoder = SentenceEncoder.from_pretrained(module.encoder).to(device).eval()
        if max_seq_length is not None:
            self.encoder.set_max_seq_length(max_seq_length)
        self.adapter = None
        if module.adapter is not None:
            self.adapter = ParallelAdapter.load(module.adapter, base_path=module.encoder).attach(self.encoder)


class ModularEncoder:
    """Per-language encoders behind one ``encode``; see the module docstring for the directory layout.

    ``max_loaded``: how many language encoders may be in memory at once (least recently used
    are dropped first). ``device``: where encoders run (default: CUDA when available, else CPU).
    ``max_seq_length``: truncate every language's input there (capped by each model's position
    table) instead of at each encoder's saved training length — what evaluation does.
    """

    def __init__(self, path: str | os.PathLike, max_loaded: int = 4, device: str | torch.device | None = None,
                 max_seq_length: int | None = None) -> None:
        if max_loaded < 1:
            raise ModularModelError(f"max_loaded must be >= 1, got {max_loaded}")
        self.root = Path(path)
        self.pivot, self.modules = read_modular_manifest(self.root)
        self.max_loaded = max_loaded
        self.max_seq_length = max_seq_length
        self.device = torch.device(device) if device is not None else torch.device(
            "cuda" if torch.cuda.is_available() else "cpu")
        self._loaded: OrderedDict[str, _Loaded] = OrderedDict()

    @property
    def languages(self) -> list[str]:
        """Every language code the model serves, sorted."""
        return sorted(self.modules)

    @property
    def loaded_languages(self) -> list[str]:
        """Languages whose encoders are in memory now, least recently used first."""
        return list(self._loaded)

    def _code(self, lang: str) -> str:
        code = resolve(lang).code
        if code not in self.modules:
            raise ModularModelError(f"{self.root} has no encoder for {code}; it serves {', '.join(self.languages)}")
        return code

    def _get(self, code: str) -> _Loaded:
        if code in self._loaded:
            self._loaded.move_to_end(code)
            return self._loaded[code]
        while len(self._loaded) >= self.max_loaded:
            self._loaded.popitem(last=False)
        loaded = self._loaded[code] = _Loaded(self.modules[code], self.device, self.max_seq_length)
        return loaded

    def _check_aligned(self, code: str, aligned: bool) -> None:
        if aligned and code != self.pivot and self.modules[code].adapter is None:
            raise ModularModelError(f"{code} has no cross-lingual adapter in {self.root}, so it has no aligned "
                                    f"embeddings; run `modsent align` for it or pass aligned=False (monolingual)")

    def encoder(self, lang: str, aligned: bool = True) -> SentenceEncoder:
        """The loaded encoder of ``lang`` with its adapter switched to ``aligned`` (stays so until the next call)."""
        code = self._code(lang)
        self._check_aligned(code, aligned)
        loaded = self._get(code)
        if loaded.adapter is not None:
            loaded.adapter.enabled = aligned
        return loaded.encoder

    def encode(self, texts: Sequence[str], lang: str | Sequence[str] | None = None, aligned: bool = True,
               batch_size: int = 32, normalize: bool = False, max_tokens: int | None = None,
               on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed ``texts`` (float32 ``(len(texts), dim)``, input order), each with its language's encoder.

        ``lang``: one code for all texts, or one per text (any spelling the registry resolves);
        ``None`` identifies each text's language (:mod:`modsent.models.langid`) and refuses texts
        in a language the model lacks, naming it. Mixed lists are grouped by language, each group
        encoded by its encoder, and the rows put back in input order. ``aligned``: adapters on
        (cross-lingual, shared pivot space) or off (monolingual). ``normalize`` L2-normalises every row.
        ``batch_size`` / ``max_tokens``: texts / padded tokens per forward
        (:func:`~modsent.models.batching.length_batches`); ``on_batch(rows)`` follows each forward.
        """
        texts = list(texts)
        if lang is None:
            per_text = self.identify(texts)
        else:
            per_text = [lang] * len(texts) if isinstance(lang, str) else list(lang)
        if len(per_text) != len(texts):
            raise ModularModelError(f"got {len(per_text)} languages for {len(texts)} texts; pass one code or one per text")
        codes = [self._code(code) for code in per_text]
        groups: dict[str, list[int]] = {}
        for row, code in enumerate(codes):
            groups.setdefault(code, []).append(row)
        for code in groups:
            self._check_aligned(code, aligned)
        out: np.ndarray | None = None
        for code, rows in groups.items():
            encoder = self.encoder(code, aligned)
            embeddings = encoder.encode([texts[i] for i in rows], lang=code if encoder.needs_lang else None,
                                        batch_size=batch_size, normalize=normalize, max_tokens=max_tokens,
                                        on_batch=on_batch)
            if out is None:
                out = np.zeros((len(texts), embeddings.shape[1]), dtype=np.float32)
            elif embeddings.shape[1] != out.shape[1]:
                raise ModularModelError(f"{code}'s encoder gives {embeddings.shape[1]}-dimensional embeddings, other "
                                        f"languages {out.shape[1]}; one call can only mix languages of one width")
            out[rows] = embeddings
        if out is None:  # no texts: still (0, dim), the width of the language's (or the pivot's) encoder
            code = self._code(lang) if isinstance(lang, str) else self.pivot
            out = np.zeros((0, self.encoder(code, aligned).embedding_dim), dtype=np.float32)
        return out

    def identify(self, texts: Sequence[str]) -> list[str]:
        """Each text's language as identified by py3langid, checked against the languages this model serves."""
        from modsent.models.langid import identify_languages

        found = identify_languages(texts)
        lacking: dict[str, int] = {}
        for code in found:
            if code not in self.modules:
                lacking[code or "an unknown language"] = lacking.get(code or "an unknown language", 0) + 1
        if lacking:
            counts = ", ".join(f"{n} text(s) in {code}" for code, n in sorted(lacking.items()))
            raise ModularModelError(f"{self.root} has no encoder for {counts} (language identification); it serves "
                                    f"{', '.join(self.languages)}. Pass lang= explicitly or drop those texts")
        return [code for code in found if code is not None]

    def export_sentence_transformer(self, lang: str, output: str | os.PathLike) -> Path:
        """Write ``lang``'s aligned encoder as a sentence-transformers directory (atomically) and return it.

        ``SentenceTransformer(output, trust_remote_code=True)`` (modsent installed) then returns
        what ``encode(texts, lang=lang)`` returns, within float tolerance. The pivot, which has
        no adapter, is written as a plain sentence-transformers model (no flag needed).
        """
        code = self._code(lang)
        self._check_aligned(code, True)
        loaded = self._get(code)
        output = Path(output)
        with atomic_directory(output) as staging:
            loaded.encoder.save(staging)
            if loaded.adapter is not None:
                (staging / EXPORT_ADAPTER_DIR).mkdir()
                loaded.adapter.write(staging / EXPORT_ADAPTER_DIR, base_path=staging,
                                     metadata={"lang": code, "pivot_lang": self.pivot})
                modules = json.loads((staging / "modules.json").read_text(encoding="utf-8"))
                modules[0]["type"] = f"{__name__}.AlignedTransformer"
                atomic_write_json(staging / "modules.json", modules)
        return output


def is_modular_model(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a modular model directory (holds ``modular.json``)."""
    return (Path(path) / MODULAR_FILE).is_file()


def encode_modular_file(model_dir: str | os.PathLike, input_path: str | os.PathLike, output_path: str | os.PathLike,
                        lang: str | None, aligned: bool = True, batch_size: int = 32,
                        normalize: bool = False) -> np.ndarray:
    """Embed every line of a UTF-8 text file in language ``lang`` with a modular model; save a ``.npy`` atomically.

    ``aligned``: the language's adapter on (shared cross-lingual space) or off (monolingual).
    Returns the ``(lines, dim)`` float32 array it saved (what ``modsent encode --lang`` runs).

    >>> encode_modular_file("runs/modular", "sentences.de.txt", "emb.npy", lang="de")  # doctest: +SKIP
    """
    from modsent.corpus import read_lines
    from modsent.dirlock import claim_output
    from modsent.io import atomic_write
    from modsent.output_checks import check_not_overwriting, check_output_file
    from modsent.progress import Progress

    if not lang:
        raise ModularModelError(f"{model_dir} is a modular model: say which encoder to use with --lang (e.g. deu_Latn)")
    check_output_file(output_path, "embeddings file (--output)")  # first: a directory given as --output is named so
    check_not_overwriting({"--output": output_path}, {"--input": input_path, "--model": model_dir})
    claim_output(output_path, "modsent encode")  # and remove what a killed encode of it left
    model = ModularEncoder(model_dir, max_loaded=1)
    texts = list(read_lines(input_path))
    with Progress(len(texts), "encode", "texts") as progress:
        embeddings = model.encode(texts, lang=lang, aligned=aligned, batch_size=batch_size, normalize=normalize,
                                  on_batch=progress.update)
    with atomic_write(output_path, "wb", encoding=None) as handle:
        np.save(handle, embeddings)
    return embeddings


# ---------------------------------------------------------------------------------------------
# The sentence-transformers module of an exported aligned encoder
# ---------------------------------------------------------------------------------------------

def _build_aligned_transformer() -> type:
    try:
        from sentence_transformers.sentence_transformer.modules import Transformer
    except ImportError:  # sentence-transformers 5.x
        from sentence_transformers.models import Transformer

    class AlignedTransformer(Transformer):
        """sentence-transformers ``Transformer`` + the directory's cross-lingual adapter (``adapter/``), attached.

        Loading refuses an adapter whose base weights are not the ones in the directory.
        """

        @classmethod
        def load(cls, model_name_or_path: str, subfolder: str = "", **kwargs: Any) -> "AlignedTransformer":
            module = super().load(model_name_or_path, subfolder=subfolder, **kwargs)
            root = Path(model_name_or_path) / subfolder
            adapter = ParallelAdapter.load(root / EXPORT_ADAPTER_DIR, base_path=root)
            module.adapter = adapter.attach(module.auto_model)  # a submodule: moves with .to(device)
            return module

        def save(self, output_path: str, *args: Any, **kwargs: Any) -> None:
            super().save(output_path, *args, **kwargs)
            (Path(output_path) / EXPORT_ADAPTER_DIR).mkdir(exist_ok=True)
            self.adapter.write(Path(output_path) / EXPORT_ADAPTER_DIR, base_path=output_path)

    AlignedTransformer.__module__ = __name__
    AlignedTransformer.__qualname__ = "AlignedTransformer"
    return AlignedTransformer


def __getattr__(name: str) -> Any:
    # sentence-transformers is imported only when its module class is asked for (loading an
    # export): ModularEncoder itself does not need it, and its import is slow.
    if name == "AlignedTransformer":
        cls = globals()["AlignedTransformer"] = _build_aligned_transformer()
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
