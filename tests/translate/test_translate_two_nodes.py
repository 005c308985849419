"""The translate job on a real 2-node Ray cluster on this machine (a head and a worker raylet).

One cluster serves the whole test, so it starts once: the job first runs on the head alone (the
reference), then on both nodes with one actor each, then again on both while the worker node is
killed. The job is the entry point a Ray Job runs (``ray_jobs/translate_paraphrases.py``), in its
own process, joining the cluster through ``ray.address`` as a submitted job would.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from .conftest import TWO_ACTORS, finish, local_cluster, run_job, translated_outputs, unit_nodes

pytestmark = pytest.mark.slow

@pytest.fixture
def cluster():
    with local_cluster() as started:
        yield started


def test_two_node_cluster_translates_on_both_nodes_identically_and_survives_losing_the_worker(
        cluster, make_config, tmp_path):
    cluster, add_worker = cluster
    head = cluster.head_node.node_id

    reference = make_config(tmp_path / "one-node")
    code, log = finish(run_job(reference, cluster.address))
    assert code == 0, log
    assert set(sum(unit_nodes(reference.output_dir).values(), [])) == {head}
    expected = translated_outputs(reference.output_dir)
    assert len(expected) > 10

    worker = add_worker()
    two_nodes = make_config(tmp_path / "two-nodes", compute=TWO_ACTORS)
    code, log = finish(run_job(two_nodes, cluster.address))
    assert code == 0, log
    assert set(sum(unit_nodes(two_nodes.output_dir).values(), [])) == {head, worker.node_id}
    assert translated_outputs(two_nodes.output_dir) == expected

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
    assert translated_outputs(killed.output_dir) == expected
