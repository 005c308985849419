"""Shared test settings and tiny fixtures.

Set before anything imports torch, Ray or transformers: no hub access, one thread per process
(2-core CI runs several ranks at once), DeepSpeed on its CPU accelerator, op builds and tiny
models cached across runs.
"""

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Callable, Iterator

_CACHE = Path(os.environ.setdefault("MODSENT_CACHE", str(Path.home() / ".cache" / "modsent")))
for key, value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
    "DS_ACCELERATOR": "cpu",
    "TORCH_EXTENSIONS_DIR": str(_CACHE / "torch_extensions"),
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",
    "MPLBACKEND": "Agg",
}.items():
    os.environ.setdefault(key, value)

import numpy as np  # noqa: E402
import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _torchrun(args: list[str], cwd: Path, timeout: float = 400) -> None:
    """Run ``torchrun --nproc_per_node 2 ARGS`` on loopback; fail the test with the output's tail.

    The ranks run with Python's fault handler on, so a rank that dies from a signal (SIGABRT,
    SIGSEGV) prints every thread's Python stack into the failure message.
    """
    from modsent.testing.ranks import child_environment

    env = child_environment(OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu", PYTHONFAULTHANDLER="1",
                            PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p))
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *args]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({done.returncode}):\n{(done.stdout + done.stderr)[-8000:]}")


@pytest.fixture(scope="session")
def run_torchrun() -> Callable[..., None]:
    """Runs 2 CPU ranks under torchrun (gloo, loopback): ``run_torchrun(args, cwd, timeout=400)``."""
    return _torchrun


@pytest.fixture(scope="session")
def model_cache() -> Path:
    """Where tiny models are built once and reused across tests and runs."""
    return _CACHE


@pytest.fixture
def unwritable_dir(tmp_path) -> Iterator[Path]:
    """A directory path nothing can be written under (root ignores permissions: use a sysfs path then)."""
    if os.geteuid() == 0:
        yield Path("/sys/modsent-test-output/out")
        return
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    yield parent / "out"
    parent.chmod(0o755)


# ------------------------------------------------------------------------------------ evaluation fakes
# Handed out by the ``fakes`` fixture (the suite runs with ``--import-mode=importlib``, so test modules
# cannot import helpers by name): a deterministic fake encoder and writers of evaluation files in their
# published layouts.

DIM = 16


class HashEncoder:
    """Deterministic stand-in for a model: each (text, lang, aligned) hashes to a unit vector.

    ``shared_space=True`` drops ``lang``/``aligned`` from the hash, so translations that are the same
    string land on the same vector (useful where a test needs correct retrievals). Every call is
    recorded in ``calls`` as (lang, aligned, number of texts).
    """

    def __init__(self, shared_space: bool = False, fingerprint: str | None = None) -> None:
        self.shared_space = shared_space
        self.fingerprint = fingerprint
        self.calls: list[tuple[str, bool, int]] = []

    def vector(self, text: str, lang: str, aligned: bool) -> np.ndarray:
        key = text if self.shared_space else f"{lang}|{aligned}|{text}"
        seed = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "little")
        vec = np.random.default_rng(seed).standard_normal(DIM)
        return (vec / np.linalg.norm(vec)).astype(np.float32)

    def encode(self, texts: list[str], lang: str, aligned: bool) -> np.ndarray:
        self.calls.append((lang, aligned, len(texts)))
        return np.stack([self.vector(t, lang, aligned) for t in texts])


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def belebele_records(lang: str, n_passages: int = 3, questions_per_passage: int = 2, seed: int = 0) -> list[dict]:
    """Belebele rows in the published layout (string answer numbers, as facebook/belebele has them)."""
    rng = np.random.default_rng(seed)
    records = []
    for p in range(n_passages):
        for q in range(1, questions_per_passage + 1):
            records.append({
                "link": f"https://en.wikibooks.org/wiki/page_{p}",
                "question_number": q,
                "flores_passage": f"[{lang}] passage {p} about topic {p} with several sentences.",
                "question": f"[{lang}] question {q} on passage {p}?",
                "mc_answer1": f"[{lang}] option a {p}.{q}",
                "mc_answer2": f"[{lang}] option b {p}.{q}",
                "mc_answer3": f"[{lang}] option c {p}.{q}",
                "mc_answer4": f"[{lang}] option d {p}.{q}",
                "correct_answer_num": str(int(rng.integers(1, 5))),
                "dialect": lang,
                "ds": "2023-05-03",
            })
    return records


def write_belebele(directory: Path, languages: list[str], **kwargs) -> Path:
    for lang in languages:
        write_jsonl(directory / f"{lang}.jsonl", belebele_records(lang, **kwargs))
    return directory


@pytest.fixture
def fakes() -> SimpleNamespace:
    return SimpleNamespace(HashEncoder=HashEncoder, write_jsonl=write_jsonl, belebele_records=belebele_records,
                           write_belebele=write_belebele)
