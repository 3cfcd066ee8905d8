#!/bin/sh
# bench/run.sh — run herd's benchmarks and Dask's on this machine with the same
# settings (a temporary local cluster of 2 worker processes, 1 thread each;
# for adaptive scaling, an empty one that adapts between 0 and 2 of them),
# then print them side by side with the ratios and whether each target is met.
# `make bench` runs it as BUILD=$(BUILD) sh bench/run.sh. Always exits 0: a
# missed target or a failed side is reported, never a build failure.
#
# Environment:
#   BUILD            build directory holding bench/herd_bench (default: build)
#   PYTHON           the Python with dask.distributed (default: /usr/bin/python3)
#   HERD_BENCH_ARGS  extra options for herd_bench   (e.g. "--large 20000",
#                    "--adapt-runs 3 --adapt-burst 20")
#   DASK_BENCH_ARGS  extra options for dask_bench.py (same option names)
#   HERD_TIMEOUT / DASK_TIMEOUT   seconds before a side is stopped (240 / 600)
#   HERD_BENCH_SSH   0: skip the ssh benchmark (bench/ssh_bench.sh)
#   HERD_BENCH_TS    0: skip the timeseries pipeline (examples/timeseries beside
#                    dask.datasets.timeseries + groupby(df.index.year).mean())
#   TS_START / TS_END  its range on both sides, days with the end included
#                    (1988-01-01 / 1989-06-30: Dask's side takes under a minute);
#                    herd also runs 1988..2022, and both ranges --materialize
#   TS_TIMEOUT       seconds before one herd timeseries run is stopped (600)
#
# `sh bench/run.sh --table [FILE]` prints the table again from saved RESULT
# lines (default $BUILD/bench/results.txt) without running anything;
# `sh bench/run.sh --timeseries` runs the timeseries pipeline alone;
# `sh bench/run.sh --data` runs only the data-plane rows (both sides'
# --data-only), without the timeseries pipeline or the ssh benchmark.

BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
HERD_TIMEOUT=${HERD_TIMEOUT:-240}
DASK_TIMEOUT=${DASK_TIMEOUT:-600}
here=$(cd "$(dirname "$0")" && pwd)
out="$BUILD/bench"
mkdir -p "$out"
herd_out="$out/herd.txt"
dask_out="$out/dask.txt"
all_out="$out/results.txt"
: >"$herd_out"
: >"$dask_out"

# ---- the table ----
# rows: metric, label, unit, which way is better (hi|lo), target factor (0: none);
# throughput rows come from the task counts found in the RESULT lines.
table() {
awk '
BEGIN {
    n = 0
    row("latency_median",  "submit->result latency, median", "us",     "lo", 20)
    row("latency_p99",     "submit->result latency, p99",   "us",      "lo", 20)
    row("start_close",     "cluster start + close, median", "ms",      "lo", 50)
    row("adapt_first_task", "adaptive: burst->1st task, med", "ms",     "lo", 20)
    row("worker_rss_mean", "idle worker RSS (per worker)",  "MiB",     "lo", 20)
    row("nanny_rss",       "Dask nanny process RSS",        "MiB",     "lo", 0)
    row("client_rss",      "client+scheduler process RSS",  "MiB",     "lo", 0)
    row("data_16x16",      "data: 16x16 MiB prod->cons",    "MiB/s",   "hi", 3)
    row("data_16x16_other", "data: 16x16 MiB, other worker", "MiB/s",   "hi", 4)
    row("data_4x128",      "data: 4x128 MiB prod->cons",    "MiB/s",   "hi", 3)
    row("data_1x1024",     "data: 1x1 GiB prod->cons",      "MiB/s",   "hi", 3)
    row("data_client_peak_rss", "data: client peak RSS (<64)", "MiB",     "lo", 0)
    row("timeseries_rows", "timeseries by year, TS range",   "Mrows/s", "hi", 20)
    row("timeseries_mat_rows", "  same, herd --materialize", "Mrows/s", "hi", 0)
    row("timeseries_full_rows", "  1988-2022, herd",         "Mrows/s", "hi", 0)
    row("timeseries_full_mat_rows", "  1988-2022, herd --materialize", "Mrows/s", "hi", 0)
}
function row(m, l, u, d, t) { order[++n] = m; label[m] = l; unit[m] = u; dir[m] = d; target[m] = t }
$1 == "RESULT" {
    v[$2, $3] = $4
    if ($3 ~ /^throughput_/ && !($3 in seen)) {   # one row per task count seen
        seen[$3] = 1; tp[++ntp] = $3
        unit[$3] = "tasks/s"; dir[$3] = "hi"; target[$3] = 100
        label[$3] = "no-op throughput, " substr($3, 12) " tasks"
    }
}
END {
    for (i = n; i >= 1; i--) order[i + ntp] = order[i]
    for (i = 1; i <= ntp; i++) order[i] = tp[i]
    n += ntp
    met = 0; missed = 0; unknown = 0
    printf "\n%-31s %14s %14s %-8s %10s %-8s %s\n", "benchmark", "herd", "dask", "unit", "advantage", "target", "met"
    for (i = 1; i <= n; i++) {
        m = order[i]
        h = ((("herd", m) in v)) ? v["herd", m] : ""
        d = ((("dask", m) in v)) ? v["dask", m] : ""
        if (h == "" && d == "") continue
        ratio = "-"; ok = "-"; tgt = target[m] ? sprintf(">=%dx", target[m]) : "-"
        if (h != "" && d != "" && h + 0 > 0 && d + 0 > 0) {
            r = dir[m] == "hi" ? h / d : d / h
            ratio = sprintf("%.1fx", r)
            if (target[m]) { if (r >= target[m]) { ok = "yes"; met++ } else { ok = "NO"; missed++ } }
        } else if (target[m]) { ok = "n/a"; unknown++ }
        printf "%-31s %14s %14s %-8s %10s %-8s %s\n", label[m], h == "" ? "not measured" : h,
               d == "" ? "not measured" : d, unit[m], ratio, tgt, ok
    }
    printf "\nadvantage = herd over Dask (higher is better for herd). targets met: %d, missed: %d, not measurable: %d\n", met, missed, unknown
}' "$1"
}

if [ "$1" = "--table" ]; then   # just the table, from a saved RESULT file
    table "${2:-$BUILD/bench/results.txt}"
    exit 0
fi

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
echo "== herd benchmarks vs Dask: $(nproc) CPUs, ${cpu:-unknown CPU}, $(uname -sr)"
echo "== cluster: 2 worker processes x 1 thread, temporary, local (adaptive: 0 to 2 of them)"

only_ts=0
[ "$1" = "--timeseries" ] && only_ts=1
if [ "$1" = "--data" ]; then
    HERD_BENCH_ARGS="--data-only $HERD_BENCH_ARGS"
    DASK_BENCH_ARGS="--data-only $DASK_BENCH_ARGS"
    HERD_BENCH_TS=0
    HERD_BENCH_SSH=0
fi

# ---- herd ----
if [ $only_ts = 1 ]; then
    :
elif [ -x "$BUILD/bench/herd_bench" ]; then
    echo "== herd: $BUILD/bench/herd_bench $HERD_BENCH_ARGS"
    # shellcheck disable=SC2086
    timeout -k 10 "$HERD_TIMEOUT" "$BUILD/bench/herd_bench" $HERD_BENCH_ARGS >"$herd_out" 2>"$out/herd.err"
    rc=$?
    cat "$herd_out"
    if [ $rc -ne 0 ]; then
        [ $rc -eq 124 ] && echo "!! herd_bench stopped after ${HERD_TIMEOUT}s"
        echo "!! herd_bench exited with status $rc; its stderr (last lines):"
        tail -n 20 "$out/herd.err" | sed 's/^/   /'
    fi
else
    echo "!! $BUILD/bench/herd_bench not built: herd figures not measured"
fi

# ---- Dask ----
if [ $only_ts = 1 ]; then
    :
elif "$PYTHON" -c 'import distributed' 2>/dev/null; then
    echo "== dask: $PYTHON $here/dask_bench.py $DASK_BENCH_ARGS"
    # shellcheck disable=SC2086
    timeout -k 10 "$DASK_TIMEOUT" "$PYTHON" "$here/dask_bench.py" $DASK_BENCH_ARGS >"$dask_out" 2>"$out/dask.err"
    rc=$?
    cat "$dask_out"
    if [ $rc -ne 0 ]; then
        [ $rc -eq 124 ] && echo "!! dask_bench.py stopped after ${DASK_TIMEOUT}s"
        echo "!! dask_bench.py exited with status $rc; its stderr (last lines):"
        tail -n 20 "$out/dask.err" | sed 's/^/   /'
    fi
else
    echo "!! $PYTHON cannot import distributed: Dask figures not measured"
fi

# ---- the seed's data pipeline (issue 10, 11d): examples/timeseries (herd's
# side is the example itself) beside dask.datasets.timeseries(start, end,
# freq="1s", partition_freq="4w") + groupby(df.index.year).mean(), on the same
# range and cluster shape; million rows per second of the computation (the
# cluster already up on both sides) ----
TS_START=${TS_START:-1988-01-01}
TS_END=${TS_END:-1989-06-30}
ts_herd() {    # metric, then the example's arguments
    metric=$1
    shift
    echo "== herd: $BUILD/examples/timeseries $*"
    timeout -k 10 "${TS_TIMEOUT:-600}" "$BUILD/examples/timeseries" "$@" >"$out/timeseries.txt" 2>"$out/timeseries.err"
    rc=$?
    grep '^timeseries: ' "$out/timeseries.txt"
    rate=$(sed -n 's/^timeseries: .* s on the cluster: \([0-9.]*\) million rows\/s.*/\1/p' "$out/timeseries.txt")
    if [ $rc -eq 0 ] && [ -n "$rate" ]; then
        echo "RESULT herd $metric $rate Mrows/s" | tee -a "$herd_out"
    else
        [ $rc -eq 124 ] && echo "!! timeseries stopped after ${TS_TIMEOUT:-600}s"
        echo "!! timeseries $* exited with status $rc; its stderr (last lines):"
        tail -n 20 "$out/timeseries.err" | sed 's/^/   /'
    fi
}
if [ "${HERD_BENCH_TS:-1}" != 0 ]; then
    if [ -x "$BUILD/examples/timeseries" ]; then
        ts_herd timeseries_rows --start "$TS_START" --end "$TS_END"
        ts_herd timeseries_mat_rows --start "$TS_START" --end "$TS_END" --materialize
        ts_herd timeseries_full_rows --start 1988-01-01 --end 2022-12-31
        ts_herd timeseries_full_mat_rows --start 1988-01-01 --end 2022-12-31 --materialize
    else
        echo "!! $BUILD/examples/timeseries not built: herd's timeseries figures not measured"
    fi
    if "$PYTHON" -c 'import dask.dataframe, distributed' 2>/dev/null; then
        echo "== dask: $PYTHON $here/dask_bench.py --timeseries-only --ts-start $TS_START --ts-end $TS_END"
        timeout -k 10 "$DASK_TIMEOUT" "$PYTHON" "$here/dask_bench.py" --timeseries-only --ts-start "$TS_START" \
            --ts-end "$TS_END" >"$out/dask_timeseries.txt" 2>"$out/dask_timeseries.err"
        rc=$?
        cat "$out/dask_timeseries.txt"
        cat "$out/dask_timeseries.txt" >>"$dask_out"
        if [ $rc -ne 0 ]; then
            [ $rc -eq 124 ] && echo "!! dask_bench.py --timeseries-only stopped after ${DASK_TIMEOUT}s"
            echo "!! dask_bench.py --timeseries-only exited with status $rc; its stderr (last lines):"
            tail -n 20 "$out/dask_timeseries.err" | sed 's/^/   /'
        fi
    else
        echo "!! $PYTHON cannot import dask.dataframe: Dask's timeseries figure not measured"
    fi
fi

cat "$herd_out" "$dask_out" | grep '^RESULT ' >"$all_out"

table "$all_out"
echo "(RESULT lines in $all_out; logs in $out/)"

# ---- workers over ssh: herd vs Dask's SSHCluster vs GNU parallel --sshlogin,
# on two sshd it starts itself (HERD_BENCH_SSH=0 skips it) ----
if [ "${HERD_BENCH_SSH:-1}" != 0 ] && [ $only_ts = 0 ]; then
    BUILD="$BUILD" PYTHON="$PYTHON" sh "$here/ssh_bench.sh"
fi
exit 0
