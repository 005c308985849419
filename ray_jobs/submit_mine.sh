#!/usr/bin/env bash
# Usage: RAY_ADDRESS=http://<head>:8265 ray_jobs/submit_mine.sh configs/mine.yaml [key=value ...]
# Submits the mining job (ray_jobs/mine_bitext.py) as a Ray Job and waits: see submit.sh.
exec "$(dirname "$0")/submit.sh" mine_bitext "$@"
