#!/usr/bin/env bash
# Stop the SLURM daemons that slurm-up.sh started, by the pids it recorded, and nothing else.
# Jobs still in this test cluster are cancelled first so that no job step outlives slurmd.
set -euo pipefail

STATE=${VICOKD_SLURM_STATE:-/run/vicokd-slurm}
say() { echo "slurm-down: $*" >&2; }

[ -d "$STATE" ] || { say "nothing recorded in $STATE"; exit 0; }

# pid_of NAME: the recorded pid when it still runs the program NAME (pids get reused).
pid_of() {
    local pid
    [ -s "$STATE/$1.pid" ] || return 1
    pid=$(cat "$STATE/$1.pid")
    [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ] && echo "$pid"
}

if pid_of slurmctld >/dev/null; then
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [ -n "$jobs" ]; then
        say "cancelling jobs: $(echo $jobs)"
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 30); do
            [ -z "$(squeue -h -t running,completing -o %i 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
fi

for name in slurmd slurmctld munged; do
    if pid=$(pid_of "$name"); then
        kill -TERM "$pid"
        for _ in $(seq 100); do
            [ -d "/proc/$pid" ] || break
            sleep 0.1
        done
        if [ -d "/proc/$pid" ]; then
            say "$name (pid $pid) ignored TERM for 10 s: KILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $name (pid $pid)"
    fi
    rm -f "$STATE/$name.pid"
done
