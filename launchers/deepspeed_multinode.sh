#!/usr/bin/env bash
# Run a modsent training stage (adapt, train, align) under the DeepSpeed launcher, on several nodes or on this one.
#
# usage: launchers/deepspeed_multinode.sh HOSTFILE|local STAGE [--config FILE.yaml] [key.sub=value ...]
#
#   HOSTFILE      DeepSpeed hostfile, one "node-name slots=GPUS" line per node; MASTER_ADDR must be node 0's address
#   local         this machine only: all its GPUs, or NUM_RANKS CPU processes (default 2) when it has none
#   MASTER_PORT   rendezvous port (default: a free port); NUM_RANKS: ranks for "local" (default: every GPU / 2 on CPU)
#   NODE_RANK     without ssh: run this script once on every node of HOSTFILE, each with its line's index (0, 1, ...)
#                 and the same MASTER_ADDR and MASTER_PORT; it starts that node's ranks (DeepSpeed's --no_ssh mode).
#                 Unset: this node starts every node's ranks over pdsh/ssh.
#
# examples:
#   MASTER_ADDR=10.0.0.1 launchers/deepspeed_multinode.sh hosts adapt --config configs/adapt.yaml trainer.ds_config=zero3
#   NUM_RANKS=2 launchers/deepspeed_multinode.sh local adapt --config configs/adapt.yaml
#   MASTER_ADDR=10.0.0.1 MASTER_PORT=29500 NODE_RANK=1 launchers/deepspeed_multinode.sh hosts adapt --config ...
#
# Every node needs the same checkout, venv and a shared filesystem for output_dir (checkpoints, packed data).
# DeepSpeed passes environment variables to remote nodes through ./.deepspeed_env or ~/.deepspeed_env (KEY=VALUE
# lines): put MODSENT_CACHE, HF_HUB_OFFLINE=1 and PYTHONPATH there. Equivalent without DeepSpeed's launcher:
#   torchrun --nnodes N --nproc_per_node G --rdzv_endpoint HOST:PORT -m modsent.cli STAGE ...
set -euo pipefail

target=${1:?usage: $0 HOSTFILE|local STAGE [--config FILE.yaml] [key.sub=value ...]}
shift
python=${PYTHON:-python}

# One OpenMP thread per rank: ranks otherwise oversubscribe the cores (10x slower steps measured on CPU).
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# DeepSpeed compiles its C++ ops once, here, instead of in a fresh temporary directory per job.
export TORCH_EXTENSIONS_DIR=${TORCH_EXTENSIONS_DIR:-${MODSENT_CACHE:-$HOME/.cache/modsent}/torch_extensions}
if [[ -n ${NODE_RANK:-} && -z ${MASTER_PORT:-} ]]; then
    echo "$0: NODE_RANK is set: set MASTER_PORT too, the same on every node" >&2
    exit 2
fi
if [[ -z ${MASTER_PORT:-} ]]; then
    MASTER_PORT=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
export MASTER_PORT

if [[ $target == local ]]; then
    export MASTER_ADDR=127.0.0.1
    if "$python" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
        ranks=${NUM_RANKS:-$("$python" -c 'import torch; print(torch.cuda.device_count())')}
    else
        export DS_ACCELERATOR=cpu
        ranks=${NUM_RANKS:-2}
    fi
    placement=(--num_accelerators "$ranks")
else
    : "${MASTER_ADDR:?set MASTER_ADDR to the address of the first node in the hostfile}"
    placement=(--hostfile "$target")
    if [[ -n ${NODE_RANK:-} ]]; then
        placement+=(--no_ssh --node_rank "$NODE_RANK")
    fi
fi

# DeepSpeed's shared-memory CPU all-reduce (which modsent.train.init_distributed normally keeps from being built)
# leaves one buffer per rank, named after user, address and port: remove ours whatever happens.
cleanup() { rm -f "/dev/shm/deepspeed_allreduce_buffer_$(id -u)_${MASTER_ADDR}_${MASTER_PORT}_"*; }
trap cleanup EXIT

# --no_local_rank: ranks read LOCAL_RANK from the environment (the launcher would put --local_rank before STAGE).
deepspeed "${placement[@]}" --master_addr "$MASTER_ADDR" --master_port "$MASTER_PORT" --no_local_rank --module modsent.cli "$@"
