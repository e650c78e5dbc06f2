#!/usr/bin/env bash
# The deployment checks of CI (run as root on a fresh machine, after the main tests): the SLURM recipe on a throwaway
# single-node cluster, then the Docker image built from a debootstrapped Debian bookworm base and run as an
# unprivileged host user. Every daemon started here is stopped again, also when a check fails.
#   ci/deployment_checks.sh            # both; PYTHON (default .venv/bin/python) runs the tests
#   ci/deployment_checks.sh slurm      # only the SLURM checks
#   ci/deployment_checks.sh docker     # only the Docker checks
# A part whose tools are missing and cannot be installed here (not root, no apt-get) is skipped with the reason, and
# the script still succeeds; a tool that is installed or installable but fails is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/common.sh
export PYTHON=${PYTHON:-.venv/bin/python}
WHICH=${1:-all}

# skipped PART EXECUTABLE...: true (after saying why) when the part cannot run on this machine.
skipped() {
  local part=$1 reason
  shift
  reason=$(missing_prerequisite "$@")
  [[ -z $reason ]] && return 1
  log "SKIPPED the $part checks: $reason"
}

slurm_checks() {
  skipped SLURM /usr/sbin/slurmctld /usr/sbin/slurmd /usr/sbin/slurmdbd /usr/sbin/munged /usr/sbin/mariadbd \
    /usr/bin/sbatch && return
  trap 'ci/slurm_cluster.sh stop' EXIT
  ci/slurm_cluster.sh start
  eval "$(ci/slurm_cluster.sh env)"
  "$PYTHON" -m pytest -q -p no:cacheprovider --durations=0 tests/ci/test_slurm_recipe.py
  ci/slurm_cluster.sh stop
  trap - EXIT
}

docker_checks() {
  skipped Docker /usr/sbin/dockerd /usr/bin/docker /usr/sbin/debootstrap && return
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
