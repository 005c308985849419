"""BUCC-style evaluation of mining: gold pairs hidden among distractors, P/R/F1 at the best threshold.

As in the BUCC 2017/2018 shared task (Zweigenbaum et al.), each language pair gets two
monolingual pools, a foreign one (the source) and an English one (the target), in which a few
gold translation pairs hide among many sentences that have no translation in the other pool.
The mining method (:func:`~modsent.mine.score.mine_pairs`: k-NN both ways, ratio margin, the
configured mode) ranks candidate pairs; sweeping the threshold over that ranking gives precision
and recall, and the table reports the threshold with the best F1.

Pools come from a line-aligned parallel corpus in the layout
:func:`~modsent.corpus.gettext_po.write_parallel_corpus` writes
(``DATA/<split>/eng_Latn-<lang>/{eng_Latn,<lang>}.txt``; ``pypi:django-parallel`` is one): gold
pairs from ``split``, distractors from the other splits — foreign sentences from one half of those
pairs and English sentences from the other half, so no distractor's translation is in the other
pool. Every sentence is unique within its pool. Output under ``output_dir``: ``bucc_f1.{csv,md}``
(model × language) and ``langid_accuracy.{csv,md}`` (py3langid on each language's pooled text).
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from modsent.corpus import read_lines
from modsent.errors import ModsentError
from modsent.io import atomic_write_text, setup_logging
from modsent.output_checks import check_not_overwriting
from modsent.languages import resolve
from modsent.tables import csv_text, markdown_table
from modsent.mine.config import BuccConfig
from modsent.mine.index import Searcher
from modsent.mine.score import MinedPairs, mine_pairs

__all__ = ["BuccConfig", "BuccPools", "BuccError", "build_pools", "best_f1", "run_bucc"]

logger = logging.getLogger(__name__)

F1_HEADER = ["model", "language", "script", "gold", "source_pool", "target_pool", "threshold", "precision",
             "recall", "f1"]


class BuccError(ModsentError):
    """The parallel corpus lacks a language, or has too few pairs for the asked distractor ratio."""


@dataclass
class BuccPools:
    """Source (foreign) and target (English) pools; gold pairs are (source row, target row)."""

    language: str
    source: list[str]
    target: list[str]
    gold: set[tuple[int, int]]


def _read_pairs(root: Path, pivot: str, lang: str) -> list[tuple[str, str]]:
    directory = root / f"{pivot}-{lang}"
    if not directory.is_dir():
        return []
    return list(zip(read_lines(directory / f"{lang}.txt"), read_lines(directory / f"{pivot}.txt")))


def _unique_pairs(pairs: list[tuple[str, str]], seen_src: set[str], seen_tgt: set[str]) -> list[tuple[str, str]]:
    """Pairs whose foreign and English sides were not seen before (each sentence once per pool)."""
    kept = []
    for src, tgt in pairs:
        src, tgt = src.strip(), tgt.strip()
        if src and tgt and src not in seen_src and tgt not in seen_tgt:
            seen_src.add(src)
            seen_tgt.add(tgt)
            kept.append((src, tgt))
    return kept


def build_pools(data: Path, lang: str, config: BuccConfig) -> BuccPools:
    """Gold pairs of ``config.split`` hidden among distractors from the other splits, shuffled (seeded)."""
    code, pivot = resolve(lang).code, resolve(config.pivot).code
    splits = sorted(p.name for p in data.iterdir() if p.is_dir())
    if config.split not in splits:
        raise BuccError(f"{data}: no split {config.split!r} (found {', '.join(splits) or 'none'})")
    seen_src: set[str] = set()
    seen_tgt: set[str] = set()
    gold_pairs = _unique_pairs(_read_pairs(data / config.split, pivot, code), seen_src, seen_tgt)
    others = [pair for split in splits if split != config.split
              for pair in _unique_pairs(_read_pairs(data / split, pivot, code), seen_src, seen_tgt)]
    rng = random.Random(f"{config.seed}-{code}")
    rng.shuffle(gold_pairs)
    rng.shuffle(others)
    gold_count = min(config.max_gold, len(gold_pairs), len(others) // (2 * config.distractor_ratio))
    if gold_count < config.min_gold:
        raise BuccError(f"{data}: {code} has {len(gold_pairs)} {config.split} pairs and {len(others)} others; "
                        f"{config.min_gold} gold pairs with {config.distractor_ratio}x distractors need "
                        f"{config.min_gold * 2 * config.distractor_ratio} others")
    distractors = gold_count * config.distractor_ratio
    source = [s for s, _ in gold_pairs[:gold_count]] + [s for s, _ in others[:distractors]]
    target = [t for _, t in gold_pairs[:gold_count]] + [t for _, t in others[distractors:2 * distractors]]
    source_order = rng.sample(range(len(source)), len(source))
    target_order = rng.sample(range(len(target)), len(target))
    source_row = {old: new for new, old in enumerate(source_order)}
    target_row = {old: new for new, old in enumerate(target_order)}
    return BuccPools(code, [source[i] for i in source_order], [target[i] for i in target_order],
                     {(source_row[i], target_row[i]) for i in range(gold_count)})


def best_f1(ranked: MinedPairs, gold: set[tuple[int, int]]) -> dict[str, float]:
    """Precision, recall and F1 (×100) at the threshold (a candidate's score) that maximises F1.

    >>> pairs = MinedPairs(np.array([0, 1, 2]), np.array([0, 1, 5]), np.array([3.0, 2.0, 1.0], dtype=np.float32))
    >>> best_f1(pairs, {(0, 0), (1, 1), (2, 2)})["f1"]
    80.0
    """
    correct = np.array([(s, t) in gold for s, t in zip(ranked.source.tolist(), ranked.target.tolist())], dtype=bool)
    if not correct.any():
        return {"threshold": float("nan"), "precision": 0.0, "recall": 0.0, "f1": 0.0}
    hits = np.cumsum(correct)
    precision = hits / np.arange(1, len(correct) + 1)
    recall = hits / len(gold)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    # Ties in score cannot be split by a threshold: judge each cut only after the last of its ties.
    last_of_ties = np.append(ranked.score[1:] != ranked.score[:-1], True)
    f1 = np.where(last_of_ties, f1, -1.0)
    best = int(np.argmax(f1))
    return {"threshold": float(ranked.score[best]), "precision": float(precision[best]) * 100,
            "recall": float(recall[best]) * 100, "f1": float(f1[best]) * 100}


def run_bucc(config: BuccConfig) -> list[dict]:
    """Pools per language, every model mines them; write ``bucc_f1.{csv,md}`` and ``langid_accuracy.{csv,md}``."""
    from modsent.models.encoders import load_encoder
    from modsent.models.langid import identification_accuracy
    from modsent.sources import resolve_source

    check_not_overwriting({"output_dir": config.output_dir}, {
        "data": config.data, **{f"models.{name}": path for name, path in config.models.items()}})
    if not logging.getLogger().handlers:
        setup_logging("INFO")
    codes = [resolve(lang).code for lang in config.languages]
    data = resolve_source(config.data, codes)
    pools = [build_pools(data, code, config) for code in codes]
    rows: list[dict] = []
    for name, path in config.models.items():
        encoder = load_encoder(resolve_source(path), config.batch_size)
        for pool in pools:
            source = encoder.encode(pool.source, pool.language, True)
            target = encoder.encode(pool.target, resolve(config.pivot).code, True)
            ranked = mine_pairs(source, target, config.k, config.mode, Searcher(config.index))
            scores = best_f1(ranked, pool.gold)
            rows.append({"model": name, "language": pool.language, "script": resolve(pool.language).script,
                         "gold": len(pool.gold), "source_pool": len(pool.source), "target_pool": len(pool.target),
                         **scores})
            logger.info("%s %s: F1 %.1f (P %.1f, R %.1f) at margin %.4f", name, pool.language, scores["f1"],
                        scores["precision"], scores["recall"], scores["threshold"])
    output = Path(config.output_dir)
    # Margins cluster just above 1: the threshold keeps four decimals (the shared tables print two).
    table = [[f"{row[h]:.4f}" if h == "threshold" else row[h] for h in F1_HEADER] for row in rows]
    atomic_write_text(output / "bucc_f1.csv", csv_text(F1_HEADER, table))
    atomic_write_text(output / "bucc_f1.md", markdown_table(F1_HEADER, table) + "\n")
    accuracy = identification_accuracy({pool.language: pool.source for pool in pools})
    langid_rows = [[code, resolve(code).script, len(pool.source), accuracy[code] * 100]
                   for pool, code in zip(pools, accuracy)]
    langid_header = ["language", "script", "sentences", "langid_accuracy"]
    atomic_write_text(output / "langid_accuracy.csv", csv_text(langid_header, langid_rows))
    atomic_write_text(output / "langid_accuracy.md", markdown_table(langid_header, langid_rows) + "\n")
    logger.info("BUCC-style F1 (%s):\n%s", output / "bucc_f1.md", markdown_table(F1_HEADER, table))
    return rows
