#!/usr/bin/env bash
# The main job on the embedded default: the synthetic demo dataset (generated on first use) and the demo weights.
# Extra arguments are hydra overrides passed to every step, e.g. separator.model=oracle.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
"$PYTHON" -m cadenza.enhance "$@"
"$PYTHON" -m cadenza.evaluate "$@"
