#!/usr/bin/env bash
# A throwaway Docker daemon and the project's CPU image, built from a debootstrapped Debian bookworm base with no
# registry access (the CI of a machine without systemd; run as root).
#
#   ci/docker_image.sh start    apt-install docker.io + debootstrap if missing, start dockerd (own data-root,
#                               exec-root and socket; no bridge, no iptables changes), create the host user xumx-ci
#   ci/docker_image.sh build    debootstrap bookworm (cached), import it as xumx-ci/debian:bookworm, build
#                               xumx-slicq-v2:cpu with this machine's torch wheel and the venv's versions
#   ci/docker_image.sh env      print the variables the tests need (DOCKER_HOST, XUMX_DOCKER_IMAGE, XUMX_CI_USER)
#   ci/docker_image.sh stop     kill the running containers, stop dockerd and its containerd (by PID)
#
# Settings (environment): XUMX_CI_DIR (state folder, default /var/tmp/xumx-ci), PYTHON (the venv whose pip finds the
# torch wheel and whose versions are pinned in the image; default .venv/bin/python), DEBIAN_MIRROR.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/common.sh

CI_DIR=${XUMX_CI_DIR:-/var/tmp/xumx-ci}
STATE=$CI_DIR/docker
SOCKET=$STATE/docker.sock
PID_FILE=$STATE/dockerd.pid
BASE_IMAGE=xumx-ci/debian:bookworm
IMAGE=xumx-slicq-v2:cpu
CI_USER=xumx-ci
PYTHON=${PYTHON:-.venv/bin/python}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# The docker.io client matches the daemon and has BuildKit built in (a newer client elsewhere on PATH may need buildx).
DOCKER=/usr/bin/docker
export DOCKER_HOST=unix://$SOCKET DOCKER_BUILDKIT=1

daemon_running() { running "$PID_FILE"; }

start() {
  apt_install /usr/sbin/dockerd=docker.io /usr/sbin/debootstrap=debootstrap
  id -u "$CI_USER" >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin "$CI_USER"
  mkdir -p "$STATE"
  if daemon_running; then log "dockerd already running (PID $(cat "$PID_FILE"))"; return; fi
  # The sandbox refuses higher ulimits than these; containers here use --network none or host.
  setsid dockerd --data-root "$STATE/data" --exec-root "$STATE/exec" --pidfile "$PID_FILE" -H "$DOCKER_HOST" \
    --bridge=none --iptables=false --ip6tables=false --ip-forward=false \
    --default-ulimit nofile=1024:1024 --default-ulimit nproc=1024:1024 \
    >"$STATE/dockerd.log" 2>&1 </dev/null &
  for _ in $(seq 60); do
    "$DOCKER" info >/dev/null 2>&1 && { log "dockerd ready (PID $(cat "$PID_FILE"), $DOCKER_HOST)"; return; }
    sleep 1
  done
  log "dockerd did not start; see $STATE/dockerd.log"; tail -20 "$STATE/dockerd.log" >&2; exit 1
}

base_image() {
  "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1 && return
  local root=$CI_DIR/bookworm-rootfs
  if [[ ! -f $root/.complete ]]; then
    log "debootstrap bookworm (minbase) into $root"
    rm -rf "$root.partial"
    debootstrap --variant=minbase bookworm "$root.partial" "$DEBIAN_MIRROR" >"$CI_DIR/debootstrap.log" 2>&1 \
      || { tail -20 "$CI_DIR/debootstrap.log" >&2; exit 1; }
    rm -rf "$root.partial"/var/cache/apt/archives/*.deb "$root.partial"/var/lib/apt/lists/*
    rm -rf "$root" && mv "$root.partial" "$root" && touch "$root/.complete"
  fi
  tar -C "$root" --exclude=./.complete -c . | "$DOCKER" import - "$BASE_IMAGE" >/dev/null
  log "imported $BASE_IMAGE"
}

build() {
  daemon_running || { log "dockerd is not running: ci/docker_image.sh start"; exit 1; }
  base_image
  # The CPU torch wheel for bookworm's Python 3.11, from wherever this machine's pip finds it (never the CUDA build),
  # and the venv's versions as constraints, so that the image computes what the venv computes.
  rm -f wheels/torch-*.whl wheels/constraints.txt
  "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.11 --implementation cp --abi cp311 \
    --platform manylinux_2_28_x86_64 -d wheels "torch==2.13.0+cpu" >&2
  local wheel
  wheel=$(ls wheels/torch-2.13.0+cpu-*.whl)
  "$PYTHON" -m pip freeze --exclude-editable | grep -v -e ' @ ' -e '^-e ' >wheels/constraints.txt
  local secret=()
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && secret=(--secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt)
  log "building $IMAGE from $BASE_IMAGE with $wheel"
  local start=$SECONDS
  "$DOCKER" build --network host --progress plain -t "$IMAGE" "${secret[@]}" \
    --build-arg CPU_ONLY=1 --build-arg CPU_IMAGE="$BASE_IMAGE" \
    --build-arg TORCH_WHEEL="$wheel" --build-arg PIP_CONSTRAINT=wheels/constraints.txt . >"$STATE/build.log" 2>&1 \
    || { tail -40 "$STATE/build.log" >&2; log "build failed; see $STATE/build.log"; exit 1; }
  log "built $IMAGE in $((SECONDS - start)) s, $("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE" \
    | awk '{printf "%.2f GB", $1 / 1e9}') (log: $STATE/build.log)"
}

print_env() {
  echo "export DOCKER_HOST=$DOCKER_HOST XUMX_DOCKER=$DOCKER XUMX_DOCKER_IMAGE=$IMAGE XUMX_CI_USER=$CI_USER"
}

stop() {
  daemon_running || { log "dockerd not running"; return 0; }
  local containerd
  "$DOCKER" ps -q | xargs -r "$DOCKER" kill >/dev/null 2>&1 || true
  containerd=$(pgrep -P "$(cat "$PID_FILE")" || true) # the containerd dockerd started
  stop_pid_file "$PID_FILE" dockerd
  for pid in $containerd; do alive "$pid" && kill "$pid"; done
  rm -f "$PID_FILE"
}

case "${1:-}" in
  start) start ;;
  build) build ;;
  env) print_env ;;
  stop) stop ;;
  *) echo "usage: $0 start|build|env|stop" >&2; exit 2 ;;
esac
