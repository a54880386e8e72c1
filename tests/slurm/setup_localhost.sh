#!/usr/bin/env bash
# A real single-node Slurm cluster on this machine, from Debian's packages, for the Slurm
# executor test (tests/test_slurm.py). Idempotent: installs what is missing, writes the
# config for this host's real CPU count and memory (`slurmd -C`), (re)starts munged,
# slurmctld and slurmd only when they are not running with this config, and waits until the
# node is idle. Needs root and apt-get; prints one line saying why when it cannot run.
#
# No accounting database: job states come from `squeue` (the plugin's
# `--slurm-status-command squeue`), which sees finished jobs for MinJobAge seconds; 600 s
# here, far above the plugin's 3 x status-check-interval requirement.
set -euo pipefail

CONF_DIR=/etc/slurm
STATE=/var/lib/slurm-localhost
LOGS=/var/log/slurm-localhost

die() { echo "slurm-localhost: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "needs root (installs Debian packages and starts daemons)"

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null || ! command -v sbatch >/dev/null; then
  command -v apt-get >/dev/null || die "needs apt-get to install slurm-wlm and munge"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update failed"
  apt-get install -y -qq slurm-wlm munge >/dev/null || die "apt-get install slurm-wlm munge failed"
fi

# munge: one key shared by the controller and the node (the package makes one).
if [ ! -s /etc/munge/munge.key ]; then
  /usr/sbin/mungekey --create --force 2>/dev/null \
    || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=128 status=none
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
mkdir -p /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n | unmunge >/dev/null || die "munged did not start (see /var/log/munge/munged.log)"
fi

# slurm.conf for this host: the node line is what slurmd itself detects.
HOST=$(hostname -s)
NODE=$(slurmd -C | head -n 1)
case "$NODE" in NodeName=*) ;; *) die "slurmd -C did not describe this node: $NODE" ;; esac
mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/d" "$LOGS"
CONF=$(cat <<EOF
# Written by tests/slurm/setup_localhost.sh: single-node test cluster on $HOST.
ClusterName=dance-localhost
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
MinJobAge=600
SlurmctldTimeout=30
SlurmdTimeout=30
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=/run/slurmctld-localhost.pid
SlurmdPidFile=/run/slurmd-localhost.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
$NODE NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
CONF=$(printf '%s\n' "$CONF" | sed 's/ UpTime=[^ ]*//')
OLD=$(cat "$CONF_DIR/slurm.conf" 2>/dev/null || true)
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop() {
  if running "$1"; then
    kill "$(cat "$1")"
    for _ in $(seq 100); do running "$1" || break; sleep 0.1; done
  fi
}
if [ "$CONF" != "$OLD" ]; then
  printf '%s\n' "$CONF" > "$CONF_DIR/slurm.conf"
  stop /run/slurmd-localhost.pid
  stop /run/slurmctld-localhost.pid
fi
running /run/slurmctld-localhost.pid || /usr/sbin/slurmctld -i  # -i: ignore stale state
running /run/slurmd-localhost.pid || /usr/sbin/slurmd

for _ in $(seq 120); do
  state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1 || true)
  case "$state" in idle|mix|alloc) break ;; drain*|down*) scontrol update nodename="$HOST" state=resume 2>/dev/null || true ;; esac
  sleep 0.5
done
state=$(sinfo -h -N -o %t 2>/dev/null | head -n 1 || true)
case "$state" in
  idle|mix|alloc) echo "slurm-localhost: node $HOST is $state ($(printf '%s' "$NODE" | grep -o 'CPUs=[0-9]*') $(printf '%s' "$NODE" | grep -o 'RealMemory=[0-9]*'))" ;;
  *) die "node $HOST did not come up (state '$state'); see $LOGS/slurmctld.log and $LOGS/slurmd.log" ;;
esac
