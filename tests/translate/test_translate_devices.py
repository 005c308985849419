"""Where translation runs: the driver asks the Ray cluster for GPUs, each actor resolves ``auto`` itself.

Before: ``resolve_device`` decided ``auto`` from the driver's own CUDA runtime, so a CPU-only head
node left GPU workers on CPU, and ``device: cuda`` failed on the driver of a cluster with GPUs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modsent.testing.ranks import child_environment
from modsent.translate import ComputeConfig, ModelError, run_translate
from modsent.translate.stage import actor_placement

REPO = Path(__file__).resolve().parents[2]


def test_a_gpu_in_the_cluster_goes_to_the_actors_though_the_driver_has_none(tmp_path_factory):
    env = child_environment(PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    ray_dir = tmp_path_factory.mktemp("ray")  # a short path: Ray's sockets live under it (107 bytes at most)
    done = subprocess.run([sys.executable, str(Path(__file__).with_name("procs") / "fake_gpu_ray.py"), str(ray_dir)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    placed = json.loads(done.stdout.splitlines()[-1])
    for device in ("auto", "cuda"):  # the driver passes it on and reserves a GPU; the actor sees it and uses it
        assert placed[device] == {"device": device, "resources": {"num_cpus": 0.5, "num_gpus": 1.0},
                                  "actor": {"device": "cuda", "device_index": [0]}}
    assert placed["cpu"] == {"device": "cpu", "resources": {"num_cpus": 0.5},
                             "actor": {"device": "cpu", "device_index": [0]}}


def test_a_cluster_without_gpus_translates_on_cpu_and_refuses_cuda_in_one_line(ray_local, make_config, tmp_path):
    assert actor_placement(ComputeConfig(device="auto"), "float32") == ("cpu", {"num_cpus": 0.5})
    with pytest.raises(ModelError, match="float16 is not supported on cpu"):
        actor_placement(ComputeConfig(device="auto"), "float16")
    with pytest.raises(ModelError) as refused:
        run_translate(make_config(tmp_path / "out", compute=ComputeConfig(device="cuda")))
    message = str(refused.value)
    assert "compute.device is cuda but no node of the Ray cluster has a GPU" in message and "\n" not in message
