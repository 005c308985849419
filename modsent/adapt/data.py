"""MLM data: text files packed into fixed-length token blocks (cached on disk) and seeded masking.

Packing, as the reference's ``train_mlm.py`` (Hugging Face's ``run_mlm`` without ``line_by_line``)
does it: every non-blank line is tokenised with the tokenizer's special tokens, i.e. as its own
``[CLS] … [SEP]`` (``<s> … </s>`` for XLM-R-style tokenizers), untruncated; the sequences are
concatenated and the stream is cut into blocks of ``max_seq_length`` tokens, so a block may start or
end inside a line. The final partial block is dropped, so every block is full and needs no padding.
(The reference drops a partial block at the end of every 1000 lines, an artefact of its batched
``datasets.map``; here only the stream's tail is dropped.) Blocks are written once, as raw int32, by
rank 0; every rank memory-maps them, so a corpus of any size costs no RAM per rank.
"""

from __future__ import annotations

import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch

from modsent.corpus import read_lines
from modsent.errors import ModsentError
from modsent.io import atomic_write, atomic_write_json, sha256_file, sha256_json

__all__ = [
    "MLMDataError",
    "EmptyTextError",
    "PackedBlocks",
    "expand_text_files",
    "tokenizer_fingerprint",
    "pack_blocks",
    "prepare_packed_data",
    "mask_tokens",
]

_TOKENIZE_BATCH = 1000
_PACK_FORMAT = 2  # 2: each line its own [CLS] … [SEP], blocks cut from the stream


class MLMDataError(ModsentError):
    """The MLM text is missing, too short for one sequence, or the tokenizer lacks a needed token."""


class EmptyTextError(MLMDataError):
    """A text file has no non-blank line."""


def expand_text_files(patterns: Sequence[str | Path], key: str) -> list[Path]:
    """Files named by ``patterns`` (paths or globs such as ``data/deu_*.txt``), in the given order.

    ``key`` is the config key the patterns came from, for the error message.
    """
    files: list[Path] = []
    for pattern in map(str, patterns):
        matches = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
        if not matches:
            raise MLMDataError(f"{key}: {pattern} matches no file")
        for match in map(Path, matches):
            if not match.is_file():
                raise MLMDataError(f"{key}: {match} does not exist or is not a file")
            files.append(match)
    return files


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """Hash of everything that decides token ids (the full ``tokenizer.json`` for fast tokenizers)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        return sha256_json({"tokenizer_json": backend.to_str()})
    return sha256_json({"vocab": tokenizer.get_vocab(), "special": tokenizer.all_special_tokens})


def _check_tokenizer(tokenizer: Any) -> None:
    """Each line must come out as ``[CLS] … [SEP]`` (or ``<s> … </s>``), and masking needs a mask token."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    wrapped = tokenizer("a")["input_ids"] if start is not None and end is not None else []
    if tokenizer.mask_token_id is None or not wrapped or (wrapped[0], wrapped[-1]) != (start, end):
        raise MLMDataError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '')!r} does not wrap a text as [CLS] … [SEP] (<s> … </s>) "
            "or lacks a mask token; MLM adaptation needs a BERT- or XLM-R-style tokenizer"
        )


def _tokenized_lines(path: Path, tokenizer: Any) -> Iterator[list[int]]:
    """Token ids of each non-blank line of ``path`` with the tokenizer's special tokens, tokenised in batches."""
    batch: list[str] = []
    for line in read_lines(path):
        if line.strip():
            batch.append(line.strip())
        if len(batch) == _TOKENIZE_BATCH:
            yield from tokenizer(batch)["input_ids"]
            batch = []
    if batch:
        yield from tokenizer(batch)["input_ids"]


def pack_blocks(sequences: Iterable[list[int]], seq_len: int) -> Iterator[np.ndarray]:
    """Concatenate ``sequences`` (each line's ids, special tokens included) and cut full blocks of ``seq_len``.

    >>> [b.tolist() for b in pack_blocks([[1, 5, 6, 7, 2], [1, 8, 2]], seq_len=3)]
    [[1, 5, 6], [7, 2, 1]]
    """
    if seq_len < 1:
        raise MLMDataError(f"max_seq_length must be at least 1, got {seq_len}")
    buffer: list[int] = []
    for ids in sequences:
        buffer.extend(ids)
        while len(buffer) >= seq_len:
            yield np.asarray(buffer[:seq_len], dtype=np.int32)
            del buffer[:seq_len]


@dataclass(frozen=True)
class PackedBlocks:
    """Packed training and validation blocks (``[n, seq_len]`` int32 memory maps) in ``directory``."""

    directory: Path
    train: np.ndarray
    valid: np.ndarray
    key: str
    num_tokens: int

    @classmethod
    def open(cls, directory: Path) -> "PackedBlocks":
        meta = json.loads((directory / "meta.json").read_text(encoding="utf-8"))
        shape = lambda n: (n, meta["seq_len"])  # noqa: E731
        return cls(
            directory=directory,
            train=np.memmap(directory / "train.bin", dtype=np.int32, mode="r", shape=shape(meta["n_train"])),
            valid=np.memmap(directory / "valid.bin", dtype=np.int32, mode="r", shape=shape(meta["n_valid"])),
            key=meta["key"],
            num_tokens=meta["n_tokens"],
        )


def _write_blocks(files: list[Path], tokenizer: Any, seq_len: int, key: str, out_train: Any,
                  out_valid: Any | None, valid_every: int) -> tuple[int, int, int]:
    """Pack ``files`` into ``out_train`` (every ``valid_every``-th block to ``out_valid`` when given)."""
    _check_tokenizer(tokenizer)
    n_train = n_valid = n_tokens = 0

    def documents() -> Iterator[list[int]]:
        nonlocal n_tokens
        for path in files:
            lines = 0
            for ids in _tokenized_lines(path, tokenizer):
                lines += 1
                n_tokens += len(ids)
                yield ids
            if lines == 0:
                raise EmptyTextError(f"{key}: {path} has no non-blank line; fill it or remove it from {key}")

    for index, block in enumerate(pack_blocks(documents(), seq_len)):
        if out_valid is not None and (index + 1) % valid_every == 0:
            out_valid.write(block.tobytes())
            n_valid += 1
        else:
            out_train.write(block.tobytes())
            n_train += 1
    return n_train, n_valid, n_tokens


def prepare_packed_data(
    train_files: Sequence[str | Path],
    valid_files: Sequence[str | Path],
    tokenizer: Any,
    max_seq_length: int,
    valid_fraction: float,
    cache_root: Path,
) -> PackedBlocks:
    """Pack (or reuse the cached packing of) the training and validation text.

    Validation blocks come from ``valid_files`` when given, otherwise every
    ``round(1 / valid_fraction)``-th training block is held out. The cache directory
    ``cache_root/<key>`` is keyed by the files' contents, the tokenizer and these settings.
    Call on one rank (see :func:`modsent.train.distributed.run_on_main`).
    """
    train = expand_text_files(train_files, "train_files")
    if not train:
        raise MLMDataError("train_files is empty: give the text files (one sentence or paragraph per line) to adapt on")
    valid = expand_text_files(valid_files, "valid_files")
    if not valid and not 0.0 < valid_fraction < 1.0:
        raise MLMDataError(f"valid_fraction must be in (0, 1) when valid_files is empty, got {valid_fraction}")
    key = sha256_json({
        "format": _PACK_FORMAT,
        "train": [sha256_file(p) for p in train],
        "valid": [sha256_file(p) for p in valid],
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "max_seq_length": max_seq_length,
        "valid_fraction": None if valid else valid_fraction,
    })
    directory = cache_root / key[:16]
    if (directory / "meta.json").is_file():
        return PackedBlocks.open(directory)
    valid_every = max(2, round(1 / valid_fraction)) if not valid else 0
    with (atomic_write(directory / "train.bin", "wb") as out_train,
          atomic_write(directory / "valid.bin", "wb") as out_valid):
        if valid:
            n_train, _, n_tokens = _write_blocks(train, tokenizer, max_seq_length, "train_files", out_train, None, 0)
            n_valid, _, _ = _write_blocks(valid, tokenizer, max_seq_length, "valid_files", out_valid, None, 0)
        else:
            n_train, n_valid, n_tokens = _write_blocks(train, tokenizer, max_seq_length, "train_files", out_train,
                                                       out_valid, valid_every)
        if n_train == 0:
            raise MLMDataError(
                f"train_files ({', '.join(map(str, train))}) hold {n_tokens} tokens, not enough for one training "
                f"sequence of max_seq_length={max_seq_length}; add text or lower max_seq_length"
            )
        if n_valid == 0:
            source = "valid_files hold" if valid else f"holding out every {valid_every}th of {n_train} blocks leaves"
            raise MLMDataError(
                f"{source} no full validation sequence of max_seq_length={max_seq_length}; add text, "
                + ("lower max_seq_length" if valid else "raise valid_fraction or give valid_files")
            )
    atomic_write_json(directory / "meta.json", {"key": key, "seq_len": max_seq_length, "n_train": n_train,
                                                "n_valid": n_valid, "n_tokens": n_tokens})
    return PackedBlocks.open(directory)


def mask_tokens(
    input_ids: torch.Tensor,
    special_mask: torch.Tensor,
    generator: torch.Generator,
    *,
    probability: float,
    mask_token_id: int,
    vocab_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking: pick ``probability`` of the non-special tokens (at least one per row) as targets;
    replace 80% of them by the mask token, 10% by a random token, keep 10%.

    Returns ``(inputs, labels)`` with labels -100 where nothing is predicted. All randomness comes
    from ``generator``, which makes a batch's masking a function of its seed.

    >>> ids = torch.tensor([[101, 7, 8, 9, 102]]); special = torch.tensor([[True, False, False, False, True]])
    >>> inputs, labels = mask_tokens(ids, special, torch.Generator().manual_seed(0), probability=0.15,
    ...                              mask_token_id=103, vocab_size=120)
    >>> int((labels != -100).sum()) >= 1 and bool((labels[special] == -100).all())
    True
    """
    shape = input_ids.shape
    select_draw = torch.rand(shape, generator=generator)
    action_draw = torch.rand(shape, generator=generator)
    fallback_draw = torch.rand(shape, generator=generator)
    random_tokens = torch.randint(vocab_size, shape, generator=generator, dtype=input_ids.dtype)
    selected = (select_draw < probability) & ~special_mask
    # Short rows can draw no target at all; give each such row one, so no micro-batch has an empty loss.
    unlucky = ~selected.any(dim=1) & (~special_mask).any(dim=1)
    if unlucky.any():
        pick = fallback_draw.masked_fill(special_mask, -1.0).argmax(dim=1)
        selected[unlucky, pick[unlucky]] = True
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    inputs = input_ids.clone()
    inputs[selected & (action_draw < 0.8)] = mask_token_id
    randomised = selected & (action_draw >= 0.8) & (action_draw < 0.9)
    inputs[randomised] = random_tokens[randomised]
    return inputs, labels
