"""Where a Ray cluster with a GPU puts translation, seen from a driver without one.

Starts a local Ray that declares one GPU on this GPU-less machine (``ray.init(num_gpus=1)``); its
workers' device probe answers from the ``CUDA_VISIBLE_DEVICES`` Ray gives them, as a real GPU
worker's CUDA runtime would. For each ``compute.device`` it prints (one JSON line) what the driver
asks for and what a worker given those resources resolves. test_translate_devices.py runs it in a
fresh process: the tests' own Ray session is CPU-only, and one process holds one Ray session.

usage: python fake_gpu_ray.py RAY_TEMP_DIR
"""

from __future__ import annotations

import json
import os
import sys

import ray

from modsent.translate import ComputeConfig
from modsent.translate.stage import actor_placement
from modsent.translate.translator import actor_translator_kwargs


def probe_follows_ray() -> None:
    """In each worker: the GPUs it sees are the ones Ray made visible to it (the machine has none)."""
    import modsent.translate.model as model

    model.cuda_device_count = lambda: len([d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d])


def main(temp_dir: str) -> None:
    ray.init(num_cpus=2, num_gpus=1, object_store_memory=256 << 20, include_dashboard=False,
             _node_ip_address="127.0.0.1", _temp_dir=temp_dir, log_to_driver=False,
             runtime_env={"worker_process_setup_hook": probe_follows_ray})
    placed = {}
    for device in ("auto", "cuda", "cpu"):
        actor_device, resources = actor_placement(ComputeConfig(device=device), "float32")
        kwargs = ray.get(ray.remote(**resources)(actor_translator_kwargs).remote(
            {"device": actor_device, "device_index": None}))
        placed[device] = {"device": actor_device, "resources": resources,
                          "actor": {"device": kwargs["device"], "device_index": kwargs["device_index"]}}
    ray.shutdown()
    print(json.dumps(placed))


if __name__ == "__main__":
    main(sys.argv[1])
