"""DeepSpeed's multi-node runner across two hosts of this machine: 127.0.0.1 and 127.0.0.2, one CPU rank each (gloo).

``launchers/deepspeed_multinode.sh`` runs once per node with ``NODE_RANK`` (DeepSpeed's ``--no_ssh`` mode, so no
sshd is needed); the model it trains must equal the one a one-node, 2-rank torchrun job trains.
``launchers/slurm_pipeline.sbatch`` runs with stand-ins for ``scontrol`` and ``modsent`` on ``PATH``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest

from modsent.config import dump_config
from modsent.testing.ranks import child_environment

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
HOSTS = ("127.0.0.1", "127.0.0.2")
STEPS = 8


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _shm_buffers(port: int) -> list[Path]:
    return sorted(Path("/dev/shm").glob(f"deepspeed_allreduce_buffer_{os.getuid()}_*_{port}_*"))


def _launch_node(node_rank: int, hostfile: Path, port: int, config: Path, output_dir: Path) -> subprocess.Popen:
    # The `deepspeed` runner on PATH is this venv's; gloo binds to the loopback interface, where both hosts live.
    env = child_environment(
        PATH=os.pathsep.join((str(Path(sys.executable).parent), os.environ["PATH"])), PYTHON=sys.executable,
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        MASTER_ADDR=HOSTS[0], MASTER_PORT=str(port), NODE_RANK=str(node_rank), GLOO_SOCKET_IFNAME="lo",
        OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu")
    return subprocess.Popen(
        [str(REPO / "launchers" / "deepspeed_multinode.sh"), str(hostfile), "adapt", "--config", str(config),
         f"output_dir={output_dir}"],
        cwd=hostfile.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True)  # its own process group: the launcher and its rank can be killed with the script


def test_two_loopback_hosts_train_the_model_a_one_node_run_trains(
        tmp_path: Path, tiny_mlm: Path, adapt_config: Callable[..., Any], run_torchrun: Callable[..., None]) -> None:
    from safetensors.torch import load_file

    config = tmp_path / "adapt.yaml"
    dump_config(adapt_config(tmp_path / "unused", max_steps=STEPS, eval_every=STEPS, save_every=STEPS), config)
    run_torchrun(["-m", "modsent.cli", "adapt", "--config", str(config), f"output_dir={tmp_path / 'one'}"],
                 cwd=tmp_path)

    hostfile = tmp_path / "hostfile"
    hostfile.write_text("".join(f"{host} slots=1\n" for host in HOSTS))
    port = _free_port()
    nodes = [_launch_node(rank, hostfile, port, config, tmp_path / "two") for rank in range(len(HOSTS))]
    try:
        logs = [node.communicate(timeout=300)[0] for node in nodes]
    finally:
        for node in nodes:
            try:
                os.killpg(node.pid, signal.SIGKILL)
            except ProcessLookupError:  # all of it has exited
                pass
        for buffer in _shm_buffers(port):  # the launcher's own cleanup did not run if it was killed
            buffer.unlink()
    for rank, (node, log) in enumerate(zip(nodes, logs)):
        assert node.returncode == 0, f"node {rank} failed ({node.returncode}):\n{log[-6000:]}"
        # each launcher started one rank, of a world of two spread over both hosts
        assert f"nnodes=2, num_local_procs=1, node_rank={rank}" in log
        assert "global_rank_mapping=defaultdict(<class 'list'>, {'127.0.0.1': [0], '127.0.0.2': [1]})" in log

    one, two = (load_file(str(tmp_path / run / "artifacts" / "model" / "model.safetensors")) for run in ("one", "two"))
    assert one.keys() == two.keys()
    diffs = {name: (one[name] - two[name]).abs().max().item() for name in one}
    print(f"max abs difference, 2 nodes vs 1 node: {max(diffs.values()):.3g}")
    assert max(diffs.values()) <= 1e-5, diffs
    # the training moved the weights: equal models are not two untouched copies of the tiny BERT
    start = load_file(str(tiny_mlm / "model.safetensors"))
    assert max((start[name] - one[name]).abs().max().item() for name in one if name in start) > 1e-3


def test_slurm_script_builds_the_hostfile_from_the_allocation_and_runs_the_pipeline_on_it(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # scontrol expands the node list; the modsent stand-in records how it was called and the hostfile it was given
    (bin_dir / "scontrol").write_text(
        '#!/bin/sh\n[ "$1 $2 $3" = "show hostnames $SLURM_JOB_NODELIST" ] || exit 9\n'
        + "".join(f"echo {host}\n" for host in HOSTS))
    (bin_dir / "modsent").write_text(
        '#!/bin/sh\nprintf "%s\\n" "$@" > modsent.args\nhostfile=${4#resources.hostfile=}\ncp "$hostfile" used.hosts\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    env = child_environment(PATH=os.pathsep.join((str(bin_dir), os.environ["PATH"])), SLURM_JOB_ID="42",
                            SLURM_JOB_NODELIST="127.0.0.[1-2]", SLURM_GPUS_PER_NODE="gpu:1",
                            SLURM_SUBMIT_DIR=str(tmp_path))
    script = REPO / "launchers" / "slurm_pipeline.sbatch"
    done = subprocess.run(["bash", str(script), "pipeline.yaml", "stages=[adapt]"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    hostfile = tmp_path / "hostfile.42"
    assert (tmp_path / "modsent.args").read_text().splitlines() == [
        "run", "--config", "pipeline.yaml", f"resources.hostfile={hostfile}", "stages=[adapt]"]
    assert (tmp_path / "used.hosts").read_text() == "127.0.0.1 slots=1\n127.0.0.2 slots=1\n"
    assert "HF_HUB_OFFLINE=1" in (tmp_path / ".deepspeed_env").read_text().splitlines()
