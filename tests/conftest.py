"""Shared test settings and tiny fixtures.

Set before anything imports torch, Ray or transformers: no hub access, one thread per process
(2-core CI runs several ranks at once), DeepSpeed on its CPU accelerator, op builds and tiny
models cached across runs.
"""

import os
import socket
import subprocess
import sys
from pathlib import Path
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
