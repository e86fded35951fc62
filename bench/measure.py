"""What make bench measures: the requests it sends, each model's servers and floors interleaved round by round,
throughput, start-up, the cpu image's cold start and int8's accuracy."""
import base64
import io
import json
import os
import re
import subprocess
import sys
import threading
import time

import numpy as np
import requests

from common import HERE, ROOT, log, run_text, summary
from servers import (Floor, default_layout, floor_env, launched, memory, original_server, our_server, server_config,
                     start_servers)
from ssd_serving.ports import free_port

CONCURRENCY = (1, 2, 4, 8)
DEPLOY_CONCURRENCY = 8  # the deploy targets' throughput is compared at this concurrency only, to keep the run short
# server-side batching as measured: MMS hands a worker up to this many requests, waiting up to this long for them
SERVER_BATCH_SIZE = 4
SERVER_BATCH_DELAY_MS = 10
BODIES = ("jpeg_640x480", "base64_json_640x480", "jpeg_12mp", "base64_json_12mp")
# the entry point that answers at once (bench/noop): the serving path's own cost, apart from any model
NOOP_ENTRY_POINT = {"SAGEMAKER_PROGRAM": "noop_inference.py", "PYTHONPATH": os.path.join(HERE, "noop")}
# Each server's first requests are sent before its measured ones, unmeasured (warm_up): Multi Model Server's JVM
# compiles its request path over its first several hundred requests. Measured by hand (2026-12-04, the no-op from a
# lean client, 8 ms apart): 1.6-2.4 ms p50 over requests 30-100, 0.9-1.0 ms after the 1,000th; with the JIT's
# thresholds scaled down 20x, 1.1 ms over requests 100-200 (docs/performance.md has the figures). A server in
# service has long passed that; a fresh one's first request is measured apart (measure_start), and the warm-up's
# first and last WARM_UP_WINDOW requests are kept.
WARM_UP_WINDOW = 100


# ----------------------------------------------------------------------------------------- inputs

def prepare_photos(out_dir):
    """A real photo (scikit-image's motorcycle) at 640x480, and the same photo upscaled to 12 MP."""
    import skimage
    from PIL import Image
    os.makedirs(out_dir, exist_ok=True)
    source = os.path.join(os.path.dirname(skimage.__file__), "data", "motorcycle_left.png")
    image = Image.open(source).convert("RGB")
    width, height = image.size
    crop_width = int(round(height * 4 / 3.0))
    left = (width - crop_width) // 2
    image = image.crop((left, 0, left + crop_width, height))
    photos = {}
    for key, size, resample in (("640x480", (640, 480), Image.LANCZOS), ("12mp", (4000, 3000), Image.BICUBIC)):
        stream = io.BytesIO()
        image.resize(size, resample).save(stream, format="JPEG", quality=90)
        data = stream.getvalue()
        with open(os.path.join(out_dir, "photo-%s.jpg" % key), "wb") as f:
            f.write(data)
        photos[key] = {"jpeg": data, "size": list(size), "bytes": len(data),
                       "json": json.dumps({"image": base64.b64encode(data).decode("ascii")}).encode("ascii")}
        photos[key]["json_bytes"] = len(photos[key]["json"])
    photos["source"] = "skimage.data motorcycle_left.png (741x500), cropped to 4:3"
    return photos


def request_body(photos, body):
    kind, _, size = body.rpartition("_")
    photo = photos[size]
    if kind == "jpeg":
        return photo["jpeg"], "image/jpeg"
    return photo["json"], "application/json"


# -------------------------------------------------------------------------------------- requests

def post(session, url, body, content_type):
    reply = session.post(url + "/invocations", data=body, headers={"Content-Type": content_type}, timeout=120)
    if reply.status_code != 200:
        raise RuntimeError("POST /invocations answered %d: %s" % (reply.status_code, reply.text[:500]))
    return reply


def throughput(server, body, content_type, concurrency, duration):
    """Requests per second with `concurrency` clients posting back to back for `duration` seconds."""
    deadline = [None]
    done, errors = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(concurrency + 1)

    def client():
        session = requests.Session()
        try:
            post(session, server.url, body, content_type)  # open the connection first
        except Exception as err:
            errors.append(err)
        barrier.wait()
        while time.perf_counter() < deadline[0]:
            start = time.perf_counter()
            try:
                post(session, server.url, body, content_type)
            except Exception as err:
                errors.append(err)
                return
            with lock:
                done.append((start, time.perf_counter()))

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    deadline[0] = time.perf_counter() + 3600
    barrier.wait()
    began = time.perf_counter()
    deadline[0] = began + duration
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError("throughput at concurrency %d: %s" % (concurrency, errors[0]))
    finished = max(end for _, end in done)
    latency = summary([end - start for start, end in done])
    return {"rps": round(len(done) / (finished - began), 2), "requests": len(done),
            "p50_ms": latency["p50"], "p99_ms": latency["p99"]}


def interleave(probes, rounds):
    """Run every probe once per round (or every `every` rounds), in turn, so that all of them see the
    same background load: on a shared machine load comes and goes, and figures measured one after the
    other would compare different machines. Returns {name: [seconds, ...]}."""
    samples = dict((name, []) for name, _, _ in probes)
    for name, probe, _ in probes:  # a pass nobody counts: connections, caches
        probe()
    for index in range(rounds):
        for name, probe, every in probes:
            if index % every == 0:
                samples[name].extend(probe())
    return samples


class LeanClient(object):
    """A keep-alive HTTP/1.1 client on a bare socket (Nagle off), posting one body over and over: what the server's
    own cost looks like from a client whose cost is near nothing. `requests` spends 1-2 ms of Python per request on
    this machine (measured against this client on the same server), which is the client's, not the server's."""

    def __init__(self, url, body, content_type):
        import socket
        from urllib.parse import urlsplit
        address = urlsplit(url)
        self.sock = socket.create_connection((address.hostname, address.port), timeout=120)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request = (("POST /invocations HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n"
                         % (address.netloc, content_type, len(body))).encode("ascii") + body)

    def post(self):
        """(status, headers as a lower-cased dict, body) of one exchange."""
        self.sock.sendall(self.request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection")
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = dict((k.strip().lower(), v.strip()) for k, _, v in (line.partition(":") for line in lines[1:]))
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the connection inside an answer")
            body += chunk
        return int(lines[0].split()[1]), headers, body

    def timed(self):
        """(seconds, timeline) of one exchange, which must be answered 200: the client's time and the request laid
        out from its Server-Timing (timeline)."""
        start = time.perf_counter()
        status, headers, answer = self.post()
        seconds = time.perf_counter() - start
        if status != 200:
            raise RuntimeError("POST /invocations answered %d: %s" % (status, answer[:500]))
        return seconds, timeline(headers.get("server-timing"), seconds * 1000.0)

    def close(self):
        self.sock.close()


def lean_post(url, body, content_type, timelines):
    """A probe like timed_post's, from a LeanClient."""
    client = []

    def probe():
        if not client:
            client.append(LeanClient(url, body, content_type))
        seconds, laid_out = client[0].timed()
        timelines.append(laid_out)
        return [seconds]
    return probe


# A process that echoes each byte it reads on the socket it is given (its file descriptor, argv[1]) until EOF
_ECHO_PROCESS = """import socket, sys
sock = socket.socket(fileno=int(sys.argv[1]))
while True:
    byte = sock.recv(1)
    if not byte:
        break
    sock.sendall(byte)
"""


def wake_round_trip_us(gap_s, count):
    """p50 microseconds of a one-byte round trip to another process over a Unix socket pair, each sent after `gap_s`
    seconds of idleness: what waking a sleeping process costs on this machine, which each hop of a request pays."""
    import socket
    ours, theirs = socket.socketpair()
    echo = subprocess.Popen([sys.executable, "-c", _ECHO_PROCESS, str(theirs.fileno())], pass_fds=(theirs.fileno(),))
    theirs.close()
    seconds = []
    try:
        ours.settimeout(30)
        for index in range(count + 1):  # the first one only waits for the echo process to start
            if gap_s:
                time.sleep(gap_s)
            start = time.perf_counter()
            ours.sendall(b"x")
            if ours.recv(1) != b"x":
                raise RuntimeError("the echo process did not echo")
            if index:
                seconds.append(time.perf_counter() - start)
    finally:
        ours.close()
        echo.wait(30)
    return round(float(np.percentile(seconds, 50)) * 1e6, 1)


def idle_gap_probe(url, body, content_type, gap_ms, count, warm_up=10):
    """`count` requests from one LeanClient, each sent `gap_ms` after the last answer, laid out (timeline_summary), with
    a bare process wake-up after the same wait beside them."""
    client = LeanClient(url, body, content_type)
    timelines = []
    try:
        for index in range(warm_up + count):
            if gap_ms:
                time.sleep(gap_ms / 1000.0)
            _, laid_out = client.timed()
            if index >= warm_up:
                timelines.append(laid_out)
    finally:
        client.close()
    return {"gap_ms": gap_ms, "timeline_ms": timeline_summary(timelines),
            "wake_round_trip_us": wake_round_trip_us(gap_ms / 1000.0, count)}


def warm_up(url, body, content_type, count, seconds):
    """Up to `count` unmeasured exchanges with a server, one at a time from a lean client, for at most `seconds`
    (a large model's requests take up to a second here): how many were sent and the p50 ms of the first and of the
    last WARM_UP_WINDOW of them, how far from its steady state the server started."""
    client = LeanClient(url, body, content_type)
    seconds_each = []
    deadline = time.perf_counter() + seconds
    try:
        while len(seconds_each) < count and time.perf_counter() < deadline:
            seconds_each.append(client.timed()[0])
    finally:
        client.close()
    return {"requests": len(seconds_each), "first_p50_ms": summary(seconds_each[:WARM_UP_WINDOW])["p50"],
            "last_p50_ms": summary(seconds_each[-WARM_UP_WINDOW:])["p50"]}


def timed_post(session, url, body, content_type, request_ids=None, timelines=None):
    """A probe posting `body`; the ids of its answers (X-Ssd-Request-Id) go to `request_ids`, each answer's timeline
    (its Server-Timing and the client's own time) to `timelines`."""
    def probe():
        start = time.perf_counter()
        reply = post(session, url, body, content_type)
        seconds = time.perf_counter() - start
        if request_ids is not None and reply.headers.get("X-Ssd-Request-Id"):
            request_ids.append(reply.headers["X-Ssd-Request-Id"])
        if timelines is not None:
            timelines.append(timeline(reply.headers.get("Server-Timing"), seconds * 1000.0))
        return [seconds]
    return probe


# One request laid out end to end from its Server-Timing (the worker's stages, the front door's read, upstream and
# front) and the client's time: each part in order, in ms (docs/performance.md#where-each-requests-time-goes).
TIMELINE_PARTS = (("client_and_network", "the client and loopback, outside the front door"),
                  ("front_read", "the front door reads the request (and waits for a slot)"),
                  ("to_worker", "the front door's forward, MMS's frontend and queue, the socket to the worker"),
                  ("worker", "the worker: handler, entry point, stages"),
                  ("back_from_worker", "the worker's answer through MMS back to the front door"),
                  ("front_write", "the front door writes the answer"))


def timeline(server_timing, client_ms):
    """TIMELINE_PARTS of one request, from its Server-Timing header and the client's time, or {} without one."""
    durations = {}
    for part in (server_timing or "").split(","):
        name, _, duration = part.strip().partition(";dur=")
        if duration:
            durations[name] = float(duration)
    if not {"queue", "worker", "read", "upstream", "front"} <= set(durations):
        return {}
    to_worker = durations["queue"] - durations["read"]
    return {"client_and_network": client_ms - durations["front"], "front_read": durations["read"],
            "to_worker": to_worker, "worker": durations["worker"],
            "back_from_worker": durations["upstream"] - to_worker - durations["worker"],
            "front_write": durations["front"] - durations["read"] - durations["upstream"], "client": client_ms,
            # the server's own cost outside the worker's stages, the queue included: issue 22's "hops"
            "outside_worker": durations["front"] - durations["worker"]}


def timeline_summary(timelines):
    """p50 of each part over the requests that carried a timeline, and how many did."""
    measured = [t for t in timelines if t]
    if not measured:
        return {"skipped": "no answer carried a Server-Timing header"}
    result = dict((part, float(np.percentile([t[part] for t in measured], 50)))
                  for part in [p for p, _ in TIMELINE_PARTS] + ["client", "outside_worker"])
    result["requests"] = len(measured)
    return result


# ------------------------------------------------------------------------------------- scenarios

def first_request_ms(server, photos):
    body, content_type = request_body(photos, "jpeg_640x480")
    start = time.perf_counter()
    post(requests.Session(), server.url, body, content_type)
    return round((time.perf_counter() - start) * 1000.0, 1)


def measure_start(label, model_dir, photos, log_dir, after_ready=True):
    """Two fresh servers: one gets its first request the moment GET /ping turns healthy (as SageMaker
    may send it), the other once the launcher logs that the model is loaded and warmed up."""
    server = our_server(label + "-after-ping", model_dir, log_dir)
    try:
        ping_s = server.wait_healthy()
        after_ping_ms = first_request_ms(server, photos)
        ready_s = server.wait_ready()
    finally:
        server.stop()
    after_ready_ms = None
    if after_ready:
        server = our_server(label + "-after-ready", model_dir, log_dir)
        try:
            server.wait_healthy()
            server.wait_ready()
            after_ready_ms = first_request_ms(server, photos)
        finally:
            server.stop()
    return {"ping_healthy_s": round(ping_s, 2), "model_ready_s": round(ready_s, 2),
            "first_request_after_ping_ms": after_ping_ms, "first_request_after_ready_ms": after_ready_ms}


def stage_timings(model_dir, photos_dir, plan, threads):
    """Decode, preprocess and encode timed on their own (floor.py --stages), in a process of their own."""
    output = subprocess.run(
        [sys.executable, os.path.join(HERE, "floor.py"), "--model-dir", model_dir, "--photos", photos_dir, "--stages",
         "--stage-runs", str(plan.stage_runs)], env=floor_env(threads), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, universal_newlines=True, timeout=1800)
    if output.returncode != 0:
        raise RuntimeError("floor.py --stages failed:\n%s" % output.stderr[-4000:])
    return json.loads(output.stdout.strip().splitlines()[-1])


def emf_documents(server):
    """The request lines the server's worker logged (CloudWatch EMF documents, one per request)."""
    return [json.loads(line) for line in server.output().splitlines() if line.startswith('{"_aws":')]


def worker_stages(server, request_ids):
    """p50 per stage, ms, of the requests `request_ids` as the server's worker logged them (EMF lines)."""
    wanted = set(request_ids)
    found = {}
    for document in emf_documents(server):
        if document.get("RequestId") in wanted:
            for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                found.setdefault(metric["Name"], []).append(document[metric["Name"]])
    return dict((name, round(float(np.percentile(values, 50)), 2)) for name, values in found.items())


def requests_per_worker_call(server):
    """How many requests the worker calls of a batching server answered together: {"mean", "max"} over every
    request it logged (EMF lines; a line without "Batch" was answered alone)."""
    sizes = [document.get("Batch", 1) for document in emf_documents(server)]
    return {"mean": round(float(np.mean(sizes)), 2), "max": int(max(sizes))} if sizes else None


class ModelMeasurement(object):
    """Every server and floor of one model up at once, their requests interleaved round by round, then each
    server's throughput and memory, into the model's entry of the results.

    `stacks` maps each Python that serves to what it serves with (stack_info), recorded in each row."""

    def __init__(self, key, spec, entry, photos, photos_dir, plan, log_dir, cores, on_cpu, skip_original, stacks):
        self.key, self.spec, self.entry = key, spec, entry
        self.photos, self.photos_dir, self.plan, self.log_dir = photos, photos_dir, plan, log_dir
        self.cores, self.on_cpu, self.original, self.stacks = cores, on_cpu, not skip_original, stacks
        self.name = spec["name"]
        self.int8_dir = spec.get("int8_dir")
        self.ei_dir = spec.get("ei_dir")
        # the served row runs the server's default worker layout (SSD_WORKER_LAYOUT=auto), the alternative row
        # the other one; int8 and the ei stack run the default's, so that the deploy targets compare like with like
        self.served_layout = None
        self.other_layout = None
        self.worker_threads = None
        self.floors = {}
        self.servers = {}
        # the answers' ids, to find each request's stages in the server's log, and their timelines
        self.answered = {"served": [], "int8": []}
        self.timelines = {"served": [], "noop": [], "served_lean": [], "noop_lean": [], "ei": [], "ei_lean": [],
                          "noop_ei_lean": []}

    def run(self):
        log("%s: loading the floor processes (%d thread(s)) and the servers" % (self.name, self.cores))
        stages = stage_timings(self.spec["dir"], self.photos_dir, self.plan, self.cores)
        try:
            self.start_floors()
            specs = self.server_specs()
            log("%s: starting %s" % (self.name, ", ".join(n for n, _ in specs)))
            self.servers = start_servers(specs, self.log_dir)
            try:
                for floor_process in self.floors.values():
                    floor_process.wait_ready()
                self.warm_up_servers()
                probes = self.probes()
                log("%s: %d interleaved rounds of %s" % (self.name, self.plan.rounds,
                                                         ", ".join(p[0] for p in probes)))
                samples = interleave(probes, self.plan.rounds)
                self.record_floors(samples, stages)
                self.record_servers(samples)
                if "noop" in self.servers:
                    self.entry["noop"]["idle_gaps"] = self.measure_idle_gaps()
                self.measure_throughput()
                self.entry["batched"]["requests_per_worker_call"] = requests_per_worker_call(self.servers["batched"])
                self.record_memory()
            finally:
                for server in self.servers.values():
                    server.stop()
        finally:
            for floor_process in self.floors.values():
                floor_process.stop()
        if self.int8_dir and self.key == "demo":
            log("demo: int8 accuracy against fp32 on %d held-out scenes" % self.plan.eval_scenes)
            self.entry["int8"]["accuracy"] = evaluate_int8(self.spec["dir"], self.int8_dir, self.plan.eval_scenes)

    def warm_up_servers(self):
        """Every server's warm-up (warm_up), one server at a time, with the body its measured requests send most."""
        self.entry["warm_up"] = {}
        for name, server in self.servers.items():
            body = "base64_json_640x480" if name.startswith("original") else "jpeg_640x480"
            log("%s: warming up %s: up to %d unmeasured requests in %g s" % (
                self.name, name, self.plan.warm_up_requests, self.plan.warm_up_s))
            self.entry["warm_up"][name] = warm_up(server.url, *request_body(self.photos, body),
                                                  count=self.plan.warm_up_requests, seconds=self.plan.warm_up_s)

    def start_floors(self):
        key, spec, cores, log_dir = self.key, self.spec, self.cores, self.log_dir
        self.floors["fp32"] = Floor("%s-floor" % key, spec["dir"], cores, log_dir)
        if self.on_cpu and not self.plan.quick:
            self.floors["unfused"] = Floor("%s-floor-unfused" % key, spec["dir"], cores, log_dir,
                                           {"SSD_GRAPH_FUSION": "0"})
        if self.int8_dir:
            self.floors["int8"] = Floor("%s-floor-int8" % key, self.int8_dir, cores, log_dir)
        self.served_layout = default_layout(spec["dir"], self.on_cpu)
        self.other_layout = "latency" if self.served_layout == "throughput" else "throughput"
        # the served workers' own thread count, when not every core: the floor at it tells a slower forward inside
        # the worker (the OpenCV-beside-OpenMP slowdown) from one that only has fewer threads
        self.worker_threads = 1 if self.served_layout == "throughput" else cores
        if self.worker_threads != cores:
            self.floors["worker_threads"] = Floor("%s-floor-%d-thread" % (key, self.worker_threads), spec["dir"],
                                                  self.worker_threads, log_dir)

    def server_specs(self):
        """[(row, a function that starts its server)], in the order they start."""
        key, spec, log_dir, plan, cores = self.key, self.spec, self.log_dir, self.plan, self.cores
        served_layout, other_layout = self.served_layout, self.other_layout
        int8_dir, ei_dir = self.int8_dir, self.ei_dir
        specs = [("served", lambda: our_server("%s-served" % key, spec["dir"], log_dir))]
        if key == "demo":  # the serving path's own cost, apart from any model: once is enough
            specs.append(("noop", lambda: our_server("noop", spec["dir"], log_dir, layout=served_layout,
                                                     extra_env=NOOP_ENTRY_POINT)))
            if ei_dir:  # and on the ei image's stack (MXNet 1.4.1's Python, mxnet-model-server 1.0.5)
                specs.append(("noop_ei", lambda: our_server("noop-ei-stack", ei_dir, log_dir, python=spec["ei_python"],
                                                            layout=served_layout, extra_env=NOOP_ENTRY_POINT)))
        if cores > 1 and not plan.quick:
            specs.append(("alternative", lambda: our_server("%s-%s" % (key, other_layout), spec["dir"], log_dir,
                                                            layout=other_layout)))
        # the default layout with MMS's server-side batching (SSD_SERVER_BATCH_SIZE)
        specs.append(("batched", lambda: our_server("%s-batched" % key, spec["dir"], log_dir, layout=served_layout,
                                                    extra_env={"SSD_SERVER_BATCH_SIZE": str(SERVER_BATCH_SIZE),
                                                               "SSD_SERVER_BATCH_DELAY_MS": str(SERVER_BATCH_DELAY_MS)})))
        if int8_dir:
            specs.append(("int8", lambda: our_server("%s-int8" % key, int8_dir, log_dir, precision="int8",
                                                     layout=served_layout)))
        if ei_dir:  # the ei image's stack: the same server on MXNet 1.4.1 and mxnet-model-server 1.0.5
            specs.append(("ei", lambda: our_server("%s-ei-stack" % key, ei_dir, log_dir, python=spec["ei_python"],
                                                   layout=served_layout)))
        if self.original:
            specs.append(("original", lambda: original_server("%s-original" % key, spec["original"], log_dir,
                                                              workers=cores, threads=1)))
            if cores > 1 and not plan.quick:
                specs.append(("original_all_cores", lambda: original_server(
                    "%s-original-all-cores" % key, spec["original"], log_dir, workers=1, threads=cores)))
            if spec.get("ei_python"):  # as the write-up ran it: MXNet 1.4.1 (GluonCV 0.5), mxnet-model-server 1.0.5
                specs.append(("original_mxnet14", lambda: original_server(
                    "%s-original-mxnet14" % key, spec["original"], log_dir, workers=cores, threads=1,
                    python=spec["ei_python"])))
        return specs

    def probes(self):
        """[(sample name, probe, every how many rounds)] for interleave(): the floors' forwards and each server's
        requests, in the order each round runs them."""
        floors, servers, photos = self.floors, self.servers, self.photos
        answered, timelines = self.answered, self.timelines
        probes = [("floor", lambda: floors["fp32"].forward(1), 1)]
        if "unfused" in floors:
            probes.append(("floor_unfused", lambda: floors["unfused"].forward(1), 2))
        if "worker_threads" in floors:
            probes.append(("floor_worker_threads", lambda: floors["worker_threads"].forward(1), 1))
        sessions = dict((n, requests.Session()) for n in servers)

        def posting(server_name, body, every=1, **recorded):
            return (server_name + ":" + body, timed_post(sessions[server_name], servers[server_name].url,
                                                         *request_body(photos, body), **recorded), every)

        for body in BODIES:
            probes.append(posting("served", body, request_ids=answered["served"] if body == "jpeg_640x480" else None,
                                  timelines=timelines["served"] if body == "jpeg_640x480" else None))
        probes.append(("served:jpeg_640x480_lean", lean_post(servers["served"].url, *request_body(photos, "jpeg_640x480"),
                                                              timelines=timelines["served_lean"]), 1))
        if "noop" in servers:
            probes.append(posting("noop", "jpeg_640x480", timelines=timelines["noop"]))
            probes.append(("noop:jpeg_640x480_lean", lean_post(servers["noop"].url, *request_body(
                photos, "jpeg_640x480"), timelines=timelines["noop_lean"]), 1))
        if "alternative" in servers:
            probes.append(posting("alternative", "jpeg_640x480"))
        probes.append(posting("batched", "jpeg_640x480"))
        if "int8" in servers:
            probes.append(("int8_floor", lambda: floors["int8"].forward(1), 1))
            probes.append(posting("int8", "jpeg_640x480", request_ids=answered["int8"]))
        if "ei" in servers:
            probes.append(posting("ei", "jpeg_640x480", timelines=timelines["ei"]))
            probes.append(("ei:jpeg_640x480_lean", lean_post(servers["ei"].url, *request_body(photos, "jpeg_640x480"),
                                                             timelines=timelines["ei_lean"]), 1))
        if "noop_ei" in servers:
            probes.append(("noop_ei:jpeg_640x480_lean", lean_post(servers["noop_ei"].url, *request_body(
                photos, "jpeg_640x480"), timelines=timelines["noop_ei_lean"]), 1))
        if "original" in servers:
            probes.append(posting("original", "base64_json_640x480"))
            probes.append(posting("original", "base64_json_12mp", every=2))
        if "original_all_cores" in servers:
            probes.append(posting("original_all_cores", "base64_json_640x480", every=2))
        if "original_mxnet14" in servers:
            probes.append(posting("original_mxnet14", "base64_json_640x480"))
        return probes

    def floor_entry(self, which, samples, sample_name):
        result = dict(self.floors[which].info)
        result["forward_ms"] = summary(samples[sample_name])
        result["mxnet"] = self.stacks[sys.executable]["mxnet"]  # floor.py runs on this Python
        return result

    def record_floors(self, samples, stages):
        entry = self.entry
        entry["floor"] = self.floor_entry("fp32", samples, "floor")
        entry["floor"].update(stages)
        if "floor_unfused" in samples:
            entry["floor"]["forward_unfused_ms"] = summary(samples["floor_unfused"])
        if "floor_worker_threads" in samples:
            entry["floor"]["forward_at_worker_threads_ms"] = dict(summary(samples["floor_worker_threads"]),
                                                                  threads=self.worker_threads)

    def server_entry(self, server_name, samples):
        server = self.servers[server_name]
        stack = dict(self.stacks[server.python], **launched(server))
        stack["model_server_version"] = stack["model_servers"].get(stack["model_server"])
        result = {"config": server_config(server), "latency_ms": {}, "stack": stack}
        for sample_name, values in samples.items():
            if sample_name.startswith(server_name + ":"):
                result["latency_ms"][sample_name.split(":", 1)[1]] = summary(values)
        return result

    def record_servers(self, samples):
        """Each server's row: its configuration, stack and latencies, and what each row adds."""
        entry, servers, spec, plan = self.entry, self.servers, self.spec, self.plan
        entry["served"] = self.server_entry("served", samples)
        entry["served"]["worker_stages_ms"] = worker_stages(servers["served"], self.answered["served"])
        entry["served"]["timeline_ms"] = timeline_summary(self.timelines["served"])
        entry["served"]["timeline_lean_client_ms"] = timeline_summary(self.timelines["served_lean"])
        if "noop" in servers:
            entry["noop"] = self.server_entry("noop", samples)
            entry["noop"]["timeline_ms"] = timeline_summary(self.timelines["noop"])
            entry["noop"]["timeline_lean_client_ms"] = timeline_summary(self.timelines["noop_lean"])
        entry["batched"] = self.server_entry("batched", samples)
        entry["batched"].update({"server_batch_size": SERVER_BATCH_SIZE,
                                 "server_batch_delay_ms": SERVER_BATCH_DELAY_MS})
        for server_name, section in (("alternative", "alternative_config"), ("original", "original"),
                               ("original_all_cores", "original_all_cores"),
                               ("original_mxnet14", "original_mxnet14")):
            if server_name in servers:
                entry[section] = self.server_entry(server_name, samples)
        if "original_mxnet14" in servers:
            check_ei_stack(entry["original_mxnet14"], spec["ei_python"])
        elif self.original:
            entry["original_mxnet14"] = {"skipped": spec.get("ei_skipped") or "not measured"}
        if "alternative" not in servers:
            entry["alternative_config"] = {"skipped": "quick run" if plan.quick else "one core"}
        if "original" in servers and "original_all_cores" not in servers:
            entry["original_all_cores"] = {"skipped": "quick run" if plan.quick else "one core"}
        if "int8" in servers:
            entry["int8"] = self.server_entry("int8", samples)
            entry["int8"]["model_dir"] = self.int8_dir
            entry["int8"]["floor"] = self.floor_entry("int8", samples, "int8_floor")
            entry["int8"]["worker_stages_ms"] = worker_stages(servers["int8"], self.answered["int8"])
        else:
            entry["int8"] = {"skipped": "int8 is the CPU target (MXNet >= 1.9 with oneDNN); this run is on a GPU"}
        if "ei" in servers:
            entry["ei_stack"] = self.server_entry("ei", samples)
            entry["ei_stack"]["model_dir"] = self.ei_dir
            check_ei_stack(entry["ei_stack"], spec["ei_python"])
            entry["ei_stack"]["timeline_ms"] = timeline_summary(self.timelines["ei"])
            entry["ei_stack"]["timeline_lean_client_ms"] = timeline_summary(self.timelines["ei_lean"])
        else:
            entry["ei_stack"] = {"skipped": spec.get("ei_skipped") or "not measured"}
        if "noop_ei" in servers:
            entry["noop_ei"] = self.server_entry("noop_ei", samples)
            check_ei_stack(entry["noop_ei"], spec["ei_python"])
            entry["noop_ei"]["timeline_lean_client_ms"] = timeline_summary(self.timelines["noop_ei_lean"])
        elif "noop" in servers:
            entry["noop_ei"] = {"skipped": spec.get("ei_skipped") or "not measured"}

    def measure_idle_gaps(self):
        """The no-op's requests from a lean client back to back, then each after as long an idle wait as the served
        model's worker takes (the wait every hop of a real request follows), with a bare process wake-up after the
        same waits beside them: what the hops cost once the machine has gone idle, apart from any model."""
        served_worker_ms = self.entry["served"]["timeline_lean_client_ms"].get("worker")
        gaps_ms = [0.0] + ([round(served_worker_ms, 1)] if served_worker_ms else [])
        body, content_type = request_body(self.photos, "jpeg_640x480")
        log("%s: the no-op's requests after idle waits of %s ms, %d each" % (
            self.name, " and ".join("%g" % gap for gap in gaps_ms), self.plan.idle_gap_requests))
        return [idle_gap_probe(self.servers["noop"].url, body, content_type, gap, self.plan.idle_gap_requests)
                for gap in gaps_ms]

    def measure_throughput(self):
        """The two worker layouts in turn at each concurrency, again under the same load, and at DEPLOY_CONCURRENCY
        the other deploy targets (batched, int8, the ei stack) in the same turn."""
        entry, servers = self.entry, self.servers
        layouts = (("served", "served"), ("alternative_config", "alternative"))
        deploy_targets = (("batched", "batched"), ("int8", "int8"), ("ei_stack", "ei"))
        for section, server_name in layouts + deploy_targets:
            if server_name in servers:
                entry[section]["throughput"] = {}
        for concurrency in CONCURRENCY:
            for section, server_name in layouts + (deploy_targets if concurrency == DEPLOY_CONCURRENCY else ()):
                if server_name not in servers:
                    continue
                measured = throughput(servers[server_name], *request_body(self.photos, "jpeg_640x480"),
                                      concurrency=concurrency, duration=self.plan.throughput_s)
                entry[section]["throughput"][str(concurrency)] = measured
                log("  %s %s concurrency %d: %.2f req/s" % (self.name, server_name, concurrency, measured["rps"]))

    def record_memory(self):
        for section, server_name in (("served", "served"), ("alternative_config", "alternative"),
                                     ("batched", "batched"), ("int8", "int8"), ("ei_stack", "ei"),
                                     ("original", "original"), ("original_all_cores", "original_all_cores"),
                                     ("original_mxnet14", "original_mxnet14")):
            if server_name in self.servers:
                self.entry[section].update(memory(self.servers[server_name]))


def measure_model(key, spec, entry, photos, photos_dir, plan, log_dir, cores, on_cpu, skip_original, stacks):
    """Every server and floor of one model measured (ModelMeasurement), into `entry`."""
    ModelMeasurement(key, spec, entry, photos, photos_dir, plan, log_dir, cores, on_cpu, skip_original, stacks).run()


def check_ei_stack(section, python):
    """Fail rather than label a row "MXNet 1.4.1" that ran elsewhere: MMS runs its workers with the Python it
    was installed with, so the first model server on PATH decides which MXNet answers."""
    worker_python = section["stack"].get("worker_python")
    if section["stack"]["model_server"] != "mxnet-model-server" or not worker_python or \
            os.path.dirname(os.path.abspath(worker_python)) != os.path.dirname(os.path.abspath(python)):
        raise RuntimeError("the ei stack should run mxnet-model-server with %s's workers, but ran %s with %s"
                           % (python, section["stack"]["model_server"], worker_python))


def docker_available():
    try:
        return subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def build_image(image, log_dir):
    """The cpu serving image from this checkout (docker/build.sh: cached steps are reused)."""
    env = dict(os.environ, IMAGE=image)
    log_path = os.path.join(log_dir, "docker-build.log")
    start = time.time()
    with open(log_path, "w") as stream:
        done = subprocess.run([os.path.join(ROOT, "docker", "build.sh"), "cpu"], cwd=ROOT, env=env,
                              stdout=stream, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        raise RuntimeError("docker/build.sh cpu failed; see %s" % log_path)
    return round(time.time() - start, 1)


def cold_start(image, model_dir, photos, label, log_dir):
    """`docker run IMAGE serve` to a healthy /ping, and to the first answered request."""
    port = free_port()
    command = ["docker", "run", "-d", "--rm", "--network", "host", "-e", "SAGEMAKER_BIND_TO_PORT=%d" % port]
    if model_dir:  # as SageMaker provides a model.tar.gz: unpacked at /opt/ml/model
        command += ["-v", "%s:/opt/ml/model:ro" % os.path.abspath(model_dir)]
    command += [image, "serve"]
    url = "http://127.0.0.1:%d" % port
    start = time.time()
    container = subprocess.check_output(command, universal_newlines=True).strip()
    try:
        ping_s = None
        while time.time() - start < 300:
            try:
                reply = requests.get(url + "/ping", timeout=2)
                if reply.status_code == 200 and "Unhealthy" not in reply.text:
                    ping_s = time.time() - start
                    break
            except requests.RequestException:
                pass
            time.sleep(0.02)
        if ping_s is None:
            raise RuntimeError("%s: /ping not healthy within 300 s" % label)
        body, content_type = request_body(photos, "jpeg_640x480")
        post(requests.Session(), url, body, content_type)
        answered_s = time.time() - start
        return {"docker_run_to_ping_s": round(ping_s, 2), "docker_run_to_first_answer_s": round(answered_s, 2),
                "image": image, "model": "mounted at /opt/ml/model" if model_dir else "baked in the image"}
    finally:
        with open(os.path.join(log_dir, "docker-%s.log" % label), "w") as stream:
            subprocess.run(["docker", "logs", container], stdout=stream, stderr=subprocess.STDOUT)
        subprocess.run(["docker", "rm", "-f", container], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def evaluate_int8(fp32_dir, int8_dir, scenes):
    out = run_text(["-m", "ssd_tools.demo.evaluate", "--model-dir", int8_dir, "--compare-to", fp32_dir,
                    "--count", str(scenes)])
    values = {}
    for line in out.splitlines():
        if line.startswith("compare:"):
            values = dict((k, float(v)) for k, v in re.findall(r"(\w+)=(-?[0-9.]+)", line))
    return {"scenes": scenes, "map_int8": values.get("mAP"), "map_fp32": values.get("reference_mAP"),
            "drop_points": values.get("drop_points")}
