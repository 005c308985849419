"""The translate job: paraphrase corpora → every target language, with CTranslate2 NLLB (or Apertium) on Ray Data.

Steps of :func:`run`:

1. check the inputs (languages, model directory, corpora) — bad input fails here, before any
   output exists;
2. collect the unique source sentences of all datasets and columns, sorted by length
   (:mod:`modsent.translate.source`), and cut them into shards;
3. plan (language, shard) units, skipping those a previous run finished (:mod:`modsent.translate.units`);
4. stream the pending shards through ``map_batches`` on an actor pool, one translator per actor
   (CTranslate2 NLLB, or ``backend: apertium``: :mod:`modsent.translate.apertium`); a batch mixes
   target languages (per-example target prefix); every unit is written
   atomically the moment its last sentence arrives;
5. assemble the output corpus from finished units only, in one atomic directory rename, then run
   the quality checks and write the manifest and the per-language summary (CSV + Markdown).

Submit to a cluster with ``ray job submit -- python ray_jobs/translate_paraphrases.py -c CONFIG``.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from modsent.config import ConfigError, dump_config
from modsent.corpus import write_dataset
from modsent.dirlock import hold_directory
from modsent.errors import innermost_user_error
from modsent.io import (
    atomic_directory,
    atomic_write_json,
    atomic_write_text,
    remove_stale_temporaries,
    setup_logging,
    sha256_file,
)
from modsent.output_checks import check_not_overwriting, check_output_dir
from modsent.languages import resolve, resolve_many
from modsent.progress import report_progress
from modsent.raycluster import ray_session
from modsent.translate.apertium import apertium_pairs, mode_sha256
from modsent.translate.config import ComputeConfig, TranslateConfig, default_model_cache
from modsent.translate.model import (
    PreparedModel,
    actor_device,
    check_compute_type,
    check_language_tokens,
    fit_decoding,
    prepare_model,
)
from modsent.translate.quality import CHECKS, QualityReport, check_translations
from modsent.translate.source import SourceCorpus, load_source
from modsent.translate.translator import FAULT_ENV, NllbTokens, TranslateActor, make_translator
from modsent.translate.units import Unit, UnitStore

__all__ = ["TranslationResult", "LanguageSummary", "Engine", "prepare_engine", "translate_sentences", "run", "ray_session", "actor_placement"]

logger = logging.getLogger(__name__)


@dataclass
class LanguageSummary:
    language: str
    name: str
    unique_sentences: int
    lines_written: int
    units: int
    units_reused: int
    median_length_ratio: float
    issues: dict[str, int] = field(default_factory=dict)
    blank_source_lines: int = 0  # of lines_written: blank in the source, so blank here (not counted as "empty")

    def row(self) -> dict[str, object]:
        return {"language": self.language, "name": self.name, "unique_sentences": self.unique_sentences,
                "lines_written": self.lines_written, "blank_source_lines": self.blank_source_lines,
                "units": self.units, "units_reused": self.units_reused,
                **{check: self.issues.get(check, 0) for check in CHECKS},
                "median_length_ratio": round(self.median_length_ratio, 3)}


@dataclass
class TranslationResult:
    """What a run produced: paths, counts and timings."""

    output_dir: Path
    corpus_dir: Path
    languages: list[str]
    unique_sentences: int
    source_occurrences: int
    units_translated: int
    units_reused: int
    examples_translated: int
    translate_seconds: float
    total_seconds: float
    summaries: list[LanguageSummary]
    units_by_node: dict[str, int] = field(default_factory=dict)  # this run's units per Ray node id (a unit split
    # across nodes counts for each); every unit file lists its nodes too


def _target_languages(config: TranslateConfig, source: str) -> list[str]:
    codes = [lang.code for lang in resolve_many(config.languages)]
    if source in codes:
        logger.info("skipping %s among the target languages: it is the source language", source)
        codes = [code for code in codes if code != source]
    if not codes:
        raise ConfigError(f"languages: no target language left besides the source {source}")
    return codes


def _plan(corpus: SourceCorpus, languages: list[str], shard_size: int, store: UnitStore) -> tuple[dict[str, list[Unit]], list[Unit]]:
    """All units per language, and the ones still to translate."""
    bounds = corpus.shard_bounds(shard_size)
    hashes = [corpus.shard_sha256(start, stop) for start, stop in bounds]
    units = {lang: [Unit(lang, i, start, stop, hashes[i]) for i, (start, stop) in enumerate(bounds)] for lang in languages}
    pending = [unit for lang in languages for unit in units[lang] if not store.is_done(unit)]
    return units, pending


def estimated_output_bytes(corpus: SourceCorpus, languages: int) -> int:
    """Disk the job will fill: finished units (each unique sentence once per language, JSON-quoted) and
    the assembled corpus (every line once per language, plus the source), taking translations to be as
    long in bytes as their sources — refused up front rather than after hours of translation."""
    sizes = np.fromiter((len(sentence.encode("utf-8")) + 1 for sentence in corpus.sentences), dtype=np.int64,
                        count=len(corpus.sentences))
    lines = sum(int(sizes[col.ranks].sum()) for dataset in corpus.datasets for col in dataset.columns)
    return int(2 * languages * sizes.sum() + (languages + 1) * lines)


@dataclass(frozen=True)
class Engine:
    """The translation engine a job runs, as its actors build it and its units are fingerprinted.

    ``translator_kwargs``: what each actor builds its translator from (:func:`~modsent.translate.translator.make_translator`).
    ``settings``: what makes a finished unit valid for this job (model and decoding, or the Apertium
    engine), ``language_settings`` adding each language's own (its Apertium mode's content hash).
    ``record``: the manifest's description of the engine. ``whole_shards``: a sentence's translation may
    depend on the sentences translated with it (Apertium), so each actor task is one whole shard and a
    unit's translations do not depend on what else is pending (resumed, or on more actors).
    """

    translator_kwargs: dict[str, Any]
    settings: dict[str, Any]
    language_settings: dict[str, dict[str, Any]]
    record: dict[str, Any]
    quantization: str | None  # CTranslate2's compute type; None for Apertium (CPU only)
    whole_shards: bool = False


def _nllb_engine(config: TranslateConfig, model: PreparedModel, source_language: str) -> Engine:
    compute = config.compute
    kwargs = {
        "model_dir": str(model.ct2_dir), "tokenizer_dir": str(model.tokenizer_dir),
        "source_language": source_language, "device": compute.device,
        "device_index": compute.device_index, "compute_type": model.quantization,
        "inter_threads": compute.inter_threads, "intra_threads": compute.intra_threads,
        "decoding": config.decoding, "max_batch_size": compute.max_batch_size, "batch_type": compute.batch_type,
    }
    settings = {"model_sha256": model.sha256, "quantization": model.quantization, "source_language": source_language,
                "decoding": asdict(config.decoding)}
    record = {"backend": "ctranslate2",
              "model": {"source": str(model.source), "ct2_dir": str(model.ct2_dir), "sha256": model.sha256,
                        "quantization": model.quantization, "converted": model.converted},
              "decoding": asdict(config.decoding)}
    return Engine(kwargs, settings, {}, record, model.quantization)


def _apertium_engine(config: TranslateConfig, source_language: str) -> Engine:
    modes = config.apertium_modes()
    hashes = {lang: mode_sha256(mode) for lang, mode in modes.items()}
    packages = apertium_pairs()
    settings = {"backend": "apertium", "source_language": source_language, "unknown_word_marks": "dropped"}
    record = {"backend": "apertium", "modes": {
        lang: {"mode": mode, "package": packages[lang].package, "sha256": hashes[lang]} for lang, mode in modes.items()}}
    return Engine({"backend": "apertium", "modes": modes}, settings,
                  {lang: {"mode": mode, "mode_sha256": hashes[lang]} for lang, mode in modes.items()}, record, None,
                  whole_shards=True)


def prepare_engine(config: TranslateConfig) -> tuple[TranslateConfig, Engine, str, list[str]]:
    """Check the engine against the languages (a missing mode, model or language token fails here) and
    prepare it (an NLLB checkpoint is converted once). Returns the config with its decoding limits fitted
    to the model, the engine, the source language and the target languages, as NLLB codes."""
    source_language = resolve(config.source_language).code
    languages = _target_languages(config, source_language)
    if config.backend == "apertium":
        return config, _apertium_engine(config, source_language), source_language, languages
    model = prepare_model(config.model.path, config.model.quantization,
                          config.model.cache_dir or default_model_cache(), config.model.tokenizer)
    config = replace(config, decoding=fit_decoding(config.decoding, model))
    # The actors' tokenizer reader: the driver needs no transformers import for this check either.
    tokens = NllbTokens(model.tokenizer_dir, source_language, config.decoding.max_input_length)
    check_language_tokens(tokens.tokenizer, [source_language, *languages], model.tokenizer_dir)
    return config, _nllb_engine(config, model, source_language), source_language, languages


def translate_sentences(config: TranslateConfig, sentences: Sequence[str]) -> dict[str, list[str]]:
    """``sentences`` translated into every target language of ``config`` by its engine, in this process
    (no Ray, no units): small evaluation sets translated as the corpus was. Repeated sentences are
    translated once."""
    config, engine, _, languages = prepare_engine(config)
    translator = make_translator({**engine.translator_kwargs, "device": config.compute.device})
    unique = list(dict.fromkeys(sentences))
    out = {}
    for language in languages:
        table = dict(zip(unique, translator.translate(unique, [language] * len(unique))))
        out[language] = [table[sentence] for sentence in sentences]
    return out


def actor_placement(compute: ComputeConfig, quantization: str | None) -> tuple[str, dict[str, float]]:
    """On the driver, inside the Ray session: the device the actors are told and the Ray resources each asks for.

    Decided from the cluster (:func:`modsent.translate.model.actor_device`), so a CPU-only head node
    still gives GPU workers their GPUs. On CPU the compute type is checked here, in one line, as
    every node runs the same CTranslate2 CPU build; on GPUs each actor checks it on its own device.
    ``quantization`` None (Apertium): CPU, whatever the cluster has.
    """
    resources = {"num_cpus": compute.cpus_per_actor}
    if quantization is None:
        return "cpu", resources
    device = actor_device(compute.device)
    if device == "cpu":
        check_compute_type("cpu", quantization)
    else:
        resources["num_gpus"] = compute.gpus_per_actor
    return device, resources


def _batches_of(translated: Any) -> Iterator[dict]:
    """The translated batches; an actor's refusal (a device or compute type it cannot use) as its own one line."""
    try:
        yield from translated.iter_batches(batch_size=None, batch_format="numpy")
    except Exception as err:
        user_error = innermost_user_error(err)
        if user_error is None:
            raise
        raise user_error from None


def _translate_units(corpus: SourceCorpus, pending: list[Unit], store: UnitStore, config: TranslateConfig,
                     engine: Engine) -> tuple[int, dict[str, int]]:
    """Translate the pending units on Ray; return the number of (sentence, language) examples and the
    units finished per Ray node."""
    import pyarrow as pa
    import ray

    device, resources = actor_placement(config.compute, engine.quantization)

    languages_by_shard: dict[int, list[str]] = {}
    for unit in pending:
        languages_by_shard.setdefault(unit.shard, []).append(unit.language)
    unit_of = {(unit.language, unit.shard): unit for unit in pending}
    compute = config.compute
    # One block is one actor task: Ray Data hands whole blocks to actors, so blocks are cut at
    # about examples_per_task (sentence × language) examples — fewer in small jobs, so every
    # actor gets several tasks, but not below one CTranslate2 batch — never across shards.
    spread = -(-sum(unit.size for unit in pending) // (4 * compute.num_actors))
    per_task = min(compute.examples_per_task, max(compute.max_batch_size, spread))
    target_sets: list[list[str]] = []
    blocks = []
    for shard, languages in sorted(languages_by_shard.items()):
        if languages not in target_sets:
            target_sets.append(languages)
        unit = unit_of[(languages[0], shard)]
        rows_per_block = unit.size if engine.whole_shards else max(1, per_task // len(languages))
        for start in range(unit.start, unit.stop, rows_per_block):
            stop = min(start + rows_per_block, unit.stop)
            blocks.append(pa.table({
                "shard": pa.array(np.full(stop - start, shard, dtype=np.int64)),
                "pos": pa.array(np.arange(start - unit.start, stop - unit.start, dtype=np.int64)),
                "text": pa.array(corpus.sentences[start:stop], type=pa.string()),
                "target_set": pa.array(np.full(stop - start, target_sets.index(languages), dtype=np.int32)),
            }))
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = config.ray.progress_bars
    # from_blocks keeps our blocks as they are and, unlike from_arrow, reads their metadata
    # here instead of in remote tasks (seconds of worker start-up per job on a small machine).
    translated = ray.data.from_blocks(blocks).map_batches(
        TranslateActor,
        batch_size=None,
        batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=compute.num_actors),
        fn_constructor_kwargs={"translator_kwargs": {**engine.translator_kwargs, "device": device},
                               "target_sets": target_sets, "fault": os.environ.get(FAULT_ENV)},
        **resources,
    )
    buffers: dict[tuple[str, int], list[str | None]] = {}
    missing: dict[tuple[str, int], int] = {}
    nodes: dict[tuple[str, int], set[str]] = {}
    units_by_node: dict[str, int] = {}
    finished = examples = 0
    last_log = time.monotonic()
    for batch in _batches_of(translated):
        for shard, pos, language, text, node in zip(batch["shard"], batch["pos"], batch["language"],
                                                    batch["translation"], batch["node"]):
            key = (str(language), int(shard))
            unit = unit_of[key]
            buffer = buffers.get(key)
            if buffer is None:
                buffer = buffers[key] = [None] * unit.size
                missing[key] = unit.size
                nodes[key] = set()
            if buffer[pos] is None:
                buffer[pos] = str(text)
                missing[key] -= 1
                examples += 1
                nodes[key].add(str(node))
            if missing[key] == 0:
                store.save(unit, buffer, sorted(nodes[key]))  # type: ignore[arg-type]
                for node_id in nodes[key]:
                    units_by_node[node_id] = units_by_node.get(node_id, 0) + 1
                del buffers[key], missing[key], nodes[key]
                finished += 1
                report_progress(finished, len(pending), "units")
        if time.monotonic() - last_log > 10:
            logger.info("translated %d/%d units (%d sentences)", finished, len(pending), examples)
            last_log = time.monotonic()
    if buffers or finished != len(pending):
        raise RuntimeError(f"Ray Data returned {finished} of {len(pending)} units complete; "
                           f"incomplete: {sorted(buffers)[:5]}")
    logger.info("units finished per Ray node: %s", units_by_node)
    return examples, units_by_node


def _assemble(corpus: SourceCorpus, units: dict[str, list[Unit]], store: UnitStore, output_dir: Path,
              config: TranslateConfig) -> tuple[list[QualityReport], dict[str, dict]]:
    """Write the output corpus (one atomic directory) from finished units; check quality per language.

    One language at a time is held in memory (its unique translations), whatever the language count.
    """
    reports: list[QualityReport] = []
    files: dict[str, dict] = {}
    quality = config.quality

    def write_language(staging: Path, language: str, unique_texts: list[str]) -> None:
        texts = np.array(unique_texts, dtype=object)
        for dataset in corpus.datasets:
            write_dataset(staging / dataset.name, {(language, col.column): texts[col.ranks] for col in dataset.columns})
            for col in dataset.columns:
                name = f"{dataset.name}/{language}_{col.column}.txt"
                files[name] = {"lines": len(col.ranks), "sha256": sha256_file(staging / name)}

    with atomic_directory(output_dir / "corpus") as staging:
        write_language(staging, corpus.language, corpus.sentences)
        for language, language_units in units.items():
            translations: list[str] = []
            for unit in language_units:
                loaded = store.load(unit)
                if loaded is None:
                    raise RuntimeError(f"unit {store.path(unit)} is not finished; rerun the job to translate it")
                translations.extend(loaded)
            reports.append(check_translations(
                language, corpus.sentences, translations, max_repeats=quality.max_repeats,
                length_ratio_factor=quality.length_ratio_factor, min_source_chars=quality.min_source_chars,
                max_review=quality.max_review_rows_per_language if quality.write_review else 0))
            write_language(staging, language, translations)
    return reports, files


def _summary_tables(summaries: list[LanguageSummary]) -> tuple[str, str]:
    rows = [summary.row() for summary in summaries]
    header = list(rows[0])  # a job has at least one target language
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    markdown = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    markdown += ["| " + " | ".join(str(row[h]) for h in header) + " |" for row in rows]
    return buffer.getvalue(), "\n".join(markdown) + "\n"


def run(config: TranslateConfig) -> TranslationResult:
    """Translate ``config.corpora`` into ``config.languages``; resumable, see the module docstring.

    >>> from modsent.config import load_config
    >>> run(load_config(TranslateConfig, "configs/translate.yaml"))  # doctest: +SKIP
    TranslationResult(output_dir=PosixPath('runs/translate'), ...)
    """
    started = time.perf_counter()
    model_inputs = {"model.path": config.model.path, "model.tokenizer": config.model.tokenizer} if config.model else {}
    check_not_overwriting({"output_dir": config.output_dir}, {"corpora": config.corpora, **model_inputs})
    if not logging.getLogger().handlers:  # called from the CLI: progress and the summary must show
        setup_logging("INFO")
    config, engine, source_language, languages = prepare_engine(config)
    corpus = load_source(config.corpora, source_language)
    logger.info("%d source sentences, %d unique, into %d languages (%s)", corpus.num_occurrences,
                len(corpus.sentences), len(languages), config.backend)
    output_dir = check_output_dir(config.output_dir, "translate output directory",
                                  need_bytes=estimated_output_bytes(corpus, len(languages)))
    hold_directory(output_dir, "modsent translate")  # before the clean-up: another live run's temporaries are its own
    remove_stale_temporaries(output_dir, "corpus")  # a run killed while assembling the corpus left them
    if corpus.blank_occurrences:
        logger.warning("%d source lines are blank: they stay blank in every language (blank_source_lines in the "
                       "summary; modsent corpus validate lists them)", corpus.blank_occurrences)

    store = UnitStore(output_dir / "work" / "units", engine.settings, engine.language_settings)
    units, pending = _plan(corpus, languages, config.shard_size, store)
    total_units = sum(len(v) for v in units.values())
    logger.info("%d units (%d languages × %d shards), %d to translate, %d finished earlier", total_units,
                len(languages), total_units // len(languages), len(pending), total_units - len(pending))
    translate_started = time.perf_counter()
    examples, units_by_node = 0, {}
    if pending:
        with ray_session(config.ray):
            examples, units_by_node = _translate_units(corpus, pending, store, config, engine)
    translate_seconds = time.perf_counter() - translate_started

    # manifest.json vouches for the corpus next to it: drop it while the corpus is replaced.
    (output_dir / "manifest.json").unlink(missing_ok=True)
    reports, files = _assemble(corpus, units, store, output_dir, config)
    reused = {lang: len(lang_units) for lang, lang_units in units.items()}
    for unit in pending:
        reused[unit.language] -= 1
    summaries = [
        LanguageSummary(report.language, resolve(report.language).name, len(corpus.sentences), corpus.num_occurrences,
                        len(units[report.language]), reused[report.language], report.median_length_ratio,
                        dict(report.counts), corpus.blank_occurrences)
        for report in reports
    ]
    csv_text, markdown = _summary_tables(summaries)
    atomic_write_text(output_dir / "translation_summary.csv", csv_text)
    atomic_write_text(output_dir / "translation_summary.md", markdown)
    if config.quality.write_review:
        atomic_write_text(output_dir / "review.jsonl", "".join(
            json.dumps(row, ensure_ascii=False) + "\n" for report in reports for row in report.flagged))
    dump_config(config, output_dir / "config.yaml", header="resolved config of this translate run")
    atomic_write_json(output_dir / "manifest.json", {
        "source_language": source_language, "languages": languages, **engine.record,
        "unique_sentences": len(corpus.sentences),
        "source_occurrences": corpus.num_occurrences, "files": files,
    })
    logger.info("translation summary (%s):\n%s", output_dir / "translation_summary.md", markdown)
    return TranslationResult(
        output_dir=output_dir, corpus_dir=output_dir / "corpus", languages=languages,
        unique_sentences=len(corpus.sentences), source_occurrences=corpus.num_occurrences,
        units_translated=len(pending), units_reused=total_units - len(pending), examples_translated=examples,
        translate_seconds=translate_seconds, total_seconds=time.perf_counter() - started, summaries=summaries,
        units_by_node=units_by_node)
