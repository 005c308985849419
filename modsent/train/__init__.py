"""Training: the shared DeepSpeed training core and the contrastive stage (``modsent train``).

Core (used by adapt, train and align): :class:`TrainerConfig` (nested in each stage's config),
:func:`init_distributed`, :class:`TrainTask` + :func:`train` / :class:`Trainer`,
:class:`ShardedBatches` (resumable, rank-sharded batches), :func:`all_gather_with_grad` (for
losses over the global batch), checkpoint and export helpers, the losses. The stage:
:mod:`modsent.train.config` and :mod:`modsent.train.stage`.
"""

from __future__ import annotations

from modsent.train.checkpoint import CheckpointError
from modsent.train.data import BatchStateError, ResumableBatches, ShardedBatches, TooLittleDataError, derive_seed
from modsent.train.distributed import (
    DistInfo,
    all_gather_with_grad,
    all_reduce_sum,
    barrier,
    broadcast_object,
    init_distributed,
    run_on_main,
)
from modsent.train.ds_config import DeepSpeedConfigError, build_ds_config, resolve_precision
from modsent.train.export import gather_full_state_dict, save_pretrained_dir
from modsent.train.metrics import MetricsLogger, read_metrics
from modsent.train.optim import LRSchedule, NoTrainableParametersError, trainable_param_groups
from modsent.train.trainer import TrainResult, Trainer, TrainTask, move_to_device, train
from modsent.train.trainer_config import TrainerConfig

__all__ = [
    "BatchStateError", "CheckpointError", "DeepSpeedConfigError", "DistInfo", "LRSchedule", "MetricsLogger",
    "NoTrainableParametersError", "ResumableBatches", "ShardedBatches", "TooLittleDataError", "TrainResult",
    "TrainTask", "Trainer", "TrainerConfig", "all_gather_with_grad", "all_reduce_sum", "barrier",
    "broadcast_object", "build_ds_config", "derive_seed", "gather_full_state_dict", "init_distributed",
    "move_to_device", "read_metrics", "resolve_precision", "run_on_main", "save_pretrained_dir", "train",
    "trainable_param_groups",
]
