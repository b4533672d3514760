#!/usr/bin/env bash
# A real one-node SLURM cluster on localhost, for the tests (and for trying the launcher profiles).
#
#   bash slurm/local_cluster.sh start    install (apt, once) and start munge, mariadb + slurmdbd
#                                        (accounting), slurmctld and slurmd; idempotent
#   bash slurm/local_cluster.sh stop     stop the daemons this script started (by their pid files)
#   bash slurm/local_cluster.sh status   "up" + sinfo when the node answers, else "down" (exit 1)
#   bash slurm/local_cluster.sh can-start  exit 0 when start can work here (root, and apt or slurm)
#
# Needs root and Debian's packages (slurm-wlm 22.05, munge, mariadb); no systemd. Everything lives
# under $UNMASK_SLURM_ROOT (default /tmp/unmask-slurm); /etc/slurm/slurm.conf is linked to our
# config so that clients (sbatch, squeue, sacct from submitit) work without SLURM_CONF.
# Accounting (slurmdbd) is not optional: without it submitit cannot see a cancelled or timed-out
# job and waits for it forever.
set -euo pipefail

ROOT=${UNMASK_SLURM_ROOT:-/tmp/unmask-slurm}
CONF=$ROOT/slurm.conf
NODE=localhost
export SLURM_CONF=$CONF

say() { echo "[local_cluster $(date +%T)] $*" >&2; }

# retry a command (quietly) for up to $1 seconds
retry() {
  local seconds=$1
  shift
  for _ in $(seq 1 $((seconds * 4))); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.25
  done
  say "gave up waiting for: $*"
  return 1
}

running() { [ -s "$ROOT/$1.pid" ] && kill -0 "$(cat "$ROOT/$1.pid")" 2>/dev/null; }

have_binaries() {
  local b
  for b in munged slurmctld slurmd slurmdbd sbatch sacct mariadbd; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || return 1
  done
}

can_start() {
  [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
  have_binaries && return 0
  command -v apt-get >/dev/null 2>&1 || { echo "no slurm binaries and no apt-get"; return 1; }
}

install_packages() {
  have_binaries && return 0
  say "installing slurm, munge and mariadb with apt (once)"
  apt-get update -qq
  # images without systemd deny service starts during install (policy-rc.d); we start them below
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    munge slurmctld slurmd slurm-client slurmdbd mariadb-server >/dev/null
}

write_config() {
  mkdir -p "$ROOT/state" "$ROOT/spool" "$ROOT/log"
  local cpus mem
  cpus=$(nproc)
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048))
  cat >"$CONF" <<CONF
ClusterName=unmask
SlurmctldHost=$NODE
# set by start: above every job id in the accounting database, which outlives $ROOT/state (a job id
# used twice makes sacct, and so submitit, read the state of an older job of the same number)
FirstJobId=1
AuthType=auth/munge
CredType=cred/munge
# a requeued job may start again only when the old credentials expire (default 120 s)
AuthInfo=cred_expire=10
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$ROOT/state
SlurmdSpoolDir=$ROOT/spool
SlurmctldPidFile=$ROOT/slurmctld.pid
SlurmdPidFile=$ROOT/slurmd.pid
SlurmctldLogFile=$ROOT/log/slurmctld.log
SlurmdLogFile=$ROOT/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$NODE
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
  # slurmdbd reads slurmdbd.conf next to slurm.conf and refuses it unless it is private
  cat >"$ROOT/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=$NODE
SlurmUser=root
LogFile=$ROOT/log/slurmdbd.log
PidFile=$ROOT/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=unmask
StorageLoc=unmask_slurm_acct
CONF
  chmod 600 "$ROOT/slurmdbd.conf"
}

note_started() { echo "$1" >>"$ROOT/started"; }

start_munge() {
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then return 0; fi
  if [ ! -s /etc/munge/munge.key ]; then
    mungekey --create --keyfile=/etc/munge/munge.key
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 755 /run/munge
  runuser -u munge -- /usr/sbin/munged
  cp /run/munge/munged.pid "$ROOT/munged.pid"
  note_started munged
  retry 10 bash -c 'munge -n | unmunge'
}

start_mariadb() {
  if ! mariadb-admin ping >/dev/null 2>&1; then
    install -d -o mysql -g mysql /run/mysqld
    setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
      >"$ROOT/log/mariadb.log" 2>&1 </dev/null &
    echo $! >"$ROOT/mariadb.pid"
    note_started mariadb
    retry 60 mariadb-admin ping
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS unmask_slurm_acct;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'unmask';
    GRANT ALL ON unmask_slurm_acct.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

start_daemon() { # name, command...: start unless our pid file says it runs (a 2nd slurmd kills the 1st)
  local name=$1
  shift
  running "$name" && return 0
  "$@"
  note_started "$name"
}

start() {
  local problem
  if ! problem=$(can_start); then
    say "cannot start a local cluster here: $problem"
    return 1
  fi
  install_packages
  write_config
  start_munge
  start_mariadb
  local first
  first=$(mariadb -N -e "SELECT COALESCE(MAX(id_job), 0) + 1 FROM unmask_slurm_acct.unmask_job_table" \
    2>/dev/null) || first=1
  sed -i "s/^FirstJobId=.*/FirstJobId=${first:-1}/" "$CONF"
  start_daemon slurmdbd /usr/sbin/slurmdbd
  retry 30 sacctmgr -n list cluster
  sacctmgr -i -Q add cluster unmask >/dev/null 2>&1 || true
  start_daemon slurmctld /usr/sbin/slurmctld
  retry 30 scontrol ping
  start_daemon slurmd /usr/sbin/slurmd -N "$NODE"
  if ! retry 30 bash -c 'sinfo -h -o %T | grep -qx idle'; then
    scontrol update nodename="$NODE" state=resume || true
    retry 15 bash -c 'sinfo -h -o %T | grep -qx idle'
  fi
  mkdir -p /etc/slurm
  ln -sfn "$CONF" /etc/slurm/slurm.conf
  say "up: $(sinfo -h -o '%P %a %D %T %N')"
}

stop() {
  local name pid
  [ -f "$ROOT/started" ] || return 0
  for name in slurmd slurmctld slurmdbd mariadb munged; do
    grep -qx "$name" "$ROOT/started" || continue # not ours: it was running before we started
    [ -s "$ROOT/$name.pid" ] || continue
    pid=$(cat "$ROOT/$name.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 80); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.25
      done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
      say "stopped $name ($pid)"
    fi
    rm -f "$ROOT/$name.pid"
  done
  rm -f "$ROOT/started"
  if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$CONF" ]; then rm -f /etc/slurm/slurm.conf; fi
}

status() {
  if [ -f "$CONF" ] && timeout 10 sinfo -h -o '%T' 2>/dev/null | grep -Eq '^(idle|mixed|allocated)'; then
    echo "up: $(sinfo -h -o '%P %a %D %T %N')"
  else
    echo "down"
    return 1
  fi
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
can-start) can_start >/dev/null ;;
*)
  echo "usage: $0 start|stop|status|can-start" >&2
  exit 2
  ;;
esac
