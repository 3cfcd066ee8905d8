#!/bin/sh
# bench/ssh_bench.sh — workers over ssh, side by side in one run on the same
# two OpenSSH servers (started here on 127.0.0.1 high ports with generated
# host and user keys): start 4 workers across the 2 hosts, run 1,000 short
# tasks on them, close; end to end, median of runs.
#   herd   ssh.SSHCluster  (bench/herd_bench --ssh-kwargs …)
#   dask   distributed.SSHCluster, asyncssh (bench/dask_bench.py --ssh-hosts …)
#   gnu parallel --sshlogin 2/…,2/… with ssh ControlMaster (-M), the same
#          1,000 tasks as shell commands (`echo N`)
# Prints "RESULT <side> ssh_e2e_1k <ms> ms" lines and a small table. Run by
# bench/run.sh; on its own: BUILD=build sh bench/ssh_bench.sh.
#   SSH_BENCH_RUNS   runs of herd and Dask (default 3)
#   SSH_BENCH_PARALLEL_RUNS  runs of GNU parallel (default 1: ~2 min each; 0: skip it)
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
RUNS=${SSH_BENCH_RUNS:-3}
PRUNS=${SSH_BENCH_PARALLEL_RUNS:-1}   # parallel takes minutes per run
here=$(cd "$(dirname "$0")" && pwd)
out="$BUILD/bench"
mkdir -p "$out"
res="$out/ssh_results.txt"
: >"$res"

if [ ! -x /usr/sbin/sshd ] || ! command -v ssh >/dev/null; then
    echo "!! ssh bench skipped: needs openssh-server (/usr/sbin/sshd) and openssh-client"
    exit 0
fi
d=$(mktemp -d /tmp/herd-sshbench-XXXXXX)
chmod 755 "$d"
pids=""
cleanup() { for p in $pids; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$d"; }
trap cleanup EXIT INT TERM
[ "$(id -u)" = 0 ] && mkdir -p /run/sshd
ssh-keygen -q -t ed25519 -N '' -f "$d/id" || exit 0
: >"$d/known_hosts"
ports=""
for i in 1 2; do
    port=$("$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mkdir "$d/h$i"
    ssh-keygen -q -t ed25519 -N '' -f "$d/h$i/host_key"
    cp "$d/id.pub" "$d/h$i/authorized_keys"
    cat >"$d/h$i/sshd_config" <<EOF
Port $port
ListenAddress 127.0.0.1
HostKey $d/h$i/host_key
PidFile $d/h$i/sshd.pid
AuthorizedKeysFile $d/h$i/authorized_keys
UsePAM no
StrictModes no
PasswordAuthentication no
PermitRootLogin prohibit-password
MaxStartups 200:30:400
MaxSessions 100
UseDNS no
LogLevel ERROR
EOF
    /usr/sbin/sshd -D -e -f "$d/h$i/sshd_config" 2>"$d/h$i/log" &
    pids="$pids $!"
    echo "[127.0.0.1]:$port $(cut -d' ' -f1,2 "$d/h$i/host_key.pub")" >>"$d/known_hosts"
    ports="$ports $port"
done
set -- $ports
p1=$1 p2=$2
for _ in $(seq 50); do
    ssh -o BatchMode=yes -o UserKnownHostsFile="$d/known_hosts" -i "$d/id" -p "$p2" 127.0.0.1 true 2>/dev/null && break
    sleep 0.1
done
echo "== ssh bench: 2 sshd hosts (127.0.0.1:$p1, 127.0.0.1:$p2), 4 workers x 1 thread, 1,000 tasks, $RUNS runs each"

# ---- herd ----
# KexAlgorithms: the key exchange Dask's asyncssh (2.10) negotiates; OpenSSH
# 9's default (sntrup761x25519, post-quantum) costs ~70 ms more per session
# here. SSH_BENCH_KEX=default keeps OpenSSH's choice.
kex="options: ['KexAlgorithms=curve25519-sha256'], "
[ "${SSH_BENCH_KEX:-}" = default ] && kex=""
kw="{hosts: ['127.0.0.1:$p1', '127.0.0.1:$p2'], workers_per_host: 2, connect_options: {${kex}identity_file: '$d/id', known_hosts: '$d/known_hosts', strict_host_key_checking: 'yes'}}"
# and with the scheduler on the first host, where Dask's SSHCluster puts it
kwr="{hosts: ['127.0.0.1:$p1', '127.0.0.1:$p2'], scheduler_host: '127.0.0.1:$p1', workers_per_host: 2, connect_options: {${kex}identity_file: '$d/id', known_hosts: '$d/known_hosts', strict_host_key_checking: 'yes'}}"
if [ -x "$BUILD/bench/herd_bench" ]; then
    timeout -k 10 300 "$BUILD/bench/herd_bench" --start-runs "$RUNS" --ssh-kwargs "$kw" 2>"$out/ssh_herd.err" | tee -a "$res"
    timeout -k 10 300 "$BUILD/bench/herd_bench" --start-runs "$RUNS" --ssh-kwargs "$kwr" \
        --ssh-metric ssh_e2e_1k_remote_sched 2>"$out/ssh_herd_rs.err" | tee -a "$res"
else
    echo "!! $BUILD/bench/herd_bench not built"
fi

# ---- Dask ----
if "$PYTHON" -c 'import distributed, asyncssh' 2>/dev/null; then
    timeout -k 10 600 "$PYTHON" "$here/dask_bench.py" --start-runs "$RUNS" --ssh-hosts "127.0.0.1:$p1,127.0.0.1:$p2" \
        --ssh-key "$d/id" --ssh-known-hosts "$d/known_hosts" 2>"$out/ssh_dask.err" | tee -a "$res"
    [ -s "$out/ssh_dask.err" ] && grep -q Error "$out/ssh_dask.err" && tail -n 5 "$out/ssh_dask.err" | sed 's/^/   dask: /'
else
    echo "!! $PYTHON cannot import distributed and asyncssh (python3-distributed, python3-asyncssh): Dask not measured"
fi

# ---- GNU parallel ----
if command -v parallel >/dev/null; then
    sshc="ssh -o BatchMode=yes -o UserKnownHostsFile=$d/known_hosts -i $d/id"
    ts=""
    for _ in $(seq "$PRUNS"); do
        t0=$(date +%s%N)
        n=$(seq 1000 | parallel -M -S "2/$sshc -p $p1 127.0.0.1,2/$sshc -p $p2 127.0.0.1" echo {} 2>"$out/ssh_parallel.err" | wc -l)
        t1=$(date +%s%N)
        [ "$n" = 1000 ] || { echo "!! parallel returned $n of 1000 results"; tail -n 3 "$out/ssh_parallel.err"; ts=""; break; }
        ts="$ts $(( (t1 - t0) / 1000000 ))"
    done
    if [ -n "$ts" ]; then
        echo "# parallel runs (ms):$ts"
        echo "RESULT parallel ssh_e2e_1k $(printf '%s\n' $ts | sort -n | sed -n "$(( (PRUNS + 2) / 2 ))p").0 ms" | tee -a "$res"
    fi
else
    echo "!! GNU parallel not installed: not measured"
fi

awk '$1 == "RESULT" { if ($3 == "ssh_e2e_1k_remote_sched") v["herd_rs"] = $4; else v[$2] = $4 }
END {
    printf "\n%-44s %12s %12s %12s\n", "4 workers on 2 ssh hosts + 1,000 tasks + close", "herd", "dask", "parallel"
    printf "%-44s %12s %12s %12s ms\n", "end to end, median", v["herd"] ? v["herd"] : "-", v["dask"] ? v["dask"] : "-",
           v["parallel"] ? v["parallel"] : "-"
    if (v["herd_rs"] > 0)
        printf "%-44s %12s ms%s\n", "herd, scheduler_host = first host (as Dask)", v["herd_rs"],
               (v["dask"] > 0 ? sprintf(" (%.1fx faster than Dask)", v["dask"] / v["herd_rs"]) : "")
    if (v["herd"] > 0 && v["dask"] > 0)
        printf "herd vs Dask SSHCluster: %.1fx faster (target >= 10x: %s)\n", v["dask"] / v["herd"],
               ((v["dask"] / v["herd"] >= 10) ? "met" : "NOT met")
    if (v["herd"] > 0 && v["parallel"] > 0)
        printf "herd vs parallel --sshlogin: %.1fx faster\n", v["parallel"] / v["herd"]
}' "$res"
exit 0
