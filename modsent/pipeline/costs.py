"""``modsent plan``: what a run will cost before it is spent.

The estimate multiplies work by measured rates. Work comes from the corpus (bytes → tokens, read
from file sizes, so 200 languages plan in milliseconds) and the model (parameter count from its
``config.json``); rates come from ``modsent/data/costs.yaml``, which records the throughput the
benchmarks measured (``bench/*.py``), with its provenance. Training stages cost
``flops_per_token × params × tokens`` at a device's effective FLOP rate; translation and the
tokenizer/FOCUS stage cost tokens at their measured per-device rates.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Callable

import yaml

from modsent.config import load_yaml
from modsent.corpus import count_lines
from modsent.errors import ModsentError

__all__ = ["StageEstimate", "Plan", "TrainingWork", "TextSize", "contrastive_work", "load_costs", "model_parameters", "parameter_split", "corpus_tokens",
           "estimate_plan", "format_plan", "plan_run", "PlanError"]

class PlanError(ModsentError):
    pass


# The costs.yaml rate each translate backend is priced at: NLLB decoding and Apertium's rule-based
# pipeline differ by an order of magnitude on the same core.
TRANSLATE_RATES = {"ctranslate2": "translate_tokens_per_s", "apertium": "apertium_tokens_per_s"}


def load_costs(path: str | Path | None = None) -> dict:
    if path:
        return load_yaml(path)  # the user's file: a rate given twice is refused, as in a stage config
    return yaml.safe_load(resources.files("modsent.data").joinpath("costs.yaml").read_text())


def parameter_split(model_dir: str | Path) -> tuple[int, int]:
    """(parameters of the layers, parameters of the embedding tables) of a BERT-style encoder, from its
    ``config.json`` (no weights are read). Compute scales with the first: a lookup costs no FLOPs, and
    e5-small's 250k-token vocabulary is 80% of its parameters."""
    config_path = Path(model_dir) / "config.json"
    if not config_path.is_file():
        raise PlanError(f"{config_path} does not exist: point source_model at a transformers model directory")
    cfg = json.loads(config_path.read_text())
    hidden = cfg.get("hidden_size") or cfg.get("d_model")
    layers = cfg.get("num_hidden_layers") or cfg.get("encoder_layers")
    inter = cfg.get("intermediate_size") or cfg.get("encoder_ffn_dim") or 4 * hidden
    vocab = cfg.get("vocab_size", 0)
    positions = cfg.get("max_position_embeddings", 512)
    if not hidden or not layers:
        raise PlanError(f"{config_path}: no hidden_size/num_hidden_layers; cannot size the model")
    per_layer = 4 * hidden * hidden + 2 * hidden * inter + 9 * hidden + inter
    return int(layers * per_layer), int((vocab + positions + 2) * hidden)


def model_parameters(model_dir: str | Path) -> int:
    """Parameter count of a BERT-style encoder from its ``config.json`` (no weights are read)."""
    return sum(parameter_split(model_dir))


def corpus_tokens(paths: list[Path], bytes_per_token: float) -> int:
    """Approximate tokens in text files (or directories of them) from their sizes."""
    total = 0
    for path in paths:
        path = Path(path)
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        total += sum(f.stat().st_size for f in files if f.suffix in (".txt", ".jsonl", ".parquet"))
    return int(total / bytes_per_token)


@dataclass
class TrainingWork:
    """What one contrastive job (train, align, Single_c) computes: the tokens it encodes, its optimiser steps,
    and the parameters each step updates."""

    tokens: float
    steps: int
    trainable_params: int


@dataclass
class StageEstimate:
    stage: str
    jobs: int
    device_hours: float
    wall_hours: float


@dataclass
class Plan:
    languages: list[str]
    stages: list[StageEstimate]
    devices: int
    device_kind: str

    @property
    def device_hours(self) -> float:
        return sum(s.device_hours for s in self.stages)

    @property
    def wall_hours(self) -> float:
        """Translation, then the per-language stages beside Single_c, then evaluation.

        Single_c's one job needs no other job's output, so it shares the devices with the per-language stages:
        that middle part takes the longest of their own chain (each stage's wall time, one after another),
        Single_c alone, and all their device-hours spread over every device.
        """
        by_stage = {s.stage: s for s in self.stages}
        ends = sum(by_stage[s].wall_hours for s in ("translate", "evaluate") if s in by_stage)
        middle = [s for s in self.stages if s.stage not in ("translate", "evaluate", "single_c")]
        chain = sum(s.wall_hours for s in middle)
        single_c = by_stage.get("single_c")
        if single_c is None:
            return ends + chain
        shared = (sum(s.device_hours for s in middle) + single_c.device_hours) / self.devices
        return ends + max(chain, single_c.wall_hours, shared)


def estimate_plan(languages: list[str], pivot: str, stages: list[str], source_params: int,
                  english_tokens: int, costs: dict, devices: int, device_kind: str, ranks_per_job: int,
                  epochs: dict[str, float] | None = None,
                  enabled: Callable[[str, str], bool] | None = None,
                  align_tokens: dict[str, int] | None = None, align_uses_corpus: bool = True,
                  single_c_tokens: int | None = None, pivot_extra_tokens: int = 0,
                  translate_backend: str = "ctranslate2", evaluate_encoders: int = 1,
                  translated_sts: bool = False, adapt_tokens: dict[str, float] | None = None,
                  text_tokens: dict[str, float] | None = None,
                  training_work: dict[tuple[str, str], TrainingWork] | None = None,
                  vocab_method: str = "focus") -> Plan:
    """Device-hours and wall time per stage for ``languages`` on ``devices`` devices.

    ``source_params``: the parameters each token is multiplied through (:func:`parameter_split`).
    Each per-language job uses ``ranks_per_job`` devices; stages run one after another and jobs
    within a stage are packed (wall = max(total / devices, one job's own time)). ``enabled(stage,
    lang)`` narrows which languages run a stage (default: all; never translate/align the pivot).
    ``align_tokens``: tokens each language's alignment reads besides ``english_tokens`` (its
    parallel text, both sides); with ``align_uses_corpus: false`` alignment reads those alone.
    ``single_c_tokens``: tokens the multilingual Single_c baseline trains on (one job, its own row).
    ``pivot_extra_tokens``: tokens the pivot's training reads besides ``english_tokens`` (the
    parallel text of its ``pivot_bridge_languages``).
    ``translate_backend``: which engine's rate prices translation (``TRANSLATE_RATES``).
    ``evaluate_encoders``: how many systems evaluation encodes every language with (baselines, Single_c,
    the modular model and its views); ``translated_sts``: evaluation also encodes the machine-translated
    STS set in every language (``evaluate.translated_sts``). ``adapt_tokens``: tokens each language's MLM
    job reads (:func:`_adapt_tokens`; default ``english_tokens``). ``text_tokens``: each language's
    monolingual text, which its vocab job trains the tokenizer and fastText on (default ``english_tokens``).
    ``training_work``: ``(stage, lang)`` (Single_c: ``("single_c", "all")``) -> what that train or align job
    computes (:func:`contrastive_work`); such a job costs its start (``train_s_per_job``), its tokens' FLOPs and
    its optimiser's steps (``optimizer_s_per_param_step`` × trainable parameters), in place of the token counts.
    ``vocab_method``: the vocab stage's ``method`` (``trim`` reads its text at ``vocab_trim_tokens_per_s``).
    """
    runs = enabled or (lambda stage, lang: not (stage in ("translate", "align") and lang == pivot))
    if devices <= 0:
        raise PlanError("a plan needs at least one device (--gpus N or a hostfile)")
    if device_kind not in costs["devices"]:
        raise PlanError(f"no measured rates for device '{device_kind}' in costs (known: {', '.join(costs['devices'])})")
    rates = costs["devices"][device_kind]
    if translate_backend not in TRANSLATE_RATES:
        raise PlanError(f"translate.backend '{translate_backend}' has no rate (known: {', '.join(TRANSLATE_RATES)})")
    epochs = {"adapt": 1.0, "train": 1.0, "align": 1.0, **(epochs or {})}
    plans = []
    for stage in stages:
        jobs = sum(1 for lang in languages if runs(stage, lang))
        if stage == "translate":
            seconds_per_job = english_tokens / _rate(rates, TRANSLATE_RATES[translate_backend], device_kind)
            # Translation is one Ray job spread over every device: no per-job floor.
            device_s = jobs * seconds_per_job
            wall_s = device_s / devices
        elif stage == "evaluate":
            jobs = 1
            per_encoder = _rate(rates, "evaluate_s_per_language_encoder", device_kind) + (
                _rate(rates, "translated_sts_s_per_language_encoder", device_kind) if translated_sts else 0.0)
            device_s = len(languages) * evaluate_encoders * per_encoder
            wall_s = device_s / min(devices, len(languages))
        elif stage == "vocab":
            # Trimming only tokenizes the text; a new vocabulary trains a tokenizer and fastText on it.
            text_rate = "vocab_trim_tokens_per_s" if vocab_method == "trim" else "vocab_tokens_per_s"
            start_s, tokens_per_s = (_rate(rates, key, device_kind) for key in ("vocab_s_per_job", text_rate))
            job_seconds = [start_s + (text_tokens or {}).get(lang, english_tokens) / tokens_per_s
                           for lang in languages if runs(stage, lang)]
            device_s = sum(job_seconds)
            wall_s = max(device_s / devices, max(job_seconds)) if jobs else 0.0
        else:
            def stage_tokens(lang: str) -> float:
                if stage == "adapt" and adapt_tokens and lang in adapt_tokens:
                    return adapt_tokens[lang]
                if stage != "align":
                    return english_tokens + (pivot_extra_tokens if lang == pivot else 0)
                return english_tokens * align_uses_corpus + (align_tokens or {}).get(lang, 0)

            def job_seconds_of(lang: str) -> float:
                work = (training_work or {}).get((stage, lang))
                if work is not None:
                    return _work_seconds(costs, rates, stage, source_params, work, ranks_per_job, device_kind)
                return _training_seconds(costs, rates, stage, source_params, stage_tokens(lang) * epochs[stage],
                                         ranks_per_job)

            job_seconds = [job_seconds_of(lang) for lang in languages if runs(stage, lang)]
            device_s = sum(job_seconds) * ranks_per_job
            wall_s = max(device_s / devices, max(job_seconds)) if jobs else 0.0
        plans.append(StageEstimate(stage, jobs, device_s / 3600, wall_s / 3600))
    single_c_work = (training_work or {}).get(("single_c", "all"))
    if single_c_work is not None:
        seconds = _work_seconds(costs, rates, "train", source_params, single_c_work, ranks_per_job, device_kind)
        plans.append(StageEstimate("single_c", 1, seconds * ranks_per_job / 3600, seconds / 3600))
    elif single_c_tokens:
        seconds = _training_seconds(costs, rates, "train", source_params, single_c_tokens, ranks_per_job)
        plans.append(StageEstimate("single_c", 1, seconds * ranks_per_job / 3600, seconds / 3600))
    return Plan(list(languages), plans, devices, device_kind)


def _rate(rates: dict, key: str, device_kind: str) -> float:
    if key not in rates:
        raise PlanError(f"costs: device '{device_kind}' has no '{key}' rate; add it to the costs file (modsent/data/costs.yaml shows each rate's unit)")
    return rates[key]


def _training_seconds(costs: dict, rates: dict, stage: str, params: int, tokens: float, ranks: int) -> float:
    return costs["flops_per_token"][stage] * params * tokens / (rates["effective_flops"] * ranks)


def _work_seconds(costs: dict, rates: dict, stage: str, params: int, work: TrainingWork, ranks: int,
                  device_kind: str) -> float:
    return (_rate(rates, "train_s_per_job", device_kind)
            + _training_seconds(costs, rates, stage, params, work.tokens, ranks)
            + work.steps * work.trainable_params * _rate(rates, "optimizer_s_per_param_step", device_kind) / ranks)


@dataclass
class TextSize:
    """A training input, from file sizes and line counts: its tokens, sentences and rows (pairs)."""

    tokens: float
    sentences: int
    rows: int

    def __add__(self, other: "TextSize") -> "TextSize":
        return TextSize(self.tokens + other.tokens, self.sentences + other.sentences, self.rows + other.rows)


def contrastive_work(trainer: dict, inputs: list[TextSize], trainable_params: int, overhead_tokens: float,
                     steps: int | None = None) -> TrainingWork:
    """A contrastive job's work: ``steps`` (else ``trainer.max_steps``, else ``epochs`` × rows // batch) of
    ``global_batch_size`` pairs, each sentence as long as its inputs' average plus ``overhead_tokens`` (the
    special tokens, a prompt, the padding of a length-grouped batch: UI strings are a few tokens long, so
    these are as many again)."""
    from modsent.train.trainer_config import TrainerConfig

    total = sum(inputs, TextSize(0.0, 0, 0))
    batch = trainer.get("global_batch_size", TrainerConfig.global_batch_size)
    if steps is None:
        steps = trainer.get("max_steps") or int(trainer.get("epochs", TrainerConfig.epochs) * (total.rows // batch))
    per_sentence = total.tokens / max(1, total.sentences) + overhead_tokens
    return TrainingWork(steps * batch * 2 * per_sentence, steps, trainable_params)


def format_plan(plan: Plan) -> str:
    """The job matrix (languages × stages) summarised per stage, as a Markdown table."""
    lines = [f"{len(plan.languages)} languages on {plan.devices} × {plan.device_kind}", "",
             "| stage | jobs | device-hours | wall hours |", "|---|---:|---:|---:|"]
    for s in plan.stages:
        lines.append(f"| {s.stage} | {s.jobs} | {s.device_hours:.2f} | {s.wall_hours:.2f} |")
    lines.append(f"| **total** | {sum(s.jobs for s in plan.stages)} | {plan.device_hours:.2f} | {plan.wall_hours:.2f} |")
    if plan.wall_hours > 24:
        lines.append(f"\n≈ {math.ceil(plan.wall_hours / 24)} days of wall time")
    return "\n".join(lines)


def plan_run(cfg, gpus: int | None = None, nodes: int = 1, device_kind: str | None = None,
             costs_file: str | Path | None = None) -> str:
    """``modsent plan``: the job matrix and cost estimate of a pipeline config, touching no data but sizes.

    ``gpus`` is the total over ``nodes``; without it the plan is for this machine (CPU ranks).
    """
    from modsent.languages import resolve_many
    from modsent.sources import resolve_source

    languages = [lang.code for lang in resolve_many(cfg.languages)]
    pivot = resolve_many([cfg.pivot])[0].code
    if pivot not in languages:
        languages.insert(0, pivot)
    costs = load_costs(costs_file)
    kind = device_kind or (cfg.resources.device_kind if cfg.resources.device_kind != "auto" else
                           ("h100" if gpus else "cpu"))
    devices = gpus or cfg.resources.gpus or cfg.resources.ranks_per_job * cfg.resources.parallel_jobs
    job_devices = cfg.resources.ranks_per_job
    if kind == "cpu" and not (gpus or cfg.resources.gpus):
        # CPU rates are per core, and `modsent run` gives each of its parallel jobs an equal share of them.
        devices = os.cpu_count() or 1
        job_devices = max(1, devices // cfg.resources.parallel_jobs)
    if nodes < 1 or devices % nodes:
        raise PlanError(f"--gpus {devices} does not split evenly over --nodes {nodes}")
    source = cfg.models.get(pivot, cfg.source_model)
    flop_params, embedding_params = parameter_split(resolve_source(source))
    params = flop_params + embedding_params
    corpus = resolve_source(cfg.corpus, languages)
    tokens = corpus_tokens(_pivot_files(corpus, pivot), costs.get("bytes_per_token", 4.0))
    stages = list(cfg.stages)

    def enabled(stage: str, lang: str) -> bool:
        return cfg.stage_enabled(stage, lang, pivot)

    parallel: dict[str, TextSize] = {}  # each language's training pairs, as far as jobs read them
    if cfg.parallel_text:
        root = resolve_source(cfg.parallel_text, languages) / "train"
        parallel = {lang: _parallel_size(root / f"{pivot}-{lang}", cfg.parallel_text_max_pairs,
                                         costs.get("bytes_per_token", 4.0))
                    for lang in languages if (root / f"{pivot}-{lang}").is_dir()}
    align_tokens = {lang: int(size.tokens) for lang, size in parallel.items()}
    bridges = [lang.code for lang in resolve_many(cfg.pivot_bridge_languages)]
    pivot_extra = sum(align_tokens.get(lang, 0) for lang in bridges)  # the config ensures the pivot trains
    single_c = None
    if cfg.single_c is not None and "train" in stages:  # what the modular model's train and align jobs read
        single_c = pivot_extra + sum(tokens for lang in languages if enabled("train", lang)) + sum(
            tokens * cfg.align_uses_corpus() + align_tokens.get(lang, 0) for lang in languages if enabled("align", lang))
    text_tokens = {lang: _text_tokens(cfg, lang, tokens, costs.get("bytes_per_token", 4.0)) for lang in languages
                   if any(stage in stages and enabled(stage, lang) for stage in ("vocab", "adapt"))}
    work = _training_work(cfg, languages, pivot, enabled, costs, params, parallel, corpus_size=_corpus_size(
        _pivot_files(corpus, pivot), tokens)) if "train_s_per_job" in costs["devices"].get(kind, {}) else None
    plan = estimate_plan(languages, pivot, stages, flop_params, tokens, costs, devices, kind, job_devices,
                         enabled=enabled, align_tokens=align_tokens, align_uses_corpus=cfg.align_uses_corpus(),
                         single_c_tokens=single_c, pivot_extra_tokens=pivot_extra,
                         translate_backend=cfg.translate.get("backend", "ctranslate2"),
                         evaluate_encoders=_evaluated_encoders(cfg, stages),
                         translated_sts=bool(cfg.evaluate.get("translated_sts")),
                         adapt_tokens={lang: _adapt_tokens(cfg, lang, text_tokens[lang])
                                       for lang in languages if "adapt" in stages and enabled("adapt", lang)},
                         text_tokens=text_tokens, training_work=work, vocab_method=cfg.vocab.get("method", "focus"))
    header = (f"source model: {params / 1e6:.1f}M parameters ({flop_params / 1e6:.1f}M outside the embeddings); corpus: ~{tokens / 1e6:.2f}M English tokens; "
              f"{nodes} node(s) × {devices // nodes} device(s)")
    matrix = _job_matrix(languages, stages, enabled) if len(languages) <= 30 else (
        f"job matrix: {len(languages)} languages × {len(stages)} stages (first: {', '.join(languages[:5])} …)")
    return "\n".join([header, "", matrix, "", format_plan(plan)])


def _corpus_size(files: list[Path], tokens: int) -> TextSize:
    """The English corpus's size: rows are the lines of its first-column files (``<lang>_1.txt``), sentences
    every line; other formats are taken as pairs of 12-token sentences."""
    texts = [f for path in files for f in ([path] if path.is_file() else sorted(path.rglob("*.txt")))]
    if not texts:
        return TextSize(tokens, int(tokens // 12), int(tokens // 24))
    lines = {f: count_lines(f) for f in texts}
    rows = sum(n for f, n in lines.items() if f.stem.endswith("_1")) or sum(lines.values()) // 2
    return TextSize(tokens, sum(lines.values()), rows)


def _parallel_size(pair_dir: Path, max_pairs: int | None, bytes_per_token: float) -> TextSize:
    """Both sides of a parallel-text directory's first ``max_pairs`` lines."""
    files = sorted(pair_dir.glob("*_*.txt"))
    lines = count_lines(files[0])
    used = min(lines, max_pairs) if max_pairs else lines
    total = sum(f.stat().st_size for f in files) * used / max(1, lines)
    return TextSize(total / bytes_per_token, 2 * used, used)


def _training_work(cfg, languages: list[str], pivot: str, enabled: Callable[[str, str], bool], costs: dict,
                   params: int, parallel: dict[str, TextSize],
                   corpus_size: TextSize) -> dict[tuple[str, str], TrainingWork]:
    """Each train and align job's work, and Single_c's (as many steps as those together, unless set);
    ``parallel``: each language's training pairs (:func:`_parallel_size`)."""
    from modsent.config import deep_merge
    from modsent.languages import resolve_many

    overhead = costs.get("tokens_per_sentence_overhead", 0.0)
    bridges = [lang.code for lang in resolve_many(cfg.pivot_bridge_languages)]
    train = cfg.train.get("trainer", {})
    align = cfg.align.get("trainer", {})
    work: dict[tuple[str, str], TrainingWork] = {}
    for lang in languages:
        if enabled("train", lang):
            inputs = [corpus_size] + [parallel[b] for b in bridges if lang == pivot and b in parallel]
            work[("train", lang)] = contrastive_work(train, inputs, params, overhead)
        if enabled("align", lang):
            inputs = ([corpus_size] if cfg.align_uses_corpus() else []) + ([parallel[lang]] if lang in parallel else [])
            work[("align", lang)] = contrastive_work(align, inputs, 0, overhead)  # an adapter's few parameters
    if cfg.single_c is not None and "train" in cfg.stages:
        section = deep_merge(train, (cfg.single_c or {}).get("trainer", {}))
        steps = (cfg.single_c or {}).get("trainer", {}).get("max_steps") or sum(w.steps for w in work.values())
        inputs = [corpus_size] + [parallel[lang] for lang in languages if lang in parallel]
        work[("single_c", "all")] = contrastive_work(section, inputs, params, overhead, steps=steps)
    return work


def _text_tokens(cfg, lang: str, english_tokens: int, bytes_per_token: float) -> float:
    """Tokens of the language's ``monolingual_text`` (else its side of the parallel text's training pairs where
    ``text: parallel``, else the English corpus's), from its size."""
    from modsent.languages import resolve_many
    from modsent.sources import resolve_source

    text = cfg.monolingual_text.get(lang)
    if text:
        return corpus_tokens([resolve_source(text)], bytes_per_token)
    if "parallel" in (cfg.text_source("vocab"), cfg.text_source("adapt")):
        pivot = resolve_many([cfg.pivot])[0].code
        pairs = resolve_source(cfg.parallel_text) / "train" / f"{pivot}-{lang}" / f"{lang}.txt"
        return corpus_tokens([pairs], bytes_per_token) if pairs.is_file() else 0
    return english_tokens


def _adapt_tokens(cfg, lang: str, text_tokens: float) -> float:
    """Tokens one language's MLM job reads: ``max_steps`` blocks of ``global_batch_size`` × ``max_seq_length``
    (adapt packs its text into full blocks), else ``epochs`` passes over its ``text_tokens``."""
    from modsent.adapt.config import AdaptConfig
    from modsent.train.trainer_config import TrainerConfig

    trainer = cfg.adapt.get("trainer", {})
    if trainer.get("max_steps"):
        return float(trainer["max_steps"] * trainer.get("global_batch_size", TrainerConfig.global_batch_size)
                     * cfg.adapt.get("max_seq_length", AdaptConfig.max_seq_length))
    return text_tokens * trainer.get("epochs", TrainerConfig.epochs)


def _evaluated_encoders(cfg, stages: list[str]) -> int:
    """The systems evaluation encodes each language with: the baselines, Single_c, the modular model, its
    adapters-off view (``compare_unaligned``) and each step's model (``step_ablations``: vocabulary only, + MLM)."""
    single_c = cfg.single_c is not None and "train" in stages
    unaligned = bool(cfg.evaluate.get("compare_unaligned")) and "align" in stages
    steps = 2 if cfg.evaluate.get("step_ablations") else 0
    return len(cfg.baselines) + single_c + 1 + unaligned + steps


def _pivot_files(corpus: Path, pivot: str) -> list[Path]:
    """The corpus files holding the pivot language (the text every language's work scales with)."""
    if corpus.is_file():
        return [corpus]
    iso3 = pivot.split("_")[0]
    files = [p for p in corpus.rglob("*") if p.is_file() and (p.name.startswith(pivot) or p.name.startswith(iso3 + "_"))]
    return files or [corpus]


def _job_matrix(languages: list[str], stages: list[str], enabled: Callable[[str, str], bool]) -> str:
    lines = ["| language | " + " | ".join(stages) + " |", "|---|" + "---|" * len(stages)]
    for lang in languages:
        marks = ["·" if s == "evaluate" or not enabled(s, lang) else "✓" for s in stages]
        lines.append(f"| {lang} | " + " | ".join(marks) + " |")
    return "\n".join(lines)
