"""The mine job: two monolingual collections → scored translation pairs.

Steps of :func:`run`:

1. check the model (a modular model directory, a single sentence encoder, or ``pypi:e5-small``)
   and the languages — bad input fails here, before any output exists;
2. read both sides (text, JSONL, Parquet; streamed), fold exact duplicates, and give every
   sentence a language: the configured one, or with ``auto`` the language identifier's; sentences
   in a language the model lacks are counted and skipped, or routed to ``fallback_model``;
3. embed the shards a previous run did not finish on a Ray Data actor pool
   (:mod:`modsent.mine.embed`), float16, resumable;
4. k-NN in both directions (exact or a trained FAISS index, :mod:`modsent.mine.index`), ratio
   margin and the configured mode (:mod:`modsent.mine.score`);
5. write the pairs above the threshold (or the top N), best first, as Parquet or TSV, and a report
   (``mine_report.json`` + ``.md``) with counts and sentences/s per phase.

Submit to a cluster with ``ray job submit -- python ray_jobs/mine_bitext.py -c CONFIG``.
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from modsent.config import dump_config
from modsent.errors import ModsentError, first_line
from modsent.io import atomic_write_bytes, atomic_write_json, atomic_write_text, fingerprint, setup_logging
from modsent.output_checks import OutputError, check_not_overwriting, check_output_dir, no_space_as_error
from modsent.languages import resolve
from modsent.mine.config import AUTO, MineConfig
from modsent.mine.embed import ShardStore, embed_pending, plan_shards
from modsent.mine.index import Searcher
from modsent.mine.inputs import SentenceSet, read_side
from modsent.mine.score import MinedPairs, mine_pairs

__all__ = ["MineModelError", "MineResult", "SideReport", "run", "check_model", "assign_languages",
           "write_pairs"]

logger = logging.getLogger(__name__)

SIDES = ("src", "tgt")
PAIR_COLUMNS = ("score", "source", "target", "source_file", "source_line", "target_file", "target_line")


class MineModelError(ModsentError):
    """The model is not a sentence encoder, or lacks a language the job needs."""


@dataclass
class SideReport:
    lines: int
    unique: int
    embedded: int
    languages: dict[str, int] = field(default_factory=dict)  # identified or configured, per code
    skipped: dict[str, int] = field(default_factory=dict)  # languages the model lacks, no fallback
    fallback: dict[str, int] = field(default_factory=dict)  # languages sent to the fallback encoder


@dataclass
class MineResult:
    output_dir: Path
    pairs_path: Path
    pairs: int
    shards_embedded: int
    shards_reused: int
    sides: dict[str, SideReport]
    seconds: dict[str, float]
    index: list[dict[str, Any]]


def _resolve_model(value: str | None) -> Path | None:
    if value is None:
        return None
    from modsent.sources import resolve_source

    return resolve_source(value)


def check_model(path: Path, trust_remote_code: bool = False) -> list[str] | None:
    """The languages a modular model serves (None for a single encoder); a clear error for anything else."""
    from modsent.models.modular import is_modular_model, read_modular_manifest

    if not path.is_dir():
        raise MineModelError(f"model {path} does not exist (a modular model directory or a sentence encoder)")
    if is_modular_model(path):
        return sorted(read_modular_manifest(path)[1])
    if not ((path / "modules.json").is_file() or (path / "config.json").is_file()):
        raise MineModelError(f"{path} is not a sentence encoder: it has neither modular.json, modules.json "
                             "(sentence-transformers) nor config.json (transformers)")
    from transformers import AutoConfig

    from modsent.models.files import from_pretrained

    try:
        from_pretrained(AutoConfig.from_pretrained, path, MineModelError, trust_remote_code)
    except MineModelError:
        raise
    except (OSError, ValueError) as err:
        raise MineModelError(f"{path} is not a sentence encoder ({first_line(err)})") from None
    return None


def _check_aligned(path: Path, code: str, aligned: bool) -> None:
    from modsent.models.modular import read_modular_manifest

    pivot, modules = read_modular_manifest(path)
    if aligned and code != pivot and modules[code].adapter is None:
        raise MineModelError(f"{path}: {code} has no cross-lingual adapter, so it cannot be compared across "
                             "languages; run `modsent align` for it")


def assign_languages(sentences: SentenceSet, side: str, lang: str, model: Path, served: list[str] | None,
                     has_fallback: bool, aligned: bool) -> tuple[np.ndarray, list[str], SideReport]:
    """Which sentences to embed (mask), the language of each kept one, and the side's language report."""
    report = SideReport(sentences.lines, len(sentences), 0)
    if lang == AUTO and served is None:
        # One encoder for every language: nothing to route.
        report.embedded = len(sentences)
        return np.ones(len(sentences), dtype=bool), [""] * len(sentences), report
    if lang == AUTO:
        from modsent.models.langid import identify_languages

        codes = [code or "und" for code in identify_languages(sentences.texts)]
    else:
        codes = [resolve(lang).code] * len(sentences)
    report.languages = dict(sorted(Counter(codes).items()))
    lacking = {code for code in report.languages if served is not None and code not in served}
    if lacking and lang != AUTO and not has_fallback:
        raise MineModelError(f"{model} has no encoder for {lang} ({resolve(lang).code}, {side}_lang); it serves "
                             f"{', '.join(served or [])}. Choose another model or set fallback_model")
    target = report.fallback if has_fallback else report.skipped
    for code in sorted(lacking):
        target[code] = report.languages[code]
    if served is not None:
        for code in report.languages:
            if code not in lacking:
                _check_aligned(model, code, aligned)
    if report.skipped:
        logger.warning("%s: skipping %d sentence(s) in languages the model lacks: %s (set fallback_model to "
                       "embed them)", side, sum(report.skipped.values()),
                       ", ".join(f"{c} {n}" for c, n in report.skipped.items()))
    keep = np.array([code not in report.skipped for code in codes], dtype=bool)
    if not keep.any():
        raise MineModelError(f"{side}: no sentence is in a language {model} serves ({', '.join(served or [])}); "
                             f"identified: {report.languages}")
    report.embedded = int(keep.sum())
    return keep, [code for code, k in zip(codes, keep) if k], report


def write_pairs(path: Path, pairs: MinedPairs, src: SentenceSet, tgt: SentenceSet, fmt: str) -> None:
    """The pairs, best first, with both texts and where each first appears (file, 1-based line), atomically."""
    columns = {
        "score": pairs.score,
        "source": [src.texts[i] for i in pairs.source],
        "target": [tgt.texts[i] for i in pairs.target],
        "source_file": [src.files[src.first_file[i]] for i in pairs.source],
        "source_line": src.first_line[pairs.source],
        "target_file": [tgt.files[tgt.first_file[i]] for i in pairs.target],
        "target_line": tgt.first_line[pairs.target],
    }
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        buffer = io.BytesIO()
        pq.write_table(pa.table(columns), buffer)
        atomic_write_bytes(path, buffer.getvalue())
        return
    text = io.StringIO()
    writer = csv.writer(text, delimiter="\t", lineterminator="\n")
    writer.writerow(PAIR_COLUMNS)
    for row in zip(*(columns[name] for name in PAIR_COLUMNS)):
        writer.writerow([f"{row[0]:.6f}", *row[1:]])
    atomic_write_text(path, text.getvalue())


def _load_side(store: ShardStore, shards: list, rows: int) -> np.ndarray:
    parts = []
    for shard in shards:
        array = store.load(shard)
        if array is None:
            raise RuntimeError(f"shard {store.paths(shard)[0]} is not finished; rerun the job to embed it")
        parts.append(array)
    embeddings = np.concatenate(parts).astype(np.float32)
    assert len(embeddings) == rows
    # float16 storage moves norms by ~1e-3: renormalise so inner products are cosines again.
    embeddings /= np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), np.finfo(np.float32).tiny)
    return embeddings


def _report_markdown(result: MineResult) -> str:
    lines = ["| side | lines | unique | embedded | skipped | fallback |", "|---|---|---|---|---|---|"]
    for side, rep in result.sides.items():
        lines.append(f"| {side} | {rep.lines} | {rep.unique} | {rep.embedded} | {rep.skipped or '-'} | "
                     f"{rep.fallback or '-'} |")
    lines += ["", "| phase | seconds |", "|---|---|"]
    lines += [f"| {phase} | {seconds:.2f} |" for phase, seconds in result.seconds.items()]
    lines += ["", f"{result.pairs} pairs in {result.pairs_path.name}; shards embedded {result.shards_embedded}, "
              f"reused {result.shards_reused}; index: {', '.join(call['index'] for call in result.index)}"]
    return "\n".join(lines) + "\n"


def run(config: MineConfig) -> MineResult:
    """Mine ``config.src`` × ``config.tgt``; resumable, see the module docstring.

    >>> from modsent.config import load_config
    >>> run_mine(load_config(MineConfig, "configs/mine.yaml"))  # doctest: +SKIP
    """
    # Mining writes every file atomically, so a full disk leaves no partial file behind (shards finished
    # before it stay for the rerun): one line says so, not a traceback.
    with no_space_as_error(config.output_dir, OutputError):
        return _mine(config)


def _mine(config: MineConfig) -> MineResult:
    check_not_overwriting({"output_dir (--output)": config.output_dir}, {
        "--src": config.src, "--tgt": config.tgt, "--model": config.model, "fallback_model": config.fallback_model})
    if not logging.getLogger().handlers:  # called from the CLI: progress and the report must show
        setup_logging("INFO")
    from modsent.raycluster import ray_session

    model = _resolve_model(config.model)
    fallback = _resolve_model(config.fallback_model)
    assert model is not None
    served = check_model(model, config.trust_remote_code)
    if fallback is not None and check_model(fallback, config.trust_remote_code) is not None:
        raise MineModelError(f"fallback_model {fallback} must be a single multilingual encoder, not a modular model")
    sets: dict[str, SentenceSet] = {}
    langs: dict[str, list[str]] = {}
    reports: dict[str, SideReport] = {}
    for side, patterns, lang in (("src", config.src, config.src_lang), ("tgt", config.tgt, config.tgt_lang)):
        sentences = read_side(patterns, side, config.text_field)
        keep, langs[side], reports[side] = assign_languages(sentences, side, lang, model, served,
                                                            fallback is not None, config.aligned)
        sets[side] = sentences if keep.all() else sentences.subset(keep)

    output_dir = check_output_dir(config.output_dir, "mine output directory (--output)")
    store = ShardStore(output_dir / "embeddings", {
        "model": fingerprint(model), "fallback": None if fallback is None else fingerprint(fallback),
        "aligned": config.aligned, "batch_size": config.embed.batch_size, "format_version": 1})
    shards = {side: plan_shards(side, sets[side].texts, langs[side], config.embed.shard_size) for side in SIDES}
    pending = [shard for side in SIDES for shard in shards[side] if store.load(shard) is None]
    total = sum(len(s) for s in shards.values())
    logger.info("%d embedding shards, %d to embed, %d finished earlier", total, len(pending), total - len(pending))
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    if pending:
        with ray_session(config.ray):
            embed_pending(pending, {side: sets[side].texts for side in SIDES}, langs, store, config.embed,
                          {"model": str(model), "fallback": None if fallback is None else str(fallback),
                           "aligned": config.aligned, "batch_size": config.embed.batch_size,
                           "trust_remote_code": config.trust_remote_code},
                          config.ray.progress_bars)
    seconds["embed"] = time.perf_counter() - started
    embeddings = {side: _load_side(store, shards[side], len(sets[side])) for side in SIDES}
    for side in SIDES:
        atomic_write_json(output_dir / "embeddings" / side / "manifest.json", {
            "side": side, "rows": len(sets[side]), "dim": int(embeddings[side].shape[1]), "dtype": "float16",
            "settings": store.settings,
            "shards": [{"file": store.paths(s)[0].name, "start": s.start, "stop": s.stop, "sha256": s.sha256}
                       for s in shards[side]]})

    searcher = Searcher(config.index)
    started = time.perf_counter()
    mined = mine_pairs(embeddings["src"], embeddings["tgt"], config.score.k, config.score.mode, searcher)
    candidates_seconds = time.perf_counter() - started
    seconds["index"] = sum(call["build_seconds"] for call in searcher.calls)
    seconds["search"] = sum(call["search_seconds"] for call in searcher.calls)
    seconds["score"] = candidates_seconds - seconds["index"] - seconds["search"]
    kept = mined.select(config.score.threshold, config.score.top_n)
    pairs_path = output_dir / f"pairs.{config.output_format}"
    write_pairs(pairs_path, kept, sets["src"], sets["tgt"], config.output_format)

    result = MineResult(output_dir, pairs_path, len(kept), len(pending), total - len(pending), reports, seconds,
                        searcher.calls)
    dump_config(config, output_dir / "config.yaml", header="resolved config of this mine run")
    atomic_write_json(output_dir / "mine_report.json", {
        "pairs": len(kept), "candidates": len(mined), "mode": config.score.mode, "k": config.score.k,
        "threshold": config.score.threshold, "top_n": config.score.top_n,
        "shards_embedded": len(pending), "shards_reused": total - len(pending),
        "sides": {side: vars(rep) for side, rep in reports.items()}, "seconds": seconds, "index": searcher.calls})
    markdown = _report_markdown(result)
    atomic_write_text(output_dir / "mine_report.md", markdown)
    logger.info("mine report (%s):\n%s", output_dir / "mine_report.md", markdown)
    return result

