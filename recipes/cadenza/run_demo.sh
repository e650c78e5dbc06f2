#!/usr/bin/env bash
# The main job on the embedded default: the synthetic demo dataset (generated on first use) and the demo weights.
# enhance, then evaluate with $JOBS worker processes (evaluate.jobs; default auto: as many as cores and memory
# allow) into scores.csv + report. Extra arguments are hydra overrides passed to every step,
# e.g. separator.model=oracle or evaluate.haaqi=pyclarity.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
JOBS=${JOBS:-auto}
"$PYTHON" -m cadenza.enhance "$@"
"$PYTHON" -m cadenza.evaluate "evaluate.jobs=$JOBS" "$@"
