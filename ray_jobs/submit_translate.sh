#!/usr/bin/env bash
# Usage: RAY_ADDRESS=http://<head>:8265 ray_jobs/submit_translate.sh configs/translate.yaml [key=value ...]
#
# Submits the translation job to an existing Ray cluster. The working directory (this checkout)
# travels as the job's runtime env; workers need modsent's dependencies installed (see the
# Dockerfile's Ray worker line) and read the model and corpora from shared storage.
set -euo pipefail
config=${1:?usage: ray_jobs/submit_translate.sh CONFIG.yaml [key=value ...]}
shift
exec ray job submit --address "${RAY_ADDRESS:?set RAY_ADDRESS to the cluster's dashboard address}" \
  --working-dir . \
  --runtime-env-json '{"env_vars": {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}}' \
  -- python ray_jobs/translate_paraphrases.py --config "$config" "$@"
