# Shell helpers of the ci/ scripts (sourced, not run).

log() { echo "${0##*/}: $*" >&2; }

# apt_install EXECUTABLE=PACKAGE...: install the packages whose executable is missing (apt-get update on a miss).
# Their daemons are not started by the packages' scripts (a policy-rc.d refuses it for the install): the ci/ scripts
# start their own, with private state, and stop them again.
apt_install() {
  local missing=() pair rc=0 policy=/usr/sbin/policy-rc.d own_policy=0
  for pair in "$@"; do [[ -x ${pair%%=*} ]] || missing+=("${pair#*=}"); done
  [[ ${#missing[@]} -eq 0 ]] && return
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && own_policy=1; fi
  apt-get install -y --no-install-recommends "${missing[@]}" \
    || { apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"; } || rc=$?
  [[ $own_policy == 1 ]] && rm -f "$policy"
  return "$rc"
}

# missing_prerequisite EXECUTABLE...: prints why the checks cannot run here (empty when they can: as root, with
# the executables present or apt-get to install them).
missing_prerequisite() {
  local executable missing=()
  if [[ $EUID -ne 0 ]]; then echo "not running as root (the checks install packages and start daemons)"; return; fi
  for executable in "$@"; do [[ -x $executable ]] || missing+=("${executable##*/}"); done
  [[ ${#missing[@]} -eq 0 ]] || command -v apt-get >/dev/null || echo "${missing[*]} not installed and no apt-get"
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
