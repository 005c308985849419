"""One evaluation run: read the configured data, score every encoder on every task, write the reports.

Model loading is not done here: the caller (``modsent evaluate``) builds the encoders from
``EvaluateConfig.models`` and passes them in, so this module needs no torch at all.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from itertools import combinations
from pathlib import Path
from typing import Any

from modsent.evaluate.belebele import BELEBELE_TASKS, evaluate_belebele
from modsent.evaluate.cache import EmbeddingCache
from modsent.evaluate.config import BelebeleConfig, BitextConfig, EvaluateConfig, STSDatasetConfig
from modsent.corpus.evaluation_data import (
    BelebeleData,
    STSPairs,
    read_belebele,
    read_belebele_files,
    read_parallel_lines,
    split_pair,
)
from modsent.corpus.sts_data import read_kardes_files, read_mteb_sts, read_str, read_stsb
from modsent.evaluate.report import write_reports
from modsent.evaluate.retrieval import evaluate_bitext
from modsent.evaluate.scores import summarize
from modsent.evaluate.sts import evaluate_sts, recombine_aligned
from modsent.hub import HubDatasetError, hub_dataset_files, parse_hub_id
from modsent.io import atomic_write_json
from modsent.languages import resolve
from modsent.models.encoders import Encoder
from modsent.progress import report_progress

__all__ = ["run_evaluation", "LanguageCodes", "load_sts_dataset"]

logger = logging.getLogger(__name__)

class LanguageCodes:
    """Maps data-set codes (``en``, ``deu``, ``zh``) to NLLB codes: an alias first, then :func:`resolve`."""

    def __init__(self, aliases: Mapping[str, str] | None = None) -> None:
        self.aliases = dict(aliases or {})

    def __call__(self, code: str) -> str:
        return resolve(self.aliases.get(code, code)).code

    def pair(self, text: str) -> tuple[str, str]:
        """``"en-de"`` -> ("eng_Latn", "deu_Latn"); ``"de"`` -> ("deu_Latn", "deu_Latn")."""
        first, second = split_pair(text)
        return self(first), self(second)


def load_sts_dataset(entries: list[STSDatasetConfig], codes: LanguageCodes) -> dict[tuple[str, str], STSPairs]:
    """Read and merge the entries of one STS data set into ``{(lang1, lang2): pairs}`` (NLLB codes)."""
    merged: dict[tuple[str, str], STSPairs] = {}
    for entry in entries:
        found: dict[tuple[str, str], STSPairs] = {}
        if entry.format == "kardes":
            sets = read_kardes_files({codes(lang): path for lang, path in entry.files.items()}, english=codes("eng"))
            found = recombine_aligned(sets)
        else:
            for key, path in entry.files.items():
                if entry.format == "mteb":
                    for pair, data_file in _mteb_files(key, path, entry.split):
                        found.update(read_mteb_sts(data_file, lang_pair=pair, normalize=codes))
                elif parse_hub_id(path) is not None:
                    raise HubDatasetError(f"STS data set {entry.name!r}: {path} reads as a hub dataset id, which is "
                                          f"read for format 'mteb' (STS17, STS22) only; give the {entry.format} file")
                else:
                    lang = codes(key)
                    read = read_stsb if entry.format == "stsb" else read_str
                    found[(lang, lang)] = read(path, lang)
            if entry.recombine:
                monolingual = {a: pairs for (a, b), pairs in found.items() if a == b}
                recombined = recombine_aligned(monolingual)
                found = {**{pair: p for pair, p in found.items() if pair[0] != pair[1]}, **recombined}
        if entry.pairs:
            wanted = [codes.pair(text) for text in entry.pairs]
            absent = [text for text, pair in zip(entry.pairs, wanted) if pair not in found]
            if absent:
                raise ValueError(f"STS data set {entry.name!r}: pair(s) {', '.join(absent)} not in its files "
                                 f"(have: {', '.join('-'.join(p) for p in found)})")
            found = {pair: found[pair] for pair in wanted}
        for pair, data in found.items():
            if pair in merged:
                raise ValueError(f"STS data set {entry.name!r}: pair {'-'.join(pair)} comes from both "
                                 f"{merged[pair].source} and {data.source}; keep one (see 'pairs')")
            merged[pair] = data
    return merged


def _mteb_files(key: str, path: str | os.PathLike, split: str) -> list[tuple[str | None, Path]]:
    """(language pair or None to read it from the file, file) for one ``files`` entry of an mteb data set.

    A hub dataset id gives the data file of config ``key`` (or of every config for ``*``) and ``split``.
    """
    if parse_hub_id(path) is None:
        return [(None if key == "*" else key, Path(path))]
    files = _one_file_each(path, None if key == "*" else [key], split)
    return [(None if config == "default" else config, file) for config, file in files.items()]  # default: from the file


def _read_belebele(config: BelebeleConfig, languages: list[str]) -> BelebeleData:
    """Belebele from a local directory, or from the hub dataset ``facebook/belebele`` (one config per language)."""
    if parse_hub_id(config.directory) is None:
        return read_belebele(config.directory, languages, config.file_pattern)
    return read_belebele_files(_one_file_each(config.directory, languages, "test"))


def _one_file_each(path: str | os.PathLike, configs: list[str] | None, split: str) -> dict[str, Path]:
    """The one ``split`` file of each config of the hub dataset ``path`` (an evaluation set is one file a config)."""
    found = hub_dataset_files(path, configs, split)
    for config, files in found.items():
        if len(files) != 1:
            raise HubDatasetError(f"{path}: config '{config}' has {len(files)} '{split}' files "
                                  f"({', '.join(f.name for f in files)}); an evaluation set is read from one file a "
                                  "config")
    return {config: files[0] for config, files in found.items()}


def _within(pair: tuple[str, str], languages: set[str]) -> bool:
    """True when ``languages`` is empty (no filter) or holds both languages of ``pair``."""
    return not languages or set(pair) <= languages


def _without_nan(row: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN; an undefined score (e.g. Spearman of a constant prediction) becomes null.
    return {key: None if isinstance(value, float) and math.isnan(value) else value for key, value in row.items()}


def _load_sts(config: EvaluateConfig, codes: LanguageCodes,
              languages: set[str]) -> dict[str, dict[tuple[str, str], STSPairs]]:
    by_name: dict[str, list[STSDatasetConfig]] = {}
    for entry in config.sts:
        by_name.setdefault(entry.name, []).append(entry)
    return {name: {pair: data for pair, data in load_sts_dataset(entries, codes).items() if _within(pair, languages)}
            for name, entries in by_name.items()}


def _load_bitext(entry: BitextConfig, codes: LanguageCodes,
                 languages: set[str]) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
    """The line-aligned texts of one bitext set and its unordered language pairs (file order)."""
    texts = read_parallel_lines({codes(lang): path for lang, path in entry.files.items()})
    position = {lang: i for i, lang in enumerate(texts)}
    if not entry.pairs:
        pairs = list(combinations(texts, 2))
    else:
        pairs = [codes.pair(text) for text in entry.pairs]
        absent = sorted({lang for pair in pairs for lang in pair if lang not in texts})
        if absent:
            raise ValueError(f"bitext {entry.name!r}: pairs name {', '.join(absent)} without a file")
    unordered = dict.fromkeys(tuple(sorted(pair, key=position.__getitem__)) for pair in pairs if pair[0] != pair[1])
    return texts, [pair for pair in unordered if _within(pair, languages)]


class _Progress:
    """Evaluations (one encoder on one dataset) done of planned: logged, and in the run's live view."""

    def __init__(self, planned: int, cache: EmbeddingCache) -> None:
        self.planned, self.done, self.cache = planned, 0, cache
        report_progress(0, planned, "evaluations", encodes=0)

    def step(self, encoder: str, dataset: str) -> None:
        self.done += 1
        encodes = sum(self.cache.encode_calls.values())
        logger.info("evaluated %s on %s (%d/%d evaluations, %d encodes so far)", encoder, dataset, self.done,
                    self.planned, encodes)
        report_progress(self.done, self.planned, "evaluations", encodes=encodes)


def run_evaluation(config: EvaluateConfig, encoders: Mapping[str, Encoder]) -> dict[str, Any]:
    """Evaluate every encoder on every active task and write the reports under ``config.output_dir``.

    Data are read (and checked) before the first encoder runs; an encoder's embeddings are
    dropped from memory when it is done. Returns ``{"scores": [...], "summary": [...], "files": [...],
    "encode_calls": {...}, "disk_hits": {...}}``. ``results.json`` holds all but the two counters:
    they tell how this run went (a rerun reads embeddings from the disk cache), not what it found,
    and the same evaluation must write the same file.

    >>> results = run_evaluation(load_config(EvaluateConfig, "eval.yaml"), {"labse": labse})  # doctest: +SKIP
    """
    if not encoders:
        raise ValueError("run_evaluation needs at least one encoder")
    if config.baseline and config.baseline not in encoders:
        raise ValueError(f"baseline {config.baseline!r} is not one of the encoders ({', '.join(encoders)})")
    tasks = config.active_tasks()
    codes = LanguageCodes(config.language_aliases)
    languages = {codes(lang) for lang in config.languages}
    search = {"query_chunk": config.query_chunk, "database_chunk": config.database_chunk}

    sts_sets = _load_sts(config, codes, languages) if "sts" in tasks else {}
    belebele_tasks = [task for task in tasks if task in BELEBELE_TASKS]
    belebele = None
    belebele_pairs: list[tuple[str, str]] = []
    if belebele_tasks:
        belebele_langs = [codes(lang) for lang in config.belebele.languages or config.languages]
        if not belebele_langs:
            raise ValueError("belebele needs languages: set belebele.languages or languages")
        belebele = _read_belebele(config.belebele, belebele_langs)
        belebele_pairs = ([(a, b) for a in belebele_langs for b in belebele_langs] if config.belebele.cross_lingual
                          else [(a, a) for a in belebele_langs])
    bitext_sets = ({entry.name: _load_bitext(entry, codes, languages) for entry in config.bitext}
                   if "bitext" in tasks else {})

    cache = EmbeddingCache(config.cache_dir)
    scores = []
    planned = len(encoders) * (len(sts_sets) + (belebele is not None) + len(bitext_sets))
    progress = _Progress(planned, cache)
    for name, encoder in encoders.items():
        for dataset, sts_pairs in sts_sets.items():
            scores += evaluate_sts(dataset, sts_pairs, name, encoder, cache)
            progress.step(name, dataset)
        if belebele is not None:
            scores += evaluate_belebele(belebele, name, encoder, cache, tasks=belebele_tasks, pairs=belebele_pairs,
                                        retrieval_ks=config.belebele.retrieval_ks, **search)
            progress.step(name, "belebele")
        for dataset, (texts, bitext_pairs) in bitext_sets.items():
            scores += evaluate_bitext(dataset, texts, bitext_pairs, name, encoder, cache, config.retrieval_scoring,
                                      config.margin_k, **search)
            progress.step(name, dataset)
        cache.release(name)

    output = Path(config.output_dir)
    levels = {codes(lang): level for lang, level in config.resource_levels.items()}
    files = write_reports(scores, output, levels, config.baseline or None, heatmaps=config.heatmaps)
    results = {
        "scores": [_without_nan(score.as_dict()) for score in scores],
        "summary": [_without_nan(row) for row in summarize(scores, levels)],
        "files": [str(path.relative_to(output)) for path in files],
    }
    atomic_write_json(output / "results.json", results)
    counters = {
        "encode_calls": {f"{name}/aligned={space}": n for (name, space), n in sorted(cache.encode_calls.items())},
        "disk_hits": {f"{name}/aligned={space}": n for (name, space), n in sorted(cache.disk_hits.items())},
    }
    logger.info("embeddings: %d sets encoded, %d read from the disk cache",
                sum(cache.encode_calls.values()), sum(cache.disk_hits.values()))
    return {**results, **counters}
