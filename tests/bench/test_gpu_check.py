"""bench/gpu_check.py: its CPU rehearsal runs every check's code path; without CUDA it skips every check.

The rehearsal is the same check functions with device cpu, gloo (2 ranks), float32/int8, faiss-cpu
and tiny sizes, so a lent GPU's few minutes are not spent on plumbing errors.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from modsent.testing.ranks import child_environment

REPO = Path(__file__).resolve().parents[2]
CHECKS = ("translate", "train", "faiss", "evaluate", "mfu")


def run_gpu_check(*args: str, timeout: float) -> tuple[subprocess.CompletedProcess, dict]:
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), *args], cwd=REPO,
                          env=child_environment(), capture_output=True, text=True, timeout=timeout)
    lines = done.stdout.strip().splitlines()
    assert lines, f"no output (exit {done.returncode}):\n{done.stderr[-4000:]}"
    return done, json.loads(lines[-1])


@pytest.mark.slow
def test_rehearsal_runs_every_check_with_figures():
    done, record = run_gpu_check("--rehearse-on-cpu", "--quick", timeout=240)
    assert done.returncode == 0, done.stderr[-6000:]
    assert (record["bench"], record["device"]) == ("gpu_check", "cpu")
    assert set(record) == {"bench", "device", "params", "results", "ratios"}
    results = record["results"]
    assert set(results) == set(CHECKS)
    for name in CHECKS:
        assert "error" not in results[name] and "skipped" not in results[name], (name, results[name])
        assert results[name]["check_s"] > 0
    assert results["translate"]["ct2_cpu_float32_sentences_per_s"] > 0
    assert results["translate"]["ct2_cpu_int8_sentences_per_s"] > 0
    train = results["train"]
    assert (train["ranks"], train["backend"], train["precision"]) == (2, "gloo", "fp32")
    assert train["losses"] and all(math.isfinite(loss) for loss in train["losses"]) and train["step_s_median"] > 0
    assert results["faiss"]["top1_equal_fraction"] == 1.0 and results["faiss"]["faiss_cpu_s"] > 0
    evaluate = results["evaluate"]
    assert evaluate["max_abs_cosine_diff"] <= 1e-3 and evaluate["max_abs_spearman_rho_diff"] <= 1e-3
    assert set(evaluate["scores_device"]) == set(evaluate["scores_cpu"]) >= {
        "eng_Latn-deu_Latn", "deu_Latn-deu_Latn", "single-model deu_Latn-deu_Latn"}
    mfu = results["mfu"]["tiny"]
    assert mfu["achieved_tflops"] > 0 and mfu["flops_per_step"] > 0 and mfu["mfu"] is None  # no peak for a CPU
    assert {"ct2_int8_speedup_vs_float32", "faiss_gpu_speedup_vs_cpu", "evaluate_sts_speedup_vs_cpu"} <= set(
        record["ratios"])
    assert all(isinstance(value, float) and value > 0 for value in record["ratios"].values())


def test_without_cuda_every_check_is_skipped():
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the default run measures")
    done, record = run_gpu_check(timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    assert record["device"] == "cpu" and record["ratios"] == {}
    assert record["results"] == {name: {"skipped": "no CUDA device"} for name in CHECKS}
