"""The trainer in this process as rank 0 of 1 (no launcher): bad resume targets, empty text, frozen
models, and one step checked against the same step written in plain PyTorch."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from modsent.train import CheckpointError, Trainer, init_distributed, read_metrics
from modsent.adapt.stage import build_adapt_task, run as run_adapt
from modsent.adapt.data import EmptyTextError


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, adapt_config: Callable[..., Any]) -> Path:
    """A finished 4-step single-process run with checkpoints at steps 2 and 4."""
    output = tmp_path_factory.mktemp("single") / "run"
    result = run_adapt(adapt_config(output, max_steps=4, save_every=2, eval_every=2, grad_accum=1))
    assert result.completed and result.step == 4 and (output / "artifacts" / "model" / "model.safetensors").is_file()
    return output


def test_corrupt_checkpoint_stops_the_run_naming_the_file(tmp_path: Path, finished_run: Path, adapt_config) -> None:
    run = shutil.copytree(finished_run, tmp_path / "run")
    optimizer_file = next((run / "checkpoints" / "step-00000004").glob("*optim_states.pt"))
    optimizer_file.write_bytes(optimizer_file.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=f"step-00000004 is corrupt: {optimizer_file.name} has"):
        run_adapt(adapt_config(run, max_steps=4, save_every=2, eval_every=2, grad_accum=1))


def test_checkpoint_of_another_config_is_refused_with_the_differing_keys(tmp_path: Path, finished_run: Path,
                                                                          adapt_config) -> None:
    run = shutil.copytree(finished_run, tmp_path / "run")
    with pytest.raises(CheckpointError, match=r"different config \(trainer.lr: checkpoint 0.003, now 0.001\)"):
        run_adapt(adapt_config(run, max_steps=4, save_every=2, eval_every=2, grad_accum=1, lr=1e-3))
    with pytest.raises(CheckpointError, match="is incomplete"):
        run_adapt(adapt_config(tmp_path / "other", max_steps=4, save_every=2, eval_every=2, grad_accum=1,
                               resume=str(tmp_path / "run" / "checkpoints")))


def test_empty_training_text_is_a_clear_error(tmp_path: Path, adapt_config) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    cfg = adapt_config(tmp_path / "run")
    cfg.train_files = [str(empty)]
    with pytest.raises(EmptyTextError, match=f"train_files: {empty} has no non-blank line"):
        run_adapt(cfg)


def _frozen_encoder_run(adapt_config, output: Path, **trainer: Any) -> Trainer:
    cfg = adapt_config(output, ds_config="zero3", max_steps=6, grad_accum=1, save_every=0, eval_every=0, **trainer)
    info = init_distributed()
    task, _ = build_adapt_task(cfg, info)
    task.model.bert.encoder.requires_grad_(False)
    trainer_ = Trainer(task, cfg.trainer, info)
    trainer_.fit()
    return trainer_


def test_frozen_parameters_stay_fixed_out_of_the_optimizer_and_resume_exactly(tmp_path: Path, adapt_config,
                                                                            capsys) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForMaskedLM

    full = _frozen_encoder_run(adapt_config, tmp_path / "full")
    adam_state = sum(state["exp_avg"].numel() for state in full.engine.optimizer.optimizer.state.values())
    trainable = sum(p.ds_numel for p in full.task.model.parameters() if p.requires_grad)
    assert adam_state == trainable < sum(p.ds_numel for p in full.task.model.parameters())

    exported = load_file(str(tmp_path / "full" / "artifacts" / "model" / "model.safetensors"))
    source = AutoModelForMaskedLM.from_pretrained(adapt_config(tmp_path).model).state_dict()
    frozen = [k for k in exported if ".encoder." in k]
    assert frozen and all(torch.equal(exported[k], source[k]) for k in frozen)
    embeddings = "bert.embeddings.word_embeddings.weight"
    assert not torch.equal(exported[embeddings], source[embeddings])

    stopped = _frozen_encoder_run(adapt_config, tmp_path / "split", stop_at_step=3)
    assert stopped.step == 3
    capsys.readouterr()
    _frozen_encoder_run(adapt_config, tmp_path / "split")
    # Before: the resume was logged at INFO with no handler, so nothing said the run continued.
    assert f"resumed from checkpoint {tmp_path / 'split' / 'checkpoints' / 'step-00000003'} at step 3 of 6" \
        in capsys.readouterr().out
    losses = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "full" / "metrics", "train")}
    resumed = {r["step"]: r["loss"] for r in read_metrics(tmp_path / "split" / "metrics", "train")}
    assert resumed.keys() == losses.keys() == set(range(1, 7))
    for step in range(4, 7):
        assert resumed[step] == pytest.approx(losses[step], abs=1e-5)


class _ListBatches:
    """ResumableBatches over a fixed list of batches, cycling."""

    def __init__(self, batches: list[dict[str, torch.Tensor]]) -> None:
        self.batches, self.position, self.batches_per_epoch = batches, 0, len(batches)

    def __iter__(self) -> "_ListBatches":
        return self

    def __next__(self) -> dict[str, torch.Tensor]:
        batch = self.batches[self.position % len(self.batches)]
        self.position += 1
        return batch

    def state_dict(self) -> dict[str, int]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.position = state["position"]


def test_one_rank_step_equals_a_plain_pytorch_step(tmp_path: Path, tiny_mlm: Path) -> None:
    """Accumulation, clipping, AdamW and the warm-up schedule do what the same loop in plain PyTorch does."""
    from transformers import AutoModelForMaskedLM

    from modsent.train import TrainerConfig, TrainTask
    from modsent.train.optim import LRSchedule, trainable_param_groups

    generator = torch.Generator().manual_seed(0)
    batches = []
    for _ in range(6):
        ids = torch.randint(5, 500, (4, 16), generator=generator)
        batches.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids})
    cfg = TrainerConfig(ds_config="zero0", global_batch_size=8, grad_accum=2, lr=1e-2, max_grad_norm=0.5,
                        warmup_steps=2, max_steps=3, output_dir=str(tmp_path), progress_bar=False)
    ours = Trainer(TrainTask(model=AutoModelForMaskedLM.from_pretrained(tiny_mlm), train_batches=_ListBatches(batches),
                             compute_loss=lambda engine, batch: engine(**batch).loss), cfg)

    plain = AutoModelForMaskedLM.from_pretrained(tiny_mlm)  # eval mode, like the engine's module: no dropout
    optimizer = torch.optim.AdamW(trainable_param_groups(plain, cfg.weight_decay), lr=cfg.lr, eps=cfg.adam_eps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, LRSchedule("warmup_linear", 2, 3))
    for step in range(3):
        ours.train_step()
        for batch in batches[2 * step:2 * step + 2]:
            (plain(**batch).loss / 2).backward()
        torch.nn.utils.clip_grad_norm_(plain.parameters(), cfg.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()
    for (name, mine), theirs in zip(ours.engine.module.named_parameters(), plain.parameters()):
        torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-6, msg=name)
    assert not torch.equal(plain.bert.embeddings.word_embeddings.weight,
                           AutoModelForMaskedLM.from_pretrained(tiny_mlm).bert.embeddings.word_embeddings.weight)


def test_bf16_mixed_precision_trains_in_bf16_and_exports_the_fp32_master(tmp_path: Path, adapt_config) -> None:
    """The mixed-precision path a GPU takes (``precision: auto``), run on the CPU accelerator: bf16 weights in the
    engine, fp32 master partitions in the optimizer, validation loss going down, and an fp32 export."""
    from safetensors.torch import load_file

    cfg = adapt_config(tmp_path / "run", precision="bf16", max_steps=16, eval_every=16, save_every=0)
    info = init_distributed()
    task, _ = build_adapt_task(cfg, info)
    trainer = Trainer(task, cfg.trainer, info)
    trainer.fit()
    assert {p.dtype for p in trainer.engine.module.parameters()} == {torch.bfloat16}
    assert {t.dtype for t in trainer.engine.optimizer.single_partition_of_fp32_groups} == {torch.float32}
    losses = [record["loss"] for record in read_metrics(tmp_path / "run" / "metrics", "eval")]
    assert len(losses) == 2 and losses[-1] < losses[0] - 0.1
    exported = load_file(str(tmp_path / "run" / "artifacts" / "model" / "model.safetensors"))
    assert {t.dtype for t in exported.values()} == {torch.float32}


def test_an_unwritable_output_directory_is_refused_before_training(adapt_config, unwritable_dir) -> None:
    """Before: a PermissionError traceback from the first write into the run directory."""
    from modsent.output_checks import OutputError
    from modsent.adapt import run_adapt

    with pytest.raises(OutputError, match=rf"{unwritable_dir}: the output directory of modsent adapt is not writable"):
        run_adapt(adapt_config(unwritable_dir))
