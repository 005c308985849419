"""The checks of ``modsent run`` before any work: inputs exist and are never outputs, a selected job's
upstream work is scheduled or done, the corpus holds every language that trains on it, and the
``--stages`` / ``--languages`` selections name real stages and the run's languages."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from modsent.config import did_you_mean
from modsent.corpus import CorpusError, open_corpus
from modsent.languages import resolve_many
from modsent.output_checks import check_not_overwriting
from modsent.pipeline.config import STAGES, PipelineConfig
from modsent.pipeline.manifest import Manifest
from modsent.pipeline.plan import Planner, PipelineError, StageJob

__all__ = ["check_run_inputs", "check_inputs", "check_corpus_languages", "select_stages", "select_languages"]

logger = logging.getLogger(__name__)


def check_run_inputs(cfg: PipelineConfig) -> None:
    """No input the config names (models, corpora, texts, the stage sections' files) lies inside the run directory."""
    check_not_overwriting({"run_dir": cfg.run_dir}, {
        "source_model": cfg.source_model, "corpus": cfg.corpus, "parallel_text": cfg.parallel_text,
        **{f"models.{code}": path for code, path in cfg.models.items()},
        **{f"monolingual_text.{code}": path for code, path in cfg.monolingual_text.items()},
        **{f"baselines.{name}": path for name, path in cfg.baselines.items()},
        **_section_inputs(cfg)})


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


def check_inputs(planner: Planner, jobs: list[StageJob], selected: set[str], manifest: Manifest) -> None:
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
        check_corpus_languages(planner)


def check_corpus_languages(planner: Planner) -> None:
    """Without translation, every language that trains on the corpus must already be in it."""
    needs: dict[str, list[str]] = {}  # language -> the stages that read it from the corpus
    for lang in planner.languages:
        readers = [stage for stage in ("vocab", "adapt") if planner.enabled(stage, lang)
                   and lang not in planner.cfg.monolingual_text and planner.cfg.text_source(stage) == "corpus"]
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
        for language in resolve_many([name]):  # a named list (@paper22) gives several
            if language.code not in run_languages:
                raise PipelineError(
                    f"--languages {name}: this run has no {language.code} ({language.name})"
                    f"{did_you_mean(language.code, run_languages, 0.4)} (the run's languages: {', '.join(run_languages)})")
            codes.append(language.code)
    return codes
