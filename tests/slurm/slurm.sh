#!/bin/sh
# tests/slurm/slurm.sh — a real single-node Slurm for the SLURMCluster tests,
# started and stopped by them: a munge key and munged on their own socket,
# slurmctld -D and slurmd -D with a slurm.conf written into DIR (its own
# ports, state and spool in DIR, ProctrackType=proctrack/linuxproc, no cgroups,
# no accounting database, 127.0.0.1 only).
#     slurm.sh start DIR PORT   writes DIR/slurm.conf, starts the daemons
#                               (PORT, PORT+1, PORT+2..PORT+40 for srun),
#                               waits until sinfo shows the node idle;
#                               exit 3 when a port is in use
#     slurm.sh stop DIR         stops what start started (pid files in DIR)
#     slurm.sh sweep PARENT     stops and removes every PARENT/herd-slurm.*
#                               whose DIR/owner names a process that is gone
#                               (a test that crashed before its teardown)
# Clients use it with SLURM_CONF=DIR/slurm.conf. Must run as root (slurmd
# starts jobs as their user). Exit 0, or 1 with the reason on stderr.
set -u
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|sweep DIR [PORT]" >&2; exit 2; }

stop() {
    # each daemon's pid file, and the pid the shell started it with
    for f in slurmd.pid slurmd.pid.sh slurmctld.pid slurmctld.pid.sh munged.pid; do
        f="$dir/$f"
        [ -f "$f" ] || continue
        p=$(cat "$f" 2>/dev/null)
        [ -n "$p" ] && kill -TERM "$p" 2>/dev/null
        i=0
        while [ -n "$p" ] && kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
        rm -f "$f"
    done
    return 0
}

fail() { echo "slurm.sh: $*" >&2; for l in munged slurmctld slurmd; do [ -f "$dir/$l.log" ] && tail -n 5 "$dir/$l.log" >&2; done; stop; exit 1; }

case $cmd in
stop) stop; exit 0 ;;
sweep)
    parent=$dir
    for dir in "$parent"/herd-slurm.*; do
        [ -f "$dir/owner" ] || continue
        o=$(cat "$dir/owner" 2>/dev/null)
        [ -n "$o" ] && kill -0 "$o" 2>/dev/null && continue
        stop
        rm -rf "$dir"
    done
    exit 0 ;;
start) ;;
*) echo "usage: $0 start|stop DIR [PORT]" >&2; exit 2 ;;
esac

port=${3:-16817}
[ "$(id -u)" = 0 ] || { echo "slurm.sh: must run as root (slurmd runs jobs as their users)" >&2; exit 1; }
for b in munged mungekey slurmctld slurmd sinfo; do
    command -v $b >/dev/null 2>&1 || [ -x /usr/sbin/$b ] || { echo "slurm.sh: $b not installed (apt-get install slurmctld slurmd slurm-client munge)" >&2; exit 1; }
done
PATH=/usr/sbin:/usr/bin:/sbin:/bin:$PATH
mkdir -p "$dir/munge" "$dir/state" "$dir/spool" || exit 1
chmod 700 "$dir" "$dir/munge"

mungekey --create --keyfile="$dir/munge/munge.key" --force 2>"$dir/mungekey.log" || fail "mungekey failed"
chmod 600 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed" \
    --num-threads=2 || fail "munged did not start"

cat > "$dir/slurm.conf" <<CONF
# written by tests/slurm/slurm.sh: one node, this machine, 127.0.0.1 only
ClusterName=herdtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldAddr=127.0.0.1
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SrunPortRange=$((port + 2))-$((port + 40))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SlurmdParameters=config_overrides
ReturnToService=2
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
KillWait=5
UnkillableStepTimeout=180
MinJobAge=30
DefMemPerCPU=100
SchedulerParameters=sched_interval=1
MessageTimeout=10
NodeName=herdnode NodeHostname=$(hostname) NodeAddr=127.0.0.1 CPUs=8 RealMemory=8000 State=UNKNOWN
PartitionName=debug Nodes=herdnode Default=YES MaxTime=INFINITE State=UP
PartitionName=spare Nodes=herdnode Default=NO MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -D -i -f "$dir/slurm.conf" >"$dir/slurmctld.out" 2>&1 &
echo $! > "$dir/slurmctld.pid.sh"
slurmd -D -N herdnode -f "$dir/slurm.conf" >"$dir/slurmd.out" 2>&1 &
echo $! > "$dir/slurmd.pid.sh"
i=0
while :; do
    # a daemon that could not start (a port in use: exit 3, the caller
    # tries other ports) ends the wait at once
    for d in slurmctld slurmd; do
        kill -0 "$(cat "$dir/$d.pid.sh")" 2>/dev/null && continue
        if grep -q "Address already in use" "$dir/$d.out" "$dir/$d.log" 2>/dev/null; then
            echo "slurm.sh: $d: port $port or $((port + 1)) is in use" >&2; stop; exit 3
        fi
        fail "$d exited at start"
    done
    st=$(timeout 5 sinfo -h -n herdnode -p debug -o %t 2>/dev/null)
    [ "$st" = idle ] && break
    i=$((i + 1))
    [ $i -gt 300 ] && fail "the node is not idle after 30 s (sinfo: '$st')"
    sleep 0.1
done
exit 0
