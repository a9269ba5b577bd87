#!/usr/bin/env bash
# Start a real single-node Slurm on localhost (munged, slurmctld, slurmd) for tests and trials.
# Needs root and Debian/Ubuntu packages (installed with apt-get when missing). No database:
# accounting is off, so Snakemake's SLURM executor must poll with `squeue`
# (profiles/slurm-local sets `slurm-status-command: squeue`; without it the run hangs).
#
#   sudo bash tools/slurm-up.sh            # idempotent: a running, idle Slurm is left as it is
#   SLURM_FRESH=1 bash tools/slurm-up.sh   # wipe job state and logs first
#   bash tools/slurm-down.sh               # stop the daemons again (by PID)
#
# The node gets every CPU of the machine and 80% of its memory; one partition `debug`.
set -euo pipefail

CONF_DIR=/etc/slurm
STATE_DIR=/var/lib/slurm
LOG_DIR=/var/log/slurm
NODE=$(hostname -s)

log() { echo "slurm-up: $*"; }
node_idle() { sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)$'; }
munge_ok() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

if [ "$(id -u)" != 0 ]; then
  echo "slurm-up: must run as root (it installs packages and starts system daemons)" >&2
  exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null; then
  log "installing slurm-wlm and munge with apt-get"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi

# Under systemd the packages may have started their own services on the same ports.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  systemctl stop slurmctld slurmd 2>/dev/null || true
fi

if [ "${SLURM_FRESH:-0}" != 1 ] && node_idle && munge_ok; then
  log "already running: $(sinfo -h -o '%P %D %T %c CPUs %m MB' | head -1)"
  exit 0
fi

# --- munge: a key, then the daemon (reused when one already answers) ---
if [ ! -s /etc/munge/munge.key ]; then
  mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
    || dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
if ! munge_ok; then
  runuser -u munge -- /usr/sbin/munged
  touch /run/munge/.started-by-synthmath   # tells slurm-down.sh that this munged is ours
  for _ in $(seq 50); do munge_ok && break; sleep 0.1; done
  munge_ok || { echo "slurm-up: munged did not start" >&2; exit 1; }
fi

# --- stop our own earlier daemons (stale config), optionally wipe state ---
for pidfile in /run/slurmd.pid /run/slurmctld.pid; do
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    pid=$(cat "$pidfile")
    kill "$pid"
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
done
if [ "${SLURM_FRESH:-0}" = 1 ]; then
  rm -rf "${STATE_DIR:?}/slurmctld" "${STATE_DIR:?}/slurmd" "${LOG_DIR:?}"/*
fi
install -d -o slurm -g slurm "$STATE_DIR/slurmctld" "$LOG_DIR"
install -d "$STATE_DIR/slurmd" "$CONF_DIR"

# --- slurm.conf: one node (this machine), no cgroups, no accounting database ---
CPUS=$(nproc)
MEM_MB=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 8 / 10 ))
cat > "$CONF_DIR/slurm.conf" <<EOF
# Written by synthmath tools/slurm-up.sh: single node on localhost, for tests.
ClusterName=synthmath
SlurmctldHost=${NODE}(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=${STATE_DIR}/slurmctld
SlurmdSpoolDir=${STATE_DIR}/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=${LOG_DIR}/slurmctld.log
SlurmdLogFile=${LOG_DIR}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc=${LOG_DIR}/jobcomp.txt
# squeue must still see finished jobs when Snakemake polls: >= 3 x its init seconds
MinJobAge=300
KillWait=5
NodeName=${NODE} NodeAddr=127.0.0.1 CPUs=${CPUS} RealMemory=${MEM_MB} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE DefMemPerCPU=500 State=UP
EOF

# --- controller, then node daemon; both fork into the background ---
/usr/sbin/slurmctld
/usr/sbin/slurmd
for _ in $(seq 150); do node_idle && break; sleep 0.2; done
if ! node_idle; then
  echo "slurm-up: the node did not become idle; state and logs:" >&2
  sinfo -N -l >&2 || true
  tail -n 20 "$LOG_DIR"/slurmctld.log "$LOG_DIR"/slurmd.log >&2 || true
  exit 1
fi
log "ready: $(sinfo -h -o '%P %D %T %c CPUs %m MB' | head -1)"
