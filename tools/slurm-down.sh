#!/usr/bin/env bash
# Stop the single-node Slurm started by tools/slurm-up.sh: cancel the jobs left, then stop
# slurmd, slurmctld and (if slurm-up.sh started it) munged, by the PIDs in their PID files
# (never by name), newest first.
# Safe to call when nothing runs.
set -u

stop_pidfile() {
  local pidfile=$1 pid
  [ -s "$pidfile" ] || return 0
  pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || return 0   # stale file (slurmctld leaves it behind): nothing to do
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  echo "slurm-down: $pidfile ($pid) ignored SIGTERM for 10 s, sending SIGKILL" >&2
  kill -9 "$pid" 2>/dev/null || true
}

if command -v squeue >/dev/null; then
  squeue -h -o %i 2>/dev/null | xargs -r scancel 2>/dev/null || true
fi
stop_pidfile /run/slurmd.pid
stop_pidfile /run/slurmctld.pid
if [ -e /run/munge/.started-by-synthmath ]; then   # leave a munged we did not start
  stop_pidfile /run/munge/munged.pid
  rm -f /run/munge/.started-by-synthmath
fi
echo "slurm-down: stopped"
