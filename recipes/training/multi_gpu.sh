#!/usr/bin/env bash
# The reference recipe on several GPUs of one machine (DistributedDataParallel over NCCL; --batch-size is the
# global batch, split over the processes; rank 0 writes the checkpoints and TensorBoard logs).
#   MUSDB_PATH=/data/MUSDB18-HQ GPUS=4 recipes/training/multi_gpu.sh [trainer arguments]
# On CPU-only machines the same command runs gloo processes (useful for testing only).
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python}
: "${MUSDB_PATH:?set MUSDB_PATH to the MUSDB18-HQ root (train/ and test/)}"
GPUS=${GPUS:-$("$PYTHON" -c 'import torch; print(max(torch.cuda.device_count(), 1))')}
"$PYTHON" -m torch.distributed.run --standalone --nproc-per-node "$GPUS" -m xumx_slicq_v2.training \
    --musdb-root "$MUSDB_PATH" --model-path "${MODEL_PATH:-exp/xumx_slicq_v2_ddp}" "$@"
