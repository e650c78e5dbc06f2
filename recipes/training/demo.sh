#!/usr/bin/env bash
# Reproduce the demo weights in xumx_slicq_v2/pretrained/demo/ on CPU: synthetic MUSDB18-HQ-layout data (data_prep), a small
# model (Bark 48 bins, 24/24 channels, offline/Wiener-EM), 20 epochs, then the museval evaluation of the model
# and of the two baselines on the 5 held-out synthetic test songs. About 100 CPU-minutes of training
# (about an hour on 2 idle cores); every step resumes or skips what is done when run again.
#   recipes/training/demo.sh            # data, training, evaluation
#   INSTALL=1 recipes/training/demo.sh  # ... and copy the best weights to xumx_slicq_v2/pretrained/demo/
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
DATA=${DATA:-data/musdb-synth-demo}
MODEL_PATH=${MODEL_PATH:-exp/demo/model}
EVAL=${EVAL:-exp/demo/eval}

"$PYTHON" -m data_prep.synth --out "$DATA" --songs 64 --valid 6 --test 5 --seconds 30 --seed 6 --layout musdb
CUDA_VISIBLE_DEVICES="" OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} "$PYTHON" -m xumx_slicq_v2.training --musdb-root "$DATA" \
    --model-path "$MODEL_PATH" --fbins 48 --hidden-size-1 24 --hidden-size-2 24 \
    --batch-size 16 --samples-per-track 16 --epochs 20 --nb-workers 1
"$PYTHON" -m xumx_slicq_v2.evaluation --musdb-root "$DATA" --model "$MODEL_PATH" --out-dir "$EVAL/model"
"$PYTHON" -m xumx_slicq_v2.evaluation --musdb-root "$DATA" --baseline mixture --out-dir "$EVAL/mixture"
"$PYTHON" -m xumx_slicq_v2.evaluation --musdb-root "$DATA" --baseline oracle-irm --model "$MODEL_PATH" \
    --out-dir "$EVAL/oracle-irm"
if [[ "${INSTALL:-0}" == 1 ]]; then
    mkdir -p xumx_slicq_v2/pretrained/demo
    cp "$MODEL_PATH/xumx_slicq_v2.pth" "$MODEL_PATH/xumx_slicq_v2.json" xumx_slicq_v2/pretrained/demo/
fi
