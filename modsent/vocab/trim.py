"""Vocabulary trimming: keep the source tokens a language's text uses, with their exact embeddings.

A multilingual model spends most of its parameters on its vocabulary (multilingual-e5-small: 96M of
118M in a 250k-token embedding matrix), and one language uses a small part of it. Trimming keeps

* every special token,
* every token the language's text produces (``min_count`` times or more, the most frequent first
  up to ``vocab_size``),
* the single-character pieces of every letter of the scripts that text is written in (the first
  word of the character's Unicode name: LATIN, CYRILLIC, CJK, …) and of printable ASCII, so that
  a word never seen still splits into pieces rather than into ``<unk>``,
* with ``min_vocab_size`` (Unigram only), when the above are fewer: the source's most probable
  pieces of each script the text writes, shared out by the script's part of the text's letters,
  up to that size. A small text (a few thousand lines) leaves out many of its language's common
  words; a word the text never used then splits into shorter pieces than the source would give
  it, and its embedding changes. The source's piece scores (log-probabilities over its
  pretraining text) say which pieces the language's words use most,

and renumbers them in source order. For a Unigram (XLM-R, e5) tokenizer the trimmed model segments
any text made of kept tokens exactly as the source did: the best segmentation under the source's
scores uses only kept pieces, and removing pieces cannot make another segmentation better. A
WordPiece (BERT, LaBSE) tokenizer's greedy longest match is likewise unchanged on such text. The
embedding row of every kept token is the source's row, unchanged, so nothing needs training. BPE
tokenizers are refused: dropping tokens there would need their merges rewritten.

>>> result = trim_vocabulary(load_tokenizer("models/e5-small"), iter_texts(["de.txt"], "deu_Latn"))  # doctest: +SKIP
>>> len(result.tokenizer), result.source_ids[:4]  # doctest: +SKIP
(21873, [0, 1, 2, 3])
"""

from __future__ import annotations

import itertools
import json
import logging
import string
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from transformers import AutoTokenizer, PreTrainedTokenizerBase

from .errors import EmptyTextError, VocabError
from .tokenizer import tokenizer_family

__all__ = ["TrimResult", "trim_vocabulary"]

logger = logging.getLogger(__name__)

_COUNT_BATCH = 1000  # lines per call into the Rust tokenizer
_WORD_PREFIX = {"Unigram": "\u2581", "WordPiece": "##"}  # marks a piece's position inside a word
_SLOW_VOCAB_FILES = ("vocab.txt", "sentencepiece.bpe.model", "spiece.model", "tokenizer.model")


@dataclass
class TrimResult:
    """A trimmed tokenizer and where each of its tokens comes from.

    ``source_ids[i]`` is the source id of trimmed token ``i`` (increasing), so the trimmed
    embedding matrix is ``source_embeddings[source_ids]``. ``report``: counts (JSON-serialisable).
    """

    tokenizer: PreTrainedTokenizerBase
    source_ids: list[int]
    report: dict[str, Any] = field(default_factory=dict)


def _count_tokens(tokenizer: PreTrainedTokenizerBase, texts: Iterable[str]) -> tuple[Counter, Counter, int]:
    """Token id counts, character counts and the number of lines of ``texts``."""
    backend, counts, chars, lines = tokenizer.backend_tokenizer, Counter(), Counter(), 0
    iterator = iter(texts)
    while batch := list(itertools.islice(iterator, _COUNT_BATCH)):
        lines += len(batch)
        for text, encoding in zip(batch, backend.encode_batch(batch, add_special_tokens=False)):
            counts.update(encoding.ids)
            chars.update(text)
    return counts, chars, lines


def _pieces(model: dict[str, Any], family: str) -> list[str]:
    """The source model's tokens in id order."""
    if family == "Unigram":
        return [piece for piece, _score in model["vocab"]]
    by_id = sorted(model["vocab"].items(), key=lambda item: item[1])
    if [i for _, i in by_id] != list(range(len(by_id))):
        raise VocabError("the WordPiece vocabulary's ids are not 0..n-1; cannot trim it")
    return [piece for piece, _ in by_id]


def _script(char: str) -> str:
    """A character's script as the first word of its Unicode name ("LATIN", "CYRILLIC", "CJK", …)."""
    return unicodedata.name(char, "").split(" ", 1)[0]


def _fallback_ids(pieces: list[str], family: str, chars: set[str]) -> set[int]:
    """Single-character pieces (bare and word-initial/word-internal) of the text's characters, of
    every letter of the scripts it uses (a capital never seen in the text, a rarer accent), and of
    printable ASCII."""
    prefix = _WORD_PREFIX[family]
    wanted = {c for c in chars if not c.isspace()} | set(string.printable.strip())
    scripts = {_script(c) for c in chars if c.isalpha()}
    ids = set()
    for token_id, piece in enumerate(pieces):
        core = piece[len(prefix):] if piece.startswith(prefix) else piece
        if piece == prefix or core in wanted or (len(core) == 1 and core.isalpha() and _script(core) in scripts):
            ids.add(token_id)
    return ids


def _floor_filler(model: dict[str, Any], chars: Counter, kept: set[int], size: int) -> set[int]:
    """``size`` Unigram piece ids outside ``kept``: each script's most probable pieces (all letters in that
    script), as many per script as its share of the letters in ``chars``."""
    letters = Counter()
    for char, n in chars.items():
        if char.isalpha():
            letters[_script(char)] += n
    by_script: dict[str, list[tuple[float, int]]] = {script: [] for script in letters}
    prefix = _WORD_PREFIX["Unigram"]
    for token_id, (piece, score) in enumerate(model["vocab"]):
        scripts = {_script(c) for c in piece.removeprefix(prefix) if c.isalpha()}
        if len(scripts) == 1 and (script := scripts.pop()) in by_script and token_id not in kept:
            by_script[script].append((-score, token_id))
    total = sum(letters.values())
    filler: set[int] = set()
    for script, n in letters.most_common():
        quota = min(round(size * n / total), size - len(filler))
        filler.update(token_id for _, token_id in sorted(by_script[script])[:quota])
    return filler


def _remap_post_processor(node: Any, new_id: dict[str, int]) -> Any:
    """The post-processor's JSON with every special token's id replaced by its trimmed id."""
    if isinstance(node, list):
        return [_remap_post_processor(item, new_id) for item in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind == "TemplateProcessing":
        specials = {name: {**entry, "ids": [new_id[token] for token in entry["tokens"]]}
                    for name, entry in node["special_tokens"].items()}
        return {**node, "special_tokens": specials}
    if kind in ("RobertaProcessing", "BertProcessing"):
        return {**node, **{key: [node[key][0], new_id[node[key][0]]] for key in ("sep", "cls")}}
    return {key: _remap_post_processor(value, new_id) for key, value in node.items()}


def _trimmed_tokenizer_json(data: dict[str, Any], family: str, pieces: list[str], source_ids: list[int]) -> dict:
    new_id = {pieces[s]: i for i, s in enumerate(source_ids)}
    model = dict(data["model"])
    if family == "Unigram":
        model["vocab"] = [data["model"]["vocab"][s] for s in source_ids]
        if model.get("unk_id") is not None:
            model["unk_id"] = new_id[pieces[model["unk_id"]]]
    else:
        model["vocab"] = {pieces[s]: i for i, s in enumerate(source_ids)}
    added = [{**token, "id": new_id[token["content"]]} for token in data.get("added_tokens") or []]
    return {**data, "model": model, "added_tokens": added,
            "post_processor": _remap_post_processor(data.get("post_processor"), new_id)}


def _load_with_backend(source: PreTrainedTokenizerBase, tokenizer_json: dict[str, Any]) -> PreTrainedTokenizerBase:
    """The source tokenizer's class and settings over a new ``tokenizer.json`` (slow vocab files dropped)."""
    with tempfile.TemporaryDirectory(prefix="modsent-trim-") as tmp:
        source.save_pretrained(tmp)
        for name in _SLOW_VOCAB_FILES:
            (Path(tmp) / name).unlink(missing_ok=True)
        (Path(tmp) / "tokenizer.json").write_text(json.dumps(tokenizer_json, ensure_ascii=False), encoding="utf-8")
        return AutoTokenizer.from_pretrained(tmp, local_files_only=True, trust_remote_code=False)


def trim_vocabulary(
    source_tokenizer: PreTrainedTokenizerBase,
    texts: Iterable[str],
    vocab_size: int | None = None,
    min_count: int = 1,
    min_vocab_size: int | None = None,
) -> TrimResult:
    """Trim a fast Unigram or WordPiece tokenizer to the tokens ``texts`` use (see the module docstring).

    ``texts``: the language's text (any iterable of strings, read once). ``vocab_size``: at most
    this many tokens in all; the most frequent text tokens are kept first, specials and
    single-character fallbacks always. ``min_count``: a text token is kept from this many uses on.
    ``min_vocab_size``: fill up to this many tokens with the source's most probable pieces in the
    text's scripts (Unigram sources; at most ``vocab_size``).
    Raises :class:`VocabError` for a BPE tokenizer, a ``vocab_size`` below the always-kept tokens
    or ``min_vocab_size`` on a WordPiece source, :class:`EmptyTextError` when ``texts`` is empty.
    """
    family = tokenizer_family(source_tokenizer)
    if family not in _WORD_PREFIX:
        raise VocabError(f"{source_tokenizer.name_or_path}: vocab.method 'trim' supports Unigram (XLM-R, e5) and "
                         f"WordPiece (BERT, LaBSE) tokenizers, not {family}; use vocab.method: focus")
    if min_count < 1:
        raise VocabError(f"min_count={min_count}: a trimmed vocabulary keeps tokens used at least once (min_count >= 1)")
    if min_vocab_size and family != "Unigram":
        raise VocabError(f"min_vocab_size={min_vocab_size} needs a Unigram source (its piece scores rank what to add); "
                         f"{source_tokenizer.name_or_path} is {family}: set min_vocab_size: null")
    data = json.loads(source_tokenizer.backend_tokenizer.to_str())
    pieces = _pieces(data["model"], family)
    counts, chars, lines = _count_tokens(source_tokenizer, texts)
    if lines == 0:
        raise EmptyTextError("the text to trim the vocabulary to is empty; give text_files with target-language lines")

    always = {token["id"] for token in data.get("added_tokens") or []} | _fallback_ids(pieces, family, chars)
    frequent = [token_id for token_id, n in counts.most_common() if n >= min_count and token_id not in always]
    if vocab_size is not None:
        if vocab_size < len(always):
            raise VocabError(f"vocab_size={vocab_size} is below the {len(always)} special and single-character tokens "
                             "a trimmed vocabulary always keeps; raise vocab_size")
        frequent = frequent[:vocab_size - len(always)]
    kept = always | set(frequent)
    floor = min(min_vocab_size or 0, vocab_size or len(pieces))
    if len(kept) < floor:
        kept |= _floor_filler(data["model"], chars, kept, floor - len(kept))
    source_ids = sorted(kept)

    tokenizer = _load_with_backend(source_tokenizer,
                                   _trimmed_tokenizer_json(data, family, pieces, source_ids))
    if len(tokenizer) != len(source_ids):
        raise VocabError(f"trimmed tokenizer has {len(tokenizer)} tokens, expected {len(source_ids)} "
                         "(the source tokenizer has tokens outside its model vocabulary)")
    used = sum(counts.values())
    kept_uses = sum(counts[token_id] for token_id in source_ids)
    report = {
        "method": "trim",
        "tokenizer_family": family,
        "n_source_tokens": len(source_tokenizer),
        "n_target_tokens": len(source_ids),
        "n_text_tokens": len(counts),
        "n_fallback_and_special": len(always),
        "n_floor_filler": len(source_ids) - len(always | set(frequent)),
        "lines": lines,
        "text_token_coverage": round(kept_uses / used, 6) if used else 1.0,
        "min_count": min_count,
        "min_vocab_size": min_vocab_size,
    }
    logger.info("trimmed a %s vocabulary from %d to %d tokens (%d used by %d lines, %.2f%% of uses kept)", family,
                len(source_tokenizer), len(source_ids), len(counts), lines, 100 * report["text_token_coverage"])
    return TrimResult(tokenizer=tokenizer, source_ids=source_ids, report=report)
