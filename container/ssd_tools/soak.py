"""Load and soak check: concurrent valid and invalid requests against the real server, over loopback.

    .venv/mx19/bin/python -m ssd_tools.soak --seconds 600 --concurrency 8      (or: make soak SOAK_SECONDS=600)
    .venv/mx19/bin/python -m ssd_tools.soak --image ssd-serving:cpu --memory 2g --seconds 1800   (make soak-container)

starts its own server (the demo model, as the tests do; --model-dir for another, --url for one already
running, --image for a container of that image under a --memory limit), sends a mix of requests from
`concurrency` threads for `seconds`, and reports latency percentiles, the answers by status, /ping during
the load, the resident memory (RSS) of the server's processes (the front door, the JVM, each model server
worker) after warm-up and at the end and, for a container, the disk its writable layer uses. It exits 1
when a criterion fails:

- every valid request answered 200 (no 5xx), every invalid one its documented 4xx;
- no request hangs (each has a 60 s client timeout) and /ping answers 200 within 2 s throughout;
- memory: the JVM's RSS within its heap cap (-Xmx, from its command line) plus an allowance for what it holds
  outside the heap; every other process's RSS not still rising in the last third of the run (its median
  against the middle third's peak); every watched process seen in every sample (judge_memory); in a
  container, also the writable layer grown by at most 50 MB after warm-up.

Bounded in time and count: it stops at the deadline (plus one request per thread), and with
--max-requests. tests/test_soak.py runs a short one (SOAK_SECONDS, default 45) in the test suite.
"""
from __future__ import print_function

import argparse
import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import psutil
import requests

from ssd_serving.ports import free_port
from ssd_tools.demo.scenes import make_scene
from ssd_tools.figures import soak_lines
from ssd_tools.images import encode, png_declaring
from ssd_tools.server_process import ServerProcess
from ssd_tools.quantize import builtin_photos

DEMO_MODEL = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models", "demo")

REQUEST_TIMEOUT = 60.0
PING_TIMEOUT = 2.0      # SageMaker's
MAX_REQUEST_BYTES = 6553500
MAX_DISK_GROWTH = 50 * 1000 * 1000  # bytes of a container's writable layer, after warm-up


# --- the memory criterion: a leak told apart from a bounded process (docs/reliability.md#memory-in-the-soak)

MB = 1e6
# Every soak watches these; a group never seen (a process the watch could not find) is a failure, not a pass.
WATCHED_GROUPS = ("front door", "jvm", "workers")
# The JVM is bounded: its heap by the -Xmx the launcher gives it (container/ssd_serving/memory.py), the rest by
# what it needs outside the heap (metaspace, code cache, thread stacks, GC structures, direct buffers, the
# JVM's own libraries). Measured with -XX:NativeMemoryTracking=summary (jcmd VM.native_memory) on MMS 1.1.8 after a
# 60 s soak at concurrency 8: 152 MB committed outside the heap (GC 49, direct buffers 49, metaspace and classes 17,
# code cache 13, shared classes 12, symbols, threads and arenas 12), RSS 467 MB with -Xmx327m; the allowance gives
# that rest about 60% headroom, for direct buffers that grow with the bodies in flight (docs/reliability.md).
JVM_NATIVE_ALLOWANCE_MB = 250
# A process without a cap leaks when its RSS keeps rising to the end: the median of the run's last third above
# the peak of its middle third by more than this (absolute MB, or share of that peak, whichever is larger). A
# process that fills up and then flattens (allocator arenas, caches warming) stays within it.
TREND_TOLERANCE_MB = 8.0
TREND_TOLERANCE_SHARE = 0.02


def heap_cap_bytes(command_line):
    """The JVM's maximum heap from its command line (the last -Xmx wins, as for the JVM), or None."""
    cap = None
    for match in re.finditer(r"(?:^|\s)-Xmx(\d+)([kKmMgG]?)(?=\s|$)", command_line):
        scale = {"": 1, "k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}[match.group(2).lower()]
        cap = int(match.group(1)) * scale
    return cap


def judge_memory(samples, caps=None, groups=WATCHED_GROUPS):
    """Judge RSS samples [(seconds since start, {group: bytes})] of one run: (verdicts by group, problems).

    A group with a cap in `caps` (bytes; the JVM's heap) must stay within it plus JVM_NATIVE_ALLOWANCE_MB all run
    long; any other group must not still be rising in the last third of the run (see TREND_TOLERANCE_*). Each
    group in `groups` must have been seen, with a non-zero RSS, in every sample."""
    caps = caps or {}
    problems = []
    verdicts = {}
    if len(samples) < 6:
        return verdicts, ["too few memory samples (%d; at least 6) to judge memory" % len(samples)]
    for group in groups:
        missing = sum(1 for _, sample in samples if not sample.get(group))
        if missing:
            problems.append("no %s process was seen in %d of %d memory samples" % (group, missing, len(samples)))
    start, end = samples[0][0], samples[-1][0]
    third = (end - start) / 3.0
    names = sorted(set(name for _, sample in samples for name in sample))
    for name in names:
        series = [(t, sample[name]) for t, sample in samples if sample.get(name)]
        if not series:
            continue
        values = [value for _, value in series]
        verdict = {"start MB": values[0] / MB, "end MB": values[-1] / MB, "peak MB": max(values) / MB}
        if name in caps and caps[name]:
            bound = caps[name] + JVM_NATIVE_ALLOWANCE_MB * MB
            verdict.update({"check": "bound", "heap cap MB": caps[name] / MB, "bound MB": bound / MB,
                            "held": max(values) <= bound})
            if not verdict["held"]:
                problems.append("%s RSS peaked at %.1f MB, over its bound of %.1f MB (heap cap %.1f MB + %d MB "
                                "outside the heap)" % (name, max(values) / MB, bound / MB, caps[name] / MB,
                                                       JVM_NATIVE_ALLOWANCE_MB))
        else:
            middle = [value for t, value in series if start + third <= t < start + 2 * third]
            last = [value for t, value in series if t >= start + 2 * third]
            if len(middle) < 2 or len(last) < 2:
                verdict.update({"check": "trend", "held": None})  # a worker replaced mid-run: too short to judge
                if name in groups:
                    problems.append("%s was not seen long enough to judge its memory" % name)
                verdicts[name] = verdict
                continue
            middle_peak = max(middle)
            last_median = float(np.median(last))
            tolerance = max(TREND_TOLERANCE_MB * MB, TREND_TOLERANCE_SHARE * middle_peak)
            rise = last_median - middle_peak
            verdict.update({"check": "trend", "middle third peak MB": middle_peak / MB,
                            "last third median MB": last_median / MB, "rise MB": rise / MB,
                            "tolerance MB": tolerance / MB, "held": rise <= tolerance})
            if not verdict["held"]:
                problems.append("%s RSS still rising at the end: the last third's median %.1f MB is %.1f MB above "
                                "the middle third's peak %.1f MB (tolerance %.1f MB)" % (
                                    name, last_median / MB, rise / MB, middle_peak / MB, tolerance / MB))
        verdicts[name] = verdict
    return verdicts, problems


class Kind(object):
    """One kind of request in the mix: how to send it, what it must get, and how often."""

    def __init__(self, name, body, content_type, status, weight, headers=None):
        self.name = name
        self.body = body
        self.content_type = content_type
        self.status = status
        self.weight = weight
        self.headers = headers or {}

    @property
    def valid(self):
        return self.status == 200


def request_mix():
    """Valid requests of several shapes and sizes (about 3/4 of the load) and invalid ones."""
    scenes = [encode(make_scene(seed, 640, 480)[0], quality=90) for seed in range(100, 106)]
    photos = dict(builtin_photos())
    with open(photos["grace_hopper"], "rb") as stream:
        photo = stream.read()
    with open(photos["astronaut"], "rb") as stream:
        astronaut_png = stream.read()
    large = np.kron(make_scene(77, 600, 400)[0], np.ones((5, 5, 1), np.uint8))  # 3000x2000
    large_jpeg = encode(large, quality=85)
    small = [encode(make_scene(seed, 320, 240)[0]) for seed in (7, 8)]
    b64 = lambda data: base64.b64encode(data).decode("ascii")  # noqa: E731
    kinds = []
    for index, scene in enumerate(scenes):
        kinds.append(Kind("scene jpeg %d" % index, scene, "image/jpeg", 200, 2))
    kinds += [
        Kind("scene png", encode(make_scene(9, 400, 300)[0], "PNG"), "image/png", 200, 2),
        Kind("photo jpeg", photo, "image/jpeg", 200, 3),
        Kind("photo png", astronaut_png, "image/png", 200, 2),
        Kind("3000x2000 jpeg", large_jpeg, "image/jpeg", 200, 2),
        Kind("json with parameters", json.dumps({"image": b64(scenes[0]), "threshold": 0.3, "top_k": 5}).encode(),
             "application/json", 200, 2),
        Kind("json batch of 2", json.dumps({"images": [b64(s) for s in small]}).encode(), "application/json", 200, 2),
        Kind("base64 text", base64.b64encode(small[0]), "text/plain", 200, 1),
        Kind("picture answer", small[1], "image/jpeg", 200, 1, {"Accept": "image/jpeg"}),
        # invalid
        Kind("random bytes", os.urandom(20000), "image/jpeg", 400, 2),
        Kind("truncated jpeg", photo[:len(photo) // 2], "image/jpeg", 400, 1),
        Kind("bad json", b'{"image": ', "application/json", 400, 1),
        Kind("threshold 5", scenes[1], "image/jpeg", 400, 1, {"X-Amzn-SageMaker-Custom-Attributes": "threshold=5"}),
        Kind("unsupported type", scenes[2], "video/mp4", 415, 1),
        Kind("png bomb header", png_declaring(100000, 100000), "image/png", 413, 1),
        Kind("over 6 MB", b"\xff" * (MAX_REQUEST_BYTES + 1000), "image/jpeg", 413, 0.2),
    ]
    return kinds


def percentile(values, q):
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


class ProcessWatch(object):
    """RSS of the server's processes, sampled: the model server's workers, the JVM, the front door."""

    def __init__(self, server_pid):
        self.root = psutil.Process(server_pid)
        self.caps = {}  # group: bytes, the bounds the processes were started with (the JVM's -Xmx)

    def groups(self):
        """RSS by group: all workers together, each worker ("worker PID"), the JVM, the front door (the launcher)."""
        rss = {"workers": 0, "jvm": 0, "front door": 0}
        try:
            rss["front door"] = self.root.memory_info().rss
            children = self.root.children(recursive=True)
        except psutil.Error:
            return rss
        for child in children:
            try:
                command = " ".join(child.cmdline())
                value = child.memory_info().rss
            except psutil.Error:
                continue
            if "model_service_worker" in command:
                rss["workers"] += value
                if child.num_threads() > 1:  # the process holding the model, not the one-thread parent that forks it
                    rss["worker %d" % child.pid] = value
            elif "java" in child.name() or "java" in command.split(" ")[0]:
                rss["jvm"] += value
                self.caps["jvm"] = heap_cap_bytes(command)
        return rss


class ContainerServer(object):
    """`docker run` of an image with host networking under a memory limit, for the soak; stop() removes exactly it."""

    def __init__(self, image, memory, log_path=None, model_dir=None):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.name = "ssd-soak-%s" % uuid.uuid4().hex[:10]
        self.log_path = log_path
        # a model folder of this machine is served as SageMaker unpacks a model.tar.gz: at /opt/ml/model
        volumes = ["-v", "%s:/opt/ml/model:ro" % os.path.abspath(model_dir)] if model_dir else []
        subprocess.run(["docker", "run", "-d", "--name", self.name, "--network", "host", "--memory", memory,
                        "-e", "SAGEMAKER_BIND_TO_PORT=%d" % self.port] + volumes + [image, "serve"], check=True,
                       stdout=subprocess.DEVNULL)

    def _inspect(self, template, *flags):
        done = subprocess.run(["docker", "inspect"] + list(flags) + ["--format", template, self.name],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
        return done.stdout.strip()

    def wait_ready(self, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self._inspect("{{.State.Running}}") != "true":
                raise RuntimeError("the container stopped:\n%s" % self.logs()[-4000:])
            try:
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(1)
        raise RuntimeError("the container was not ready within %d s:\n%s" % (timeout, self.logs()[-4000:]))

    @property
    def pid(self):
        """The launcher's pid as this machine sees it (the container's first process)."""
        return int(self._inspect("{{.State.Pid}}"))

    def disk_bytes(self):
        """Bytes written to the container's writable layer (its logs, temporary files, anything else)."""
        return int(self._inspect("{{.SizeRw}}", "--size") or 0)

    def oom_killed(self):
        return self._inspect("{{.State.OOMKilled}}") == "true"

    def logs(self):
        done = subprocess.run(["docker", "logs", self.name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        return done.stdout.decode(errors="replace")

    def stop(self):
        subprocess.run(["docker", "stop", "-t", "30", self.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if self.log_path:
            with open(self.log_path, "w") as stream:
                stream.write(self.logs())
        subprocess.run(["docker", "rm", "-f", self.name], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Soak(object):
    def __init__(self, url, seconds, concurrency, server_pid=None, warmup=None, max_requests=None, seed=0,
                 disk=None):
        """`server_pid`: the launcher's pid, whose processes' memory is sampled and judged (judge_memory); `disk`: a
        callable giving the bytes the server's writable paths use (sampled, checked); `warmup`: seconds before the
        latency and disk baselines."""
        self.url = url.rstrip("/")
        self.seconds = seconds
        self.concurrency = concurrency
        self.warmup = warmup if warmup is not None else min(30.0, max(10.0, 0.15 * seconds))
        self.max_requests = max_requests
        self.watch = ProcessWatch(server_pid) if server_pid else None
        self.disk = disk
        self.disk_samples = []  # (time since start, bytes)
        self.kinds = request_mix()
        weights = np.array([k.weight for k in self.kinds], dtype=np.float64)
        self.probabilities = weights / weights.sum()
        self.seed = seed
        self.lock = threading.Lock()
        self.results = []     # (kind, status or exception name, seconds, after warm-up?)
        self.pings = []       # (status or exception name, seconds)
        self.rss = []         # (time since start, {group: bytes})
        self.sent = 0
        self.started = None
        self.stop = threading.Event()

    # --- load

    def _client(self, index):
        rng = np.random.RandomState(self.seed + index)
        session = requests.Session()
        deadline = self.started + self.seconds
        while time.time() < deadline and not self.stop.is_set():
            with self.lock:
                if self.max_requests is not None and self.sent >= self.max_requests:
                    break
                self.sent += 1
            kind = self.kinds[rng.choice(len(self.kinds), p=self.probabilities)]
            headers = dict(kind.headers, **{"Content-Type": kind.content_type})
            began = time.time()
            try:
                reply = session.post(self.url + "/invocations", data=kind.body, headers=headers,
                                     timeout=REQUEST_TIMEOUT)
                outcome = reply.status_code
                if outcome >= 400:
                    try:
                        document = reply.json()
                        if document.get("status") != outcome or not document.get("error"):
                            outcome = "%d without a JSON error" % outcome
                    except ValueError:
                        outcome = "%d without a JSON error" % outcome
            except requests.RequestException as err:
                outcome = err.__class__.__name__
                session.close()
                session = requests.Session()
            elapsed = time.time() - began
            with self.lock:
                self.results.append((kind, outcome, elapsed, began - self.started >= self.warmup))
        session.close()

    def _pinger(self):
        while not self.stop.wait(1.0):
            began = time.time()
            try:
                outcome = requests.get(self.url + "/ping", timeout=PING_TIMEOUT).status_code
            except requests.RequestException as err:
                outcome = err.__class__.__name__
            self.pings.append((outcome, time.time() - began))

    def _sample(self):
        if self.watch:
            self.rss.append((time.time() - self.started, self.watch.groups()))
        if self.disk:
            self.disk_samples.append((time.time() - self.started, self.disk()))

    def _sampler(self):
        while not self.stop.wait(2.0):
            self._sample()

    def run(self):
        self.started = time.time()
        self._sample()
        helpers = [threading.Thread(target=self._pinger), threading.Thread(target=self._sampler)]
        clients = [threading.Thread(target=self._client, args=(i,)) for i in range(self.concurrency)]
        for thread in helpers + clients:
            thread.daemon = True
            thread.start()
        for thread in clients:
            thread.join(self.seconds + REQUEST_TIMEOUT + 30)
        hung = [t for t in clients if t.is_alive()]
        self.stop.set()
        for thread in helpers:
            thread.join(10)
        self._sample()
        self.elapsed = time.time() - self.started
        return self.report(hung_threads=len(hung))

    # --- report

    def report(self, hung_threads=0):
        valid = [r for r in self.results if r[0].valid]
        invalid = [r for r in self.results if not r[0].valid]
        latencies = [r[2] for r in valid if r[1] == 200]
        measured = [r[2] for r in valid if r[1] == 200 and r[3]]
        by_kind = {}
        for kind, outcome, elapsed, _ in self.results:
            entry = by_kind.setdefault(kind.name, {"expected": kind.status, "answers": {}, "latencies": []})
            entry["answers"][str(outcome)] = entry["answers"].get(str(outcome), 0) + 1
            entry["latencies"].append(elapsed)
        problems = []
        wrong_valid = [r for r in valid if r[1] != 200]
        wrong_invalid = [r for r in invalid if r[1] != r[0].status]
        if wrong_valid:
            problems.append("%d valid requests were not answered 200: %s" % (
                len(wrong_valid), sorted(set("%s -> %s" % (r[0].name, r[1]) for r in wrong_valid))[:10]))
        if wrong_invalid:
            problems.append("%d invalid requests did not get their 4xx: %s" % (
                len(wrong_invalid), sorted(set("%s -> %s" % (r[0].name, r[1]) for r in wrong_invalid))[:10]))
        if hung_threads:
            problems.append("%d client threads still waiting after the deadline" % hung_threads)
        bad_pings = [p for p in self.pings if p[0] != 200]
        if bad_pings:
            problems.append("/ping failed %d of %d times: %s" % (
                len(bad_pings), len(self.pings), sorted(set(str(p[0]) for p in bad_pings))))
        memory = None
        if self.watch:
            caps = dict(self.watch.caps)
            if not caps.get("jvm"):
                problems.append("the JVM runs without a heap cap (-Xmx) on its command line, so its memory has no "
                                "bound to check")
            memory, memory_problems = judge_memory(self.rss, caps)
            problems += memory_problems
        disk = None
        after_warmup = [b for t, b in self.disk_samples if t >= self.warmup]
        if self.disk and len(after_warmup) >= 2:
            disk = {"after warm-up MB": after_warmup[0] / 1e6, "end MB": after_warmup[-1] / 1e6,
                    "peak MB": max(after_warmup) / 1e6}
            if after_warmup[-1] - after_warmup[0] > MAX_DISK_GROWTH:
                problems.append("the writable layer grew %.1f MB after warm-up (limit %.0f MB)" % (
                    (after_warmup[-1] - after_warmup[0]) / 1e6, MAX_DISK_GROWTH / 1e6))
        if not valid:
            problems.append("no valid request was sent")
        return {
            "seconds": round(self.elapsed, 1), "concurrency": self.concurrency, "warm-up seconds": self.warmup,
            "requests": len(self.results), "valid": len(valid), "invalid": len(invalid),
            "throughput per s": round(len(self.results) / self.elapsed, 2) if self.elapsed else None,
            "valid latency s": {"p50": percentile(latencies, 50), "p90": percentile(latencies, 90),
                                "p99": percentile(latencies, 99), "max": max(latencies) if latencies else None},
            "valid latency after warm-up s": {"p50": percentile(measured, 50), "p99": percentile(measured, 99)},
            "pings": {"count": len(self.pings), "failed": len(bad_pings),
                      "max s": max([p[1] for p in self.pings] or [0.0])},
            "rss": memory,
            "disk": disk,
            "by kind": dict((name, {"expected": e["expected"], "answers": e["answers"],
                                    "p50 s": percentile(e["latencies"], 50), "p99 s": percentile(e["latencies"], 99)})
                            for name, e in sorted(by_kind.items())),
            "problems": problems,
        }


def format_report(report):
    return "\n".join(soak_lines(report))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 300)))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("SOAK_CONCURRENCY", 8)))
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the RSS baseline")
    parser.add_argument("--max-requests", type=int, default=None)
    parser.add_argument("--model-dir", default=None,
                        help="the model to serve (default: the demo model; with --image: the image's own model, "
                             "else this folder mounted at /opt/ml/model)")
    parser.add_argument("--url", help="an already running server (RSS is then not measured)")
    parser.add_argument("--image", help="soak a container of this image (host networking) instead of a local server")
    parser.add_argument("--memory", default="2g", help="the container's memory limit (--image; default 2g)")
    parser.add_argument("--container-log", help="write the container's log here when it stops (--image)")
    parser.add_argument("--json", help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    server = None
    disk = None
    try:
        if args.url:
            url, pid = args.url, None
        elif args.image:
            server = ContainerServer(args.image, args.memory, args.container_log, args.model_dir).wait_ready()
            url, pid, disk = server.url, server.pid, server.disk_bytes
            print("soak: container %s of %s on %s, memory limit %s" % (server.name, args.image, url, args.memory))
        else:
            server = ServerProcess(args.model_dir or DEMO_MODEL).wait_serving()
            url, pid = server.url, server.process.pid
            print("soak: server on %s (pid %d)" % (url, pid))
        soak = Soak(url, args.seconds, args.concurrency, server_pid=pid, warmup=args.warmup,
                    max_requests=args.max_requests, disk=disk)
        report = soak.run()
        if args.image:
            report["container"] = {"image": args.image, "memory": args.memory, "model_dir": args.model_dir}
            if server.oom_killed():
                report["problems"].append("the kernel killed a process of the container for memory")
    finally:
        if server is not None:
            server.stop()
    print(format_report(report))
    if args.json:
        with open(args.json, "w") as stream:
            json.dump(report, stream, indent=1, sort_keys=True)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
