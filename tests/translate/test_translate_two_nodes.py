"""The translate job on a real 2-node Ray cluster on this machine (a head and a worker raylet).

One cluster serves the whole test, so it starts once: the job first runs on the head alone (the
reference), then on both nodes with one actor each, then again on both while the worker node is
killed. The job is the entry point a Ray Job runs (``ray_jobs/translate_paraphrases.py``), in its
own process, joining the cluster through ``ray.address`` as a submitted job would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from modsent.config import dump_config
from modsent.translate import ComputeConfig

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# Each node has 1 CPU; SPREAD (Ray Data's default for actors) puts one 0.5-CPU actor on each, and
# the other half CPU leaves room for Ray Data's own tasks and for an actor restarted on the head.
TWO_ACTORS = ComputeConfig(device="cpu", num_actors=2, cpus_per_actor=0.5, examples_per_task=48, max_batch_size=1)


@pytest.fixture
def cluster(monkeypatch):
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    # Ray's socket paths live under the temp dir and must stay under 108 bytes: keep it short. The
    # cluster's address file goes there too (RAY_TMPDIR), not into the /tmp/ray other Rays share.
    temp_dir = tempfile.mkdtemp(prefix="msray-", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", temp_dir)
    Path(temp_dir, "ray").mkdir()  # where Ray writes it under RAY_TMPDIR
    # Both nodes on the machine's address: ray.init(address=...) rewrites 127.0.0.1 to it, so a
    # cluster on loopback cannot be joined by address.
    node_args = {"num_cpus": 1, "object_store_memory": 128 << 20, "temp_dir": temp_dir}
    cluster = Cluster()
    try:
        cluster.add_node(**node_args, include_dashboard=False)  # the first node is the head
        yield cluster, lambda: cluster.add_node(**node_args)
    finally:
        cluster.shutdown()
        shutil.rmtree(temp_dir, ignore_errors=True)


def run_job(config, address: str) -> subprocess.Popen:
    path = Path(config.output_dir).with_suffix(".yaml")
    dump_config(config, path)
    return subprocess.Popen([sys.executable, str(ROOT / "ray_jobs" / "translate_paraphrases.py"), "--config", str(path),
                             f"ray.address={address}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(job: subprocess.Popen) -> tuple[int, str]:
    try:
        output, _ = job.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        job.kill()
        output = job.communicate()[0]
        pytest.fail(f"the translate job hung:\n{output}")
    return job.returncode, output


def outputs(output_dir: Path) -> dict[str, bytes]:
    """The translations and what describes them: the corpus, its manifest, the review rows. Left out:
    config.yaml (output_dir, compute differ), the summary (counts units reused) and work/ (timestamps)."""
    files = sorted((output_dir / "corpus").rglob("*.txt")) + [output_dir / "manifest.json", output_dir / "review.jsonl"]
    return {p.relative_to(output_dir).as_posix(): p.read_bytes() for p in files}


def unit_nodes(output_dir: Path) -> dict[str, list[str]]:
    return {p.relative_to(output_dir).as_posix(): json.loads(p.read_text())["nodes"]
            for p in sorted((output_dir / "work" / "units").rglob("shard-*.json"))}


def test_two_node_cluster_translates_on_both_nodes_identically_and_survives_losing_the_worker(
        cluster, make_config, tmp_path):
    cluster, add_worker = cluster
    head = cluster.head_node.node_id

    reference = make_config(tmp_path / "one-node")
    code, log = finish(run_job(reference, cluster.address))
    assert code == 0, log
    assert set(sum(unit_nodes(reference.output_dir).values(), [])) == {head}
    expected = outputs(reference.output_dir)
    assert len(expected) > 10

    worker = add_worker()
    two_nodes = make_config(tmp_path / "two-nodes", compute=TWO_ACTORS)
    code, log = finish(run_job(two_nodes, cluster.address))
    assert code == 0, log
    assert set(sum(unit_nodes(two_nodes.output_dir).values(), [])) == {head, worker.node_id}
    assert outputs(two_nodes.output_dir) == expected

    # Kill the worker node (its raylet, object store and actor, no graceful exit) once the first unit is saved.
    killed = make_config(tmp_path / "worker-killed", compute=TWO_ACTORS)
    job = run_job(killed, cluster.address)
    units = Path(killed.output_dir) / "work" / "units"

    def kill_worker_after_first_unit() -> None:
        deadline = time.monotonic() + 60
        while job.poll() is None and time.monotonic() < deadline:
            if any(units.rglob("shard-*.json")):
                cluster.remove_node(worker, allow_graceful=False)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_worker_after_first_unit)
    killer.start()
    code, log = finish(job)
    killer.join()
    assert worker not in cluster.worker_nodes, "the job ended before its first unit was saved"
    # What happened, for the CI log (pytest -rP): the node ids, and whether the job survived the kill.
    print(f"head {head}, worker {worker.node_id}; job with the worker killed: exit {code}")
    if code != 0:  # the job may stop with the node; a rerun must resume from the saved units
        saved = unit_nodes(killed.output_dir)
        code, log = finish(run_job(killed, cluster.address))
        assert code == 0, log
        assert {name: nodes for name, nodes in unit_nodes(killed.output_dir).items() if name in saved} == saved
    assert outputs(killed.output_dir) == expected
