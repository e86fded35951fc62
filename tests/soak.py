"""Load and soak check: concurrent valid and invalid requests against the real server, over loopback.

    .venv/mx19/bin/python tests/soak.py --seconds 600 --concurrency 8      (or: make soak SOAK_SECONDS=600)

starts its own server (the demo model, as the tests do; --model-dir for another, --url for one already
running), sends a mix of requests from `concurrency` threads for `seconds`, and reports latency
percentiles, the answers by status, /ping during the load, and the resident memory (RSS) of the model
server's worker processes after warm-up and at the end. It exits 1 when a criterion fails:

- every valid request answered 200 (no 5xx), every invalid one its documented 4xx;
- no request hangs (each has a 60 s client timeout) and /ping answers 200 within 2 s throughout;
- worker RSS at the end at most 10% above its level after warm-up.

Bounded in time and count: it stops at the deadline (plus one request per thread), and with
--max-requests. tests/test_soak.py runs a short one (SOAK_SECONDS, default 45) in the test suite.
"""
from __future__ import print_function

import argparse
import base64
import json
import os
import sys
import threading
import time

import numpy as np
import psutil
import requests

from helpers import DEMO_MODEL, RunningServer, encode, photo_paths, png_declaring, synthetic_scene

REQUEST_TIMEOUT = 60.0
PING_TIMEOUT = 2.0      # SageMaker's
MAX_RSS_GROWTH = 0.10
MAX_REQUEST_BYTES = 6553500


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
    scenes = [encode(synthetic_scene(seed, 640, 480)[0], quality=90) for seed in range(100, 106)]
    photos = photo_paths()
    with open(photos["grace_hopper"], "rb") as stream:
        photo = stream.read()
    with open(photos["astronaut"], "rb") as stream:
        astronaut_png = stream.read()
    large = np.kron(synthetic_scene(77, 600, 400)[0], np.ones((5, 5, 1), np.uint8))  # 3000x2000
    large_jpeg = encode(large, quality=85)
    small = [encode(synthetic_scene(seed, 320, 240)[0]) for seed in (7, 8)]
    b64 = lambda data: base64.b64encode(data).decode("ascii")  # noqa: E731
    kinds = []
    for index, scene in enumerate(scenes):
        kinds.append(Kind("scene jpeg %d" % index, scene, "image/jpeg", 200, 2))
    kinds += [
        Kind("scene png", encode(synthetic_scene(9, 400, 300)[0], "PNG"), "image/png", 200, 2),
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

    def groups(self):
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
            elif "java" in child.name() or "java" in command.split(" ")[0]:
                rss["jvm"] += value
        return rss


class Soak(object):
    def __init__(self, url, seconds, concurrency, server_pid=None, warmup=None, max_requests=None, seed=0):
        self.url = url.rstrip("/")
        self.seconds = seconds
        self.concurrency = concurrency
        self.warmup = warmup if warmup is not None else min(30.0, max(10.0, 0.15 * seconds))
        self.max_requests = max_requests
        self.watch = ProcessWatch(server_pid) if server_pid else None
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

    def _sampler(self):
        while not self.stop.wait(2.0):
            if self.watch:
                self.rss.append((time.time() - self.started, self.watch.groups()))

    def run(self):
        self.started = time.time()
        if self.watch:
            self.rss.append((0.0, self.watch.groups()))
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
        if self.watch:
            self.rss.append((time.time() - self.started, self.watch.groups()))
        self.elapsed = time.time() - self.started
        return self.report(hung_threads=len(hung))

    # --- report

    def _rss_growth(self, group):
        after_warmup = [(t, g[group]) for t, g in self.rss if t >= self.warmup]
        if len(after_warmup) < 2:
            return None
        baseline = after_warmup[0][1]
        end = after_warmup[-1][1]
        peak = max(value for _, value in after_warmup)
        return {"after warm-up MB": baseline / 1e6, "end MB": end / 1e6, "peak MB": peak / 1e6,
                "growth": (end - baseline) / float(baseline) if baseline else float("nan")}

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
        workers = self._rss_growth("workers")
        if self.watch:
            if workers is None:
                problems.append("too few RSS samples after warm-up")
            elif workers["growth"] > MAX_RSS_GROWTH:
                problems.append("worker RSS grew %.1f%% after warm-up (limit %.0f%%)" % (
                    100 * workers["growth"], 100 * MAX_RSS_GROWTH))
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
            "rss": dict((group, self._rss_growth(group)) for group in ("workers", "jvm", "front door"))
            if self.watch else None,
            "by kind": dict((name, {"expected": e["expected"], "answers": e["answers"],
                                    "p50 s": percentile(e["latencies"], 50), "p99 s": percentile(e["latencies"], 99)})
                            for name, e in sorted(by_kind.items())),
            "problems": problems,
        }


def format_report(report):
    lines = ["soak: %(seconds)ss at concurrency %(concurrency)d (warm-up %(warm-up seconds).0f s): %(requests)d "
             "requests (%(valid)d valid, %(invalid)d invalid), %(throughput per s)s/s" % report]
    latency = report["valid latency s"]
    lines.append("valid requests answered 200: p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s" % (
        latency["p50"], latency["p90"], latency["p99"], latency["max"] or float("nan")))
    pings = report["pings"]
    lines.append("/ping: %d checks, %d failed, slowest %.3f s" % (pings["count"], pings["failed"], pings["max s"]))
    for group, rss in sorted((report["rss"] or {}).items()):
        if rss:
            lines.append("RSS %-10s after warm-up %7.1f MB, end %7.1f MB, peak %7.1f MB, growth %+.1f%%" % (
                group, rss["after warm-up MB"], rss["end MB"], rss["peak MB"], 100 * rss["growth"]))
    lines.append("| request | expected | answers | p50 s | p99 s |")
    lines.append("| --- | --- | --- | --- | --- |")
    for name, entry in report["by kind"].items():
        answers = ", ".join("%s x%d" % item for item in sorted(entry["answers"].items()))
        lines.append("| %s | %s | %s | %.3f | %.3f |" % (name, entry["expected"], answers, entry["p50 s"],
                                                         entry["p99 s"]))
    lines.append("problems: %s" % ("; ".join(report["problems"]) or "none"))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 300)))
    parser.add_argument("--concurrency", type=int, default=int(os.environ.get("SOAK_CONCURRENCY", 8)))
    parser.add_argument("--warmup", type=float, default=None, help="seconds before the RSS baseline")
    parser.add_argument("--max-requests", type=int, default=None)
    parser.add_argument("--model-dir", default=DEMO_MODEL)
    parser.add_argument("--url", help="an already running server (RSS is then not measured)")
    parser.add_argument("--json", help="also write the report as JSON to this file")
    args = parser.parse_args(argv)
    server = None
    try:
        if args.url:
            url, pid = args.url, None
        else:
            server = RunningServer(args.model_dir).wait_ready()
            url, pid = server.url, server.process.pid
            print("soak: server on %s (pid %d)" % (url, pid))
        soak = Soak(url, args.seconds, args.concurrency, server_pid=pid, warmup=args.warmup,
                    max_requests=args.max_requests)
        report = soak.run()
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
