#!/usr/bin/python3
"""bench/dask_bench.py — the Dask side of herd's benchmarks (bench/run.sh runs it
with /usr/bin/python3, Debian's python3-distributed). Same cluster as the herd
side: a temporary LocalCluster of 2 worker processes with 1 thread each.

Measures, and prints as machine-readable lines
    RESULT dask <metric> <value> <unit>
  throughput_10k / throughput_100k   no-op tasks submitted with client.map
                                     (pure=False), then gathered; tasks/s
  latency_median / latency_p99       submit one no-op task, wait for its result,
                                     1,000 times on a warm cluster; microseconds
  start_close                        LocalCluster + Client + wait_for_workers(2)
                                     + close, median of 5 runs; milliseconds
  worker_rss_mean (and _0, _1)       VmRSS of each idle worker process; MiB
  nanny_rss / client_rss             VmRSS of the nanny processes (if separate)
                                     and of this (client+scheduler) process; MiB
  adapt_first_task                   adaptive scaling: on an empty LocalCluster
                                     with cluster.adapt(minimum=0, maximum=2),
                                     from the first submit of a burst to the
                                     first task starting on a new worker; ms,
                                     median
  data_16x16 / data_16x16_other      16 producers each returning 16 MiB of
                                     bytes, 16 consumers each taking one
                                     producer's future and returning its
                                     length; _other: producers on worker a,
                                     consumers on worker b (workers=[...]);
                                     MiB/s of producer output, median of
                                     --data-reps
  data_4x128 / data_1x1024           4 x 128 MiB, 1 x 1 GiB the same way
  timeseries_rows                    (--timeseries-only) the seed's second
                                     example: dask.datasets.timeseries(start,
                                     end, freq="1s", partition_freq="4w") and
                                     df.groupby(df.index.year).mean().compute();
                                     million rows/s, median of --ts-reps, after
                                     one small warm-up computation
--data-only runs the data workloads alone; --timeseries-only the timeseries
workload alone (--ts-start, --ts-end: days, the end included, as
examples/timeseries takes them).
"""
import argparse
import logging
import math
import os
import statistics
import sys
import time
import warnings


def noop(x):
    return x


ADAPT_TASK_MS = 100


def make_bytes(n):
    return b"\x01" * n


def length(b):
    return len(b)


def bench_data(client, nprod, mib, pw, cw, reps):
    """nprod producers of mib MiB, one consumer each (pw/cw: the workers
    they must run on, or None); MiB/s of producer output, median of reps."""
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        ps = [client.submit(make_bytes, mib << 20, pure=False, workers=pw) for _ in range(nprod)]
        cs = [client.submit(length, p, pure=False, workers=cw) for p in ps]
        res = client.gather(cs)
        dt = time.perf_counter() - t0
        if res != [mib << 20] * nprod:
            sys.exit("dask: data: a consumer got the wrong length")
        del ps, cs
        rates.append(nprod * mib / dt)
        time.sleep(0.5)  # let the workers drop the released keys
    return statistics.median(rates)


def peak_mib():
    """This process's peak resident memory (VmHWM), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def bench_data_all(client, reps):
    try:
        with open("/proc/self/clear_refs", "w") as f:   # the peak starts again here
            f.write("5")
    except OSError:
        pass
    a, b = sorted(client.scheduler_info()["workers"])[:2]
    note(f"data: producers of bytes -> one consumer each (returns the length); "
         f"MiB/s of producer output, median of {reps}")
    result("data_16x16", bench_data(client, 16, 16, None, None, reps), "MiB/s")
    result("data_16x16_other", bench_data(client, 16, 16, [a], [b], reps), "MiB/s")
    result("data_4x128", bench_data(client, 4, 128, None, None, reps), "MiB/s")
    result("data_1x1024", bench_data(client, 1, 1024, None, None, reps), "MiB/s")
    note("data_client_peak_rss: peak RSS (VmHWM) of the client process during the data rows")
    result("data_client_peak_rss", peak_mib(), "MiB")


def bench_timeseries(client, start, end, reps):
    """The seed's data pipeline; (median million rows/s, rows, seconds of
    each run). end is the last day included."""
    import dask.datasets
    import pandas as pd
    t0 = pd.Timestamp(start)
    t1 = pd.Timestamp(end) + pd.Timedelta(days=1)
    rows = int((t1 - t0).total_seconds())
    warm = dask.datasets.timeseries(str(t0.date()), str((t0 + pd.Timedelta(days=1)).date()),
                                    freq="1s", partition_freq="1d", seed=1)
    warm.groupby(warm.index.year).mean().compute()        # imports on the workers
    secs = []
    for i in range(reps):
        df = dask.datasets.timeseries(str(t0.date()), str(t1.date()), freq="1s",
                                      partition_freq="4w", seed=42 + i)
        t = time.perf_counter()
        table = df.groupby(df.index.year).mean().compute()
        secs.append(time.perf_counter() - t)
        if len(table) != t1.year - t0.year + (1 if t1 != pd.Timestamp(t1.year, 1, 1) else 0):
            raise SystemExit(f"timeseries: {len(table)} years in the table")
    return rows / statistics.median(secs) / 1e6, rows, secs


def stamp(ms):
    """The adaptive burst's task: when it started (time.monotonic is
    CLOCK_MONOTONIC, system-wide, so it compares with the client's), then
    sleep ms."""
    t = time.monotonic()
    time.sleep(ms / 1000.0)
    return t


def rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def ppid_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return int(s[s.rindex(")") + 2:].split()[1])


def result(metric, value, unit, digits=1):
    print(f"RESULT dask {metric} {value:.{digits}f} {unit}", flush=True)


def note(msg):
    print(f"# dask: {msg}", flush=True)


def pctl(sorted_xs, p):
    """Nearest-rank percentile (the same definition as bench/herd_bench.c)."""
    k = max(1, math.ceil(p / 100.0 * len(sorted_xs)))
    return sorted_xs[k - 1]


def new_cluster():
    from distributed import Client, LocalCluster
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                           dashboard_address=None)
    client = Client(cluster)
    client.wait_for_workers(2)
    return cluster, client


def bench_rss(client):
    time.sleep(1.0)  # let the workers settle after start-up
    pids = client.run(os.getpid)
    wpids = sorted(pids.values())
    rss = [rss_mib(p) for p in wpids]
    for i, r in enumerate(rss):
        result(f"worker_rss_{i}", r, "MiB")
    result("worker_rss_mean", sum(rss) / len(rss), "MiB")
    me = os.getpid()
    parents = sorted({ppid_of(p) for p in wpids})
    nannies = [p for p in parents if p != me]
    if nannies:
        nr = [rss_mib(p) for p in nannies]
        result("nanny_rss", sum(nr) / len(nr), "MiB")
        note(f"nanny processes {nannies}, separate from this process")
    else:
        note("LocalCluster runs its Nanny objects inside the client process "
             f"(worker ppids = {parents} = this pid): no separate nanny process")
    result("client_rss", rss_mib(me), "MiB")
    note(f"worker pids {wpids}")


def bench_throughput(client, n, reps):
    rates = []
    for _ in range(reps):
        t0 = time.perf_counter()
        futs = client.map(noop, range(n), pure=False)
        res = client.gather(futs)
        dt = time.perf_counter() - t0
        if len(res) != n or res[-1] != n - 1 or sum(res) != n * (n - 1) // 2:
            sys.exit(f"dask: wrong results for throughput n={n}")
        del futs, res
        rates.append(n / dt)
        time.sleep(0.5)  # let the scheduler forget the released keys
    return statistics.median(rates)


def bench_latency(client, n, warmup):
    for i in range(warmup):
        client.submit(noop, i, pure=False).result()
    xs = []
    for i in range(n):
        t0 = time.perf_counter()
        r = client.submit(noop, i, pure=False).result()
        xs.append((time.perf_counter() - t0) * 1e6)
        if r != i:
            sys.exit("dask: wrong result in latency loop")
    xs.sort()
    return statistics.median(xs), pctl(xs, 99)


def bench_start_close(runs):
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        cluster, client = new_cluster()
        client.close()
        cluster.close()
        ts.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(ts), ts


def bench_adapt(runs, burst):
    """A fresh empty LocalCluster per run with cluster.adapt(minimum=0,
    maximum=2) (every other adapt setting at its default: interval 1 s,
    wait_count 3, target_duration 5 s); the clock starts before the first
    submit of the burst and stops at the earliest start stamp among its
    tasks."""
    from distributed import Client, LocalCluster
    ts = []
    for _ in range(runs):
        cluster = LocalCluster(n_workers=0, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        cluster.adapt(minimum=0, maximum=2)
        client = Client(cluster)
        try:
            if client.scheduler_info()["workers"]:
                note("adapt: workers present before the burst, expected none")
            t0 = time.monotonic()
            futs = client.map(stamp, [ADAPT_TASK_MS] * burst, pure=False)
            first = min(client.gather(futs))
            if first < t0:
                sys.exit("dask: adapt: first task stamp before the submit")
            ts.append((first - t0) * 1e3)
            del futs
        finally:
            client.close()
            cluster.close()
    return statistics.median(ts), ts


def bench_ssh(hosts, key, known_hosts, runs):
    """SSHCluster with its scheduler on the first host (Dask has no other
    way) and 2 workers x 1 thread on each host: start, wait for the 4
    workers, 1,000 no-op tasks (client.map + gather), close. ms, median."""
    from distributed import Client, SSHCluster
    names, opts = [], []
    for h in [hosts[0]] + hosts:
        host, port = h.rsplit(":", 1)
        names.append(host)
        opts.append({"port": int(port), "client_keys": [key], "known_hosts": known_hosts})
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        cluster = SSHCluster(names, connect_options=opts,
                             worker_options={"nthreads": 1, "n_workers": 2},
                             scheduler_options={"port": 0, "dashboard_address": ":0"},
                             remote_python=sys.executable)
        client = Client(cluster)
        client.wait_for_workers(2 * len(hosts))
        out = client.gather(client.map(noop, range(1000), pure=False))
        assert out == list(range(1000))
        client.close()
        cluster.close()
        ts.append((time.perf_counter() - t0) * 1000)
    ts.sort()
    return ts[len(ts) // 2], ts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=10_000)
    ap.add_argument("--large", type=int, default=100_000)
    ap.add_argument("--reps-small", type=int, default=1)
    ap.add_argument("--reps-large", type=int, default=1)
    ap.add_argument("--latency", type=int, default=1000)
    ap.add_argument("--start-runs", type=int, default=5)
    ap.add_argument("--adapt-runs", type=int, default=5)
    ap.add_argument("--adapt-burst", type=int, default=20)
    ap.add_argument("--data-reps", type=int, default=3)
    ap.add_argument("--data-only", action="store_true")
    ap.add_argument("--timeseries-only", action="store_true")
    ap.add_argument("--ts-start", default="1988-01-01")
    ap.add_argument("--ts-end", default="1989-06-30")
    ap.add_argument("--ts-reps", type=int, default=1)
    # bench/ssh_bench.sh: Dask's SSHCluster on the same sshd hosts, only
    ap.add_argument("--ssh-hosts", default=None, help="host:port,host:port")
    ap.add_argument("--ssh-key", default=None)
    ap.add_argument("--ssh-known-hosts", default=None)
    a = ap.parse_args()
    if a.ssh_hosts:
        warnings.simplefilter("ignore")
        logging.getLogger("distributed").setLevel(logging.ERROR)
        logging.getLogger("asyncssh").setLevel(logging.ERROR)
        med, ts = bench_ssh(a.ssh_hosts.split(","), a.ssh_key, a.ssh_known_hosts, a.start_runs)
        note("ssh_e2e_1k runs (ms): " + " ".join(f"{t:.0f}" for t in ts))
        result("ssh_e2e_1k", med, "ms")
        return

    warnings.simplefilter("ignore")
    logging.getLogger("distributed").setLevel(logging.ERROR)
    import dask
    import distributed
    dask.config.set({"distributed.logging.distributed": "error"})
    note(f"python {sys.version.split()[0]}, dask {dask.__version__}, "
         f"distributed {distributed.__version__}")

    cluster, client = new_cluster()
    if a.timeseries_only:
        try:
            rate, rows, secs = bench_timeseries(client, a.ts_start, a.ts_end, a.ts_reps)
            note(f"timeseries_rows: {a.ts_start}..{a.ts_end}, {rows} rows, partition_freq 4w, "
                 f"groupby(index.year).mean(): " + " ".join(f"{s:.2f}s" for s in secs))
            result("timeseries_rows", rate, "Mrows/s", 3)
        finally:
            client.close()
            cluster.close()
        return
    if a.data_only:
        try:
            bench_data_all(client, a.data_reps)
        finally:
            client.close()
            cluster.close()
        return
    try:
        bench_rss(client)
        client.map(noop, range(100), pure=False)  # warm up imports
        client.gather(client.map(noop, range(100), pure=False))
        for n, reps in ((a.small, a.reps_small), (a.large, a.reps_large)):
            tag = f"throughput_{n // 1000}k" if n % 1000 == 0 else f"throughput_{n}"
            note(f"{tag}: n={n}, client.map(pure=False) + gather, median of {reps}")
            result(tag, bench_throughput(client, n, reps), "tasks/s")
        med, p99 = bench_latency(client, a.latency, 50)
        note(f"latency: {a.latency} sequential submit+result after 50 warm-up")
        result("latency_median", med, "us")
        result("latency_p99", p99, "us")
        bench_data_all(client, a.data_reps)
    finally:
        client.close()
        cluster.close()

    med, ts = bench_start_close(a.start_runs)
    note("start_close runs (ms): " + " ".join(f"{t:.0f}" for t in ts))
    result("start_close", med, "ms")

    note(f"adapt_first_task: LocalCluster(n_workers=0, threads_per_worker=1) + "
         f"adapt(minimum=0, maximum=2), burst of {a.adapt_burst} tasks of "
         f"{ADAPT_TASK_MS} ms, first submit -> first task started on a new worker, "
         f"median of {a.adapt_runs}")
    med, ts = bench_adapt(a.adapt_runs, a.adapt_burst)
    note("adapt_first_task runs (ms): " + " ".join(f"{t:.0f}" for t in ts))
    result("adapt_first_task", med, "ms")


if __name__ == "__main__":
    main()
