"""The Dockerfile cannot be built here (no Docker engine): check what it must contain, as text."""

from pathlib import Path

DOCKERFILE = (Path(__file__).resolve().parents[1] / "Dockerfile").read_text()


def instructions(keyword: str) -> list[str]:
    return [line for line in DOCKERFILE.splitlines() if line.startswith(keyword + " ")]


def test_cuda_base_image():
    (base,) = instructions("FROM")
    assert base.startswith("FROM nvidia/cuda:") and "devel" in base  # nvcc for prebuilt DeepSpeed ops


def test_installs_our_package_with_gpu_extra():
    runs = "\n".join(instructions("RUN"))
    assert 'pip install -e ".[gpu,focus]"' in runs and "torch==" in runs
    assert "DS_BUILD_FUSED_ADAM=1" in runs
    assert instructions("COPY") and any("modsent" in line for line in instructions("COPY"))


def test_entrypoint_and_documented_run_lines():
    assert instructions("ENTRYPOINT") == ['ENTRYPOINT ["modsent"]']
    assert "docker run --gpus all" in DOCKERFILE and "ray" in DOCKERFILE  # training node and Ray worker lines
