#!/usr/bin/env bash
# A throwaway single-node SLURM cluster on this machine (no systemd; run as root): munge, slurmctld and slurmd, with
# job accounting (slurmdbd on a private MariaDB) so that sacct, and hence submitit, see the real job states.
#
#   ci/slurm_cluster.sh start    apt-install slurm-wlm, munge, slurmdbd and mariadb-server if missing, write the
#                                configuration under $XUMX_CI_DIR/slurm, start the daemons, wait until the node is idle
#   ci/slurm_cluster.sh env      print the variables the clients and the tests need (SLURM_CONF, XUMX_TEST_SLURM...)
#   ci/slurm_cluster.sh stop     cancel the jobs, stop the daemons by PID, kill job processes left behind
#
# One partition, "debug" (default), with every CPU of the machine. Daemons listen on 127.0.0.1 (MariaDB) and on the
# SLURM ports 6817-6819; state, spool, logs and sockets live in $XUMX_CI_DIR/slurm (default /var/tmp/xumx-ci/slurm).
set -euo pipefail
. "$(dirname "$0")/common.sh"

CI_DIR=${XUMX_CI_DIR:-/var/tmp/xumx-ci}
DIR=$CI_DIR/slurm
export SLURM_CONF=$DIR/slurm.conf
HOST=$(hostname -s)
DB_PORT=3307
DB_PASSWORD=xumxci # a throwaway database on 127.0.0.1

wait_for() { # seconds, description, command...
  local seconds=$1 what=$2
  shift 2
  for _ in $(seq "$((seconds * 5))"); do "$@" >/dev/null 2>&1 && return; sleep 0.2; done
  log "$what did not come up; logs in $DIR/log"; tail -n 20 "$DIR"/log/*.log >&2; exit 1
}

write_config() {
  mkdir -p "$DIR"/{munge,state,spool,log,run,db}
  chmod 755 "$DIR/munge" # munged: the socket folder must be searchable by all
  [[ -f $DIR/munge/munge.key ]] || mungekey -c -k "$DIR/munge/munge.key"
  local cpus memory
  cpus=$(nproc)
  memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)
  cat >"$SLURM_CONF" <<EOF
ClusterName=xumxci
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePass=$DIR/munge/munge.socket.2
JobAcctGatherType=jobacct_gather/none
MinJobAge=300
KillWait=5
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket.2
DbdHost=$HOST
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$DB_PASSWORD
StorageLoc=slurm_acct_db
EOF
  chmod 600 "$DIR/slurmdbd.conf"
}

start() {
  apt_install /usr/sbin/slurmctld=slurm-wlm /usr/sbin/munged=munge /usr/sbin/slurmdbd=slurmdbd \
    /usr/sbin/mariadbd=mariadb-server
  if running "$DIR/run/slurmctld.pid"; then log "already running (SLURM_CONF=$SLURM_CONF)"; return; fi
  write_config
  running "$DIR/munge/munged.pid" || munged --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket.2" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
  if ! running "$DIR/run/mariadbd.pid"; then
    [[ -d $DIR/db/mysql ]] || mariadb-install-db --user=root --datadir="$DIR/db" --auth-root-authentication-method=normal \
      >"$DIR/log/mariadb-install.log" 2>&1
    setsid mariadbd --user=root --datadir="$DIR/db" --bind-address=127.0.0.1 --port=$DB_PORT \
      --socket="$DIR/run/mariadb.sock" --pid-file="$DIR/run/mariadbd.pid" --skip-name-resolve \
      --innodb-lock-wait-timeout=900 --log-error="$DIR/log/mariadbd.log" </dev/null >/dev/null 2>&1 &
    wait_for 60 MariaDB mariadb --socket="$DIR/run/mariadb.sock" -u root -e "select 1"
    mariadb --socket="$DIR/run/mariadb.sock" -u root -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' \
      IDENTIFIED BY '$DB_PASSWORD'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
  fi
  running "$DIR/run/slurmdbd.pid" || { setsid slurmdbd -D \
    </dev/null >>"$DIR/log/slurmdbd.out" 2>&1 & }
  wait_for 60 slurmdbd sacctmgr -i list cluster
  sacctmgr -i list cluster -n format=cluster | grep -qw xumxci || sacctmgr -i add cluster xumxci >/dev/null
  # an account for the jobs (hydra.launcher.account=xumxci), with root in it
  sacctmgr -i list account -n format=account | grep -qw xumxci \
    || sacctmgr -i add account xumxci Description=ci Organization=ci >/dev/null
  sacctmgr -i list user root -n -s format=account | grep -qw xumxci || sacctmgr -i add user root Account=xumxci >/dev/null
  setsid slurmctld -D </dev/null >>"$DIR/log/slurmctld.out" 2>&1 &
  setsid slurmd -D </dev/null >>"$DIR/log/slurmd.out" 2>&1 &
  wait_for 60 "the node" bash -c "sinfo -h -N -o %t | grep -qx idle"
  log "ready: $(sinfo -h -o '%P %D nodes %c CPUs %t') (SLURM_CONF=$SLURM_CONF)"
}

stop() {
  [[ -f $SLURM_CONF ]] || { log "no cluster in $DIR"; return 0; }
  if running "$DIR/run/slurmctld.pid"; then
    scancel --full --quiet 2>/dev/null || true
    for _ in $(seq 50); do [[ -z $(squeue -h 2>/dev/null) ]] && break; sleep 0.2; done
  fi
  # Job processes: below slurmd, and below the slurmstepd processes of this cluster (their environment names its
  # configuration) that an unclean stop left behind.
  local jobs=() pid
  running "$DIR/run/slurmd.pid" && mapfile -t jobs < <(descendants "$(cat "$DIR/run/slurmd.pid")")
  for pid in $(pgrep -x slurmstepd || true); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "SLURM_CONF=$SLURM_CONF"; then
      jobs+=("$pid")
      mapfile -t -O "${#jobs[@]}" jobs < <(descendants "$pid")
    fi
  done
  stop_pid_file "$DIR/run/slurmd.pid" slurmd
  stop_pid_file "$DIR/run/slurmctld.pid" slurmctld
  stop_pid_file "$DIR/run/slurmdbd.pid" slurmdbd
  stop_pid_file "$DIR/run/mariadbd.pid" mariadbd
  stop_pid_file "$DIR/munge/munged.pid" munged
  for pid in "${jobs[@]}"; do kill -KILL "$pid" 2>/dev/null && log "killed leftover job process $pid" || true; done
}

case "${1:-}" in
  start) start ;;
  env) echo "export SLURM_CONF=$SLURM_CONF XUMX_TEST_SLURM=1 XUMX_SLURM_PARTITION=debug XUMX_SLURM_ACCOUNT=xumxci" ;;
  stop) stop ;;
  *) echo "usage: $0 start|env|stop" >&2; exit 2 ;;
esac
