#!/usr/bin/env bash
# Usage: RAY_ADDRESS=http://<head>:8265 ray_jobs/submit.sh JOB CONFIG.yaml [key=value ...]
#        JOB: translate_paraphrases or mine_bitext (a script in ray_jobs/); submit_translate.sh and
#        submit_mine.sh name it for you.
#
# Submits the job to an existing Ray cluster through its Job Submission API (the head's dashboard)
# and waits for it: the job's log streams here, and the exit status is non-zero when the job fails.
# Run it from the checkout: the working directory travels as the job's runtime env (Ray leaves out
# what .gitignore lists, .git and .venv: the checkout's sources, configs and jobs, under 3 MiB).
# Workers need modsent's dependencies installed (see the Dockerfile's Ray worker line) and read the
# model, the corpora and the output directory from shared storage: give them as absolute paths, or
# as paths inside the checkout (the job runs in its uploaded copy).
#
# The job gets this shell's values of MODSENT_CACHE, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE,
# TRANSFORMERS_OFFLINE, TOKENIZERS_PARALLELISM, OMP_NUM_THREADS and of any variable named in
# MODSENT_JOB_ENV (space-separated), whatever the cluster's nodes were started with; HF_HUB_OFFLINE
# defaults to 1 and TOKENIZERS_PARALLELISM to false.
set -euo pipefail
usage="usage: ray_jobs/submit.sh JOB CONFIG.yaml [key=value ...]"
job=${1:?$usage}
config=${2:?$usage}
shift 2
: "${RAY_ADDRESS:?set RAY_ADDRESS to the dashboard address of the cluster head, e.g. http://head:8265}"
script=ray_jobs/$job.py
if [[ ! -f $script ]]; then
  echo "ray_jobs/submit.sh: no $script here: run it from the root of the checkout (uploaded as the working dir)" >&2
  exit 2
fi
export HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-1} TOKENIZERS_PARALLELISM=${TOKENIZERS_PARALLELISM:-false}
runtime_env=$(python3 -c '
import json, os, sys
names = sys.argv[1:] + os.environ.get("MODSENT_JOB_ENV", "").split()
print(json.dumps({"env_vars": {n: os.environ[n] for n in dict.fromkeys(names) if n in os.environ}}))
' MODSENT_CACHE HF_HOME HF_HUB_CACHE HF_HUB_OFFLINE TRANSFORMERS_OFFLINE TOKENIZERS_PARALLELISM OMP_NUM_THREADS)
exec ray job submit --address "$RAY_ADDRESS" --working-dir . --runtime-env-json "$runtime_env" \
  -- python "$script" --config "$config" "$@"
