#!/usr/bin/env bash
# The recipe sharded over N local worker processes (hydra multirun + joblib launcher), then merged.
#   N=4 recipes/cadenza/run_local_parallel.sh path.root=/data/cadenza/cad1/task1 separator.weights=offline
# 1. demix: each song separated once (songs sharded over the workers; stems cached in <exp>/separated/)
# 2. enhance and 3. evaluate: song-listener pairs sharded with evaluate.batch/evaluate.batch_size (each evaluate
#    shard scores with one process, evaluate.jobs=1: the shards are the parallelism; one command with
#    evaluate.jobs=N instead does the same without sharding, see run_demo.sh)
# 4. merge_batches_results: scores_<i>-<N>.csv -> scores.csv, report.json, report.png
# Every step is resumable: rerun the script after an interruption and finished work is skipped.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
N=${N:-2}
BATCHES=$(seq -s, 0 $((N - 1)))
SHARDS=(-m "evaluate.batch=$BATCHES" "evaluate.batch_size=$N" hydra/launcher=cadenza_local "hydra.launcher.n_jobs=$N")
"$PYTHON" -m cadenza.demix "${SHARDS[@]}" "$@"
"$PYTHON" -m cadenza.enhance "${SHARDS[@]}" "$@"
"$PYTHON" -m cadenza.evaluate "${SHARDS[@]}" evaluate.jobs=1 "$@"
"$PYTHON" -m cadenza.merge_batches_results "evaluate.batch_size=$N" "$@"
