#!/usr/bin/env bash
# Bring up a single-node SLURM on this machine for tests/cluster: Debian's slurmctld, slurmd,
# slurm-client and munge, a minimal slurm.conf for this host (no accounting), and the three
# daemons started without systemd. Runs as root; running it twice is fine (daemons it already
# started are kept). slurm-down.sh stops exactly the daemons whose pids this script recorded.
#
# Environment: VICOKD_SLURM_STATE (pid files, default /run/vicokd-slurm),
#              VICOKD_SLURM_PARTITION (the one partition, default "debug").
set -euo pipefail

STATE=${VICOKD_SLURM_STATE:-/run/vicokd-slurm}
PARTITION=${VICOKD_SLURM_PARTITION:-debug}
CONF=/etc/slurm/slurm.conf
MARK="# written by vicokd tests/cluster/slurm-up.sh"

say() { echo "slurm-up: $*" >&2; }
die() { say "error: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (it installs packages and starts daemons)"

# --- packages -------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    # The packages' init scripts would start daemons this script does not own (and without
    # systemd they may fail): forbid service starts during the install, as Docker images do.
    added_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        added_policy=1
    fi
    say "installing slurmctld slurmd slurm-client munge"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client munge >&2
    [ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d
fi

# --- munge ----------------------------------------------------------------------------------
id munge >/dev/null 2>&1 || die "the munge package did not create the munge user"
install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
install -d -o munge -g munge -m 0755 /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    say "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null; then
        mungekey --create --keyfile /etc/munge/munge.key
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

# --- slurm.conf -----------------------------------------------------------------------------
HOST=$(hostname -s)
# slurmd -C prints this node as slurmd will see it; using its figures keeps the node from being
# drained for "low RealMemory" or a CPU count mismatch.
NODELINE=$(slurmd -C | head -1)
CPUS=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$NODELINE")
MEM=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$NODELINE")
[ -n "$CPUS" ] && [ -n "$MEM" ] || die "cannot read CPUs/RealMemory from 'slurmd -C': $NODELINE"
SLURM_USER=slurm
id slurm >/dev/null 2>&1 || SLURM_USER=root

install -d -m 0755 /etc/slurm /var/log/slurm "$STATE"
install -d -o "$SLURM_USER" -m 0755 /var/lib/slurm /var/lib/slurm/slurmctld
install -d -m 0755 /var/lib/slurm/slurmd
chown "$SLURM_USER" /var/log/slurm

NEW=$(mktemp)
cat >"$NEW" <<EOF
$MARK: a single-node test cluster, no accounting.
ClusterName=vicokd-test
# the address in parentheses is what clients use: this host, whatever its name resolves to
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=$SLURM_USER
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
# finished jobs stay visible to squeue for 5 minutes: the plugin's squeue status checks need it
MinJobAge=300
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=$PARTITION Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    rm -f "$NEW"
    die "$CONF exists and was not written by this script; not overwriting it"
fi
CONF_CHANGED=""
if ! cmp -s "$NEW" "$CONF"; then
    install -m 0644 "$NEW" "$CONF"
    CONF_CHANGED=1
    say "wrote $CONF (node $HOST, $CPUS CPUs, $MEM MB, partition $PARTITION)"
fi
rm -f "$NEW"

# --- daemons --------------------------------------------------------------------------------
# alive NAME: true when the pid recorded for NAME runs the program NAME.
alive() {
    local pid
    [ -s "$STATE/$1.pid" ] || return 1
    pid=$(cat "$STATE/$1.pid")
    [ -d "/proc/$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$1" ]
}

# start NAME PIDFILE CMD...: run a self-daemonizing CMD and record the pid it writes.
start() {
    local name=$1 pidfile=$2
    shift 2
    if alive "$name"; then
        say "$name already running (pid $(cat "$STATE/$name.pid"))"
        return 0
    fi
    rm -f "$pidfile"
    "$@"
    for _ in $(seq 100); do
        if [ -s "$pidfile" ] && [ -d "/proc/$(cat "$pidfile")" ]; then
            cp "$pidfile" "$STATE/$name.pid"
            say "started $name (pid $(cat "$STATE/$name.pid"))"
            return 0
        fi
        sleep 0.1
    done
    die "$name did not start; see its log under /var/log"
}

if ! alive munged && pgrep -x munged >/dev/null; then
    say "a munged not started by this script is running: using it"
else
    start munged /run/munge/munged.pid runuser -u munge -- /usr/sbin/munged
fi
munge -n | unmunge >/dev/null || die "munge credentials do not round-trip (munged not working)"

start slurmctld /run/slurmctld.pid /usr/sbin/slurmctld
start slurmd /run/slurmd.pid /usr/sbin/slurmd
if [ -n "$CONF_CHANGED" ]; then
    scontrol reconfigure >/dev/null 2>&1 || true
fi

# --- wait for the node ----------------------------------------------------------------------
for _ in $(seq 120); do
    st=$(sinfo -h -N -n "$HOST" -o %t 2>/dev/null | head -1 || true)
    case "$st" in
        idle|mix|alloc) sinfo >&2; say "node $HOST is $st"; exit 0 ;;
        down*|drain*|drng*) scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true ;;
    esac
    sleep 0.5
done
sinfo >&2 || true
die "node $HOST did not become idle within 60 s; see /var/log/slurm/slurmctld.log and slurmd.log"
