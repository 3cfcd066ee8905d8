#!/usr/bin/env python3
"""tests/support/moto_ecs.py — moto's server on 127.0.0.1 with, optionally, a
small ECS "agent" in the same process, for the AWS provider's tests.

    moto_ecs.py PORT [--agent]

The agent polls moto for the tasks of every cluster and runs each task's
container command override as a local process with the override's
environment, as ECS runs a container. When the process exits, the agent
records what ECS would (stopCode EssentialContainerExited, the container's
exit code) and stops the task; when a task is stopped through the API
(StopTask) it ends the process. A task whose image is "bad-image" stops at
once as ECS reports a failed image pull (stopCode TaskFailedToStart, no exit
code). A container whose task definition logs through awslogs writes its
output to a file; when it exits by itself with a non-zero code the agent puts
those lines into its stream PREFIX/CONTAINER/TASK-ID, as ECS's awslogs driver
would (other output is only echoed here, so a clean run leaves the log group
empty, as the provider's teardown expects). Each task gets its own task metadata endpoint (v4) on 127.0.0.1, served by
the agent, its URI in the container's ECS_CONTAINER_METADATA_URI_V4 as ECS
sets it: GET URI/task answers the task's TaskARN, Cluster and
DesiredStatus. Running in moto's own process lets it set those fields, which moto's
API has no call for. moto knows the few AWS managed IAM policies herd and its
tests attach (AmazonECSTaskExecutionRolePolicy, AmazonS3ReadOnlyAccess): all of
AWS's ~1,000 would make each reset's IAM backend take seconds to build, and
requests arriving meanwhile fail inside moto. The processes stay in this process group, so stopping
the group stops them too. Tasks are held RUNNING until stopped (moto's state
manager), as ECS does while the container runs. A scheduler task (its
command holds --herd-scheduler) runs inside a network namespace the agent
makes for it, holding the private IPv4 address moto gave the task (a /32
routed from this namespace over a veth pair), so clients and workers here
dial the address the provider read from DescribeTasks; the namespace goes
when the task ends. When that task's RunTask asked for a public IP
(assignPublicIp ENABLED), the agent gives its network interface one, as AWS
would: an Elastic IP (AllocateAddress, in 100.64.0.0/10, routed only to the
namespace) associated with the interface, so DescribeNetworkInterfaces shows
it as Association.PublicIp; the namespace holds it too, and the address is
released when the task ends. A task whose environment override sets
MOTO_ECS_NO_PUBLIC_IP gets none (a subnet that gives no public IP).
"""
import http.server
import json
import logging
import threading
import os
import signal
import subprocess
import shutil
import sys
import tempfile
import time

import boto3
import moto.iam.models
from moto.ec2.models import ec2_backends
from moto.ecs.models import ecs_backends, EC2ContainerServiceBackend
from moto.moto_server.threaded_moto_server import ThreadedMotoServer

PORT = int(sys.argv[1])
AGENT = "--agent" in sys.argv[2:]
REGION = os.environ.get("AWS_REGION", "us-east-1")
ACCOUNT = "123456789012"

logging.getLogger("werkzeug").setLevel(logging.ERROR)    # no line per request
MANAGED = ("AmazonECSTaskExecutionRolePolicy", "AmazonS3ReadOnlyAccess")
os.environ["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
moto.iam.models.aws_managed_policies_data = json.dumps(
    {k: v for k, v in json.loads(moto.iam.models.aws_managed_policies_data).items() if k in MANAGED})
server = ThreadedMotoServer(ip_address="127.0.0.1", port=PORT, verbose=False)
server.start()

procs = {}      # task arn -> (cluster arn, Popen)
netns = {}      # task arn -> network namespace of a scheduler task
eips = {}       # task arn -> the Elastic IP (public IP) of a scheduler task
released = set()  # task arns whose Elastic IP is released (the route goes with the namespace)
made = [0]      # namespaces made, for unique names
late = {}       # task arn -> when to drop the namespace of a scheduler task that never ran
meta = {}       # task id -> {TaskARN, Cluster, ...}: the metadata endpoints


class Metadata(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        parts = self.path.strip("/").split("/")     # v4/TASK-ID/task
        doc = meta.get(parts[1]) if len(parts) == 3 and parts[0] == "v4" and parts[2] == "task" else None
        body = json.dumps(doc).encode() if doc else b'{"error": "no such task"}'
        self.send_response(200 if doc else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_):
        pass


metasrv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Metadata)
metasrv.daemon_threads = True
threading.Thread(target=metasrv.serve_forever, daemon=True).start()
outs = {}       # task arn -> ((group, prefix, container), file of its output)
LOGDIR = tempfile.mkdtemp(prefix="moto-ecs-agent-")
done = set()    # task arns handled
ecs = boto3.client("ecs", endpoint_url="http://127.0.0.1:%d" % PORT, region_name=REGION,
                   aws_access_key_id="agent", aws_secret_access_key="agent")
logs = boto3.client("logs", endpoint_url="http://127.0.0.1:%d" % PORT, region_name=REGION,
                    aws_access_key_id="agent", aws_secret_access_key="agent")


def task_model(cluster, arn):
    backend = ecs_backends[ACCOUNT][REGION]
    for tasks in backend.tasks.values():
        if arn in tasks:
            return tasks[arn]
    return None


def stop(cluster, arn, reason, stop_code, exit_code):
    t = task_model(cluster, arn)
    if t is not None:               # before the task reads STOPPED
        t.stop_code = stop_code
        t.containers[0].exitCode = exit_code
        t.containers[0].last_status = "STOPPED"
    ecs.stop_task(cluster=cluster, task=arn, reason=reason)


def container_of(td):
    # not cached: after a reset moto hands out the same ARNs again
    return ecs.describe_task_definition(taskDefinition=td)["taskDefinition"]["containerDefinitions"][0]


def awslogs_of(cdef):
    """(group, stream prefix, container name) of an awslogs container, or None."""
    lc = cdef.get("logConfiguration") or {}
    o = lc.get("options") or {}
    if lc.get("logDriver") != "awslogs" or "awslogs-group" not in o:
        return None
    return o["awslogs-group"], o.get("awslogs-stream-prefix", ""), cdef.get("name", "")


def put_logs(arn, where, path):
    """What a failed container wrote, into its awslogs stream PREFIX/NAME/TASK-ID."""
    group, prefix, name = where
    with open(path, "rb") as f:
        lines = [l.decode("utf-8", "replace") for l in f.read().splitlines() if l.strip()]
    sys.stderr.write("".join(l + "\n" for l in lines))
    if not lines:
        return
    stream = "%s/%s/%s" % (prefix, name, arn.rsplit("/", 1)[-1])
    now = int(time.time() * 1000)
    logs.create_log_stream(logGroupName=group, logStreamName=stream)
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": now, "message": l} for l in lines])


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL)


def task_ip(t):
    for a in t.get("attachments") or []:
        for d in a.get("details") or []:
            if d.get("name") == "privateIPv4Address":
                return d.get("value")
    return None


def scheduler_netns(arn, ip, pub=None):
    """A namespace holding ip/32 (and pub/32), routed from here; its name."""
    made[0] += 1
    k = made[0]
    ns, vh, vn = "ms%d-%d" % (os.getpid(), k), "msh%d-%d" % (os.getpid() % 100000, k), "msn%d-%d" % (os.getpid() % 100000, k)
    src = "169.254.%d.%d" % (100 + (os.getpid() % 100), k % 250 + 1)
    netns[arn] = ns
    sh("ip netns add %s && ip link add %s type veth peer name %s && ip link set %s netns %s && "
       "ip addr add %s/32 dev %s && ip link set %s up && ip -n %s addr add %s/32 dev %s && "
       "ip -n %s link set %s up && ip -n %s link set lo up && ip -n %s route add default dev %s && "
       "ip route add %s/32 dev %s src %s" % (ns, vh, vn, vn, ns, src, vh, vh, ns, ip, vn, ns, vn, ns, ns, vn,
                                             ip, vh, src))
    if pub:
        sh("ip -n %s addr add %s/32 dev %s && ip route add %s/32 dev %s src %s" % (ns, pub, vn, pub, vh, src))
    return ns


def public_ip(t):
    """An Elastic IP associated with the network interface of task t (moto's
    model), as AWS gives one with assignPublicIp ENABLED; its address."""
    made[0] += 1
    pub = "100.%d.%d.%d" % (64 + os.getpid() % 64, (os.getpid() // 64) % 256, made[0] % 250 + 1)
    eni_id = next(d["value"] for a in t.attachments for d in a["details"] if d["name"] == "networkInterfaceId")
    ec2 = ec2_backends[ACCOUNT][REGION]
    ec2.allocate_address(domain="vpc", address=pub)
    ec2.associate_address(eni=ec2.get_network_interface(eni_id), address=pub)
    eips[t.task_arn] = pub
    return pub


def release_eip(arn):
    """The task's Elastic IP back (as its network interface goes when it stops)."""
    pub = eips.get(arn)
    if pub and arn not in released:
        released.add(arn)
        try:
            ec2_backends[ACCOUNT][REGION].release_address(address=pub)
        except Exception:       # gone with a reset
            pass


def drop_netns(arn):
    ns = netns.pop(arn, None)
    if ns:
        subprocess.run(["ip", "netns", "del", ns])
    release_eip(arn)
    pub = eips.pop(arn, None)
    released.discard(arn)
    if pub:
        subprocess.run(["ip", "route", "del", pub + "/32"], stderr=subprocess.DEVNULL)


moto_run_task = EC2ContainerServiceBackend.run_task


def run_task(self, *a, **kw):
    """moto's RunTask, a scheduler task's namespace made before it answers
    (no one dials the task's address before the route to it exists)."""
    tasks = moto_run_task(self, *a, **kw)
    for t in tasks:
        ov = (t.overrides or {}).get("containerOverrides") or [{}]
        if "--herd-scheduler" in (ov[0].get("command") or []):
            net = (getattr(t, "network_configuration", None) or {}).get("awsvpcConfiguration") or {}
            quiet = any(e.get("name") == "MOTO_ECS_NO_PUBLIC_IP" for e in ov[0].get("environment") or [])
            try:
                pub = public_ip(t) if net.get("assignPublicIp") == "ENABLED" and not quiet else None
                scheduler_netns(t.task_arn, task_ip({"attachments": t.attachments}), pub)
            except (subprocess.CalledProcessError, TypeError, StopIteration) as e:
                print("moto_ecs agent: network of %s: %s" % (t.task_arn, e), file=sys.stderr)
    return tasks


EC2ContainerServiceBackend.run_task = run_task
moto_stop_task = EC2ContainerServiceBackend.stop_task


def stop_task(self, *a, **kw):
    """moto's StopTask, the task's Elastic IP released before it answers."""
    t = moto_stop_task(self, *a, **kw)
    release_eip(t.task_arn)
    return t


EC2ContainerServiceBackend.stop_task = stop_task


def start(cluster, t):
    arn = t["taskArn"]
    done.add(arn)
    cdef = container_of(t["taskDefinitionArn"])
    if cdef.get("image", "") == "bad-image":
        if arn in netns:    # kept a while: a dial that read RUNNING just before meets a refusal, not the world
            late[arn] = time.time() + 5
        stop(cluster, arn, "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to "
             "resolve ref docker.io/library/bad-image:latest: not found", "TaskFailedToStart", None)
        return
    ov = (t.get("overrides") or {}).get("containerOverrides") or [{}]
    cmd = ov[0].get("command") or []
    env = dict(os.environ)
    for kv in ov[0].get("environment") or []:
        env[kv["name"]] = kv["value"]
    tid = arn.rsplit("/", 1)[-1]
    meta[tid] = {"TaskARN": arn, "Cluster": cluster, "DesiredStatus": "RUNNING", "KnownStatus": "RUNNING"}
    env["ECS_CONTAINER_METADATA_URI_V4"] = "http://127.0.0.1:%d/v4/%s" % (metasrv.server_address[1], tid)
    if "--herd-scheduler" in cmd:
        if arn not in netns:
            stop(cluster, arn, "CannotStartContainerError: no network for %s" % task_ip(t), "TaskFailedToStart", None)
            return
        # its loopback up again as the command starts: once (run under load
        # beside another agent) a scheduler found 127.0.0.1 unassignable there
        subprocess.run(["ip", "-n", netns[arn], "link", "set", "lo", "up"])
        cmd = ["ip", "netns", "exec", netns[arn]] + cmd
    where = awslogs_of(cdef)
    out = None
    if where:
        out = os.path.join(LOGDIR, arn.rsplit("/", 1)[-1] + ".log")
        outs[arn] = (where, out)
    try:
        f = open(out, "wb") if out else None
        try:
            procs[arn] = (cluster, subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                                    stderr=subprocess.STDOUT if f else None))
        finally:
            if f:
                f.close()
    except OSError as e:
        stop(cluster, arn, "CannotStartContainerError: %s" % e, "TaskFailedToStart", None)


def flush_logs(arn, failed):
    where, path = outs.pop(arn, (None, None))
    if not path:
        return
    if failed:
        put_logs(arn, where, path)
    else:
        with open(path, "rb") as f:
            sys.stderr.buffer.write(f.read())
    os.unlink(path)


def step():
    for arn, when in list(late.items()):
        if time.time() > when:
            del late[arn]
            if arn not in procs:
                drop_netns(arn)
    alive = set()
    for cluster in ecs.list_clusters()["clusterArns"]:
        try:
            running = set(ecs.list_tasks(cluster=cluster, desiredStatus="RUNNING")["taskArns"])
        except Exception:
            continue
        alive |= running
        new = [a for a in running if a not in done]
        for i in range(0, len(new), 100):
            for t in ecs.describe_tasks(cluster=cluster, tasks=new[i:i + 100])["tasks"]:
                start(cluster, t)
        for arn, (c, p) in list(procs.items()):
            if c != cluster:
                continue
            if p.poll() is not None:
                del procs[arn]
                drop_netns(arn)
                code = p.returncode if p.returncode >= 0 else 128 - p.returncode
                flush_logs(arn, arn in running and code != 0)
                if arn in running:
                    stop(cluster, arn, "Essential container in task exited", "EssentialContainerExited", code)
            elif arn not in running:        # StopTask through the API
                p.terminate()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                del procs[arn]
                drop_netns(arn)
                flush_logs(arn, False)
    for arn in list(netns):       # stopped before it ran here (StopTask at close, a reset): dropped a while later
        if arn not in alive and arn not in procs and arn not in late:
            late[arn] = time.time() + 5


def hold_tasks():
    from moto.moto_api import state_manager
    state_manager.set_transition(model_name="ecs::task", transition={"progression": "manual", "times": 10 ** 9})


def bye(*_):
    for _, p in procs.values():
        p.kill()
    for arn in list(netns):
        drop_netns(arn)
    shutil.rmtree(LOGDIR, ignore_errors=True)
    os._exit(0)


signal.signal(signal.SIGTERM, bye)
signal.signal(signal.SIGINT, bye)
while True:
    if AGENT:
        try:
            hold_tasks()            # again after each /moto-api/reset
            step()
        except Exception as e:      # a reset in the middle: try again
            print("moto_ecs agent: %s" % e, file=sys.stderr)
            time.sleep(0.2)
    time.sleep(0.05)
