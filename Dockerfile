# modsent on a CUDA host: training node (DeepSpeed) or Ray worker (translation).
#   docker build -t modsent .
#   Training node:  docker run --gpus all --network host --ipc host -v /data:/data modsent \
#                     run /data/pipeline.yaml
#   Ray worker:     docker run --gpus all --network host --ipc host --entrypoint ray modsent \
#                     start --address=<head-ip>:6379 --block
#   Multi-node DeepSpeed (launchers/deepspeed_multinode.sh, launchers/slurm_pipeline.sbatch): the launching
#   node reaches the others with pdsh over ssh; each other node runs sshd with the launcher's key:
#                   docker run ... -v ~/.ssh/authorized_keys:/root/.ssh/authorized_keys:ro \
#                     --entrypoint /usr/sbin/sshd modsent -D -p 2222
# The devel image carries nvcc, which DeepSpeed needs to prebuild its CUDA ops. Ubuntu 24.04, because its
# Python (3.12) is one that every pin of constraints.txt supports (numpy 2.4, pandas 3.1 and scipy 1.17 need
# >= 3.11; 22.04 has 3.10): tests/test_dockerfile.py checks PYTHON against docker/requires-python.json.
FROM nvidia/cuda:12.6.3-cudnn-devel-ubuntu24.04

ARG PYTHON=3.12
ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 PDSH_RCMD_TYPE=ssh \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends python${PYTHON} python${PYTHON}-venv python${PYTHON}-dev \
       build-essential git numactl pdsh openssh-client openssh-server \
       apertium-eng-spa apertium-eng-cat apertium-en-gl apertium-eo-en \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /run/sshd
# Ubuntu's own Python refuses pip installs (PEP 668): modsent gets a virtualenv, first on PATH.
RUN python${PYTHON} -m venv /opt/venv

WORKDIR /opt/modsent
COPY setup.cfg pyproject.toml README.md constraints.txt ./
COPY modsent ./modsent
COPY ds_configs ./ds_configs
COPY configs ./configs
COPY launchers ./launchers
COPY ray_jobs ./ray_jobs
# CUDA torch from the default index, then our package (not editable: the wheel carries the configs) with the
# GPU extra (faiss-gpu) and FOCUS, every version as the test suite passed with it (constraints.txt).
RUN pip install -c constraints.txt torch==2.13.0 && pip install -c constraints.txt ".[gpu,focus]"
# Prebuild the DeepSpeed ops the GPU recipes use (fused Adam; CPU Adam for ZeRO offload) so nodes
# do not compile at start-up. TORCH_CUDA_ARCH_LIST covers A100 (8.0) and H100/H200 (9.0).
RUN TORCH_CUDA_ARCH_LIST="8.0;9.0" DS_BUILD_FUSED_ADAM=1 DS_BUILD_CPU_ADAM=1 \
    pip install -c constraints.txt --force-reinstall --no-deps --no-build-isolation deepspeed

ENTRYPOINT ["modsent"]
CMD ["--help"]
