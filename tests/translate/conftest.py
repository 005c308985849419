"""Fixtures for the translate stage: one local Ray, a lively tiny NLLB, a small paraphrase corpus.

``tiny_nllb`` as built is deterministic nonsense *and constant*: at init_std 0.02 every input
decodes to the same string, so equality and byte-identity tests would pass vacuously. The
"lively" variant re-initialises the same architecture and tokenizer with init_std 1.0: outputs
then depend on the sentence and the target language and stop at varying lengths.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, Optional

import pytest

from modsent.config import dump_config
from modsent.corpus import open_dataset, write_dataset
from modsent.testing.synthetic import write_synthetic_corpus
from modsent.testing.tiny_models import tiny_nllb
from modsent.translate import ComputeConfig, DecodingConfig, ModelConfig, QualityConfig, RayConfig, TranslateConfig

TARGETS = ["deu_Latn", "rus_Cyrl", "zho_Hans"]  # test_translate_job.py repeats this list
ROOT = Path(__file__).resolve().parents[2]
# For a cluster of 1-CPU nodes (local_cluster): SPREAD (Ray Data's default for actors) puts one 0.5-CPU actor
# on each node, and the other half CPU leaves room for Ray Data's own tasks and for an actor restarted on the head.
TWO_ACTORS = ComputeConfig(device="cpu", num_actors=2, cpus_per_actor=0.5, examples_per_task=48, max_batch_size=1)


@pytest.fixture(scope="session")
def ray_local(tmp_path_factory):
    """One local Ray for every test that needs it (init and shutdown cost seconds each)."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, object_store_memory=256 << 20, include_dashboard=False, _node_ip_address="127.0.0.1",
             _temp_dir=str(tmp_path_factory.mktemp("ray")), log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def lively_nllb(tmp_path_factory, model_cache) -> Path:
    """A transformers NLLB checkpoint (tiny_nllb's architecture and tokenizer, init_std 1.0)."""
    import torch
    from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoTokenizer

    source = tiny_nllb(model_cache)
    config = AutoConfig.from_pretrained(source)
    config.init_std = 1.0
    out = tmp_path_factory.mktemp("lively-nllb")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        AutoModelForSeq2SeqLM.from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(source).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def ct2_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ct2-cache")


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    """Two seed-layout datasets (one with hard negatives) with repeated sentences, and one JSONL."""
    root = tmp_path_factory.mktemp("corpus")
    write_synthetic_corpus(root, [], {"quora": 40, "wiki": 24}, triplet_datasets=["wiki"], repeat_fraction=0.3)
    wiki = open_dataset(root / "wiki")
    rows = list(wiki.iter_rows([("eng_Latn", 1), ("eng_Latn", 2)]))[:10]
    # The JSONL rows repeat wiki's sentences: dedup across datasets and formats.
    write_dataset(root / "pairs.jsonl", {("eng_Latn", 1): [r[1] for r in rows], ("eng_Latn", 2): [r[0] for r in rows]},
                  fmt="jsonl")
    return root


@pytest.fixture(scope="session")
def make_config(corpus, lively_nllb, ct2_cache):
    """Build a TranslateConfig for the test corpus; keyword arguments replace fields."""

    def build(output_dir: Path, **changes) -> TranslateConfig:
        config = TranslateConfig(
            corpora=[corpus], languages=list(TARGETS), output_dir=output_dir,
            model=ModelConfig(path=lively_nllb, quantization="float32", cache_dir=ct2_cache),
            shard_size=16,
            decoding=DecodingConfig(max_decoding_length=24),
            # One sentence per CTranslate2 batch: float32 logits change by ~1e-3 with the batch's
            # composition (padding, GEMM shapes), enough to flip a near-tie on some CPU; the reruns
            # that must equal the reference byte for byte batch differently from it.
            compute=ComputeConfig(device="cpu", num_actors=1, examples_per_task=48, max_batch_size=1),
            ray=RayConfig(progress_bars=False),
            quality=QualityConfig(write_review=True, max_review_rows_per_language=5),
        )
        return replace(config, **changes)

    return build



@contextlib.contextmanager
def local_cluster(dashboard_port: Optional[int] = None) -> Iterator[tuple[Any, Callable[[], Any]]]:
    """A real Ray cluster on this machine: a head raylet (1 CPU) now, worker raylets on demand.

    Yields ``(cluster, add_worker)`` (a ``ray.cluster_utils.Cluster``; ``add_worker()`` starts one
    more 1-CPU node and returns it). With ``dashboard_port`` the head serves its dashboard, and so
    the Job Submission API, at ``http://127.0.0.1:PORT``; a submitted job's entry point finds this
    Python's ``python`` and ``ray`` first on PATH.
    """
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    with pytest.MonkeyPatch.context() as env:
        env.setenv("RAY_USAGE_STATS_ENABLED", "0")
        env.setenv("RAY_AUTH_MODE", "disabled")
        env.setenv("PATH", os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
        # Ray's socket paths live under the temp dir and must stay under 108 bytes: keep it short. The
        # cluster's address file goes there too (RAY_TMPDIR), not into the /tmp/ray other Rays share.
        temp_dir = tempfile.mkdtemp(prefix="msray-", dir="/tmp")
        env.setenv("RAY_TMPDIR", temp_dir)
        Path(temp_dir, "ray").mkdir()  # where Ray writes it under RAY_TMPDIR
        # Both nodes on the machine's address: ray.init(address=...) rewrites 127.0.0.1 to it, so a
        # cluster on loopback cannot be joined by address. The dashboard alone listens on loopback.
        node_args = {"num_cpus": 1, "object_store_memory": 128 << 20, "temp_dir": temp_dir}
        head_args = ({"include_dashboard": False} if dashboard_port is None else
                     {"include_dashboard": True, "dashboard_host": "127.0.0.1", "dashboard_port": dashboard_port})
        cluster = Cluster()
        try:
            cluster.add_node(**node_args, **head_args)  # the first node is the head
            yield cluster, lambda: cluster.add_node(**node_args)
        finally:
            cluster.shutdown()
            shutil.rmtree(temp_dir, ignore_errors=True)


def translated_outputs(output_dir: Path) -> dict[str, bytes]:
    """The translations and what describes them: the corpus, its manifest, the review rows. Left out:
    config.yaml (output_dir, compute differ), the summary (counts units reused) and work/ (timestamps)."""
    files = sorted((output_dir / "corpus").rglob("*.txt")) + [output_dir / "manifest.json", output_dir / "review.jsonl"]
    return {p.relative_to(output_dir).as_posix(): p.read_bytes() for p in files}


def unit_nodes(output_dir: Path) -> dict[str, list[str]]:
    """The Ray node ids that translated each unit (its unit file's 'nodes')."""
    return {p.relative_to(output_dir).as_posix(): json.loads(p.read_text())["nodes"]
            for p in sorted((output_dir / "work" / "units").rglob("shard-*.json"))}


def run_job(config, address: str, job: str = "translate_paraphrases") -> subprocess.Popen:
    """Start ``ray_jobs/JOB.py`` on ``config`` (saved beside its output_dir) in its own process, joining the
    cluster at ``address`` through ``ray.address``, as a submitted job would."""
    path = Path(config.output_dir).with_suffix(".yaml")
    dump_config(config, path)
    return subprocess.Popen([sys.executable, str(ROOT / "ray_jobs" / f"{job}.py"), "--config", str(path),
                             f"ray.address={address}"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def finish(job: subprocess.Popen, timeout: float = 90) -> tuple[int, str]:
    """Wait for a job process: its exit status and output (the test fails if it hangs)."""
    try:
        output, _ = job.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        job.kill()
        output = job.communicate()[0]
        pytest.fail(f"the job {job.args} hung:\n{output}")
    return job.returncode, output
