"""Shared test settings and tiny fixtures.

Set before anything imports torch, Ray or transformers: no hub access, one thread per process
(2-core CI runs several ranks at once), DeepSpeed on its CPU accelerator, op builds and tiny
models cached across runs.
"""

import os
from pathlib import Path
from typing import Iterator

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
