"""A stand-in ``modsent run``: one fan-out job of two torchrun ranks (sleeper_rank.py), started
exactly as run_pipeline starts its distributed jobs (run_jobs → launch_command → run_subprocess)."""

import sys
from pathlib import Path

from modsent.dirlock import hold_directory
from modsent.pipeline.fanout import Job, device_pool, launch_command, run_jobs, run_subprocess

out = Path(sys.argv[1])
hold_directory(out / "run", "modsent run (stand-in)")


def job(devices, port):
    run_subprocess(launch_command(["sleeper_rank", str(out)], devices, port, use_gpus=False), out / "job.log")


try:
    run_jobs([Job("sleepers", job, devices=2)], device_pool(cpu_ranks=2), retries=1)
except KeyboardInterrupt:
    sys.exit(130)
