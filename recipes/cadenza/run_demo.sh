#!/usr/bin/env bash
# The main job on the embedded default: the synthetic demo dataset (generated on first use) and the demo weights.
# enhance, then evaluate in $JOBS parallel shards (hydra joblib launcher) merged into scores.csv + report.
# Extra arguments are hydra overrides passed to every step, e.g. separator.model=oracle.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
JOBS=${JOBS:-2}
"$PYTHON" -m cadenza.enhance "$@"
if [ "$JOBS" -gt 1 ]; then
  "$PYTHON" -m cadenza.evaluate -m "evaluate.batch=$(seq -s, 0 $((JOBS - 1)))" "evaluate.batch_size=$JOBS" \
    hydra/launcher=cadenza_local "hydra.launcher.n_jobs=$JOBS" "$@"
  "$PYTHON" -m cadenza.merge_batches_results "evaluate.batch_size=$JOBS" "$@"
else
  "$PYTHON" -m cadenza.evaluate "$@"
fi
