"""Where a request's time goes between its client and its worker, thread by thread: the kernel's scheduler events
(perf's sched_switch, sched_waking and sched_wakeup), recorded on every CPU while the lean client sends requests one
at a time, are laid out per request: how long each part of the path (the client, the front door, Multi Model Server's
Netty loops, its worker thread, its reader of the worker's output, its other JVM threads, the Python worker) was on a
CPU, how long no thread of the path was, and how many thread wake-ups one request takes and what they cost.

    make bench-hops        # the no-op entry point and the demo model, back to back and after an idle wait

It needs Linux perf with the sched tracepoints (Debian: linux-perf) and the right to trace every CPU (root, or
kernel.perf_event_paranoid <= -1). A profile of one run, on this machine: no target is judged from it.
"""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

from common import ROOT, host_info, log, write_results
from measure import NOOP_ENTRY_POINT, LeanClient, prepare_photos, request_body, timeline_summary
from servers import default_layout, our_server
from ssd_tools.figures import HOP_PARTS, hop_profile_table

SCHED_EVENTS = "sched:sched_switch,sched:sched_waking,sched:sched_wakeup"
_LINE = re.compile(r"^\s*(?P<comm>.+?)\s+(?P<pid>\d+)/(?P<tid>\d+)\s+\[(?P<cpu>\d+)\]\s+(?P<time>[\d.]+):\s+"
                   r"sched:(?P<event>\w+):\s+(?P<fields>.*)$")
_FIELD = re.compile(r"(\w+)=(\S+)")
_NEXT_COMM = re.compile(r"next_comm=(.*?) next_pid=")  # a thread's name may hold spaces ("C2 CompilerThre")


def java_part(comm):
    """The part of MMS's JVM a thread is, by its name (Java names the threads; the kernel keeps 15 characters)."""
    if comm.startswith("W-") and ("stdou" in comm or "stder" in comm):
        return "MMS output reader"  # WorkerLifeCycle's reader of a worker's stdout/stderr, a line at a time
    if comm.startswith("W-"):
        return "MMS worker thread"  # WorkerThread: takes a job from the queue, writes it to the worker, waits
    if "EventLoop" in comm:
        return "MMS Netty"  # the frontend's and the worker connections' event loops
    return "MMS other JVM threads"  # JIT compilers, GC, VM periodic task


def _fields(text):
    fields = dict(_FIELD.findall(text))
    named = _NEXT_COMM.search(text)
    if named:
        fields["next_comm"] = named.group(1)
    return fields


def parse_perf_script(text):
    """perf script lines (-F comm,pid,tid,cpu,time,event,trace) as (seconds, cpu, pid, tid, comm, event, fields)."""
    events = []
    for line in text.splitlines():
        found = _LINE.match(line)
        if found:
            events.append((float(found.group("time")), int(found.group("cpu")), int(found.group("pid")),
                           int(found.group("tid")), found.group("comm").strip(), found.group("event"),
                           _fields(found.group("fields"))))
    events.sort(key=lambda event: event[0])
    return events


def runs_and_wakes(events):
    """From scheduler events: each thread's stretches on a CPU (tid, comm, start, end), each wake-up (tid, waking,
    whether it landed on an idle CPU, on CPU at: None where that is not known), each thread's process (tid -> pid, as
    seen running), and how many switches onto a CPU the trace lacks.

    On this kind of virtual machine the trace lacks some switches onto a CPU that was idle (a thread is later seen
    leaving a CPU it was never seen entering). Such a stretch starts, here, at the later of the CPU's last switch and
    the thread's wake-up: it cannot have run before either."""
    on_cpu, runs, waking, wakes, process = {}, [], {}, [], {}
    last_switch, last_woken, unseen = {}, {}, 0

    def arrived(tid, seconds):
        if tid in waking:
            woken_at, onto_idle = waking.pop(tid)
            wakes.append((tid, woken_at, onto_idle, seconds))

    for seconds, cpu, pid, tid, comm, event, fields in events:
        process[tid] = pid
        if event == "sched_switch":
            leaving = int(fields["prev_pid"])
            runner, since, name = on_cpu.get(cpu, (None, None, None))
            if runner == leaving:
                runs.append((leaving, name, since, seconds))
            elif cpu in last_switch:  # the switch that put `leaving` on this CPU is not in the trace
                unseen += 1
                since = max(last_switch[cpu], last_woken.get(leaving, last_switch[cpu]))
                if runner is not None:
                    runs.append((runner, name, on_cpu[cpu][1], since))
                runs.append((leaving, fields.get("prev_comm", comm), since, seconds))
                if leaving in waking:  # woken, then seen running: when it started is not known; it started on
                    woken_at, onto_idle = waking.pop(leaving)  # an idle CPU if that CPU's last switch was to idle
                    wakes.append((leaving, woken_at, onto_idle or runner == 0, None))
            following = int(fields["next_pid"])
            on_cpu[cpu] = (following, seconds, fields["next_comm"])
            last_switch[cpu] = seconds
            arrived(following, seconds)
        elif event == "sched_waking":
            woken = int(fields["pid"])
            waking[woken] = (seconds, False)
            last_woken[woken] = seconds
        elif event == "sched_wakeup" and int(fields["pid"]) in waking:
            # a wake-up onto an idle CPU completes there, in its idle task (pid 0): that CPU had to wake first
            woken_at, _ = waking[int(fields["pid"])]
            waking[int(fields["pid"])] = (woken_at, tid == 0)
    return runs, wakes, process, unseen


def lay_out(events, windows, roles):
    """Per request window (start, end) in the events' clock: ms on a CPU per part of the path, ms with no thread of
    the path on a CPU, and its wake-ups; and how many switches onto a CPU the trace lacks (runs_and_wakes).
    `roles`: pid -> "client", "front door", "java" or "Python worker"."""
    runs, wakes, process, unseen = runs_and_wakes(events)

    def part(tid, comm):
        role = roles.get(process.get(tid))
        return java_part(comm) if role == "java" else role

    laid_out = []
    for start, end in windows:
        on_cpu = collections.Counter()
        stretches = []
        for tid, comm, since, until in runs:
            which = part(tid, comm)
            if which is None or until <= start or since >= end:
                continue
            since, until = max(since, start), min(until, end)
            on_cpu[which] += until - since
            stretches.append((since, until))
        busy, reach = 0.0, start
        for since, until in sorted(stretches):
            busy += max(0.0, until - max(since, reach))
            reach = max(reach, until)
        ours = [(woken_at, onto_idle, running_at) for tid, woken_at, onto_idle, running_at in wakes
                if start <= woken_at < end and part(tid, "") is not None]
        request = dict((name, on_cpu[name] * 1e3) for name in HOP_PARTS)
        request.update({"end_to_end": (end - start) * 1e3, "none_on_cpu": (end - start - busy) * 1e3,
                        "wake_ups": len(ours), "wake_ups_onto_idle_cpu": sum(1 for w in ours if w[1]),
                        "wake_up_us": [(running_at - woken_at) * 1e6 for woken_at, _, running_at in ours
                                       if running_at is not None]})
        laid_out.append(request)
    return laid_out, unseen


def summarize(laid_out, timelines, unseen=0):
    """p50 of each figure over the requests, with the worker's own stages (its Server-Timing `worker`) beside them,
    and how many switches onto a CPU the trace lacked (`unseen`, see runs_and_wakes)."""
    if not laid_out:
        return {"skipped": "no request fell inside the trace"}
    result = dict((name, round(float(np.percentile([r[name] for r in laid_out], 50)), 3))
                  for name in HOP_PARTS + ("end_to_end", "none_on_cpu", "wake_ups", "wake_ups_onto_idle_cpu"))
    latencies = [us for r in laid_out for us in r["wake_up_us"]]
    result["wake_up_p50_us"] = round(float(np.percentile(latencies, 50)), 1) if latencies else None
    stages = timeline_summary(timelines)  # the bench's own p50s of each request's Server-Timing
    for ours, theirs in (("worker_stages", "worker"), ("outside_worker", "outside_worker")):
        result[ours] = round(stages[theirs], 3) if theirs in stages else None
    result["requests"] = len(laid_out)
    result["switches_not_in_trace"] = unseen
    return result


def perf_can_trace():
    """None if perf can record the sched events on every CPU here, else what to do."""
    try:
        with tempfile.TemporaryDirectory() as scratch:
            done = subprocess.run(["perf", "record", "-a", "-e", SCHED_EVENTS, "-o", os.path.join(scratch, "p"),
                                   "--", "true"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return "perf is not installed or does not run (%s): install linux-perf (Debian) or your kernel's perf" % err
    if done.returncode:
        return ("perf cannot trace the scheduler on every CPU (%s): run as root, or set "
                "kernel.perf_event_paranoid to -1" % done.stdout.decode("utf-8", "replace").strip()[-300:])
    return None


def roles_of(server):
    """pid -> part of the path for the server's processes, and this process (the client)."""
    import psutil
    roles = {os.getpid(): "client", server.process.pid: "front door"}
    for child in psutil.Process(server.process.pid).children(recursive=True):
        if child.name() == "java":
            roles[child.pid] = "java"
        elif "model_service_worker" in " ".join(child.cmdline()):  # not the multi-model-server wrapper, which waits
            roles[child.pid] = "Python worker"
    return roles


def trace_requests(server, body, content_type, gap_ms, count, warm_up, scratch):
    """`count` requests from one LeanClient, each `gap_ms` after the last answer, under perf; laid out."""
    client = LeanClient(server.url, body, content_type)
    try:
        for _ in range(warm_up):  # connections, caches and the JVM's compilers settle first
            client.timed()
        roles = roles_of(server)  # after the warm-up: a worker MMS forks late is counted too
        data = os.path.join(scratch, "sched-%s-%d.data" % (server.label, gap_ms))
        perf = subprocess.Popen(["perf", "record", "-a", "-k", "CLOCK_MONOTONIC", "-e", SCHED_EVENTS, "-o", data],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)  # perf is recording
            windows, timelines = [], []
            for _ in range(count):
                time.sleep(gap_ms / 1000.0)
                start = time.monotonic()  # perf's clock (-k CLOCK_MONOTONIC)
                _, laid_out = client.timed()
                windows.append((start, time.monotonic()))
                timelines.append(laid_out)
        finally:  # perf records every CPU until told to stop, whatever ended the requests
            perf.send_signal(2)
            perf.wait(120)
    finally:
        client.close()
    text = subprocess.run(["perf", "script", "-i", data, "-F", "comm,pid,tid,cpu,time,event,trace"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout.decode("utf-8",
                                                                                                       "replace")
    laid_out, unseen = lay_out(parse_perf_script(text), windows, roles)
    return summarize(laid_out, timelines, unseen)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "hops.json"))
    parser.add_argument("--model-dir", default=os.path.join(ROOT, "container", "models", "demo"))
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--warm-up", type=int, default=1500)
    parser.add_argument("--gap-ms", default="0,13", help="idle waits before each request, comma-separated")
    args = parser.parse_args(argv)
    problem = perf_can_trace()
    if problem:
        log(problem)
        return 2
    gaps = [int(gap) for gap in args.gap_ms.split(",")]
    out_dir = os.path.dirname(os.path.abspath(args.out))
    os.makedirs(out_dir, exist_ok=True)
    photos = prepare_photos(os.path.join(out_dir, "photos"))
    body, content_type = request_body(photos, "jpeg_640x480")
    layout = default_layout(args.model_dir, on_cpu=True)
    results = {"host": host_info(), "date": time.strftime("%Y-%m-%dT%H:%M:%S"), "requests": args.requests,
               "warm_up": args.warm_up, "layout": layout, "servers": {}}
    servers = [("no-op", "hops-noop", NOOP_ENTRY_POINT), ("demo model", "hops-demo", None)]
    with tempfile.TemporaryDirectory() as scratch:
        for name, label, extra_env in servers:
            log("%s: starting the server (%s layout)" % (name, layout))
            server = our_server(label, args.model_dir, out_dir, layout=layout, extra_env=extra_env)
            try:
                server.wait_healthy()
                server.wait_ready()
                results["servers"][name] = {}
                for gap in gaps:
                    log("%s: %d requests after a %d ms wait each, traced" % (name, args.requests, gap))
                    results["servers"][name][str(gap)] = trace_requests(server, body, content_type, gap,
                                                                        args.requests, args.warm_up, scratch)
            finally:
                server.stop()
    write_results(args.out, results, hop_profile_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
