"""Translation and mining as real Ray Jobs: ``ray job submit`` to a 2-node Ray cluster on this machine.

The cluster's head serves its dashboard, and so the Job Submission API, on loopback; a worker
raylet joins it. The references run first on the head alone (the entry points in their own process,
joining through ``ray.address``). Then ``ray_jobs/submit_translate.sh`` and ``ray_jobs/submit_mine.sh``
submit the same configs with two actors from the checkout (``--working-dir .``): each job must
succeed, run on both node ids, and write exactly the reference's files. Last, the translate job runs
again on both nodes while the worker node is killed: it must still write the reference's files.
One cluster and one reference serve all three tests (each costs tens of seconds on 2 cores).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modsent.config import dump_config, load_config
from modsent.mine import MineConfig
from modsent.testing import save_perturbed_encoder, synthetic_sentences, tiny_bert_mlm, translate_synthetic

from .conftest import ROOT, TWO_ACTORS, finish, local_cluster, run_job, translated_outputs, unit_nodes

pytestmark = pytest.mark.slow


@dataclass
class JobsCluster:
    cluster: Any
    worker: Any
    url: str  # the head's dashboard: what RAY_ADDRESS names for `ray job submit`
    expected: dict[str, dict[str, bytes]]  # the head-alone reference runs' files, by job


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mine_config(encoder: Path, inputs: Path, output_dir: Path, num_actors: int) -> MineConfig:
    return load_config(MineConfig, None, [
        f"model={encoder}", f"src=[{inputs / 'src.txt'}]", f"tgt=[{inputs / 'tgt.txt'}]", f"output_dir={output_dir}",
        "embed.shard_size=16", f"embed.num_actors={num_actors}", "embed.cpus_per_actor=0.5", "score.threshold=null",
        "ray.progress_bars=false"])


def _mined(output_dir: Path) -> dict[str, bytes]:
    """The pairs and every embedding shard (the report and shard metadata carry timings)."""
    files = [output_dir / "pairs.parquet", *sorted((output_dir / "embeddings").rglob("*.npy"))]
    return {p.relative_to(output_dir).as_posix(): p.read_bytes() for p in files}


@pytest.fixture(scope="module")
def jobs_cluster(tmp_path_factory, make_config, model_cache):
    root = tmp_path_factory.mktemp("ray-jobs")
    inputs = root / "mine-inputs"
    inputs.mkdir()
    sentences = synthetic_sentences(100, seed=7)
    (inputs / "src.txt").write_text("\n".join(sentences[:40]) + "\n", encoding="utf-8")
    (inputs / "tgt.txt").write_text("\n".join(translate_synthetic(sentences[20:100], "deu_Latn")) + "\n",
                                    encoding="utf-8")
    encoder = save_perturbed_encoder(tiny_bert_mlm(model_cache), root / "encoder", None, 32)
    configs = {"translate_paraphrases": (make_config(root / "translate-ref"), make_config(root / "translate",
                                                                                       compute=TWO_ACTORS)),
               "mine_bitext": (_mine_config(encoder, inputs, root / "mine-ref", 1),
                               _mine_config(encoder, inputs, root / "mine", 2))}
    port = _free_port()
    with local_cluster(dashboard_port=port) as (cluster, add_worker):
        expected = {}
        for job, (reference, _) in configs.items():
            code, log = finish(run_job(reference, cluster.address, job), timeout=120)
            assert code == 0, log
        expected["translate_paraphrases"] = translated_outputs(configs["translate_paraphrases"][0].output_dir)
        assert set(sum(unit_nodes(configs["translate_paraphrases"][0].output_dir).values(), [])) == {
            cluster.head_node.node_id}
        expected["mine_bitext"] = _mined(configs["mine_bitext"][0].output_dir)
        for job, (_, submitted) in configs.items():
            dump_config(submitted, root / f"{job}.yaml")
        yield JobsCluster(cluster, add_worker(), f"http://127.0.0.1:{port}", expected), root


# Ray Data starts a job's actor pool as soon as one actor is ready: on these tiny inputs the head's actor could
# take every block before the worker's has set up the job's working dir. Wait for both (a variable of this
# shell that the job gets through MODSENT_JOB_ENV).
WAIT_FOR_BOTH_ACTORS = {"RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S": "120",
                        "MODSENT_JOB_ENV": "RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S"}


def _submit(jobs: JobsCluster, script: str, config: Path) -> tuple[str, str]:
    """Run ``ray_jobs/SCRIPT CONFIG`` from the checkout with RAY_ADDRESS on the dashboard: its
    submission id and output (the test fails on a non-zero exit)."""
    start = time.monotonic()
    done = subprocess.run([str(ROOT / "ray_jobs" / script), str(config)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "RAY_ADDRESS": jobs.url, **WAIT_FOR_BOTH_ACTORS}, timeout=240)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    print(f"{script}: {time.monotonic() - start:.1f} s")
    return re.search(r"Job '(raysubmit_\w+)' succeeded", output).group(1), output


def _job_info(jobs: JobsCluster, submission_id: str):
    from ray.job_submission import JobStatus, JobSubmissionClient

    info = JobSubmissionClient(jobs.url).get_job_info(submission_id)
    assert info.status == JobStatus.SUCCEEDED
    # The caller's environment reached the job, whatever the nodes were started with.
    env_vars = info.runtime_env["env_vars"]
    assert env_vars["MODSENT_CACHE"] == os.environ["MODSENT_CACHE"] and env_vars["HF_HUB_OFFLINE"] == "1"
    assert env_vars["RAY_DATA_DEFAULT_WAIT_FOR_MIN_ACTORS_S"] == "120"
    return info


def test_translation_submitted_as_a_ray_job_runs_on_both_nodes_and_matches_the_one_node_run(jobs_cluster):
    jobs, root = jobs_cluster
    submission_id, _ = _submit(jobs, "submit_translate.sh", root / "translate_paraphrases.yaml")
    info = _job_info(jobs, submission_id)
    head, worker = jobs.cluster.head_node.node_id, jobs.worker.node_id
    print(f"head {head}, worker {worker}, driver on {info.driver_node_id}")
    assert info.driver_node_id in {head, worker}
    assert set(sum(unit_nodes(root / "translate").values(), [])) == {head, worker}
    assert translated_outputs(root / "translate") == jobs.expected["translate_paraphrases"]

    # What travelled as the working dir: the checkout's sources, without .venv, .git or runs/.
    packages = [p for p in Path(jobs.cluster.head_node.get_session_dir_path(), "runtime_resources",
                                "working_dir_files").glob("_ray_pkg_*") if p.is_dir()]
    assert len(packages) == 1
    files = [p for p in packages[0].rglob("*") if p.is_file()]
    names = {p.relative_to(packages[0]).parts[0] for p in files}
    assert {"modsent", "ray_jobs", "configs"} <= names and not names & {".venv", ".git", "runs"}
    size = sum(p.stat().st_size for p in files)
    print(f"working dir uploaded: {len(files)} files, {size / 2**20:.1f} MiB unpacked")
    assert size < 20 << 20


def test_mining_submitted_as_a_ray_job_embeds_on_both_nodes_and_matches_the_one_node_run(jobs_cluster):
    from ray.util.state import list_tasks

    jobs, root = jobs_cluster
    submission_id, _ = _submit(jobs, "submit_mine.sh", root / "mine_bitext.yaml")
    info = _job_info(jobs, submission_id)
    assert _mined(root / "mine") == jobs.expected["mine_bitext"]
    report = json.loads((root / "mine" / "mine_report.json").read_text())
    assert report["sides"]["src"]["unique"] == 40

    # Mining records no node ids in its files: Ray's task events say where the embedding actors ran.
    nodes: set[str] = set()
    deadline = time.monotonic() + 30
    while nodes != {jobs.cluster.head_node.node_id, jobs.worker.node_id} and time.monotonic() < deadline:
        tasks = list_tasks(address=jobs.url, filters=[("job_id", "=", info.job_id)], limit=10_000,
                           raise_on_missing_output=False)
        nodes = {t.node_id for t in tasks if "EmbedActor" in t.name and t.name.endswith(".submit")
                 and t.state == "FINISHED" and t.node_id}
        time.sleep(1)
    print(f"embedding tasks ran on {sorted(nodes)}")
    assert nodes == {jobs.cluster.head_node.node_id, jobs.worker.node_id}


# Last in this module: it takes the worker node away from the cluster the tests above share.
def test_translation_survives_losing_the_worker_node_mid_job_and_matches_the_one_node_run(jobs_cluster, make_config):
    jobs, root = jobs_cluster
    cluster, worker = jobs.cluster, jobs.worker
    killed = make_config(root / "worker-killed", compute=TWO_ACTORS)
    job = run_job(killed, cluster.address)
    units = Path(killed.output_dir) / "work" / "units"

    # Kill the worker node (its raylet, object store and actor, no graceful exit) once the first unit is saved.
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
    print(f"head {cluster.head_node.node_id}, worker {worker.node_id}; job with the worker killed: exit {code}")
    if code != 0:  # the job may stop with the node; a rerun must resume from the saved units
        saved = unit_nodes(killed.output_dir)
        code, log = finish(run_job(killed, cluster.address))
        assert code == 0, log
        assert {name: nodes for name, nodes in unit_nodes(killed.output_dir).items() if name in saved} == saved
    assert translated_outputs(killed.output_dir) == jobs.expected["translate_paraphrases"]
