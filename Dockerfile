# modsent on a CUDA host: training node (DeepSpeed) or Ray worker (translation).
#   docker build -t modsent .
#   Training node:  docker run --gpus all --network host --ipc host -v /data:/data modsent \
#                     run /data/pipeline.yaml
#   Ray worker:     docker run --gpus all --network host --ipc host --entrypoint ray modsent \
#                     start --address=<head-ip>:6379 --block
# The devel image carries nvcc, which DeepSpeed needs to prebuild its CUDA ops.
FROM nvidia/cuda:12.4.1-cudnn-devel-ubuntu22.04

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-pip python3-dev build-essential git numactl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/modsent
COPY setup.cfg pyproject.toml README.md ./
COPY modsent ./modsent
COPY ds_configs ./ds_configs
COPY configs ./configs
# CUDA torch from the default index, then our package with the GPU extra (faiss-gpu) and FOCUS.
# Editable: the recipes read ds_configs/ from the source tree.
RUN pip install torch==2.13.0 && pip install -e ".[gpu,focus]"
# Prebuild the DeepSpeed ops the GPU recipes use (fused Adam; CPU Adam for ZeRO offload) so nodes
# do not compile at start-up. TORCH_CUDA_ARCH_LIST covers A100 (8.0) and H100/H200 (9.0).
RUN TORCH_CUDA_ARCH_LIST="8.0;9.0" DS_BUILD_FUSED_ADAM=1 DS_BUILD_CPU_ADAM=1 \
    pip install --force-reinstall --no-deps --no-build-isolation deepspeed

ENTRYPOINT ["modsent"]
CMD ["--help"]
