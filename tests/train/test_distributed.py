"""Two CPU ranks (gloo) under torchrun: MLM with ZeRO-2 and ZeRO-3, exact resume, export, all-gather.

All tests read the outputs of the one session job in conftest.py (``two_rank_runs``).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from modsent.testing.ranks import child_environment
from modsent.train import read_metrics
from modsent.train.checkpoint import list_checkpoints, verify_checkpoint

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("name", "micro_batches"), [("zero2_full", 48), ("zero3", 24)])
def test_mlm_on_two_ranks_lowers_validation_loss(two_rank_runs, name: str, micro_batches: int) -> None:
    evals = read_metrics(two_rank_runs.workdir / name / "metrics", "eval")
    assert [r["step"] for r in evals] == [0, 8, 16, 24]
    losses = [r["loss"] for r in evals]
    assert losses[-1] < 0.9 * losses[0] and losses == sorted(losses, reverse=True)
    assert evals[-1]["perplexity"] == pytest.approx(2.718281828 ** losses[-1])
    train = read_metrics(two_rank_runs.workdir / name / "metrics", "train")
    assert [r["step"] for r in train] == list(range(1, 25))
    assert all(r["tokens_per_s"] > 0 and r["grad_norm"] > 0 for r in train)
    meta = json.loads(next((two_rank_runs.workdir / name / "data").glob("*/meta.json")).read_text())
    batches_per_epoch = meta["n_train"] // (2 * 4)  # 2 ranks × micro-batches of 4 blocks
    assert train[-1]["epoch"] == pytest.approx(micro_batches / batches_per_epoch, abs=1e-3)


def test_run_stopped_and_resumed_matches_the_uninterrupted_run(two_rank_runs) -> None:
    workdir, stop = two_rank_runs.workdir, two_rank_runs.stop_at_step
    stopped = json.loads((workdir / "zero2_resume.json").read_text())
    assert stopped["step"] == stop and not stopped["completed"]
    reference = read_metrics(workdir / "zero2_full" / "metrics")
    resumed = read_metrics(workdir / "zero2_resume" / "metrics")
    assert [(r["split"], r["step"]) for r in resumed] == [(r["split"], r["step"]) for r in reference]
    for ours, theirs in zip(resumed, reference):
        assert ours["loss"] == pytest.approx(theirs["loss"], abs=1e-5), (ours["split"], ours["step"])
        if ours["split"] == "train":
            assert ours["lr"] == pytest.approx(theirs["lr"], rel=1e-9)
    final = {k: v for k, v in zip(("ref", "resumed"), (
        torch.load(workdir / name / "checkpoints" / "step-00000024" / "trainer_state_rank00001.pt", weights_only=True)
        for name in ("zero2_full", "zero2_resume")))}
    assert final["ref"]["batches"] == final["resumed"]["batches"]


def test_checkpoints_are_sealed_and_rotated(two_rank_runs) -> None:
    complete, incomplete = list_checkpoints(two_rank_runs.workdir / "zero2_resume" / "checkpoints")
    assert [p.name for p in complete] == ["step-00000016", "step-00000024"] and incomplete == []
    manifest = verify_checkpoint(complete[-1])
    assert manifest["world_size"] == 2 and manifest["step"] == 24
    assert {"trainer_state_rank00000.pt", "trainer_state_rank00001.pt"} <= manifest["files"].keys()
    assert manifest["fingerprint"]["trainer"]["ds_config"]["zero_optimization"]["stage"] == 2


def test_zero3_export_is_a_transformers_model_with_the_engines_logits(two_rank_runs) -> None:
    from safetensors.torch import load_file
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    export = two_rank_runs.workdir / "zero3" / "artifacts" / "model"
    assert (export / "model.safetensors").is_file() and not list(export.glob("*.bin"))
    model = AutoModelForMaskedLM.from_pretrained(export).eval()
    engine = load_file(str(two_rank_runs.workdir / "zero3_engine_logits.safetensors"))
    with torch.no_grad():
        logits = model(input_ids=engine["input_ids"], attention_mask=torch.ones_like(engine["input_ids"])).logits
    torch.testing.assert_close(logits, engine["logits"], rtol=0, atol=1e-5)
    assert AutoTokenizer.from_pretrained(export).mask_token == "[MASK]"


def test_all_gather_with_grad_returns_every_rows_gradient_to_its_rank(two_rank_runs) -> None:
    result = json.loads((two_rank_runs.workdir / "all_gather.json").read_text())
    assert result["gathered"] == [[1.0, 1.0], [2.0, 2.0]]
    # Both ranks' losses use weights [[1, 2], [3, 4]]: each rank's row gets the sum of both.
    assert result["grads"] == [[[2.0, 4.0]], [[6.0, 8.0]]]


def test_the_process_group_is_destroyed_before_the_interpreter_exits(tmp_path) -> None:
    """A rank that exits with its gloo group alive can abort in finalisation ("terminate called without
    an active exception"): init_distributed registers the destroy. A handler registered before it runs after it."""
    script = tmp_path / "exit_check.py"
    script.write_text(
        "import atexit\n"
        "import torch.distributed as dist\n"
        "atexit.register(lambda: print('group alive at exit:', dist.is_initialized(), flush=True))\n"
        "from modsent.train.distributed import init_distributed\n"
        "init_distributed()\n"
        "init_distributed()  # a second call registers nothing more\n"
        "assert dist.is_initialized()\n", encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env=child_environment())
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "group alive at exit: False"
