#!/usr/bin/env bash
# A one-host SLURM cluster on localhost for the tests: install slurm-wlm and munge
# (Debian packages) when missing, write a minimal slurm.conf into STATE_DIR, start
# munged, slurmctld and two slurmd by hand (no systemd), and later stop only what we
# started. Clients then need SLURM_CONF=STATE_DIR/slurm.conf.
# The two nodes, <host> and <host>-2, are two slurmd on this host (NodeHostname is
# this host for both, each on its own port), so that jobs can ask for --nodes 2.
#
#   tests/slurm/cluster.sh start STATE_DIR
#   tests/slurm/cluster.sh stop STATE_DIR
set -Eeuo pipefail
shopt -s extglob

die() {
  printf 'cluster.sh: %s\n' "$*" >&2
  exit 1
}

install_packages() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return 0
  ((EUID == 0)) || die "SLURM is not installed and we are not root: cannot apt-get install slurm-wlm munge"
  command -v apt-get >/dev/null || die "SLURM is not installed and there is no apt-get"
  echo "== apt-get install slurm-wlm munge" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
}

write_conf() {
  local state=$1 host mem
  host=$(hostname -s)
  mem=$(awk '/MemTotal/ {print int($2 / 1024 * 0.45)}' /proc/meminfo)
  cat >"$state/slurm.conf" <<CONF
ClusterName=trainresume
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/slurmd-%n
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd-%n.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobRequeue=1
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
KillWait=30
InactiveLimit=0
MinJobAge=600
NodeName=$host NodeHostname=$host NodeAddr=127.0.0.1 Port=16818 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
NodeName=$host-2 NodeHostname=$host NodeAddr=127.0.0.1 Port=16819 CPUs=$(nproc) RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host,$host-2 Default=YES MaxTime=INFINITE State=UP
CONF
  printf '%s\n' "$host" "$host-2" >"$state/nodes"
}

start() {
  local state=$1 i
  ((EUID == 0)) || die "needs root to run slurmd (run the SLURM tests as root, as CI does)"
  install_packages
  mkdir -p "$state/ctld"
  write_conf "$state"
  # A munged that answers is enough; otherwise start ours.
  if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    [[ -s /etc/munge/munge.key ]] || /usr/sbin/mungekey --create >/dev/null 2>&1 ||
      dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null
    chmod 400 /etc/munge/munge.key
    /usr/sbin/munged --force
    munge -n | unmunge >/dev/null || die "munged started but does not answer"
    if [[ -s /run/munge/munged.pid ]]; then
      cp /run/munge/munged.pid "$state/munged.ours"
    else
      pgrep -n -x munged >"$state/munged.ours"
    fi
  fi
  export SLURM_CONF=$state/slurm.conf
  # A start that fails half way stops what it started.
  trap 'stop "$state"' ERR
  /usr/sbin/slurmctld -c -f "$SLURM_CONF"
  local node
  while read -r node; do
    mkdir -p "$state/slurmd-$node"
    /usr/sbin/slurmd -c -f "$SLURM_CONF" -N "$node"
  done <"$state/nodes"
  for ((i = 0; i < 60; i++)); do
    if [[ $(timeout 5 sinfo -h -N -o '%t' 2>/dev/null | grep -cE '^(idle|mix|alloc)') == 2 ]]; then
      echo "SLURM is up: SLURM_CONF=$SLURM_CONF" >&2
      return 0
    fi
    sleep 0.5
  done
  tail -n 20 "$state/slurmctld.log" "$state"/slurmd-*.log >&2 || true
  stop "$state"
  die "the node did not come up"
}

stop() {
  local state=$1 pidfile pid i jobs
  local -a pids=()
  # Jobs still there (a test that failed half way) are cancelled first and their
  # processes left to end: a job step that outlived its slurmctld would report to
  # the next cluster's job of the same id and end it.
  if [[ -s $state/slurmctld.pid ]] && jobs=$(SLURM_CONF=$state/slurm.conf timeout 10 squeue -h -o %i 2>/dev/null) &&
    [[ -n $jobs ]]; then
    # shellcheck disable=SC2086 # job ids, one a word
    SLURM_CONF=$state/slurm.conf timeout 10 scancel $jobs 2>/dev/null
    for ((i = 0; i < 90; i++)); do
      [[ -z $(SLURM_CONF=$state/slurm.conf timeout 10 squeue -h -t R,CG,S,PD -o %i 2>/dev/null) ]] && break
      sleep 0.5
    done
  fi
  for pidfile in "$state"/slurmd-*.pid "$state/slurmctld.pid" "$state/munged.ours"; do
    [[ -s $pidfile ]] || continue
    while read -r pid; do
      [[ $pid == +([0-9]) ]] && kill "$pid" 2>/dev/null && pids+=("$pid")
    done <"$pidfile"
  done
  # Wait until they are gone (slurmd can take seconds), so that the next cluster
  # finds its ports free; then insist.
  for ((i = 0; i < 60; i++)); do
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && break
      pid=''
    done
    [[ -z ${pid:-} ]] && return 0
    sleep 0.25
  done
  kill -9 "${pids[@]}" 2>/dev/null
  return 0
}

case ${1:-} in
  start | stop) [[ -n ${2:-} ]] || die "usage: $0 start|stop STATE_DIR" && "$1" "$2" ;;
  *) die "usage: $0 start|stop STATE_DIR" ;;
esac
