"""Find, check and (once) convert the NLLB model; pick the device.

:func:`prepare_model` accepts a CTranslate2 directory (``model.bin``) or a ``transformers``
NLLB/M2M100 checkpoint. A checkpoint is converted with CTranslate2's converter into a cache
directory named after its content hash and the quantization, built under a temporary name and
renamed when complete, so concurrent or killed jobs never see half a model. The tokenizer is
saved beside ``model.bin`` so the CTranslate2 directory is self-contained. Every prepared model
has a ``tokenizer.json`` (a sentencepiece-only tokenizer is converted once into the cache), which
the actors read with ``tokenizers`` alone (:class:`modsent.translate.translator.NllbTokens`).

:func:`actor_device` decides, on the Ray driver, whether the translation actors get GPUs (from the
cluster's resources, not the driver's own devices); :func:`resolve_device` decides CPU or CUDA in the
process that translates.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from dataclasses import dataclass, replace
from pathlib import Path

from modsent.errors import ModsentError
from modsent.hub import hub_model_dir, parse_hub_id
from modsent.io import atomic_directory, atomic_write_json, sha256_json, sha256_tree
from modsent.models.files import from_pretrained
from modsent.translate.config import DecodingConfig

__all__ = ["ModelError", "PreparedModel", "prepare_model", "resolve_device", "actor_device", "check_compute_type",
           "cuda_device_count", "load_tokenizer", "check_language_tokens", "ct2_variable_shapes", "fit_decoding"]

logger = logging.getLogger(__name__)

_TRANSFORMERS_MODEL_TYPES = {"m2m_100"}  # NLLB-200 dense checkpoints use the M2M100 architecture
_CT2_BINARY_VERSION = 6  # ctranslate2.specs.model_spec.CURRENT_BINARY_VERSION in 4.x
_TOKENIZER_FILES = ("tokenizer.json", "sentencepiece.bpe.model", "tokenizer_config.json")


class ModelError(ModsentError):
    """The model directory is missing, of an unknown kind, or unusable on the chosen device."""


@dataclass(frozen=True)
class PreparedModel:
    """A CTranslate2 NLLB model ready to load.

    ``ct2_dir`` holds ``model.bin``; ``tokenizer_dir`` the tokenizer; ``sha256`` identifies the
    weights (content hash of ``ct2_dir``, or of the source checkpoint plus the quantization).
    ``max_positions``: (source, target) tokens the model's position tables cover (None: no limit).
    """

    ct2_dir: Path
    tokenizer_dir: Path
    sha256: str
    source: Path
    quantization: str
    converted: bool
    max_positions: tuple[int | None, int | None] = (None, None)


def cuda_device_count() -> int:
    """GPUs this process may use, as CTranslate2 sees them (it follows ``CUDA_VISIBLE_DEVICES``)."""
    import ctranslate2

    return ctranslate2.get_cuda_device_count()


def resolve_device(device: str) -> str:
    """``auto`` → ``cuda`` when this process sees a GPU, else ``cpu``; ``cuda`` without one fails.

    Called in the process that translates (each Ray actor): a GPU Ray gave the actor counts, the
    driver's own devices do not.

    >>> resolve_device("cpu")
    'cpu'
    """
    gpus = cuda_device_count()
    if device == "auto":
        return "cuda" if gpus > 0 else "cpu"
    if device == "cuda" and gpus == 0:
        raise ModelError("compute.device is cuda but CTranslate2 sees no CUDA device in this process; "
                         "use device=cpu or auto")
    return device


def check_compute_type(device: str, quantization: str) -> None:
    """Fail in one line when CTranslate2 cannot run ``quantization`` on ``device`` here."""
    import ctranslate2

    supported = ctranslate2.get_supported_compute_types(device)
    if quantization not in supported:
        raise ModelError(
            f"model.quantization={quantization} is not supported on {device} (supported here: "
            f"{', '.join(sorted(supported))}); on CPU use int8 or float32, on GPU int8_float16 or float16")


def actor_device(device: str) -> str:
    """On the Ray driver: the ``compute.device`` the translation actors get, from the cluster's resources.

    The driver may be a CPU-only head node driving GPU workers, so it asks the cluster
    (``ray.cluster_resources()``, as mining does) rather than its own CUDA runtime. With a GPU in
    the cluster, ``auto`` and ``cuda`` stay as they are: the actors are given GPUs and each one
    resolves ``auto`` itself (:func:`resolve_device`). Without one, ``auto`` is ``cpu`` (an actor
    never takes a GPU Ray did not give it) and ``cuda`` fails here, before any translation.
    """
    import ray

    if device == "cpu" or ray.cluster_resources().get("GPU", 0) > 0:
        return device
    if device == "cuda":
        raise ModelError("compute.device is cuda but no node of the Ray cluster has a GPU "
                         "(ray.cluster_resources() lists none); use compute.device=auto or cpu, or add GPU nodes")
    return "cpu"


def _stat_signature(root: Path) -> str:
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".tmp-"))
    return sha256_json([(p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns) for p in files])


def _content_hash(root: Path, cache_dir: Path) -> str:
    """``sha256_tree(root)``, remembered per (path, file sizes, mtimes) so multi-GB models hash once."""
    memo_path = cache_dir / "hashes.json"
    key = f"{root.resolve()}:{_stat_signature(root)}"
    try:
        memo = json.loads(memo_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        memo = {}
    if key not in memo:
        memo = {k: v for k, v in memo.items() if not k.startswith(f"{root.resolve()}:")}
        memo[key] = sha256_tree(root)
        atomic_write_json(memo_path, memo)
    return memo[key]


def _has_tokenizer(path: Path) -> bool:
    return any((path / name).is_file() for name in _TOKENIZER_FILES)


def load_tokenizer(path: str | os.PathLike, source_language: str):
    """The NLLB tokenizer saved in ``path`` (``AutoTokenizer``, no remote code) with ``src_lang`` set."""
    from transformers import AutoTokenizer

    try:
        return from_pretrained(AutoTokenizer.from_pretrained, path, ModelError, src_lang=source_language)
    except ModelError:
        raise
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: cannot load the NLLB tokenizer ({err}); set model.tokenizer to the "
                         "directory holding tokenizer.json / sentencepiece.bpe.model") from None


def check_language_tokens(tokenizer, codes: list[str], tokenizer_dir: Path) -> None:
    """Fail when the tokenizer has no language token for one of ``codes`` (it would decode garbage)."""
    vocab = tokenizer.get_vocab()
    missing = [code for code in codes if code not in vocab]
    if missing:
        raise ModelError(f"{tokenizer_dir}: the tokenizer has no language token for {', '.join(missing)}; "
                         "this model cannot translate into (or from) them — drop them from the config")


def prepare_model(path: str | os.PathLike, quantization: str, cache_dir: str | os.PathLike,
                  tokenizer: str | os.PathLike | None = None) -> PreparedModel:
    """Return a loadable CTranslate2 model for ``path``, converting a transformers checkpoint once.

    ``path`` (and ``tokenizer``) may be a hub id, read from the Hugging Face cache (:mod:`modsent.hub`).

    >>> prepare_model("nllb-200-distilled-600M", "int8", "~/.cache/modsent/ct2")  # doctest: +SKIP
    PreparedModel(ct2_dir=PosixPath('.../nllb-200-distilled-600M-3f2a…-int8'), ...)
    """
    source = _model_dir(path)
    cache = Path(cache_dir).expanduser()
    if source.is_file():
        raise ModelError(f"model.path {source} is a file, not a model directory; set it to the directory that holds "
                         "model.bin (CTranslate2) or config.json (a transformers NLLB/M2M100 checkpoint)")
    if not source.is_dir():
        raise ModelError(f"model directory {source} does not exist; set model.path to a CTranslate2 NLLB "
                         "directory (with model.bin) or a transformers NLLB/M2M100 checkpoint directory")
    if (source / "model.bin").is_file():
        tokenizer_dir = _model_dir(tokenizer) if tokenizer else source
        if not _has_tokenizer(tokenizer_dir):
            raise ModelError(f"{tokenizer_dir}: no tokenizer files ({', '.join(_TOKENIZER_FILES)}) beside the "
                             "CTranslate2 model; copy them there or set model.tokenizer")
        return PreparedModel(source, _with_tokenizer_json(tokenizer_dir, cache), _content_hash(source, cache), source,
                             quantization, False, _checked_positions(source))
    model_type = _transformers_model_type(source)
    if model_type not in _TRANSFORMERS_MODEL_TYPES:
        raise ModelError(f"{source}/config.json: model_type '{model_type}' is not an NLLB/M2M100 model "
                         f"(expected one of {sorted(_TRANSFORMERS_MODEL_TYPES)})")
    tokenizer_source = _model_dir(tokenizer) if tokenizer else source
    if not _has_tokenizer(tokenizer_source):
        raise ModelError(f"{tokenizer_source}: no tokenizer files ({', '.join(_TOKENIZER_FILES)}); set model.tokenizer")
    source_hash = _content_hash(source, cache)
    digest = sha256_json({"source": source_hash, "quantization": quantization,
                          "tokenizer": _content_hash(tokenizer_source, cache) if tokenizer else None})
    target = cache / f"{_cache_name(path, source)}-{digest[:16]}-{quantization}"
    if not (target / "model.bin").is_file():
        _convert(source, tokenizer_source, target, quantization)
    return PreparedModel(target, target, digest, source, quantization, True, _checked_positions(target))


def _model_dir(value: str | os.PathLike) -> Path:
    """A local directory as it is; a hub id (``facebook/nllb-200-distilled-600M[@rev]``) as its cached snapshot."""
    return hub_model_dir(value, ModelError) if parse_hub_id(value) is not None else Path(value).expanduser()


def _cache_name(given: str | os.PathLike, source: Path) -> str:
    """The converted model's readable name: the hub repo (a snapshot directory is named by its commit)."""
    parsed = parse_hub_id(given)
    return parsed[0].replace("/", "--") if parsed is not None else source.name


def _checked_positions(ct2_dir: Path) -> tuple[int | None, int | None]:
    shapes = ct2_variable_shapes(ct2_dir / "model.bin")
    return tuple(shapes[f"{side}/position_encodings/encodings"][0]  # type: ignore[return-value]
                 if f"{side}/position_encodings/encodings" in shapes else None for side in ("encoder", "decoder"))


def fit_decoding(decoding: DecodingConfig, model: PreparedModel) -> DecodingConfig:
    """``decoding`` with its length limits lowered to what the model's position tables cover.

    CTranslate2 raises "No position encodings are defined for positions >= N" inside the actors for
    a longer input or output; a longer input is cut to the limit, as ``max_input_length`` does anyway.
    """
    source_limit, target_limit = model.max_positions
    changes = {}
    if source_limit is not None and decoding.max_input_length > source_limit:
        changes["max_input_length"] = source_limit
    if target_limit is not None and decoding.max_decoding_length > target_limit:
        changes["max_decoding_length"] = target_limit
    for name, value in changes.items():
        logger.warning("decoding.%s %d is more than the model's %d positions (%s): using %d", name,
                       getattr(decoding, name), value, model.ct2_dir, value)
    return replace(decoding, **changes)


def _with_tokenizer_json(tokenizer_dir: Path, cache: Path) -> Path:
    """``tokenizer_dir`` if it has a ``tokenizer.json``, else a cache directory holding the fast
    tokenizer converted (once) from its sentencepiece model."""
    if (tokenizer_dir / "tokenizer.json").is_file():
        return tokenizer_dir
    target = cache / "tokenizers" / _content_hash(tokenizer_dir, cache)[:16]
    if not (target / "tokenizer.json").is_file():
        with atomic_directory(target) as staging:
            load_tokenizer(tokenizer_dir, "eng_Latn").save_pretrained(str(staging))
    return target


def _transformers_model_type(source: Path) -> str:
    config_path = source / "config.json"
    if not config_path.is_file():
        raise ModelError(f"{source}: neither a CTranslate2 model (no model.bin) nor a transformers checkpoint "
                         "(no config.json)")
    try:
        return str(json.loads(config_path.read_text(encoding="utf-8")).get("model_type"))
    except ValueError as err:
        raise ModelError(f"{config_path}: not valid JSON ({err})") from None


def _convert(source: Path, tokenizer_source: Path, target: Path, quantization: str) -> None:
    from ctranslate2.converters import TransformersConverter

    logger.info("converting %s to CTranslate2 (%s) in %s", source, quantization, target)
    with atomic_directory(target) as staging:
        converter = from_pretrained(TransformersConverter, source, ModelError)  # refuses a model that ships code
        converter.convert(str(staging), quantization=quantization, force=True)
        # The tokenizer travels with the weights, so actors need one directory only.
        load_tokenizer(tokenizer_source, "eng_Latn").save_pretrained(str(staging))


def ct2_variable_shapes(model_bin: Path) -> dict[str, tuple[int, ...]]:
    """Shapes of the variables in a CTranslate2 ``model.bin``, checking the file's structure on the way.

    Reads only the headers (seeking over the weights), so a multi-GB model is checked in
    milliseconds — in the driver, before any actor tries to load it: a truncated file would
    otherwise kill every actor with a C++ error. Layout as ``ctranslate2.specs.ModelSpec._serialize``
    writes it (binary version 6). Raises :class:`ModelError` when the file ends early or has bytes
    past its end; an unknown binary version is not checked (empty result).
    """
    size = model_bin.stat().st_size

    def damaged(why: str) -> ModelError:
        return ModelError(f"{model_bin}: damaged or incomplete CTranslate2 model ({why}; the file has {size} bytes); "
                          "convert or copy the model again")

    with open(model_bin, "rb") as handle:
        def take(fmt: str):
            fmt = "<" + fmt  # little-endian, packed field by field: no alignment
            raw = handle.read(struct.calcsize(fmt))
            if len(raw) != struct.calcsize(fmt):
                raise damaged(f"it ends at byte {handle.tell()}, inside the header of the weights")
            return struct.unpack(fmt, raw)

        def string() -> str:
            (length,) = take("H")
            return take(f"{length}s")[0].rstrip(b"\0").decode("utf-8", "replace")

        (version,) = take("I")
        if version != _CT2_BINARY_VERSION:
            return {}
        string()  # the spec's name
        take("I")  # its revision
        shapes = {}
        for _ in range(take("I")[0]):
            name = string()
            (rank,) = take("B")
            shape = take(f"{rank}I") if rank else ()
            _dtype, num_bytes = take("BI")
            if handle.tell() + num_bytes > size:
                raise damaged(f"variable {name[:100]!r} needs {num_bytes} bytes from byte {handle.tell()}")
            handle.seek(num_bytes, os.SEEK_CUR)
            shapes[name] = tuple(shape)
        for _ in range(take("I")[0]):
            alias, name = string(), string()
            if name in shapes:
                shapes[alias] = shapes[name]
        if handle.tell() != size:
            raise damaged(f"{size - handle.tell()} bytes follow the last variable")
    return shapes

