#!/usr/bin/env bash
# The reference training recipe on MUSDB18-HQ (WAV) with the released models' settings (batch 64, 8 workers),
# then the museval evaluation on the 50 test tracks. Run it again after a crash: training resumes from
# MODEL_PATH/xumx_slicq_v2.chkpnt and evaluation skips the tracks already scored.
#   MUSDB_PATH=/data/MUSDB18-HQ recipes/training/musdb18hq.sh            # offline model
#   MUSDB_PATH=/data/MUSDB18-HQ recipes/training/musdb18hq.sh --realtime # realtime model
# Extra arguments go to the trainer (e.g. --epochs 300 --device cuda:1).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
: "${MUSDB_PATH:?set MUSDB_PATH to the MUSDB18-HQ root (train/ and test/)}"
MODEL_PATH=${MODEL_PATH:-exp/xumx_slicq_v2_$([[ " $* " == *" --realtime "* ]] && echo realtime || echo offline)}
"$PYTHON" -m xumx_slicq_v2.training --musdb-root "$MUSDB_PATH" --model-path "$MODEL_PATH" "$@"
"$PYTHON" -m xumx_slicq_v2.evaluation --musdb-root "$MUSDB_PATH" --model "$MODEL_PATH" \
    --out-dir "$MODEL_PATH/museval" --device "${EVAL_DEVICE:-cpu}" --jobs "${EVAL_JOBS:-1}"
