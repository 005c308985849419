"""FOCUS embedding initialisation (Dobler & de Melo, EMNLP 2023) on ``fasttext`` and ``entmax``.

Given the source model's embedding matrix, its tokenizer and a new target-language tokenizer:

1. *Shared* tokens (same canonical form in both vocabularies, see :func:`canonical_forms`) copy
   their source embedding bit for bit.
2. A fastText CBOW model is trained on the target text tokenised with the target tokenizer, giving
   every target token seen at least ``min_count`` times an auxiliary vector.
3. Each *new* token with an auxiliary vector becomes a convex combination of the source embeddings
   of the shared tokens that have one (the *anchors*): the weights are ``sparsemax`` of the cosine
   similarities between its auxiliary vector and the anchors' (:func:`focus_combine`).
4. New tokens without an auxiliary vector are drawn from N(mean, std) of the source embeddings.

This follows the authors' package ``deepfocus`` 1.0.1 with the settings the reference used (exact
matching only; CBOW, ``neg=10``; dim 300, 3 epochs, ``min_count`` 10). It differs where that package
cannot serve this project: the text is streamed (any number of files, no ``datasets`` cache), the
tokenisation style is read from the tokenizer's pipeline rather than guessed from counts of ``##``/``▁``
tokens (which fails for small vocabularies), a canonical form found at several source ids maps to the
lowest id, and the sparsemax weights are returned so that callers can audit every new embedding.
Given the same fastText model and seed, ``focus_init`` reproduces ``deepfocus.FOCUS`` (checked on
WordPiece and Unigram vocabularies: shared and randomly drawn rows bit-identical, the others within 1e-6).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase

from .errors import EmptyTextError, SourceModelError, VocabError
from .tokenizer import check_same_family, tokenizer_family

__all__ = [
    "WORD_START", "FastTextOptions", "FocusResult", "canonical_forms", "shared_tokens", "train_token_fasttext",
    "token_vectors", "focus_combine", "focus_init",
]

logger = logging.getLogger(__name__)

WORD_START = "▁"  # canonical word-initial marker (sentencepiece's), whatever the tokenizer writes
_BYTE_LEVEL_SPACE = "Ġ"  # GPT-2-style byte-level BPE's marker for a preceding space
_BYTE_FALLBACK = re.compile(r"<0x[0-9A-Fa-f]{2}>")  # sentencepiece byte-fallback pieces stay as written
_ENCODE_BATCH = 1000  # lines per encode_batch call when pre-tokenising text for fastText
_SIMILARITY_CHUNK = 1 << 24  # similarity-matrix entries per chunk: 64 MiB of float32 at a time


FASTTEXT_LR = 0.05  # fastText's own default for unsupervised training
NAN_RETRIES = 3


@dataclass
class FastTextOptions:
    """Training settings of the auxiliary token-level fastText model (CBOW, ``neg=10`` as in FOCUS).

    Defaults are the reference's: ``dim=300`` (it passed ``fasttext_model_dim=300``), deepfocus' 3 epochs
    and ``min_count=10``. ``threads=None`` uses every CPU; fastText is deterministic only with 1.
    """

    dim: int = 300
    epochs: int = 3
    min_count: int = 10
    threads: int | None = None


@dataclass
class FocusResult:
    """What :func:`focus_init` produced, and how.

    ``embeddings``: ``(len(target_tokenizer), hidden)`` in the source dtype.
    ``shared``: target id -> source id whose embedding row was copied unchanged.
    ``weights``: for each FOCUS-initialised target id, ``(source_ids, weights)``: the anchors with
    non-zero sparsemax weight (weights > 0, summing to 1), so that
    ``embeddings[t] ≈ (weights[:, None] * source_embeddings[source_ids]).sum(0)``.
    ``random_init``: new target ids without a fastText vector, drawn from N(source mean, source std).
    ``report``: counts and timings (JSON-serialisable).
    """

    embeddings: torch.Tensor
    shared: dict[int, int]
    weights: dict[int, tuple[torch.Tensor, torch.Tensor]]
    random_init: list[int]
    report: dict[str, Any] = field(default_factory=dict)


def _focus_libraries() -> tuple[Any, Any]:
    """``(fasttext, entmax)``, imported on first use: they come with the optional ``focus`` extra."""
    try:
        import entmax
        import fasttext
    except ImportError as err:
        raise ImportError(f"FOCUS needs fastText and entmax: pip install 'modsent[focus]' ({err})") from err
    return fasttext, entmax


def _find_step(node: Any, step_type: str) -> dict | None:
    """The first pipeline step of ``step_type`` in a tokenizer.json fragment (steps nest in Sequences)."""
    if isinstance(node, dict):
        if node.get("type") == step_type:
            return node
        children = node.get("pretokenizers") or node.get("decoders") or []
        return next((found for child in children if (found := _find_step(child, step_type))), None)
    return None


def _word_start_marker(tokenizer: PreTrainedTokenizerBase) -> str | None:
    """The character that opens word-initial tokens (``▁`` for sentencepiece-style, ``Ġ`` for byte-level), if any."""
    pipeline = json.loads(tokenizer.backend_tokenizer.to_str())
    for part in ("pre_tokenizer", "decoder"):
        metaspace = _find_step(pipeline.get(part), "Metaspace")
        if metaspace is not None:
            return metaspace.get("replacement", WORD_START)
        if _find_step(pipeline.get(part), "ByteLevel") is not None:
            return _BYTE_LEVEL_SPACE
    return None


def canonical_forms(tokenizer: PreTrainedTokenizerBase) -> dict[int, str]:
    """Map every token id to a tokenizer-independent form: ``▁`` + text for word-initial tokens, bare text otherwise.

    WordPiece ``"berg"`` -> ``"▁berg"``, ``"##berg"`` -> ``"berg"``; sentencepiece ``"▁berg"`` -> ``"▁berg"``;
    byte-level ``"Ġberg"`` -> ``"▁berg"``. Special tokens keep their text (``"[CLS]"`` -> ``"▁[CLS]"``).
    """
    vocab = tokenizer.get_vocab()
    if tokenizer_family(tokenizer) == "WordPiece":
        prefix = tokenizer.backend_tokenizer.model.continuing_subword_prefix
        return {i: token[len(prefix):] if token.startswith(prefix) else WORD_START + token for token, i in vocab.items()}
    marker = _word_start_marker(tokenizer)
    decoder = tokenizer.backend_tokenizer.decoder
    forms: dict[int, str] = {}
    for token, i in vocab.items():
        if _BYTE_FALLBACK.fullmatch(token):
            forms[i] = token
            continue
        # The decoder turns markers and byte-level symbols back into the text the token stands for.
        surface = (decoder.decode([token]) if decoder is not None else token).lstrip()
        forms[i] = WORD_START + surface if marker and token.startswith(marker) else surface
    return forms


def shared_tokens(source_tokenizer: PreTrainedTokenizerBase, target_tokenizer: PreTrainedTokenizerBase) -> dict[int, int]:
    """Target id -> source id for every target token whose canonical form is in the source vocabulary.

    Where several source tokens share a canonical form, the lowest id (the most frequent piece in
    trained vocabularies) wins.
    """
    source_by_form: dict[str, int] = {}
    for source_id, form in sorted(canonical_forms(source_tokenizer).items()):
        source_by_form.setdefault(form, source_id)
    return {
        target_id: source_by_form[form]
        for target_id, form in sorted(canonical_forms(target_tokenizer).items())
        if form in source_by_form
    }


def _write_tokenised(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str], path: Path) -> int:
    """Write each text as its space-separated target tokens (no special tokens); returns the line count."""
    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())  # a copy we may reconfigure
    backend.no_truncation()  # a saved truncation length must not cut the fastText training text
    backend.no_padding()
    lines = 0
    iterator = iter(texts)
    with open(path, "w", encoding="utf-8") as out:
        while batch := list(itertools.islice(iterator, _ENCODE_BATCH)):
            for encoding in backend.encode_batch(batch, add_special_tokens=False):
                out.write(" ".join(encoding.tokens) + "\n")
            lines += len(batch)
    return lines


def train_token_fasttext(
    tokenizer: PreTrainedTokenizerBase,
    texts: Iterable[str],
    options: FastTextOptions | None = None,
    workdir: str | os.PathLike | None = None,
) -> tuple[Any, int]:
    """Train the auxiliary fastText model on ``texts`` tokenised by ``tokenizer``; returns (model, lines).

    ``model`` is a ``fasttext`` model (``.words``, ``.get_word_vector``); ``lines`` the number of texts.

    The tokenised text goes to a temporary file under ``workdir`` (default: the system temp dir;
    give a directory on a large disk for big corpora), deleted afterwards.
    """
    fasttext, _ = _focus_libraries()
    options = options or FastTextOptions()
    with tempfile.TemporaryDirectory(prefix="modsent-fasttext-", dir=workdir) as tmp:
        path = Path(tmp) / "tokenised.txt"
        lines = _write_tokenised(tokenizer, texts, path)
        if lines == 0:
            raise EmptyTextError("no target-language text to train the fastText token embeddings on")
        lr = FASTTEXT_LR
        for attempt in range(NAN_RETRIES + 1):
            try:
                model = fasttext.train_unsupervised(
                    str(path),
                    model="cbow",  # FOCUS: CBOW is closer to masked language modelling than skip-gram
                    dim=options.dim,
                    epoch=options.epochs,
                    minCount=options.min_count,
                    neg=10,
                    lr=lr,
                    thread=options.threads or os.cpu_count() or 1,
                    verbose=0,
                )
                break
            except ValueError as err:  # fastText's "Empty vocabulary. Try a smaller -minCount value."
                raise VocabError(f"fastText found no token occurring fasttext.min_count={options.min_count} times "
                                 f"in {lines} lines of target text; lower min_count or give more text ({err})") from None
            except RuntimeError as err:
                # fastText diverges ("Encountered NaN") on some small or skewed texts; its own advice
                # is a lower learning rate.
                if "NaN" not in str(err) or attempt == NAN_RETRIES:
                    raise VocabError(f"fastText training diverged on {lines} lines of target text even at "
                                     f"lr={lr:g} ({err}); give more text or lower fasttext.dim") from None
                logger.warning("fastText diverged at lr=%g; retrying at lr=%g", lr, lr / 4)
                lr /= 4
    return model, lines


def token_vectors(model: Any, tokenizer: PreTrainedTokenizerBase) -> dict[int, np.ndarray]:
    """Token id -> fastText vector, for tokens in the fastText vocabulary (seen >= min_count times) with a non-zero vector."""
    known = set(model.words)
    vectors: dict[int, np.ndarray] = {}
    for token, token_id in tokenizer.get_vocab().items():
        if token in known:
            vector = model.get_word_vector(token)
            if np.any(vector):
                vectors[token_id] = vector
    return vectors


def focus_combine(
    new_vectors: np.ndarray | torch.Tensor,
    anchor_vectors: np.ndarray | torch.Tensor,
    anchor_embeddings: torch.Tensor,
) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor]]]:
    """FOCUS' core: each new token = sparsemax(cosine(new, anchors)) @ anchor embeddings.

    ``new_vectors`` ``(n, k)`` and ``anchor_vectors`` ``(a, k)`` are auxiliary (fastText) vectors;
    ``anchor_embeddings`` ``(a, d)`` the anchors' source embeddings. Returns the ``(n, d)`` float32
    embeddings and, per new token, ``(anchor_indices, weights)`` of its non-zero weights.

    >>> emb, w = focus_combine(np.eye(2)[:1], np.eye(2), torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    >>> emb.tolist(), w[0][0].tolist()
    ([[1.0, 2.0]], [0])
    """
    _, entmax = _focus_libraries()
    new = torch.nn.functional.normalize(torch.as_tensor(new_vectors, dtype=torch.float32), dim=1)
    anchors = torch.nn.functional.normalize(torch.as_tensor(anchor_vectors, dtype=torch.float32), dim=1)
    sources = anchor_embeddings.detach().to(torch.float32)
    combined = torch.empty((new.shape[0], sources.shape[1]), dtype=torch.float32)
    weights: list[tuple[torch.Tensor, torch.Tensor]] = []
    rows = max(1, _SIMILARITY_CHUNK // max(1, anchors.shape[0]))
    for start in range(0, new.shape[0], rows):
        chunk = entmax.sparsemax(new[start:start + rows] @ anchors.T, dim=-1)
        combined[start:start + rows] = chunk @ sources
        for row in chunk:
            support = row.nonzero().squeeze(1)
            weights.append((support, row[support]))
    return combined, weights


@torch.no_grad()
def focus_init(
    source_embeddings: torch.Tensor,
    source_tokenizer: PreTrainedTokenizerBase,
    target_tokenizer: PreTrainedTokenizerBase,
    texts: Iterable[str],
    fasttext_options: FastTextOptions | None = None,
    seed: int = 42,
    workdir: str | os.PathLike | None = None,
) -> FocusResult:
    """Initialise the target tokenizer's embedding matrix from the source model's with FOCUS.

    ``source_embeddings``: the source model's input embeddings ``(>= len(source_tokenizer), hidden)``;
    ``texts``: target-language text (an iterable of strings, read once) for the fastText model;
    ``seed``: for the normal draws of new tokens without a fastText vector.
    Raises :class:`TokenizerFamilyError` when the tokenizers differ in family or special tokens.

    >>> result = focus_init(model.get_input_embeddings().weight, src_tok, tgt_tok,
    ...                     iter_texts(["de.txt"], "deu_Latn"))  # doctest: +SKIP
    >>> result.embeddings.shape  # doctest: +SKIP
    torch.Size([50048, 768])
    """
    check_same_family(source_tokenizer, target_tokenizer)
    options = fasttext_options or FastTextOptions()
    source = source_embeddings.detach().cpu()
    if source.shape[0] < len(source_tokenizer):
        raise SourceModelError(
            f"source embedding matrix has {source.shape[0]} rows but the source tokenizer ({source_tokenizer.name_or_path}) "
            f"has {len(source_tokenizer)} tokens; pair the model with the tokenizer it was trained with")
    timings: dict[str, float] = {}

    start = time.perf_counter()
    shared = shared_tokens(source_tokenizer, target_tokenizer)
    timings["match_s"] = time.perf_counter() - start

    start = time.perf_counter()
    model, lines = train_token_fasttext(target_tokenizer, texts, options, workdir)
    vectors = token_vectors(model, target_tokenizer)
    timings["fasttext_s"] = time.perf_counter() - start

    start = time.perf_counter()
    n_target = len(target_tokenizer)
    anchors = [t for t in sorted(shared) if t in vectors]
    new_ids = [t for t in range(n_target) if t not in shared]
    focus_ids = [t for t in new_ids if t in vectors]
    if focus_ids and not anchors:
        logger.warning("no shared token has a fastText vector: every new token is drawn at random "
                       "(give more target text or lower fasttext.min_count)")
        focus_ids = []
    focus_set = set(focus_ids)
    random_ids = [t for t in new_ids if t not in focus_set]

    embeddings = torch.empty((n_target, source.shape[1]), dtype=source.dtype)
    shared_target = torch.tensor(sorted(shared), dtype=torch.long)
    embeddings[shared_target] = source[torch.tensor([shared[t] for t in sorted(shared)], dtype=torch.long)]

    if random_ids:
        mean = source.float().mean(dim=0)
        std = source.float().std(dim=0)
        generator = torch.Generator().manual_seed(seed)
        # One draw per token, in id order: the same numbers as deepfocus for the same seed (a
        # single batched draw consumes the generator differently for some widths).
        for target_id in random_ids:
            embeddings[target_id] = torch.normal(mean, std, generator=generator).to(source.dtype)

    weights: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    if focus_ids:
        anchor_source_ids = torch.tensor([shared[t] for t in anchors], dtype=torch.long)
        combined, anchor_weights = focus_combine(
            np.stack([vectors[t] for t in focus_ids]),
            np.stack([vectors[t] for t in anchors]),
            source[anchor_source_ids],
        )
        embeddings[torch.tensor(focus_ids, dtype=torch.long)] = combined.to(source.dtype)
        weights = {t: (anchor_source_ids[idx], w) for t, (idx, w) in zip(focus_ids, anchor_weights)}
    timings["combine_s"] = time.perf_counter() - start

    support = [len(w) for _, w in weights.values()]
    report = {
        "tokenizer_family": tokenizer_family(target_tokenizer),
        "n_source_tokens": len(source_tokenizer),
        "n_target_tokens": n_target,
        "n_shared": len(shared),
        "n_shared_with_fasttext": len(anchors),
        "n_new": len(new_ids),
        "n_new_focus": len(focus_ids),
        "n_new_without_fasttext": len(random_ids),
        "mean_focus_support": float(np.mean(support)) if support else 0.0,
        "fasttext": {"dim": options.dim, "epochs": options.epochs, "min_count": options.min_count,
                     "threads": options.threads, "lines": lines, "words": len(model.words)},
        "timings": {k: round(v, 3) for k, v in timings.items()},
    }
    logger.info("FOCUS: %d shared tokens copied, %d new from %d anchors, %d new without fastText vector",
                len(shared), len(focus_ids), len(anchors), len(random_ids))
    return FocusResult(embeddings=embeddings, shared=shared, weights=weights, random_init=random_ids, report=report)
