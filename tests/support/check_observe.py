#!/usr/bin/python3
# tests/support/check_observe.py — what tests/integration/test_observe.c asks
# of the scheduler's HTTP endpoint, read the way its users read it: /metrics
# with Prometheus's own text parser (python3-prometheus-client), /api/v1 with
# Python's json, the live page's DOM (after Chromium ran its scripts) with
# html.parser. Exits 0 when everything agrees, else 1 saying what did not.
#   metrics URL NWORKERS TASK COMPLETED
#   api URL NWORKERS TASK COMPLETED      apifile FILE NWORKERS TASK COMPLETED
#   dom FILE WORKER... TASK DONE TASK RUNNING   (names, then name/count pairs)
import json
import sys
import urllib.request
from html.parser import HTMLParser


def fail(msg):
    print("check_observe: " + msg, file=sys.stderr)
    sys.exit(1)


def fetch(url):
    with urllib.request.urlopen(url, timeout=20) as r:
        return r.read().decode("utf-8")


def check_metrics(url, nworkers, task, completed):
    from prometheus_client.parser import text_string_to_metric_families
    fams = {f.name: f for f in text_string_to_metric_families(fetch(url))}
    for need in ("herd_scheduler_workers", "herd_scheduler_tasks", "herd_task_duration_seconds",
                 "herd_scheduler_prefix_state_totals", "herd_worker_held_bytes", "herd_transfers",
                 "herd_adaptive_decisions", "herd_scheduler_desired_workers"):
        if need not in fams:
            fail("/metrics has no %s (has %s)" % (need, sorted(fams)))
    workers = sum(s.value for s in fams["herd_scheduler_workers"].samples)
    if workers != nworkers:
        fail("herd_scheduler_workers adds up to %s, expected %s" % (workers, nworkers))
    done = [s.value for s in fams["herd_scheduler_prefix_state_totals"].samples
            if s.labels.get("task_prefix_name") == task and s.labels.get("state") == "completed"]
    if done != [completed]:
        fail("prefix_state_totals{%s, completed} = %s, expected %s" % (task, done, completed))
    counts = [s for s in fams["herd_task_duration_seconds"].samples
              if s.name.endswith("_count") and s.labels.get("task_name") == task]
    if len(counts) != 1 or counts[0].value != completed:
        fail("herd_task_duration_seconds_count{%s} = %s, expected %s" % (task, counts, completed))
    inf = [s.value for s in fams["herd_task_duration_seconds"].samples
           if s.name.endswith("_bucket") and s.labels.get("task_name") == task and s.labels.get("le") == "+Inf"]
    if inf != [completed]:
        fail("the +Inf bucket of %s is %s, expected %s" % (task, inf, completed))
    if fams["herd_task_duration_seconds"].type != "histogram":
        fail("herd_task_duration_seconds is a %s" % fams["herd_task_duration_seconds"].type)


def check_api(doc, nworkers, task, completed):
    if len(doc["workers"]) != nworkers:
        fail("%d workers in /api/v1/status, expected %d" % (len(doc["workers"]), nworkers))
    for w in doc["workers"]:
        for k in ("name", "host", "threads", "running", "memory", "held_bytes", "done"):
            if k not in w:
                fail("worker %s has no %s" % (w, k))
    groups = {g["name"]: g for g in doc["tasks"]["groups"]}
    if task not in groups or groups[task]["completed"] != completed:
        fail("task group %s: %s, expected %d completed" % (task, groups.get(task), completed))
    runs = [r for r in doc["runs"]["runs"] if r["name"] == task]
    if len(runs) < min(completed, 1) or any(r["stop"] < r["start"] for r in runs):
        fail("runs of %s: %s" % (task, runs[:3]))
    for k in ("adaptive", "logs", "totals"):
        if k not in doc:
            fail("no %s in /api/v1/status" % k)
    # a temporary cluster: the provider's own list, as the keeper last read it
    prov = doc.get("provider")
    if not prov or prov["provider"] != "LocalCluster" or len(prov["workers"]) != nworkers \
            or any(w["state"] not in ("starting", "running") or w["pid"] <= 0 for w in prov["workers"]):
        fail("provider status: %s" % prov)


class Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.row, self.cell, self.attrs = [], None, None, {}

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.row = []
        elif tag == "td" and self.row is not None:
            self.cell = ""
        elif tag == "body":
            self.attrs = dict(attrs)

    def handle_endtag(self, tag):
        if tag == "td" and self.cell is not None:
            self.row.append(self.cell.strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.rows.append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def check_dom(path, args):
    d = Dom()
    with open(path, encoding="utf-8") as f:
        d.feed(f.read())
    if int(d.attrs.get("data-updated", "0")) < 1:
        fail("the page never updated (body data-updated=%s)" % d.attrs.get("data-updated"))
    names = [r[0] for r in d.rows if r]
    i = 0
    while i < len(args) and not (i + 1 < len(args) and args[i + 1].isdigit()):
        if args[i] not in names:
            fail("the page shows no row for %s (rows: %s)" % (args[i], names))
        i += 1
    (dtask, ndone), (rtask, nrun) = (args[i], int(args[i + 1])), (args[i + 2], int(args[i + 3]))
    rows = {r[0]: r for r in d.rows if r}
    # progress rows: name, bar, "done / total", running, pending, failed, mean
    if rows.get(dtask, [None] * 3)[2] != "%d / %d" % (ndone, ndone):
        fail("progress of %s: %s, expected %d / %d" % (dtask, rows.get(dtask), ndone, ndone))
    if rows.get(rtask, [None] * 4)[3] != str(nrun):
        fail("progress of %s: %s, expected %d running" % (rtask, rows.get(rtask), nrun))


def main(a):
    if a[0] == "metrics":
        check_metrics(a[1], int(a[2]), a[3], int(a[4]))
    elif a[0] == "api":
        check_api(json.loads(fetch(a[1])), int(a[2]), a[3], int(a[4]))
    elif a[0] == "apifile":
        with open(a[1], encoding="utf-8") as f:
            check_api(json.load(f), int(a[2]), a[3], int(a[4]))
    elif a[0] == "dom":
        check_dom(a[1], a[2:])
    else:
        fail("unknown check " + a[0])


if __name__ == "__main__":
    main(sys.argv[1:])
