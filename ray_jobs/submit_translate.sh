#!/usr/bin/env bash
# Usage: RAY_ADDRESS=http://<head>:8265 ray_jobs/submit_translate.sh configs/translate.yaml [key=value ...]
# Submits the translation job (ray_jobs/translate_paraphrases.py) as a Ray Job and waits: see submit.sh.
exec "$(dirname "$0")/submit.sh" translate_paraphrases "$@"
