"""The training loop every recipe shares: DeepSpeed engine, schedule, eval, checkpoints, resume, export.

A recipe (MLM adaptation, contrastive training, adapter alignment) describes its job as a
:class:`TrainTask` — the model, this rank's :class:`~modsent.train.data.ResumableBatches`, a
loss, an eval and an export function — and calls :func:`train` with its
:class:`~modsent.train.trainer_config.TrainerConfig`::

    task = TrainTask(model=model, train_batches=batches,
                     compute_loss=lambda engine, batch: engine(**batch).loss,
                     evaluate=my_eval, export=my_export, fingerprint={"data": data_hash})
    result = train(task, cfg.trainer)

Output layout under ``trainer.output_dir``: ``checkpoints/step-XXXXXXXX/`` (see
:mod:`modsent.train.checkpoint`), ``metrics/`` (``metrics.jsonl``, ``train.csv``, ``eval.csv``,
``tensorboard/``) and the export in ``artifacts/<export_name>/``.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

import torch
from tqdm.auto import tqdm

from modsent.config import dump_config, to_dict
from modsent.dirlock import hold_directory
from modsent.io import RunDir, atomic_directory, seed_everything
from modsent.output_checks import PathArgument, check_not_overwriting, check_output_dir
from modsent.train.checkpoint import (
    CheckpointError,
    capture_rng_state,
    check_compatible,
    check_room_for_checkpoint,
    checkpoint_root,
    checkpoint_tag,
    disk_full_as_error,
    load_rank_state,
    prune_checkpoints,
    resolve_resume,
    restore_rng_state,
    save_rank_state,
    verify_checkpoint,
    write_manifest,
)
from modsent.train.data import ResumableBatches, derive_seed
from modsent.train.distributed import DistInfo, all_reduce_sum, barrier, init_distributed, run_on_main
from modsent.train.ds_config import build_ds_config, resolve_precision, uses_offload
from modsent.train.export import gather_full_state_dict, save_pretrained_dir
from modsent.train.metrics import MetricsLogger
from modsent.train.optim import LRSchedule, trainable_param_groups
from modsent.train.trainer_config import BOOKKEEPING_FIELDS, TrainerConfig

__all__ = ["TrainTask", "TrainResult", "Trainer", "train", "move_to_device"]

logger = logging.getLogger(__name__)

ExportFn = Callable[[torch.nn.Module, dict[str, torch.Tensor], Path], None]


@dataclass
class TrainTask:
    """One recipe's job, as the trainer sees it.

    ``model``: the full ``torch.nn.Module`` (identical on every rank; parameters with
    ``requires_grad=False`` are frozen and left out of the optimizer and of checkpoints).
    ``train_batches``: this rank's batches. ``compute_loss(engine, batch)`` returns a scalar loss
    for one micro-batch (``batch`` already on the device; call ``engine(...)`` rather than the
    module so ZeRO-3 can gather parameters). ``evaluate(engine)`` returns metrics, runs in
    ``no_grad`` and eval mode on every rank (it must reduce over ranks itself, e.g. with
    :func:`~modsent.train.distributed.all_reduce_sum`, and run the same number of forward passes
    on each rank). ``export(module, full_state_dict, directory)`` writes the final artifact on
    rank 0 into a staging directory that is renamed to ``artifacts/<export_name>`` when complete;
    the default writes a ``transformers`` directory. ``fingerprint``: JSON-able values (data
    hashes, recipe settings) that must match for a checkpoint to be resumed. ``count_tokens(batch)``
    enables the tokens/s metric.
    """

    model: torch.nn.Module
    train_batches: ResumableBatches
    compute_loss: Callable[[Any, Any], torch.Tensor]
    evaluate: Optional[Callable[[Any], dict[str, float]]] = None
    export: Optional[ExportFn] = None
    fingerprint: Mapping[str, Any] = field(default_factory=dict)
    count_tokens: Optional[Callable[[Any], int]] = None
    export_name: str = "model"


@dataclass
class TrainResult:
    """What a run reached: ``completed`` is False when it stopped early at ``trainer.stop_at_step``."""

    step: int
    total_steps: int
    completed: bool
    eval_metrics: dict[str, float]
    checkpoint: Optional[Path]
    export_dir: Optional[Path]
    resumed_from: Optional[Path]


def move_to_device(batch: Any, device: torch.device) -> Any:
    """``batch`` (tensors nested in dicts, lists, tuples) with every tensor on ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(value, device) for value in batch)
    return batch


class Trainer:
    """Builds the DeepSpeed engine for a :class:`TrainTask`, restores a checkpoint if asked, and trains.

    Construction is collective (every rank): it resolves the DeepSpeed config, validates the
    checkpoint to resume from (corrupt or foreign checkpoints raise
    :class:`~modsent.train.checkpoint.CheckpointError` before any engine is built), creates the
    AdamW optimizer over trainable parameters (DeepSpeed's own when the JSON offloads it) and
    the LR schedule, and calls ``deepspeed.initialize``. :meth:`fit` runs to the end.
    """

    def __init__(self, task: TrainTask, cfg: TrainerConfig, dist_info: DistInfo | None = None) -> None:
        self.task, self.cfg = task, cfg
        self.dist = dist_info or init_distributed()
        self.run_dir = RunDir(Path(cfg.output_dir))
        if self.dist.is_main:
            RunDir.create(self.run_dir.root)
        self.precision = resolve_precision(cfg.precision, self.dist.device)
        # bf16_mixed: an fp32 engine (DeepSpeed casts nothing), the forward under bf16 autocast.
        self._autocast = self.precision == "bf16_mixed"
        self.ds_config = build_ds_config(cfg, self.dist.world_size, self.dist.device)
        stage = self.ds_config["zero_optimization"]["stage"]
        if self.dist.world_size == 1 and stage > 0 and not uses_offload(self.ds_config):
            logger.warning("ZeRO-%d on a single rank partitions nothing but slows each step (1.3-1.4x measured on "
                           "CPU); set trainer.zero_stage=0 for one-device runs", stage)
        self.total_steps = self._total_steps()
        self.fingerprint = self._fingerprint()
        self.has_frozen = any(not p.requires_grad for p in task.model.parameters())
        self.resumed_from = run_on_main(self._checked_resume_path)
        self.engine = self._build_engine()
        self.step = 0
        self._last_saved_step = -1
        self._last_eval_step = -1
        self.eval_metrics: dict[str, float] = {}
        if self.resumed_from is not None:
            self._load_checkpoint(self.resumed_from)
        else:
            # Dropout differs between ranks (as their data does) but repeats from run to run.
            seed_everything(derive_seed(cfg.seed, "rank", self.dist.rank))
        self.metrics = MetricsLogger(self.run_dir.metrics, enabled=self.dist.is_main,
                                     resume_step=self.step if self.resumed_from is not None else None)

    # ------------------------------------------------------------------ setup
    def _total_steps(self) -> int:
        return self.cfg.total_steps(self.task.train_batches.batches_per_epoch)

    def _fingerprint(self) -> dict[str, Any]:
        trainer = {k: v for k, v in to_dict(self.cfg).items() if k not in BOOKKEEPING_FIELDS}
        # The DeepSpeed batch sizes restate trainer.global_batch_size (fingerprinted) and the world size (checked on its own).
        ds_config = {k: v for k, v in self.ds_config.items()
                     if k not in ("train_batch_size", "train_micro_batch_size_per_gpu")}
        trainer.update(ds_config=ds_config, precision=self.precision, total_steps=self.total_steps)
        return {"trainer": trainer, "task": dict(self.task.fingerprint)}

    def _checked_resume_path(self) -> Path | None:
        path = resolve_resume(self.cfg.resume, self.cfg.output_dir)
        if path is None:
            return None
        manifest = verify_checkpoint(path)
        check_compatible(manifest, path, self.fingerprint, self.dist.world_size)
        return path

    def _build_engine(self) -> Any:
        import deepspeed

        cfg = self.cfg
        groups = trainable_param_groups(self.task.model, cfg.weight_decay)
        schedule = LRSchedule(cfg.schedule, cfg.warmup_steps, self.total_steps)

        def make_scheduler(optimizer: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LambdaLR:
            return torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)

        if uses_offload(self.ds_config):
            # Offloaded optimizer state needs DeepSpeed's CPU Adam, built from the config's optimizer section.
            optimizer = None
        else:
            # A torch optimizer avoids compiling DeepSpeed's fused/CPU Adam ops (~1.5 min on first use). Its fused
            # kernel, not the per-tensor default: on one CPU thread the default's AdamW step over e5-small's 117M
            # parameters took 1.1 s of a 3.1 s step, the fused one 0.09 s (the same update, one pass over memory).
            optimizer = torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.adam_eps,
                                          weight_decay=cfg.weight_decay, fused=True)
        engine, _, _, _ = deepspeed.initialize(model=self.task.model, optimizer=optimizer, model_parameters=groups,
                                               lr_scheduler=make_scheduler, config=self.ds_config)
        if self.dist.world_size == 1 and self.ds_config["zero_optimization"]["stage"] == 0:
            # One rank has nothing to average, but the engine would still flatten, all-reduce and copy back
            # every gradient (7% of a step measured on CPU). ZeRO-1/2 need that hook to fill their partitions.
            engine.enable_backward_allreduce = False
        return engine

    # ------------------------------------------------------------------ checkpoints
    def _load_checkpoint(self, path: Path) -> None:
        try:
            loaded, _ = self.engine.load_checkpoint(str(path.parent), tag=path.name,
                                                    load_module_strict=not self.has_frozen,
                                                    load_optimizer_states=True, load_lr_scheduler_states=True)
        except (RuntimeError, OSError, KeyError, ValueError) as err:
            raise CheckpointError(f"checkpoint {path} could not be loaded by DeepSpeed: {err}") from err
        if loaded is None:
            raise CheckpointError(f"checkpoint {path} could not be loaded by DeepSpeed (no model states found)")
        state = load_rank_state(path, self.dist.rank)
        self.step = int(state["step"])
        self.task.train_batches.load_state_dict(state["batches"])
        restore_rng_state(state["rng"])
        self._last_saved_step = self.step
        if self.dist.is_main:
            # On stdout, not only in the log: stages run without a log handler, and a user who reran
            # a killed job must see that it continued rather than started over.
            print(f"resumed from checkpoint {path} at step {self.step} of {self.total_steps}", flush=True)

    def save_checkpoint(self) -> Path:
        """Write a complete checkpoint of the current step (collective); returns its directory."""
        root = checkpoint_root(self.cfg.output_dir)
        path = root / checkpoint_tag(self.step)
        if self.dist.is_main and path.exists():
            shutil.rmtree(path)  # an interrupted save of this very step: start it over
        check_room_for_checkpoint(root)  # every rank: each stops here rather than one waiting for the other
        barrier()
        with disk_full_as_error(path):
            self.engine.save_checkpoint(str(root), tag=path.name, save_latest=False,
                                        exclude_frozen_parameters=self.has_frozen)
            save_rank_state(path, self.dist.rank, {
                "step": self.step,
                "batches": self.task.train_batches.state_dict(),
                "rng": capture_rng_state(),
            })
        barrier()
        if self.dist.is_main:
            write_manifest(path, step=self.step, world_size=self.dist.world_size, fingerprint=self.fingerprint)
            prune_checkpoints(root, self.cfg.keep_checkpoints)
            logger.info("saved checkpoint %s", path)
        barrier()
        self._last_saved_step = self.step
        return path

    # ------------------------------------------------------------------ steps
    def autocast(self) -> Any:
        """The forward's precision context: bf16 autocast under ``precision: bf16_mixed``, else a no-op."""
        return torch.autocast(self.dist.device.type, dtype=torch.bfloat16, enabled=self._autocast)

    def train_step(self) -> tuple[torch.Tensor, int]:
        """One optimizer step: ``grad_accum`` micro-batches forward/backward, then the update.

        Returns this rank's mean micro-batch loss (a detached device tensor, so no sync) and the
        number of tokens it processed (0 without ``count_tokens``).
        """
        engine = self.engine
        total = torch.zeros((), device=self.dist.device, dtype=torch.float32)
        tokens = 0
        for _ in range(self.cfg.grad_accum):
            batch = next(self.task.train_batches)
            if self.task.count_tokens is not None:
                tokens += self.task.count_tokens(batch)
            with self.autocast():
                loss = self.task.compute_loss(engine, move_to_device(batch, self.dist.device))
            engine.backward(loss)
            engine.step()
            total += loss.detach().float()
        self.step += 1
        return total / self.cfg.grad_accum, tokens

    def evaluate(self) -> dict[str, float]:
        """Run the task's eval on every rank (eval mode, no grad), log it and return it."""
        if self.task.evaluate is None:
            return {}
        self.engine.eval()
        with torch.no_grad():  # bf16_mixed evaluates its float32 weights in float32, as `modsent evaluate` will
            metrics = dict(self.task.evaluate(self.engine))
        self.engine.train()
        self.metrics.log("eval", self.step, metrics)
        self.eval_metrics, self._last_eval_step = metrics, self.step
        if self.dist.is_main:
            logger.info("step %d eval: %s", self.step, ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        return metrics

    def export(self) -> Path:
        """Gather the full weights and write the task's export to ``artifacts/<export_name>`` (collective)."""
        state = gather_full_state_dict(self.engine)
        target = self.run_dir.artifacts / self.task.export_name
        if self.dist.is_main:
            assert state is not None
            export = self.task.export or save_pretrained_dir
            with atomic_directory(target) as staging:
                export(self.engine.module, state, staging)
            logger.info("exported %s", target)
        barrier()
        return target

    def _epoch(self) -> float | None:
        progress = getattr(self.task.train_batches, "epoch_progress", None)
        return round(float(progress), 4) if progress is not None else None

    def fit(self) -> TrainResult:
        """Train from the current step to ``total_steps`` (or ``stop_at_step``); eval, checkpoint, export."""
        cfg, engine = self.cfg, self.engine
        if self.step == 0 and cfg.eval_at_start:
            self.evaluate()
        engine.train()
        bar = tqdm(total=self.total_steps, initial=self.step, desc="train", dynamic_ncols=True,
                   disable=not (self.dist.is_main and cfg.progress_bar))
        window_loss = torch.zeros((), device=self.dist.device)
        window_steps, window_tokens, window_start = 0, 0, time.perf_counter()
        stopped_early = False
        while self.step < self.total_steps:
            if cfg.stop_at_step is not None and self.step >= cfg.stop_at_step:
                stopped_early = True
                break
            loss, tokens = self.train_step()
            window_loss += loss
            window_steps, window_tokens = window_steps + 1, window_tokens + tokens
            bar.update(1)
            last = self.step == self.total_steps
            if self.step % cfg.log_every == 0 or last:
                loss_sum, = all_reduce_sum([window_loss.item()], self.dist.device)
                elapsed = time.perf_counter() - window_start
                grad_norm = engine.get_global_grad_norm()
                record = {
                    "loss": loss_sum / (window_steps * self.dist.world_size),
                    "total_steps": self.total_steps,  # for the operator's view of `modsent run`
                    "lr": engine.get_lr()[0],
                    "grad_norm": float(grad_norm) if grad_norm is not None else None,
                    "epoch": self._epoch(),
                    "step_time_s": elapsed / window_steps,
                    "tokens_per_s": window_tokens * self.dist.world_size / elapsed if window_tokens else None,
                }
                self.metrics.log("train", self.step, record)
                bar.set_postfix(loss=f"{record['loss']:.4f}", lr=f"{record['lr']:.2e}")
                window_loss.zero_()
                window_steps, window_tokens, window_start = 0, 0, time.perf_counter()
            if cfg.eval_every and self.step % cfg.eval_every == 0 and not last:
                self.evaluate()
            if cfg.save_every and self.step % cfg.save_every == 0 and not last:
                self.save_checkpoint()
        bar.close()
        if not stopped_early and self._last_eval_step != self.step:
            self.evaluate()
        if self._last_saved_step != self.step:
            checkpoint = self.save_checkpoint()
        else:
            checkpoint = checkpoint_root(cfg.output_dir) / checkpoint_tag(self.step)
        export_dir = None if stopped_early else self.export()
        self.metrics.close()
        return TrainResult(step=self.step, total_steps=self.total_steps, completed=not stopped_early,
                           eval_metrics=self.eval_metrics, checkpoint=checkpoint, export_dir=export_dir,
                           resumed_from=self.resumed_from)


def train(task: TrainTask, cfg: TrainerConfig, dist_info: DistInfo | None = None) -> TrainResult:
    """Build a :class:`Trainer` for ``task`` and run it to the end (collective: call on every rank).

    >>> result = train(task, TrainerConfig(max_steps=100, output_dir="runs/x"))  # doctest: +SKIP
    >>> result.export_dir  # doctest: +SKIP
    PosixPath('runs/x/artifacts/model')
    """
    return Trainer(task, cfg, dist_info).fit()


def start_run(config: Any, command: str, inputs: Mapping[str, PathArgument]) -> DistInfo:
    """Check that no input lies in the run directory (``config.output_dir``), join the process group and
    (rank 0) snapshot the resolved ``config`` into the run directory.

    The first step of every training stage's ``run``, before it builds its task.
    """
    output_dir = config.output_dir
    check_not_overwriting({"output_dir": output_dir}, inputs)
    dist_info = init_distributed()
    # Every rank fails alike when another live process is writing this run directory.
    run_on_main(lambda: hold_directory(output_dir, command) and None)
    if dist_info.is_main:
        check_output_dir(output_dir, f"output directory of {command}")
        run = RunDir.create(output_dir)
        dump_config(config, run.config_path, header=f"{command}: resolved config")
    return dist_info
