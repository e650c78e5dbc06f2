# Shell helpers of the ci/ scripts (sourced, not run).

log() { echo "${0##*/}: $*" >&2; }

# apt_install EXECUTABLE=PACKAGE...: install the packages whose executable is missing (apt-get update on a miss).
apt_install() {
  local missing=() pair
  for pair in "$@"; do [[ -x ${pair%%=*} ]] || missing+=("${pair#*=}"); done
  [[ ${#missing[@]} -eq 0 ]] && return
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" \
    || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; }
}

# alive PID: the process exists and is no zombie (a daemon whose parent is gone may stay one until reaped).
alive() { [[ -r /proc/$1/stat ]] && [[ $(sed 's/.*) //' "/proc/$1/stat" | cut -d' ' -f1) != Z ]]; }

# running PID_FILE: whether the process of that PID file is alive.
running() { [[ -f $1 ]] && alive "$(cat "$1")"; }

# stop_pid_file PID_FILE NAME: SIGTERM, up to 10 s for it to end, then SIGKILL.
stop_pid_file() {
  running "$1" || return 0
  local pid
  pid=$(cat "$1")
  kill "$pid"
  for _ in $(seq 50); do alive "$pid" || break; sleep 0.2; done
  alive "$pid" && kill -9 "$pid"
  log "stopped $2 (PID $pid)"
}

# descendants PID: the PIDs of every process below PID.
descendants() {
  local child
  for child in $(pgrep -P "$1" || true); do echo "$child"; descendants "$child"; done
}
