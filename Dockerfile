# xumx-sliCQ-V2 and the Cadenza CAD1 Task 1 recipe. Needs BuildKit (the default builder since Docker 23;
# DOCKER_BUILDKIT=1 with Docker 20.10).
#
#   docker build -t xumx-slicq-v2 .                         # CUDA image (torch 2.13.0 from PyPI, CUDA libraries)
#   docker build -t xumx-slicq-v2:cpu --build-arg CPU_ONLY=1 .   # CPU-only image (torch 2.13.0+cpu)
#
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD/exp:/opt/xumx-slicq-v2/exp" xumx-slicq-v2:cpu
#                                                           # the main job on the built-in demo data
#   docker run --rm --gpus all --user "$(id -u):$(id -g)" \
#       -v /path/to/cadenza_data:/data/cadenza:ro -v /path/to/MUSDB18-HQ:/data/musdb18hq:ro \
#       -v "$PWD/exp:/opt/xumx-slicq-v2/exp" xumx-slicq-v2 \
#       python -m cadenza.enhance path.root=/data/cadenza/cad1/task1 path.music_dir=/data/musdb18hq \
#       separator.weights=offline separator.device=cuda
# (see cadenza/README.md, "Docker").
#
# A site without access to the public registries builds from its own base image and wheels:
#   docker build -t xumx-slicq-v2:cpu --build-arg CPU_ONLY=1 --build-arg CPU_IMAGE=<local Debian/Ubuntu image> \
#       --build-arg TORCH_WHEEL=wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl \
#       [--build-arg PIP_INDEX_URL=<mirror>] [--build-arg PIP_CONSTRAINT=wheels/constraints.txt] \
#       [--secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt] --network host .
# Files named by TORCH_WHEEL, PIP_FIND_LINKS and PIP_CONSTRAINT are taken from the build context's wheels/ folder,
# which is mounted for the pip steps only (never copied into the image). The pip_cert secret is a CA bundle for a
# site whose HTTPS goes through an intercepting proxy; it is not stored in the image either.
#
# The project is installed in editable mode in /opt/xumx-slicq-v2 (the working directory), so that its
# checkout-relative folders work as in a clone: recipes/ (launcher configs), data/ (demo dataset) and exp/
# (outputs; mount a host folder there to keep them). The image runs as any --user: HOME and the
# caches live in /tmp, exp/ and data/ are writable for every uid, and nothing else is written.

ARG CPU_ONLY=0
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
ARG CPU_IMAGE=ubuntu:24.04

FROM ${CUDA_IMAGE} AS base-0
FROM ${CPU_IMAGE} AS base-1
# BuildKit builds only the stage selected here.
FROM base-${CPU_ONLY}
ARG CPU_ONLY
# Where torch comes from: TORCH_WHEEL (a wheel under wheels/ in the build context, or a URL), else torch==2.13.0
# from TORCH_INDEX_URL (default: the PyTorch CPU index for the CPU image, PyPI for the CUDA image).
ARG TORCH_WHEEL=
ARG TORCH_INDEX_URL=
# pip's own settings for a mirror, passed through when given (unset by default).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CONSTRAINT

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONUNBUFFERED=1 \
    MPLBACKEND=Agg \
    HOME=/tmp \
    XDG_CACHE_HOME=/tmp/.cache \
    MPLCONFIGDIR=/tmp/.cache/matplotlib \
    NUMBA_CACHE_DIR=/tmp/.cache/numba \
    OMP_WAIT_POLICY=PASSIVE

# ffmpeg: musdb (MUSDB18-HQ tooling) needs the executables at import time.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ffmpeg \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /opt/xumx-slicq-v2
# torch first and pinned, so that no other requirement pulls another build.
RUN --mount=type=bind,source=wheels,target=/opt/xumx-slicq-v2/wheels \
    --mount=type=secret,id=pip_cert \
    if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    if [ -n "$TORCH_WHEEL" ]; then \
        pip install "$TORCH_WHEEL"; \
    elif [ "$CPU_ONLY" = "1" ]; then \
        pip install torch==2.13.0 --index-url "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}"; \
    else \
        pip install torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}; \
    fi \
    && python -c "import torch; assert torch.__version__.split('+')[0] == '2.13.0', torch.__version__"

# The sources (the demo weights are package data of xumx_slicq_v2/), recipes/ (launcher configs), tests/ and
# benchmarks/; not wheels/.
COPY pyproject.toml README.md LICENSE Makefile ./
COPY xumx_slicq_v2/ xumx_slicq_v2/
COPY cadenza/ cadenza/
COPY data_prep/ data_prep/
COPY recipes/ recipes/
COPY tests/ tests/
COPY benchmarks/ benchmarks/
# pyclarity last and without its declared dependencies (they pull torchaudio, which does not load beside this
# torch; the parts the recipe uses need only what the `cadenza` extra installs). The CUDA image swaps ONNX Runtime
# for its GPU build (the onnx-cuda backend). pyflac comes as source only: the compiler is removed again afterwards.
RUN --mount=type=bind,source=wheels,target=/opt/xumx-slicq-v2/wheels \
    --mount=type=secret,id=pip_cert \
    if [ -f /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi; \
    apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev python3-dev \
    && pip install -e ".[all]" \
    && pip install --no-deps pyclarity==0.9.0 \
    && if [ "$CPU_ONLY" != "1" ]; then \
        pip uninstall -y onnxruntime && pip install -e ".[onnx-cuda]"; \
    fi \
    && apt-get purge -y --autoremove gcc libc6-dev python3-dev \
    && rm -rf /var/lib/apt/lists/*

# The demo dataset is generated at build time, so the default command runs offline; exp/ and data/ are writable
# for any --user.
RUN python -m data_prep.demo \
    && mkdir -p exp \
    && chmod -R a+rwX exp data

CMD ["bash", "recipes/cadenza/run_demo.sh"]
