# xumx-sliCQ-V2 and the Cadenza CAD1 Task 1 recipe.
#
#   docker build -t xumx-slicq-v2 .                         # CUDA image (torch 2.13.0 from PyPI, CUDA libraries)
#   docker build -t xumx-slicq-v2:cpu --build-arg CPU_ONLY=1 .   # CPU-only image (torch 2.13.0+cpu)
#
#   docker run --rm xumx-slicq-v2:cpu                       # the main job on the built-in demo data
#   docker run --rm --gpus all \
#       -v /path/to/cadenza_data:/data/cadenza:ro -v /path/to/MUSDB18-HQ:/data/musdb18hq:ro \
#       -v "$PWD/exp:/opt/xumx-slicq-v2/exp" xumx-slicq-v2 \
#       python -m cadenza.enhance path.root=/data/cadenza/cad1/task1 path.music_dir=/data/musdb18hq \
#       separator.weights=offline separator.device=cuda
# (see cadenza/README.md, "Docker").
#
# The project is installed in editable mode in /opt/xumx-slicq-v2 (the working directory), so that its
# checkout-relative folders work as in a clone: recipes/ (launcher configs), data/ (demo dataset) and exp/
# (outputs; mount a host folder there to keep them).

ARG CPU_ONLY=0
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG CPU_IMAGE=ubuntu:24.04

FROM ${CUDA_IMAGE} AS base-0
FROM ${CPU_IMAGE} AS base-1
# BuildKit builds only the stage selected here.
FROM base-${CPU_ONLY}
ARG CPU_ONLY

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg

# ffmpeg: musdb (MUSDB18-HQ tooling) needs the executables at import time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first and pinned, so that no other requirement pulls another build. The CUDA image swaps ONNX Runtime for
# its GPU build (the onnx-cuda backend).
RUN if [ "$CPU_ONLY" = "1" ]; then \
        pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu; \
    else \
        pip install torch==2.13.0; \
    fi

WORKDIR /opt/xumx-slicq-v2
# The whole checkout (less what .dockerignore leaves out): sources (with the demo weights), recipes/, tests/,
# benchmarks/.
COPY . .
# pyclarity last and without its declared dependencies (they pull torchaudio, which does not load beside this
# torch; the parts the recipe uses need only what the `cadenza` extra installs).
RUN pip install -e ".[all]" \
    && pip install --no-deps pyclarity==0.9.0 \
    && if [ "$CPU_ONLY" != "1" ]; then \
        pip uninstall -y onnxruntime && pip install -e ".[onnx-cuda]"; \
    fi

# The demo dataset is generated at build time, so the default command runs offline; exp/ and data/ are writable
# for any --user.
RUN python -m data_prep.demo \
    && mkdir -p exp \
    && chmod -R a+rwX exp data

CMD ["bash", "recipes/cadenza/run_demo.sh"]
