#!/usr/bin/env bash
# The recipe on a SLURM cluster (hydra multirun + submitit launcher): N array jobs per step, then merged here.
#   N=16 recipes/cadenza/run_slurm.sh path.root=/data/cadenza/cad1/task1 separator.weights=offline \
#       hydra.launcher.partition=cpu hydra.launcher.account=myproject hydra.launcher.mem_gb=16 \
#       hydra.launcher.cpus_per_task=1 hydra.launcher.timeout_min=240 \
#       'hydra.launcher.setup=["module load ffmpeg","source /path/to/venv/bin/activate"]'
# Arguments that set the launcher (hydra.launcher.*, +hydra.launcher.*, hydra/launcher=...) go to the three array
# steps (demix, enhance, evaluate) only; every other argument goes to every step, including the final merge, which
# runs on this node and has no launcher. PARTITION=cpu is short for hydra.launcher.partition=cpu.
# Separation on GPUs: GPU_PARTITION=gpu runs demix with one GPU per job there (separator.device=cuda); GPU_LAUNCHER
# adds launcher settings for that step only, e.g. GPU_LAUNCHER="hydra.launcher.mem_gb=32 hydra.launcher.gres=gpu:1".
# Each hydra call blocks until its jobs finish; run this script on the login node inside tmux/screen.
# A job that reaches its time limit (SLURM sends USR2 hydra.launcher.signal_delay_s before it) or is preempted is
# requeued by submitit (up to hydra.launcher.max_num_timeout time-outs) and resumes: finished songs and pairs are
# skipped. After a failure (a job cancelled, a node lost), rerun the same command: it resumes the same way.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
N=${N:-8}
BATCHES=$(seq -s, 0 $((N - 1)))

LAUNCHER=(hydra/launcher=cadenza_slurm)
[[ -n "${PARTITION:-}" ]] && LAUNCHER+=("hydra.launcher.partition=$PARTITION")
RECIPE=()
for arg in "$@"; do
  if [[ $arg =~ ^(\+\+|\+|~)?hydra(\.launcher([.=]|$)|/launcher=) ]]; then LAUNCHER+=("$arg"); else RECIPE+=("$arg"); fi
done
SHARDS=(-m "evaluate.batch=$BATCHES" "evaluate.batch_size=$N" "${LAUNCHER[@]}")

if [[ -n "${GPU_PARTITION:-}" ]]; then
  read -r -a GPU_SETTINGS <<<"${GPU_LAUNCHER:-}"
  "$PYTHON" -m cadenza.demix "${SHARDS[@]}" "hydra.launcher.partition=$GPU_PARTITION" \
    hydra.launcher.gpus_per_node=1 "${GPU_SETTINGS[@]}" separator.device=cuda "${RECIPE[@]}"
else
  "$PYTHON" -m cadenza.demix "${SHARDS[@]}" "${RECIPE[@]}"
fi
"$PYTHON" -m cadenza.enhance "${SHARDS[@]}" "${RECIPE[@]}"
"$PYTHON" -m cadenza.evaluate "${SHARDS[@]}" "${RECIPE[@]}"
"$PYTHON" -m cadenza.merge_batches_results "evaluate.batch_size=$N" "${RECIPE[@]}"
