#!/bin/sh
# tests/install/test_slurm_job_script.sh — `herd slurm job-script`: the batch
# script SLURMCluster submits, compared line by line with the expected one
# (dask-jobqueue's layout: directives, skip list, extra directives,
# prologue, the workers, epilogue; memory as dask-jobqueue rounds it); both
# sh and bash parse it; bad kwargs are refused naming the key; a profile
# from herd.yaml gives the same script. Needs no Slurm: nothing is submitted.
cd "$(dirname "$0")/../.." || exit 1
b=${BUILD:-build}
herd=$b/bin/herd
fail() { echo "FAIL $*"; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/herd-jobscript.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT

kw='{cores: 4, memory: 6GB, processes: 2, queue: debug, account: proj, walltime: "01:00:00",
     job_extra_directives: ["--gres=gpu:1"], job_directives_skip: ["-N 1"],
     job_script_prologue: ["module load foo", "export OMP_NUM_THREADS=1"], job_script_epilogue: ["echo done"],
     log_directory: /var/log/herd, local_directory: /scratch, job_name: exp}'
"$herd" slurm job-script --cluster-kwargs "$kw" --program /opt/my-flow >"$tmp/got" 2>"$tmp/err" ||
    fail "herd slurm job-script: $(cat "$tmp/err")"
# the job name's 6 hex digits differ at every run
sed 's/exp-[0-9a-f]\{6\}/exp-XXXXXX/g' "$tmp/got" >"$tmp/got.n"
cat >"$tmp/want" <<'WANT'
#!/usr/bin/env bash

#SBATCH -J exp-XXXXXX
#SBATCH -e /var/log/herd/exp-XXXXXX-%A_%a.err
#SBATCH -o /var/log/herd/exp-XXXXXX-%A_%a.out
#SBATCH -p debug
#SBATCH -A proj
#SBATCH -n 1
#SBATCH --cpus-per-task=4
#SBATCH --mem=6G
#SBATCH -t 01:00:00
#SBATCH --gres=gpu:1

module load foo
export OMP_NUM_THREADS=1
mkdir -p '/scratch' && export TMPDIR='/scratch'
herd_failed=$(mktemp "${TMPDIR:-/tmp}/herd-job.XXXXXX") || exit 1
herd_name='exp'-"${SLURM_ARRAY_JOB_ID:-$SLURM_JOB_ID}-${SLURM_ARRAY_TASK_ID:-0}"
herd_wait() { while kill -0 "$1" 2>/dev/null; do wait "$1"; done; wait "$1"; }
trap 'kill -TERM $herd_pid0 2>/dev/null' 34
trap 'kill -TERM $herd_pid1 2>/dev/null' 35
herd_all() { kill -TERM $herd_pid0 $herd_pid1 2>/dev/null; }
trap herd_all TERM USR1
(
    trap 'herd_stop=1; kill -TERM $herd_w 2>/dev/null' TERM
    '/opt/my-flow' '--herd-worker' '--herd-name' "$herd_name-0" '--herd-nthreads' '2' '--herd-memory-limit' '3000000000' &
    herd_w=$!
    herd_wait $herd_w; herd_r=$?
    [ -n "$herd_stop" ] && exit 0
    if [ $herd_r -ne 0 ]; then
        echo "herd: worker $herd_name-0 exited with status $herd_r: ending the job" >&2
        [ -s "$herd_failed" ] || echo $herd_r >"$herd_failed"
        kill -USR1 $$
    fi
    exit $herd_r
) &
herd_pid0=$!
(
    trap 'herd_stop=1; kill -TERM $herd_w 2>/dev/null' TERM
    '/opt/my-flow' '--herd-worker' '--herd-name' "$herd_name-1" '--herd-nthreads' '2' '--herd-memory-limit' '3000000000' &
    herd_w=$!
    herd_wait $herd_w; herd_r=$?
    [ -n "$herd_stop" ] && exit 0
    if [ $herd_r -ne 0 ]; then
        echo "herd: worker $herd_name-1 exited with status $herd_r: ending the job" >&2
        [ -s "$herd_failed" ] || echo $herd_r >"$herd_failed"
        kill -USR1 $$
    fi
    exit $herd_r
) &
herd_pid1=$!
herd_rc=0
herd_wait $herd_pid0; herd_r=$?; [ $herd_rc -eq 0 ] && herd_rc=$herd_r
herd_wait $herd_pid1; herd_r=$?; [ $herd_rc -eq 0 ] && herd_rc=$herd_r
[ -s "$herd_failed" ] && herd_rc=$(cat "$herd_failed")
rm -f "$herd_failed"
echo done
exit $herd_rc
WANT
diff -u "$tmp/want" "$tmp/got.n" || fail "the job script differs from the expected one (above)"
sh -n "$tmp/got" || fail "sh cannot parse the script"
bash -n "$tmp/got" || fail "bash cannot parse the script"

# dask-jobqueue's defaults: processes from cores (6 -> 3), --mem rounded up (1GB -> 954M), 30 minutes
"$herd" slurm job-script --cluster-kwargs '{cores: 6, memory: 1GB}' >"$tmp/d" 2>&1 || fail "defaults: $(cat "$tmp/d")"
for want in '#SBATCH --cpus-per-task=6' '#SBATCH --mem=954M' '#SBATCH -t 00:30:00' '#SBATCH -N 1' \
            "'--herd-nthreads' '2' '--herd-memory-limit' '333333333'" '"$herd_name-2"'; do
    grep -qF -- "$want" "$tmp/d" || fail "defaults: no line with $want in: $(cat "$tmp/d")"
done

# lifetime (dask-jobqueue's worker_extra_args ["--lifetime", "55m", "--lifetime-stagger", "4m"]): the workers' environment
"$herd" slurm job-script --cluster-kwargs '{cores: 2, memory: 1GB, lifetime: 55m, lifetime_stagger: 4m}' >"$tmp/l" 2>&1 ||
    fail "lifetime: $(cat "$tmp/l")"
grep -qxF 'export HERD_LIFETIME=3300 HERD_LIFETIME_STAGGER=240' "$tmp/l" || fail "lifetime: no export line in: $(cat "$tmp/l")"
# the same as dask-jobqueue writes it
"$herd" slurm job-script --cluster-kwargs '{cores: 2, memory: 1GB, worker_extra_args: ["--lifetime", "55m", "--lifetime-stagger=4m"]}' \
    >"$tmp/l2" 2>&1 || fail "worker_extra_args: $(cat "$tmp/l2")"
grep -qxF 'export HERD_LIFETIME=3300 HERD_LIFETIME_STAGGER=240' "$tmp/l2" || fail "worker_extra_args: no export line in: $(cat "$tmp/l2")"
grep -q 'HERD_LIFETIME' "$tmp/d" && fail "defaults: a lifetime without the kwarg: $(cat "$tmp/d")"

# bad kwargs: refused, the key named
for case in '{memory: 1GB}|cores' '{cores: 1, memory: lots}|memory' '{cores: 2, memory: 1GB, processes: 3}|processes' \
            '{cores: 1, memory: 1GB, shebang: bash}|shebang' '{cores: 1, memory: 1GB, lifetime: soon}|lifetime' \
            '{cores: 1, memory: 1GB, worker_extra_args: [--nworkers, "2"]}|worker_extra_args' \
            '{cores: 1, memory: 1GB, worker_extra_args: [--lifetime]}|worker_extra_args'; do
    k=${case%|*}; key=${case##*|}
    out=$("$herd" slurm job-script --cluster-kwargs "$k" 2>&1) && fail "$k was accepted"
    echo "$out" | grep -q "cluster_kwargs.$key" || fail "$k: the error does not name $key: $out"
done

# a profile of herd.yaml
cat >"$tmp/herd.yaml" <<'YAML'
profiles:
  hpc:
    cluster_class: dask_jobqueue.SLURMCluster
    cluster_kwargs: {cores: 4, memory: 6GB, processes: 2, queue: debug, account: proj, walltime: "01:00:00",
                     job_extra_directives: ["--gres=gpu:1"], job_directives_skip: ["-N 1"],
                     job_script_prologue: ["module load foo", "export OMP_NUM_THREADS=1"], job_script_epilogue: ["echo done"],
                     log_directory: /var/log/herd, local_directory: /scratch, job_name: exp}
  local:
    cluster_class: local.LocalCluster
YAML
(cd "$tmp" && HERD_CONFIG="$tmp/herd.yaml" "$OLDPWD/$herd" slurm job-script hpc --program /opt/my-flow) >"$tmp/p" 2>&1 ||
    fail "profile hpc: $(cat "$tmp/p")"
sed 's/exp-[0-9a-f]\{6\}/exp-XXXXXX/g' "$tmp/p" | diff -u "$tmp/want" - || fail "the profile's script differs"
out=$(cd "$tmp" && HERD_CONFIG="$tmp/herd.yaml" "$OLDPWD/$herd" slurm job-script local 2>&1) && fail "a LocalCluster profile was accepted"
echo "$out" | grep -q "not slurm.SLURMCluster" || fail "profile local: $out"
echo "ok   herd slurm job-script"
