"""Training-core pieces without a DeepSpeed engine: schedules, batching, masking, packing, configs,
metrics, checkpoint integrity rules and the vocabulary swap."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from modsent.io import atomic_write_text
from modsent.train import (
    BatchStateError,
    CheckpointError,
    DeepSpeedConfigError,
    LRSchedule,
    MetricsLogger,
    NoTrainableParametersError,
    ShardedBatches,
    TooLittleDataError,
    TrainerConfig,
    build_ds_config,
    read_metrics,
    trainable_param_groups,
)
from modsent.train.checkpoint import (
    check_compatible,
    list_checkpoints,
    prune_checkpoints,
    verify_checkpoint,
    write_manifest,
)
from modsent.adapt.stage import ModelSourceError, load_mlm_model
from modsent.adapt.data import EmptyTextError, MLMDataError, mask_tokens, pack_blocks, prepare_packed_data

CPU = torch.device("cpu")


# ------------------------------------------------------------------------------ LR schedule
def test_warmup_linear_warms_up_then_decays_to_zero_at_the_end() -> None:
    schedule = LRSchedule("warmup_linear", warmup_steps=4, total_steps=20)
    factors = [schedule(step) for step in range(20)]
    assert factors[:4] == [0.25, 0.5, 0.75, 1.0]
    assert factors[4] == 1.0 and all(a > b for a, b in zip(factors[4:], factors[5:]))
    assert factors[-1] == pytest.approx(1 / 16) and schedule(20) == 0.0


def test_constant_schedule_stays_at_peak_after_warmup() -> None:
    schedule = LRSchedule("constant", warmup_steps=2, total_steps=10)
    assert [schedule(s) for s in range(5)] == [0.5, 1.0, 1.0, 1.0, 1.0]
    assert LRSchedule("constant", 0, 10)(0) == 1.0


# ------------------------------------------------------------------------------ batches
def _batches(rank: int, world_size: int = 2, n: int = 23, seed: int = 5) -> ShardedBatches:
    return ShardedBatches(n, 3, lambda indices, gen: (indices, torch.rand(1, generator=gen).item()),
                          rank=rank, world_size=world_size, seed=seed)


def test_ranks_get_disjoint_slices_of_every_global_batch_and_a_new_order_each_epoch() -> None:
    ranks = [_batches(0), _batches(1)]
    assert ranks[0].batches_per_epoch == 3  # 23 // (3 × 2)
    epochs = []
    for _ in range(2):
        seen = []
        for _ in range(3):
            (a, _), (b, _) = next(ranks[0]), next(ranks[1])
            assert not set(a) & set(b) and len(a) == len(b) == 3
            seen += a + b
        assert len(set(seen)) == 18
        epochs.append(seen)
    assert epochs[0] != epochs[1] and ranks[0].epoch == 2


def test_restored_batch_iterator_continues_with_identical_batches_and_generators() -> None:
    reference = _batches(1)
    expected = [next(reference) for _ in range(8)]
    first = _batches(1)
    for _ in range(4):
        next(first)
    resumed = _batches(1)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    assert [next(resumed) for _ in range(4)] == expected[4:]


def test_batch_state_from_other_data_or_rank_count_is_refused() -> None:
    state = _batches(0).state_dict()
    with pytest.raises(BatchStateError, match="world_size=2 but this run has 4"):
        _batches(0, world_size=4).load_state_dict(state)
    with pytest.raises(BatchStateError, match="num_examples"):
        _batches(0, n=30).load_state_dict(state)


def test_too_little_data_for_one_global_batch_is_a_clear_error() -> None:
    with pytest.raises(TooLittleDataError, match="5 training examples do not fill one global batch of 6"):
        _batches(0, n=5)


# ------------------------------------------------------------------------------ masking and packing
def test_masking_is_seeded_skips_special_tokens_and_follows_80_10_10() -> None:
    ids = torch.randint(10, 1000, (64, 128), generator=torch.Generator().manual_seed(0))
    ids[:, 0], ids[:, -1] = 1, 2
    special = (ids == 1) | (ids == 2)
    kwargs = dict(probability=0.15, mask_token_id=3, vocab_size=1000)
    inputs, labels = mask_tokens(ids, special, torch.Generator().manual_seed(9), **kwargs)
    again, labels_again = mask_tokens(ids, special, torch.Generator().manual_seed(9), **kwargs)
    assert torch.equal(inputs, again) and torch.equal(labels, labels_again)
    targets = labels != -100
    assert not targets[special].any()
    assert torch.equal(labels[targets], ids[targets]) and torch.equal(inputs[~targets], ids[~targets])
    assert 0.14 < targets.float().mean().item() / (1 - special.float().mean().item()) < 0.16
    masked = (inputs[targets] == 3).float().mean().item()
    kept = (inputs[targets] == ids[targets]).float().mean().item()
    assert 0.77 < masked < 0.83 and 0.07 < kept < 0.13
    other, _ = mask_tokens(ids, special, torch.Generator().manual_seed(10), **kwargs)
    assert not torch.equal(inputs, other)


def test_every_row_gets_at_least_one_target_even_when_short() -> None:
    ids = torch.tensor([[1, 5, 6, 2]] * 50)
    special = (ids == 1) | (ids == 2)
    _, labels = mask_tokens(ids, special, torch.Generator().manual_seed(0), probability=0.01, mask_token_id=3,
                            vocab_size=10)
    assert ((labels != -100).sum(dim=1) >= 1).all()


def test_packing_concatenates_whole_sequences_and_drops_the_partial_tail() -> None:
    # The reference's packing: each line is already [CLS] … [SEP]; blocks are cut from the stream.
    blocks = list(pack_blocks([[1, 5, 6, 7, 2], [1, 8, 9, 2], [1, 10, 2]], seq_len=6))
    assert [b.tolist() for b in blocks] == [[1, 5, 6, 7, 2, 1], [8, 9, 2, 1, 10, 2]]
    assert list(pack_blocks([[1, 5, 2]], seq_len=6)) == []


def test_packed_data_is_cached_and_split(tmp_path: Path, tiny_mlm: Path, train_text: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm)
    packed = prepare_packed_data([str(train_text)], [], tokenizer, 32, 0.1, tmp_path)
    lines = train_text.read_text().splitlines()
    sequences = tokenizer(lines)["input_ids"]  # each line its own [CLS] … [SEP]
    stream = [token for ids in sequences for token in ids]
    blocks = len(stream) // 32
    assert packed.train.shape == (blocks - blocks // 10, 32) and packed.valid.shape == (blocks // 10, 32)
    every_block = np.concatenate([np.asarray(packed.train), np.asarray(packed.valid)])
    assert sorted(map(tuple, every_block.tolist())) == sorted(
        tuple(stream[i * 32:(i + 1) * 32]) for i in range(blocks))
    assert packed.train[0].tolist() == stream[:32]
    assert sequences[0][0] == tokenizer.cls_token_id and sequences[0][-1] == tokenizer.sep_token_id
    # a [CLS] opens every line inside the blocks, not only the first
    assert int((packed.train == tokenizer.cls_token_id).sum()) > len(packed.train)
    again = prepare_packed_data([str(train_text)], [], tokenizer, 32, 0.1, tmp_path)
    assert again.directory == packed.directory and np.array_equal(again.valid, packed.valid)


def test_adapt_defaults_are_the_reference_mlm_recipe() -> None:
    from modsent.adapt.config import AdaptConfig

    cfg = AdaptConfig(model="m", train_files=["t.txt"])
    trainer = cfg.trainer
    assert (cfg.max_seq_length, cfg.mlm_probability, cfg.valid_fraction) == (256, 0.15, 0.05)
    assert (trainer.global_batch_size, trainer.grad_accum, trainer.micro_batch(world_size=1)) == (256, 2, 128)
    assert (trainer.max_steps, trainer.epochs) == (None, 3.0)  # epochs, not a fixed step count
    assert (trainer.lr, trainer.warmup_steps, trainer.schedule) == (5e-5, 0, "warmup_linear")  # linear decay
    assert (trainer.weight_decay, trainer.max_grad_norm, trainer.precision) == (0.0, 0.0, "fp32")


def test_empty_or_too_short_text_is_a_clear_error(tmp_path: Path, tiny_mlm: Path, train_text: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_mlm)
    empty = tmp_path / "empty.txt"
    atomic_write_text(empty, "\n   \n\n")
    with pytest.raises(EmptyTextError, match=f"{empty} has no non-blank line"):
        prepare_packed_data([str(train_text), str(empty)], [], tokenizer, 32, 0.1, tmp_path / "cache")
    short = tmp_path / "short.txt"
    atomic_write_text(short, "the old man sees a dog .\n")
    with pytest.raises(MLMDataError, match="not enough for one training sequence of max_seq_length=32"):
        prepare_packed_data([str(short)], [], tokenizer, 32, 0.1, tmp_path / "cache")
    with pytest.raises(MLMDataError, match="matches no file"):
        prepare_packed_data([str(tmp_path / "nothing-*.txt")], [], tokenizer, 32, 0.1, tmp_path / "cache")


# ------------------------------------------------------------------------------ DeepSpeed config
def test_ds_config_takes_batch_clipping_precision_and_stage_from_the_trainer() -> None:
    cfg = TrainerConfig(ds_config="zero2", zero_stage=3, global_batch_size=24, grad_accum=3, max_grad_norm=0.5)
    ds = build_ds_config(cfg, world_size=2, device=CPU)
    assert ds["train_batch_size"] == 24 and ds["gradient_accumulation_steps"] == 3
    assert ds["train_micro_batch_size_per_gpu"] == 4
    assert ds["gradient_clipping"] == 0.5 and ds["zero_optimization"]["stage"] == 3
    assert ds["bf16"]["enabled"] is False and ds["fp16"]["enabled"] is False and "optimizer" not in ds
    assert not any(key.startswith("_") for key in ds)
    offload = build_ds_config(TrainerConfig(ds_config="zero3_offload", lr=1e-4), 1, CPU)
    assert offload["optimizer"]["type"] == "AdamW" and offload["optimizer"]["params"]["lr"] == 1e-4
    assert build_ds_config(TrainerConfig(precision="bf16"), 1, CPU)["bf16"]["enabled"] is True


def test_ds_config_conflicts_and_bad_names_are_clear_errors(tmp_path: Path) -> None:
    conflicting = tmp_path / "mine.json"
    atomic_write_text(conflicting, json.dumps({"gradient_accumulation_steps": 8, "zero_optimization": {"stage": 1}}))
    with pytest.raises(DeepSpeedConfigError, match="'gradient_accumulation_steps' is 8 but trainer.grad_accum gives 1"):
        build_ds_config(TrainerConfig(ds_config=str(conflicting)), 1, CPU)
    with pytest.raises(DeepSpeedConfigError, match="zero0, zero1, zero2, zero3, zero3_offload"):
        build_ds_config(TrainerConfig(ds_config="zero9"), 1, CPU)
    with pytest.raises(DeepSpeedConfigError, match="fp16 needs a CUDA device"):
        build_ds_config(TrainerConfig(precision="fp16"), 1, CPU)


def test_trainer_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="trainer.grad_accum must be > 0"):
        TrainerConfig(grad_accum=0)
    with pytest.raises(ValueError, match="zero_stage must be 0, 1, 2 or 3"):
        TrainerConfig(zero_stage=4)


def test_only_trainable_parameters_reach_the_optimizer() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2))
    model[0].requires_grad_(False)
    groups = trainable_param_groups(model, 0.1)
    grouped = [p for g in groups for p in g["params"]]
    assert len(grouped) == 4 and not any(p is model[0].weight or p is model[0].bias for p in grouped)
    assert [len(g["params"]) for g in groups if g["weight_decay"] == 0.1] == [1]
    model.requires_grad_(False)
    with pytest.raises(NoTrainableParametersError, match="no parameter with requires_grad=True"):
        trainable_param_groups(model, 0.1)


# ------------------------------------------------------------------------------ metrics
def test_metrics_go_to_jsonl_csv_and_tensorboard_and_a_resume_drops_later_records(tmp_path: Path) -> None:
    metrics = MetricsLogger(tmp_path, enabled=True)
    for step in range(1, 6):
        metrics.log("train", step, {"loss": 1.0 / step, "grad_norm": None if step < 3 else 0.5})
    metrics.log("eval", 4, {"loss": 0.3})
    metrics.close()
    assert (tmp_path / "train.csv").read_text().splitlines()[0] == "step,time_unix,loss,grad_norm"
    assert any((tmp_path / "tensorboard").iterdir())
    resumed = MetricsLogger(tmp_path, enabled=True, resume_step=3)
    resumed.log("train", 4, {"loss": 0.2})
    resumed.close()
    assert [r["step"] for r in read_metrics(tmp_path, "train")] == [1, 2, 3, 4]
    assert read_metrics(tmp_path, "eval") == []
    assert len((tmp_path / "train.csv").read_text().splitlines()) == 5
    MetricsLogger(tmp_path / "other", enabled=False).log("train", 1, {"loss": 1.0})
    assert not (tmp_path / "other").exists()


# ------------------------------------------------------------------------------ checkpoint integrity
def _fake_checkpoint(root: Path, step: int, fingerprint: dict) -> Path:
    path = root / f"step-{step:08d}"
    path.mkdir(parents=True)
    (path / "mp_rank_00_model_states.pt").write_bytes(b"weights" * 10)
    write_manifest(path, step=step, world_size=2, fingerprint=fingerprint)
    return path


def test_corrupt_incomplete_and_foreign_checkpoints_are_refused(tmp_path: Path) -> None:
    fingerprint = {"trainer": {"lr": 0.001}, "task": {"data": "abc"}}
    good = _fake_checkpoint(tmp_path, 4, fingerprint)
    assert verify_checkpoint(good)["step"] == 4
    check_compatible(verify_checkpoint(good), good, fingerprint, world_size=2)
    with pytest.raises(CheckpointError, match=r"trainer.lr: checkpoint 0.001, now 0.002"):
        check_compatible(verify_checkpoint(good), good, {**fingerprint, "trainer": {"lr": 0.002}}, world_size=2)
    with pytest.raises(CheckpointError, match="written by 2 ranks but this run has 1"):
        check_compatible(verify_checkpoint(good), good, fingerprint, world_size=1)
    (good / "mp_rank_00_model_states.pt").write_bytes(b"WEIGHTS" * 10)
    with pytest.raises(CheckpointError, match="mp_rank_00_model_states.pt does not match its SHA-256"):
        verify_checkpoint(good)
    (good / "mp_rank_00_model_states.pt").unlink()
    with pytest.raises(CheckpointError, match="mp_rank_00_model_states.pt is missing"):
        verify_checkpoint(good)
    interrupted = tmp_path / "step-00000008"
    interrupted.mkdir()
    with pytest.raises(CheckpointError, match="is incomplete"):
        verify_checkpoint(interrupted)
    (good / "manifest.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="manifest.json is unreadable"):
        verify_checkpoint(good)


def test_pruning_keeps_the_newest_complete_checkpoints(tmp_path: Path) -> None:
    for step in (2, 4, 6):
        _fake_checkpoint(tmp_path, step, {})
    (tmp_path / "step-00000003").mkdir()  # an interrupted save older than what is kept
    prune_checkpoints(tmp_path, keep=2)
    complete, incomplete = list_checkpoints(tmp_path)
    assert [p.name for p in complete] == ["step-00000004", "step-00000006"] and incomplete == []


# ------------------------------------------------------------------------------ vocabulary swap
def test_new_vocabulary_replaces_input_embeddings_and_the_tied_decoder(tiny_mlm: Path, tiny_vocab_dir: Path) -> None:
    from safetensors.torch import load_file

    model, tokenizer = load_mlm_model(tiny_mlm, tiny_vocab_dir)
    expected = load_file(str(tiny_vocab_dir / "embeddings.safetensors"))["embeddings"]
    assert len(tokenizer) == expected.shape[0] == model.config.vocab_size
    assert torch.equal(model.get_input_embeddings().weight, expected)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert torch.equal(model.cls.predictions.bias, torch.zeros(expected.shape[0]))
    logits = model(**tokenizer(["the zebra sees a violin ."], return_tensors="pt")).logits
    assert logits.shape[-1] == expected.shape[0]
    source, source_tokenizer = load_mlm_model(tiny_mlm)
    assert source.config.vocab_size == len(source_tokenizer) != expected.shape[0]


def test_mismatched_vocabulary_is_a_clear_error(tmp_path: Path, tiny_mlm: Path, tiny_vocab_dir: Path) -> None:
    from safetensors.torch import save_file
    import shutil

    bad = tmp_path / "vocab"
    shutil.copytree(tiny_vocab_dir, bad)
    save_file({"embeddings": torch.zeros(5, 32)}, str(bad / "embeddings.safetensors"))
    with pytest.raises(ModelSourceError, match="5 embedding rows for a tokenizer of"):
        load_mlm_model(tiny_mlm, bad)
    save_file({"embeddings": torch.zeros(44, 8)}, str(bad / "embeddings.safetensors"))
    with pytest.raises(ModelSourceError, match="width 8 but .* hidden size 32"):
        load_mlm_model(tiny_mlm, bad)
    with pytest.raises(ModelSourceError, match="missing: model directory \(model:\) does not exist"):
        load_mlm_model(tmp_path / "missing")


def test_a_full_disk_during_a_checkpoint_is_a_clear_error_and_leaves_no_partial_save(tmp_path: Path) -> None:
    """Before: ENOSPC inside DeepSpeed's save was a traceback, and the half-written step directory stayed."""
    from modsent.train.checkpoint import CheckpointError, disk_full_as_error, list_checkpoints

    partial = tmp_path / "checkpoints" / "step-00000004"
    partial.mkdir(parents=True)
    with pytest.raises(CheckpointError, match=rf"disk full while writing checkpoint {partial} .* resumes from the "
                                              "last complete checkpoint"):
        with disk_full_as_error(partial):
            (partial / "mp_rank_00_model_states.pt").write_bytes(b"x")
            with open("/dev/full", "wb") as handle:  # a real ENOSPC from the kernel
                handle.write(b"x" * 4096)
    assert not partial.exists() and list_checkpoints(tmp_path / "checkpoints") == ([], [])
    with pytest.raises(ValueError, match="not a disk problem"):  # other errors pass through unchanged
        with disk_full_as_error(partial):
            raise ValueError("not a disk problem")


def test_a_save_the_disk_cannot_hold_is_refused_before_writing(tmp_path: Path) -> None:
    import shutil as shutil_

    from modsent.train.checkpoint import CheckpointError, check_room_for_checkpoint

    root = tmp_path / "checkpoints"
    check_room_for_checkpoint(root / "missing")  # nothing saved yet: nothing to measure
    previous = root / "step-00000002"
    previous.mkdir(parents=True)
    (previous / "manifest.json").write_text("{}")
    check_room_for_checkpoint(root)
    with open(previous / "model_states.pt", "wb") as handle:  # sparse: as large as the disk's free space and more
        handle.truncate(shutil_.disk_usage(root).free + (1 << 30))
    with pytest.raises(CheckpointError, match=r"the next checkpoint needs about .* \(the size of step-00000002\) "
                                              r"but its disk has .* free"):
        check_room_for_checkpoint(root)
