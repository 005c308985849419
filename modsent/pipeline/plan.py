"""Job planning for ``modsent run``: the config in, one :class:`StageJob` per (language, stage) out.

One module, over 500 lines, because every job's wiring (which model, data and test files each stage
reads, per language) is one graph, read and changed as a whole; the files it names are written by
:mod:`modsent.pipeline.test_pairs`.

Pure: every stage config is built and checked here, before any work starts, and nothing is written
into the run directory (a ``pypi:`` source may be converted into the cache). What a job needs on disk
first (a language's corpus text, the held-out evaluation files) is its ``prepare``, which the executor
runs after the run directory is locked and the inputs are checked.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from modsent.config import ConfigError, deep_merge, from_dict
from modsent.corpus import count_lines, open_corpus, read_lines
from modsent.errors import ModsentError
from modsent.io import atomic_write
from modsent.languages import resolve_many
from modsent.pipeline.config import PipelineConfig
from modsent.pipeline.layout import ALL, SINGLE_C, RunLayout
from modsent.pipeline.steps import STEP_NAMES, step_models
from modsent.pipeline.test_pairs import common_strings, write_first_lines, write_in_domain_split, write_lines
from modsent.pipeline.translated_sts import write_translated_sts
from modsent.sources import resolve_source

__all__ = ["PipelineError", "StageJob", "Planner", "plan_jobs", "modular_steps", "export_language_text",
           "DISTRIBUTED_STAGES", "IN_DOMAIN_PREFIX"]

logger = logging.getLogger(__name__)

DISTRIBUTED_STAGES = ("adapt", "train", "align")
#: The bitext sets of in-domain test pairs (``parallel_text_min_test_pairs``) are named ``indomain-<lang>``.
IN_DOMAIN_PREFIX = "indomain-"


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
    prepare: Callable[[], None] | None = None  # in-process work before the command (text export, held-out files)

    @property
    def name(self) -> str:
        return f"{self.lang}/{self.stage}"


def _stage_config(cls: type, section: dict[str, Any], filled: dict[str, Any], where: str) -> Any:
    """Build a stage config from the pipeline's section for it plus the paths the pipeline fills in."""
    data = deep_merge(section, filled)
    return from_dict(cls, data, source=where)


class Planner:
    """Turns a PipelineConfig into StageJobs: every stage config is built here, before any work starts, and
    nothing is written (work a job needs done first is its ``prepare``, run after the run directory is locked)."""

    def __init__(self, cfg: PipelineConfig, source: str):
        self.cfg, self.source = cfg, source
        self.run = RunLayout(Path(cfg.run_dir))
        try:
            langs = resolve_many([*cfg.languages])
        except ModsentError as err:
            raise ConfigError(f"{source}: languages: {err}") from None
        self.pivot = resolve_many([cfg.pivot])[0].code
        codes = [lang.code for lang in langs]
        self.languages = [self.pivot] + [c for c in codes if c != self.pivot]
        self.targets = [c for c in self.languages if c != self.pivot]
        self._in_domain: dict[str, int] = {}
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
            return self.run.corpus()
        return resolve_source(self.cfg.corpus, self.languages)

    def enabled_any(self, stage: str) -> bool:
        return any(self.enabled(stage, lang) for lang in self.languages)

    def text_for(self, lang: str, stage: str) -> Path:
        """The text ``stage`` (vocab or adapt) trains on for ``lang``: its monolingual text, or the corpus's if opted in."""
        given = self.cfg.monolingual_text.get(lang)
        if given:
            return resolve_source(given)
        if self.cfg.text_source(stage) == "parallel":
            return self.training_pairs(lang) / f"{lang}.txt"
        if self.cfg.text_source(stage) != "corpus":
            raise PipelineError(
                f"{self.source}: {stage} for {lang} needs monolingual text and monolingual_text has none for {lang}. "
                f"The reference trains the tokenizer, FOCUS embeddings and MLM on separate monolingual text; the "
                f"corpus holds (machine-translated) paraphrases, too little text for most new tokens to get a FOCUS "
                f"embedding. Set monolingual_text.{lang}: /path/to/{lang}.txt, or opt into the corpus's {lang} "
                f"sentences with {stage}.text: corpus")
        return self.corpus_text(lang)

    def corpus_text(self, lang: str) -> Path:
        return self.run.text_file(lang)

    def text_label(self, lang: str) -> str:
        """Where vocab/adapt text of ``lang`` comes from, for the run's summary."""
        given = self.cfg.monolingual_text.get(lang)
        if given:
            return f"monolingual ({given})"
        if self.cfg.text_source("vocab") == "parallel":
            return f"parallel text ({self.training_pairs(lang)})"
        return "corpus (vocab.text: corpus)"

    def encoder_of(self, lang: str) -> tuple[Path, list[tuple[str, str]]]:
        """The sentence encoder a language ends up with, and the job that makes it (if any)."""
        if self.enabled("train", lang):
            return self.run.artifact("train", lang), [(lang, "train")]
        return self.train_start(lang)

    def train_start(self, lang: str) -> tuple[Path, list[tuple[str, str]]]:
        """The model a language's contrastive training starts from, and the job that makes it (if any):
        the MLM-adapted model, else the trimmed-vocabulary model (``vocab.method: trim``), else the source."""
        if self.enabled("adapt", lang):
            return self.run.artifact("adapt", lang), [(lang, "adapt")]
        if self.enabled("vocab", lang) and self.cfg.vocab.get("method") == "trim":
            return self.run.trimmed_model(lang), [(lang, "vocab")]
        return self.source_model(lang), []

    def text_prepare(self, lang: str, stage: str) -> Callable[[], None] | None:
        if lang in self.cfg.monolingual_text:
            return None
        if self.cfg.text_source(stage) == "parallel":
            return self.split_prepare([lang])
        corpus, out = self.corpus(), self.corpus_text(lang)
        return lambda: export_language_text(corpus, lang, out)

    def in_domain_test_pairs(self, lang: str) -> int:
        """Pairs set aside from the end of ``lang``'s training split as in-domain test pairs
        (``parallel_text_min_test_pairs``): 0 where its held-out projects give enough, else that many, at most
        a third of its training pairs."""
        wanted = self.cfg.parallel_text_min_test_pairs
        if not wanted or lang == self.pivot:
            return 0
        if lang not in self._in_domain:
            held_out, trained = (self.parallel_pair_dir(split, lang) / f"{lang}.txt" for split in ("test", "train"))
            if (held_out.is_file() and count_lines(held_out) >= wanted) or not trained.is_file():
                self._in_domain[lang] = 0
            else:
                self._in_domain[lang] = min(wanted, count_lines(trained) // 3)
        return self._in_domain[lang]

    def training_pairs(self, lang: str) -> Path:
        """The directory of ``lang``'s training pairs every job reads: ``parallel_text``'s, or the run's copy
        without the in-domain test pairs (written by :meth:`split_prepare`)."""
        if self.in_domain_test_pairs(lang):
            return self.run.parallel_split("train", self.pivot, lang)
        return self.parallel_pair_dir("train", lang)

    def split_prepare(self, langs: list[str]) -> Callable[[], None] | None:
        """Writes the run's training/in-domain split of those of ``langs`` that set pairs aside (None if none do)."""
        writes = [functools.partial(write_in_domain_split, self.parallel_pair_dir("train", lang),
                                    self.run.parallel_split("train", self.pivot, lang),
                                    self.run.parallel_split("in-domain", self.pivot, lang),
                                    self.in_domain_test_pairs(lang))
                  for lang in langs if self.in_domain_test_pairs(lang)]
        return functools.partial(_in_order, writes) if writes else None

    def jobs(self) -> list[StageJob]:
        jobs: list[StageJob] = []
        corpus_deps = [(ALL, "translate")] if self.enabled_any("translate") else []
        if self.enabled_any("translate"):
            targets = [lang for lang in self.targets if self.enabled("translate", lang)]
            jobs.append(StageJob(ALL, "translate", self.translate_config(targets), self.corpus(),
                                 external={"corpus": resolve_source(self.cfg.corpus)}))
        for lang in self.languages:
            jobs += self._language_jobs(lang, corpus_deps)
        if self.trains_single_c():
            jobs.append(self._single_c_job(jobs, corpus_deps))
        if "evaluate" in self.cfg.stages:
            jobs.append(self.evaluate_job())
        return jobs

    def translate_config(self, targets: list[str]) -> Any:
        """The translate stage's config for ``targets``: the corpus's, or (same engine) an evaluation set's."""
        from modsent.translate.config import TranslateConfig

        return _stage_config(TranslateConfig, self.cfg.translate, {
            "corpora": [str(resolve_source(self.cfg.corpus))], "languages": targets,
            "output_dir": str(self.run.output_dir("translate", ALL)), "source_language": self.pivot},
            self.where("translate"))

    def _language_jobs(self, lang: str, corpus_deps: list[tuple[str, str]]) -> list[StageJob]:
        from modsent.adapt.config import AdaptConfig
        from modsent.align.config import AlignConfig
        from modsent.train.config import ContrastiveConfig
        from modsent.vocab.config import VocabConfig

        jobs = []
        run = self.run
        text_deps = [] if lang in self.cfg.monolingual_text else corpus_deps
        if self.enabled("vocab", lang):
            section = self.cfg.stage_section("vocab")
            if section.get("text") == "parallel":  # plain lines to the vocab stage
                section["text"] = "monolingual"
            config = _stage_config(VocabConfig, section, {
                "model": str(self.source_model(lang)), "text_files": [str(self.text_for(lang, "vocab"))],
                "languages": [lang], "output_dir": str(run.output_dir("vocab", lang))}, self.where("vocab"))
            jobs.append(StageJob(lang, "vocab", config, run.artifact("vocab", lang), deps=list(text_deps),
                                 external={"source_model": self.source_model(lang)},
                                 prepare=self.text_prepare(lang, "vocab")))
        if self.enabled("adapt", lang):
            vocab = self.enabled("vocab", lang)
            filled = {"model": str(self.source_model(lang)), "train_files": [str(self.text_for(lang, "adapt"))],
                      "output_dir": str(run.output_dir("adapt", lang))}
            if vocab:
                filled["vocab_dir"] = str(run.artifact("vocab", lang))
            config = _stage_config(AdaptConfig, self.cfg.stage_section("adapt"), filled, self.where("adapt"))
            jobs.append(StageJob(lang, "adapt", config, run.artifact("adapt", lang),
                                 deps=list(text_deps) + ([(lang, "vocab")] if vocab else []),
                                 external={"source_model": self.source_model(lang)},
                                 prepare=self.text_prepare(lang, "adapt")))
        if self.enabled("train", lang):
            start, start_deps = self.train_start(lang)
            filled: dict[str, Any] = {
                "model": str(start), "corpus": str(self.corpus()), "languages": [lang], "train_type": "mono",
                "output_dir": str(run.output_dir("train", lang))}
            external = {} if start_deps else {"source_model": start}
            if lang == self.pivot and self.bridges:
                # The English paraphrases plus the bridges' translation pairs, cross-lingual as Single_c
                # trains: the pivot learns the parallel text's domain, which English paraphrase data
                # rarely covers, while every target keeps its own encoder and adapter.
                filled.update(languages=[lang, *self.bridges], train_type="cross", partial_datasets=True)
                filled.update(self.parallel_fields(self.bridges))
                external["parallel"] = self.parallel_split_dir("train")
            config = _stage_config(ContrastiveConfig, self.cfg.train, filled, self.where("train"))
            jobs.append(StageJob(lang, "train", config, run.artifact("train", lang),
                                 deps=list(corpus_deps) + start_deps, external=external,
                                 prepare=self.split_prepare(self.bridges) if lang == self.pivot else None))
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
                data["parallel"] = [str(self.training_pairs(lang))]
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
                "output_dir": str(run.output_dir("align", lang)), "data": data,
                "pivot_cache": str(run.pivot_cache())}, self.where("align"))
            deps = pivot_deps + target_deps + (list(corpus_deps) if self.align_uses_corpus() else [])
            jobs.append(StageJob(lang, "align", config, run.artifact("align", lang), deps=deps,
                                 external=external, prepare=self.split_prepare([lang])))
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
        langs = [lang for lang in langs if self.parallel_pair_dir("train", lang).is_dir()]
        return {"parallel": [str(self.training_pairs(lang)) for lang in langs],
                "max_parallel_pairs": self.cfg.parallel_text_max_pairs}

    def trains_single_c(self) -> bool:
        return self.cfg.single_c is not None and "train" in self.cfg.stages

    def _single_c_job(self, jobs: list[StageJob], corpus_deps: list[tuple[str, str]]) -> StageJob:
        """The multilingual baseline: the source model trained on everything the modular model trains on."""
        from modsent.train.config import ContrastiveConfig

        section = deep_merge(self.cfg.train, dict(self.cfg.single_c or {}))
        source = resolve_source(self.cfg.source_model)
        filled: dict[str, Any] = {
            "model": str(source), "corpus": str(self.corpus()),
            "languages": list(self.languages), "train_type": "cross", "partial_datasets": True,
            "output_dir": str(self.run.output_dir("train", SINGLE_C))}
        external = {"source_model": source}
        if self.cfg.parallel_text:
            filled.update(self.parallel_fields(self.targets))
            external["parallel"] = self.parallel_split_dir("train")
        if (self.cfg.single_c or {}).get("trainer", {}).get("max_steps") is None:
            counted = [job for job in jobs if job.stage in ("train", "align")]
            unknown = [job.name for job in counted if job.config.trainer.max_steps is None
                       and any(dep == (ALL, "translate") for dep in job.deps)]
            if unknown:
                raise PipelineError(
                    f"{self.source}: single_c takes as many steps as the modular model's training and alignment, and "
                    f"{', '.join(unknown)} count theirs in epochs of the corpus that translate writes during the run; "
                    "set train.trainer.max_steps and align.trainer.max_steps, or single_c.trainer.max_steps")
            filled["trainer"] = {"max_steps": sum(self._steps_before_split(job) for job in counted)}
        config = _stage_config(ContrastiveConfig, section, filled, self.where("single_c"))
        return StageJob(ALL, "train", config, self.run.artifact("train", SINGLE_C), deps=list(corpus_deps),
                        external=external, prepare=self.split_prepare(self.targets) if self.cfg.parallel_text else None)

    def _steps_before_split(self, job: StageJob) -> int:
        """:func:`modular_steps`, counting an align job whose training pairs the run splits (not written yet)
        on the same first lines of ``parallel_text``'s own directory."""
        kept_out = self.in_domain_test_pairs(job.lang) if job.stage == "align" else 0
        if kept_out:
            source = self.parallel_pair_dir("train", job.lang)
            kept = count_lines(source / f"{job.lang}.txt") - kept_out
            data = dataclasses.replace(job.config.data, parallel=[str(source)],
                                       max_parallel_pairs=min(kept, job.config.data.max_parallel_pairs or kept))
            job = dataclasses.replace(job, config=dataclasses.replace(job.config, data=data))
        return modular_steps(job)

    def modular_layout(self) -> dict[str, tuple[str, str | None]]:
        layout = {}
        for lang in self.languages:
            encoder, _ = self.encoder_of(lang)
            adapter = self.run.artifact("align", lang) if self.enabled("align", lang) else None
            layout[lang] = (str(encoder), str(adapter) if adapter else None)
        return layout

    def evaluate_job(self) -> StageJob:
        from modsent.evaluate.config import EvaluateConfig

        models = {"modular": str(self.run.modular_model())}
        models.update({name: str(resolve_source(path)) for name, path in self.cfg.baselines.items()})
        if self.trains_single_c():
            models[SINGLE_C] = str(self.run.artifact("train", SINGLE_C))
        section = _resolve_references(self.cfg.stage_section("evaluate"), self.languages)
        writes: list[Callable[[], None]] = []  # the held-out files, written by the job's preparation
        if self.cfg.parallel_text and "bitext" not in section:
            section["bitext"] = self._held_out_bitext(writes)
        if self.cfg.evaluate.get("translated_sts"):
            section["sts"] = [*section.get("sts", []), self._translated_sts(writes)]
        step_deps: list[tuple[str, str]] = []
        if self.cfg.evaluate.get("step_ablations"):
            steps, step_deps = step_models(self, writes)
            models.update(steps)
        config = _stage_config(EvaluateConfig, section, {
            # On disk beside the reports: a rerun after a kill, and views of one model, reuse embeddings.
            "cache_dir": section.get("cache_dir") or str(self.run.embeddings()),
            "output_dir": str(self.run.reports()), "models": models,
            "languages": section.get("languages") or self.languages}, self.where("evaluate"))
        deps = [(lang, stage) for lang in self.languages for stage in ("train", "adapt", "align")
                if self.enabled(stage, lang)] + ([(ALL, "train")] if self.trains_single_c() else [])
        deps += [dep for dep in dict.fromkeys(step_deps) if dep not in deps]
        external = {name: Path(path) for name, path in models.items()
                    if name not in ("modular", SINGLE_C, *STEP_NAMES.values())}
        return StageJob(ALL, "evaluate", config, self.run.reports(), deps=deps, external=external,
                        prepare=functools.partial(_in_order, writes) if writes else None)

    def _translated_sts(self, writes: list[Callable[[], None]]) -> dict[str, Any]:
        """The STS set of ``evaluate.translated_sts``: its English file machine-translated into every target by the
        translate section's engine (written by what this adds to ``writes``), each language alone and English
        against each target; the name says machine-translated and by which engine."""
        source = resolve_source(self.cfg.evaluate["translated_sts"])
        config = self.translate_config(list(self.targets))
        files = {lang: self.run.translated_sts() / f"{lang}.jsonl" for lang in self.languages}
        writes.append(functools.partial(write_translated_sts, source, config, files))
        return {"name": f"{source.stem}-mt-{config.backend}", "format": "mteb", "recombine": True,
                "files": {lang: str(path) for lang, path in files.items()},
                "pairs": [*self.languages, *(f"{self.pivot}-{lang}" for lang in self.targets)]}

    def _held_out_bitext(self, writes: list[Callable[[], None]]) -> list[dict[str, Any]]:
        """Bitext retrieval on the held-out split of the parallel text, one set per target language; the files
        cut to ``max_test_pairs()`` lines are named here and written by what this adds to ``writes``."""
        sets = []
        count = self.cfg.max_test_pairs()
        for lang in self.targets:
            pair_dir = self.parallel_pair_dir("test", lang)
            if pair_dir.exists():
                files = {code: pair_dir / f"{code}.txt" for code in (self.pivot, lang)}
                if count:
                    cut = {code: self.run.held_out(lang) / path.name for code, path in files.items()}
                    writes.append(functools.partial(write_first_lines, files, cut, count))
                    files = cut
                sets.append({"name": f"heldout-{lang}", "files": {code: str(path) for code, path in files.items()}})
            if self.in_domain_test_pairs(lang):
                split = self.run.parallel_split("in-domain", self.pivot, lang)
                sets.append({"name": f"{IN_DOMAIN_PREFIX}{lang}",
                             "files": {code: str(split / f"{code}.txt") for code in (self.pivot, lang)}})
                writes.append(self.split_prepare([lang]))
        if sum(not s["name"].startswith(IN_DOMAIN_PREFIX) for s in sets) > 1:
            common = self._common_held_out(writes)
            if common:
                sets.append({"name": "heldout-all", "files": common})
        return sets

    def _common_held_out(self, writes: list[Callable[[], None]]) -> dict[str, str]:
        """The held-out English strings of the language × language matrix, line-aligned across its languages
        (:func:`_common_strings`); read now, written by what this adds to ``writes``.

        Retrieval among them fills the matrix (target ↔ target too).
        """
        by_lang: dict[str, dict[str, str]] = {}
        for lang in self.targets:
            pair_dir = self.parallel_pair_dir("test", lang)
            if pair_dir.exists():
                english = read_lines(pair_dir / f"{self.pivot}.txt")
                by_lang[lang] = dict(zip(english, read_lines(pair_dir / f"{lang}.txt")))
        common = common_strings(by_lang)[:self.cfg.max_test_pairs()]  # None: all
        if not common:
            logger.warning("no held-out English string is translated into all %d languages: no language x "
                           "language matrix (the per-language sets are evaluated)", len(by_lang))
            return {}
        by_lang = {lang: table for lang, table in by_lang.items() if all(en in table for en in common)}
        if len(by_lang) < len(self.targets):
            logger.info("language x language matrix: %d held-out strings common to %d of %d languages (%s left out)",
                        len(common), len(by_lang), len(self.targets),
                        ", ".join(lang for lang in self.targets if lang not in by_lang))
        texts = {self.pivot: common, **{lang: [table[en] for en in common] for lang, table in by_lang.items()}}
        files = {lang: self.run.held_out_all() / f"{lang}.txt" for lang in texts}
        writes.append(functools.partial(write_lines, files, texts))
        return {lang: str(path) for lang, path in files.items()}


def _in_order(steps: list[Callable[[], None]]) -> None:
    for step in steps:
        step()


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


def plan_jobs(cfg: PipelineConfig, source: str = "pipeline config") -> tuple[Planner, list[StageJob]]:
    planner = Planner(cfg, source)
    return planner, planner.jobs()
