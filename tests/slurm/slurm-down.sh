#!/usr/bin/env bash
# slurm-down.sh - stop the daemons started by slurm-up.sh (by PID file only).
# Copied from ../shared/recipes (measured recipe); started and stopped by tests/test_slurm.py.
# --purge also wipes slurm state, logs and db, so the next slurm-up.sh starts from scratch.
set -uo pipefail
PREFIX=${SLURM_PREFIX:-/tmp/local-slurm}
RUN=$PREFIX/run
ours() { [ -s "$RUN/$1.pid" ] && [ "$(cat /proc/"$(cat "$RUN/$1.pid")"/comm 2>/dev/null)" = "$1" ]; }
stop() {  # args: daemon names (= pid file stem = /proc/PID/comm); TERM all, then wait
  local n p pids=""
  for n in "$@"; do
    if ours "$n"; then p=$(cat "$RUN/$n.pid"); pids="$pids $p"; kill -TERM "$p"; echo "$n: stopping pid $p"
    else echo "$n: not running (no live pid file)"; fi
    rm -f "$RUN/$n.pid"
  done
  for n in $pids; do
    for _ in $(seq 100); do kill -0 "$n" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$n" 2>/dev/null && kill -KILL "$n"
  done
  return 0
}
# cancel leftover jobs of this throw-away cluster so no slurmstepd outlives slurmd
if ours slurmctld; then
  scancel --quiet --user="$(id -un)" 2>/dev/null || true
  for _ in $(seq 50); do [ -z "$(squeue -h 2>/dev/null)" ] && break; sleep 0.2; done
fi
stop slurmd slurmctld slurmdbd
stop mariadbd munged
if [ "${1:-}" = --purge ]; then rm -rf "$PREFIX/state" "$PREFIX/log" "$PREFIX/db"; echo "purged state, log, db under $PREFIX"; fi
