#!/usr/bin/env bash
# The recipe on a SLURM cluster (hydra multirun + submitit launcher): N array jobs per step, then merged.
#   N=16 PARTITION=cpu recipes/cadenza/run_slurm.sh path.root=/data/cadenza/cad1/task1 separator.weights=offline
# Optional: GPU_PARTITION=gpu runs the separation step (demix) on one GPU per job.
# Each hydra call blocks until its jobs finish; run this script on the login node inside tmux/screen.
# Jobs that time out are resubmitted and resume (finished songs/pairs are skipped); so does a rerun of the script.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
N=${N:-8}
: "${PARTITION:?set PARTITION to the SLURM partition for the CPU steps}"
BATCHES=$(seq -s, 0 $((N - 1)))
SHARDS=(-m "evaluate.batch=$BATCHES" "evaluate.batch_size=$N" hydra/launcher=cadenza_slurm)
if [[ -n "${GPU_PARTITION:-}" ]]; then
  "$PYTHON" -m cadenza.demix "${SHARDS[@]}" "hydra.launcher.partition=$GPU_PARTITION" \
    hydra.launcher.gpus_per_node=1 separator.device=cuda "$@"
else
  "$PYTHON" -m cadenza.demix "${SHARDS[@]}" "hydra.launcher.partition=$PARTITION" "$@"
fi
"$PYTHON" -m cadenza.enhance "${SHARDS[@]}" "hydra.launcher.partition=$PARTITION" "$@"
"$PYTHON" -m cadenza.evaluate "${SHARDS[@]}" "hydra.launcher.partition=$PARTITION" "$@"
"$PYTHON" -m cadenza.merge_batches_results "evaluate.batch_size=$N" "$@"
