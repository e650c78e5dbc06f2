#!/usr/bin/env bash
# The deployment checks of CI (run as root on a fresh machine, after the main tests): the SLURM recipe on a throwaway
# single-node cluster, then the Docker image built from a debootstrapped Debian bookworm base and run as an
# unprivileged host user. Every daemon started here is stopped again, also when a check fails.
#   ci/deployment_checks.sh            # both; PYTHON (default .venv/bin/python) runs the tests
#   ci/deployment_checks.sh slurm      # only the SLURM checks
#   ci/deployment_checks.sh docker     # only the Docker checks
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHON=${PYTHON:-.venv/bin/python}
WHICH=${1:-all}

slurm_checks() {
  trap 'ci/slurm_cluster.sh stop' EXIT
  ci/slurm_cluster.sh start
  eval "$(ci/slurm_cluster.sh env)"
  "$PYTHON" -m pytest -q -p no:cacheprovider --durations=0 tests/ci/test_slurm_recipe.py
  ci/slurm_cluster.sh stop
  trap - EXIT
}

docker_checks() {
  trap 'ci/docker_image.sh stop' EXIT
  ci/docker_image.sh start
  ci/docker_image.sh build
  eval "$(ci/docker_image.sh env)"
  "$PYTHON" -m pytest -q -p no:cacheprovider --durations=0 tests/ci/test_docker_image.py
  ci/docker_image.sh stop
  trap - EXIT
}

case "$WHICH" in
  all) slurm_checks; docker_checks ;;
  slurm) slurm_checks ;;
  docker) docker_checks ;;
  *) echo "usage: $0 [all|slurm|docker]" >&2; exit 2 ;;
esac
