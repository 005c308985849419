"""The Dockerfile cannot be built here (no Docker engine): check what it must contain, as text.

Whether the image's Python can install every pin is checked against docker/requires-python.json, each
pin's Requires-Python read from its metadata by docker/refresh_requires_python.py (run it after changing
constraints.txt), so no test downloads anything.
"""

import json
import re
import shlex
from pathlib import Path

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
DOCKERFILE = (REPO / "Dockerfile").read_text()
#: The python3 each Ubuntu release ships (what ``apt-get install pythonX.Y`` can find there).
UBUNTU_PYTHON = {"20.04": "3.8", "22.04": "3.10", "24.04": "3.12"}


def instructions(keyword: str) -> list[str]:
    return [line for line in DOCKERFILE.splitlines() if line.startswith(keyword + " ")]


def image_python() -> str:
    """The python3 of the base image's Ubuntu release: the one its apt installs."""
    (base,) = instructions("FROM")
    return UBUNTU_PYTHON[re.search(r"ubuntu(\d+\.\d+)", base).group(1)]


def copied_sources() -> list[str]:
    return [source for line in instructions("COPY") for source in shlex.split(line)[1:-1] if not source.startswith("--")]


def pins() -> dict[str, str]:
    lines = (line.strip() for line in (REPO / "constraints.txt").read_text().splitlines())
    requirements = [Requirement(line) for line in lines if line and not line.startswith("#")]
    return {canonicalize_name(r.name): str(r.specifier).removeprefix("==") for r in requirements}


def test_cuda_base_image():
    (base,) = instructions("FROM")
    assert base.startswith("FROM nvidia/cuda:") and "devel" in base  # nvcc for prebuilt DeepSpeed ops


def test_the_image_python_installs_every_pin():
    snapshot = json.loads((REPO / "docker" / "requires-python.json").read_text())
    refused = {name: pin["requires_python"] for name, pin in snapshot.items()
               if pin["requires_python"] and not SpecifierSet(pin["requires_python"]).contains(image_python())}
    assert not refused, f"the image's Python {image_python()} is refused by the pins {refused}"
    # The Python checked is the one pip installs into: ARG PYTHON names it, and the virtualenv is made with it.
    assert [line for line in instructions("ARG") if line.startswith("ARG PYTHON=")] == [f"ARG PYTHON={image_python()}"]
    assert "python${PYTHON} -m venv" in DOCKERFILE


def test_the_requires_python_snapshot_is_of_the_pins_in_constraints_txt():
    snapshot = json.loads((REPO / "docker" / "requires-python.json").read_text())
    assert {name: pin["version"] for name, pin in snapshot.items()} == pins(), (
        "docker/requires-python.json is not of constraints.txt: run .venv/bin/python docker/refresh_requires_python.py")


def test_installs_our_package_with_the_pins_and_gpu_extra():
    runs = "\n".join(instructions("RUN"))
    assert 'pip install -c constraints.txt ".[gpu,focus]"' in runs and "torch==" in runs
    assert all("-c constraints.txt" in command for command in re.findall(r"pip install[^&\n]*", runs))
    assert "DS_BUILD_FUSED_ADAM=1" in runs


def test_multi_node_tools_and_scripts_are_in_the_image():
    apt = next(line for line in DOCKERFILE.split("RUN ") if "apt-get install" in line)
    assert {"pdsh", "openssh-client", "openssh-server"} <= set(apt.split())
    assert {"launchers", "ray_jobs", "configs", "ds_configs", "constraints.txt"} <= set(copied_sources())


def test_every_path_the_dockerfile_copies_exists():
    assert copied_sources()
    missing = [source for source in copied_sources() if not (REPO / source).exists()]
    assert not missing, f"the Dockerfile copies {missing}, which the checkout lacks"


def test_entrypoint_and_documented_run_lines():
    assert instructions("ENTRYPOINT") == ['ENTRYPOINT ["modsent"]']
    assert "docker run --gpus all" in DOCKERFILE and "ray" in DOCKERFILE  # training node and Ray worker lines
