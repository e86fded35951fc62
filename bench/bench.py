"""make bench: the SSD server's latency, throughput, memory and start-up next to its floor and the original approach, all measured in one run on this machine.

    python bench/bench.py [--quick] [--models default,demo] [--docker auto|skip] [--out build/bench/latest.json]

Prints one table and writes it as JSON, so runs can be compared. Not a test: nothing here asserts a
time. On a GPU machine the same code runs on the GPU (the context is picked as serving picks it).

The deploy targets side by side: besides the cpu stack (this Python, MXNet 1.9.1, fp32 and int8) the
same server runs on the ei image's stack (MXNet 1.4.1, mxnet-model-server 1.0.5) from the MXNet 1.4.1
environment (BENCH_EI_PYTHON, else the mx14 venv beside this one: make venvs). No EI accelerator can
be attached here, so that row is the ei image's CPU path.
"""
import argparse
import base64
import datetime
import io
import json
import multiprocessing
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import requests

from ssd_serving.ports import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEMO_MODEL = os.path.join(ROOT, "container", "models", "demo")

SCHEMA = 1
DEFAULT_MODEL_NAME = "ssd_512_resnet50_v1_voc"
CONCURRENCY = (1, 2, 4, 8)
DEPLOY_CONCURRENCY = 8  # the deploy targets' throughput is compared at this concurrency only, to keep the run short
# server-side batching as measured: MMS hands a worker up to this many requests, waiting up to this long for them
SERVER_BATCH_SIZE = 4
SERVER_BATCH_DELAY_MS = 10
EI_PYTHON_ENV = "BENCH_EI_PYTHON"
# what each deploy target's row is: (key, section of a model's entry, label)
DEPLOY_TARGETS = (("ei", "ei_stack", "ei stack"), ("cpu_fp32", "served", "cpu fp32"), ("cpu_int8", "int8", "cpu int8"))
# the stages the worker logs for each request (ssd_serving.timing), in request order
STAGE_METRICS = ("QueueWait", "Decode", "Preprocess", "Forward", "Postprocess", "Encode")
BODIES = ("jpeg_640x480", "base64_json_640x480", "jpeg_12mp", "base64_json_12mp")
# a limit is one number, or one per model (the demo model's 6-25 ms forward leaves decoding, resizing and HTTP a
# larger share of a request than the default model's 300-700 ms)
TARGETS = {
    "e2e_p50_over_floor": ("<=", {"default": 1.10, "demo": 2.0},
                           "end-to-end p50 (640x480 JPEG) / floor p50 (the forward in a clean process)"),
    "speedup_vs_original_p50": (">=", 3.0, "original approach p50 / ours p50 (640x480 base64 JSON, both)"),
    "first_over_steady": ("<=", 1.2, "first request after /ping healthy / steady p50 (640x480 JPEG)"),
    "jpeg_12mp_over_640": ("<=", 1.15, "p50 of a 12 MP JPEG / p50 of a 640x480 JPEG"),
    "int8_e2e_p50_ms": ("<=", 80.0, "int8 end-to-end p50 (640x480 JPEG), default model, ms"),
    "int8_map_drop_points": ("<=", 1.0, "demo detector mAP, fp32 - int8, points (300 held-out scenes)"),
}


class Plan(object):
    """How much to measure: a full run (~10 min on 2 vCPUs) or a smoke run (--quick)."""

    def __init__(self, quick):
        self.quick = quick
        # every measured request and forward runs once per round (some every other round), interleaved
        self.rounds = 3 if quick else 30
        self.stage_runs = 3 if quick else 15
        self.throughput_s = 0.5 if quick else 8.0
        self.eval_scenes = 4 if quick else 300


# ---------------------------------------------------------------------------------------- helpers

def log(message):
    sys.stderr.write("[bench %s] %s\n" % (time.strftime("%H:%M:%S"), message))
    sys.stderr.flush()


def summary(seconds):
    if not seconds:
        return None
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p90": round(float(np.percentile(ms, 90)), 2),
            "p99": round(float(np.percentile(ms, 99)), 2), "mean": round(float(ms.mean()), 2), "n": int(ms.size)}


def loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def python_env(python=None):
    """The environment to run `python` (default: this one) with: the serving code importable, and its venv's
    bin first on PATH, where serving looks for the model server (another venv's MMS would run its own Python)."""
    env = dict(os.environ)
    bin_dir = os.path.dirname(os.path.abspath(python or sys.executable))
    others = [p for p in env.get("PATH", "").split(os.pathsep)
              if p and os.path.abspath(p) != os.path.dirname(os.path.abspath(sys.executable))]
    env["PATH"] = os.pathsep.join([bin_dir] + others)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_text(args, env=None, timeout=1800, python=None):
    """Run a Python helper (with `python`, default this one), return what it prints."""
    done = subprocess.run([python or sys.executable] + args, env=env or python_env(python), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, universal_newlines=True)
    if done.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(args), done.returncode, done.stderr[-4000:]))
    return done.stdout


def host_info():
    import mxnet as mx
    info = {"platform": platform.platform(), "python": platform.python_version(), "cpus": multiprocessing.cpu_count(),
            "mxnet": mx.__version__}
    try:
        with open("/proc/cpuinfo") as stream:
            lines = stream.read().splitlines()
        info["cpu_model"] = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), None)
        flags = next((l.split(":", 1)[1].split() for l in lines if l.startswith("flags")), [])
        info["cpu_flags"] = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    except (IOError, OSError):
        pass
    try:
        info["onednn"] = bool(mx.runtime.Features().is_enabled("MKLDNN"))
    except Exception:
        info["onednn"] = False
    try:
        info["gpus"] = mx.context.num_gpus()
    except Exception:
        info["gpus"] = 0
    try:
        info["git_commit"] = subprocess.check_output(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                                                     universal_newlines=True, stderr=subprocess.DEVNULL).strip()
        dirty = subprocess.check_output(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                                        universal_newlines=True, stderr=subprocess.DEVNULL).strip()
        info["git_dirty"] = bool(dirty)
    except (OSError, subprocess.CalledProcessError):
        info["git_commit"] = None
    return info


def ei_python():
    """(path, None) of the MXNet 1.4.1 environment's Python that the ei image's stack runs on, or (None, why not)."""
    if os.environ.get(EI_PYTHON_ENV):
        path = os.path.abspath(os.environ[EI_PYTHON_ENV])  # abspath, not realpath: the venv is the symlink's folder
        return (path, None) if os.path.isfile(path) else (None, "%s=%s does not exist" % (EI_PYTHON_ENV, path))
    venvs = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(sys.executable))))
    for path in (os.path.join(venvs, "mx14", "bin", "python"), os.path.join(ROOT, ".venv", "mx14", "bin", "python")):
        if os.path.isfile(path):
            return path, None
    return None, "no MXNet 1.4.1 environment (make venvs, or set %s)" % EI_PYTHON_ENV


STACK_PROBE = """
import json, platform
import mxnet
from importlib import metadata
servers = {}
for name in ("multi-model-server", "mxnet-model-server"):
    try:
        servers[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        pass
print(json.dumps({"mxnet": mxnet.__version__, "python_version": platform.python_version(), "model_servers": servers}))
"""


def stack_info(python):
    """What a Python environment serves with (MXNet and model server versions): recorded beside each row."""
    info = json.loads(run_text(["-c", STACK_PROBE], python=python, timeout=120).strip().splitlines()[-1])
    info["python"] = python
    return info


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


# ---------------------------------------------------------------------------------------- servers

class Server(object):
    """One model server process group started by the benchmark, and stopped by it."""

    def __init__(self, label, command, env, log_dir):
        self.label = label
        self.python = command[0]
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        env = dict(env)
        env["SAGEMAKER_BIND_TO_PORT"] = str(self.port)
        self.log_path = os.path.join(log_dir, "%s.log" % label)
        self.log = open(self.log_path, "w")
        self.started = time.time()
        self.process = subprocess.Popen(command + ["--port", str(self.port)], env=env, stdout=self.log,
                                        stderr=subprocess.STDOUT, start_new_session=True)

    def output(self):
        with open(self.log_path, errors="replace") as stream:
            return stream.read()

    def launched(self):
        """The model server the launcher started and the Python its workers run, as MMS logs them at start."""
        output = self.output()
        server = re.search(r"starting (\S+) on ", output)
        worker_python = re.search(r"Python executable: (\S+)", output)
        return {"model_server": server.group(1) if server else None,
                "worker_python": worker_python.group(1) if worker_python else None}

    def wait_healthy(self, timeout=300):
        """Seconds from start until GET /ping answers 200 with a Healthy body (SageMaker looks at the 200)."""
        deadline = self.started + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError("%s exited with %s:\n%s" % (self.label, self.process.returncode, self.output()[-4000:]))
            try:
                reply = requests.get(self.url + "/ping", timeout=2)
                if reply.status_code == 200 and "Unhealthy" not in reply.text and "Partial" not in reply.text:
                    return time.time() - self.started
            except requests.RequestException:
                pass
            time.sleep(0.02)
        raise RuntimeError("%s: /ping not healthy after %ss:\n%s" % (self.label, timeout, self.output()[-4000:]))

    def wait_ready(self, timeout=300):
        """Seconds from start until the launcher logs that the model is loaded in every worker."""
        deadline = self.started + timeout
        while time.time() < deadline:
            output = self.output()
            if "ready:" in output:
                return time.time() - self.started
            if "Load model failed" in output:  # MMS would retry the worker for minutes: report it now
                raise RuntimeError("%s: the worker could not load the model:\n%s" % (self.label, output[-6000:]))
            if self.process.poll() is not None:
                raise RuntimeError("%s exited:\n%s" % (self.label, self.output()[-4000:]))
            time.sleep(0.05)
        raise RuntimeError("%s: not ready after %ss:\n%s" % (self.label, timeout, self.output()[-4000:]))

    def memory(self):
        """RSS of each worker (the process holding a model) and PSS of the whole server, in MB."""
        import psutil
        try:
            processes = psutil.Process(self.process.pid).children(recursive=True)
        except psutil.Error:
            return {}
        workers, pss = [], 0.0
        for process in processes:
            try:
                cmdline = " ".join(process.cmdline())
                info = process.memory_full_info()
                pss += getattr(info, "pss", info.rss)
                # multi-model-server 1.1 forks one process per worker connection from its worker server: that
                # child holds the model; mxnet-model-server 1.0 (the ei stack) runs each worker straight from
                # the JVM. Either way the process holding a model has no model_service_worker below it.
                if "model_service_worker" in cmdline and not any(
                        "model_service_worker" in " ".join(child.cmdline()) for child in process.children()):
                    workers.append(round(info.rss / 1e6, 1))
            except psutil.Error:
                continue
        return {"rss_mb_per_worker": sorted(workers), "pss_mb_total": round(pss / 1e6, 1)}

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def our_server(label, model_dir, log_dir, workers=None, threads=None, python=None, precision="fp32", layout=None,
               extra_env=None):
    """Our server (front door + MMS) from `python`'s environment (default: this one's, the cpu stack).
    `layout`: SSD_WORKER_LAYOUT (default: the server's own choice)."""
    python = python or sys.executable
    env = python_env(python)
    env["SSD_MODEL_DIR"] = model_dir
    # each row serves the graph it is labelled with, whatever SSD_PRECISION=auto would pick on this CPU
    env["SSD_PRECISION"] = precision
    for name in ("SAGEMAKER_MODEL_SERVER_WORKERS", "OMP_NUM_THREADS", "SSD_CONTEXT", "SSD_WORKER_LAYOUT",
                 "SSD_SERVER_BATCH_SIZE", "SSD_SERVER_BATCH_DELAY_MS"):
        env.pop(name, None)
    env.update(extra_env or {})
    if layout:
        env["SSD_WORKER_LAYOUT"] = layout
    if workers:
        env["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(workers)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return Server(label, [python, "-m", "ssd_serving.serving", "serve"], env, log_dir)


def default_layout(model_dir, on_cpu):
    """The worker layout SSD_WORKER_LAYOUT=auto picks for this model: latency or throughput."""
    from ssd_serving.artifact import PARAMS_FILE, read_metadata
    from ssd_serving.environment import Environment
    settings = Environment({})
    params = os.path.join(model_dir, read_metadata(model_dir).get("params_file", PARAMS_FILE))
    settings.choose_layout(os.path.getsize(params), "cpu" if on_cpu else "gpu")
    return "throughput" if settings.workers > 1 else "latency"


def original_server(label, spec, log_dir, workers, threads, python=None):
    """The original write-up's path (bench/original_service.py) on `python`'s MXNet (default: this one)."""
    env = python_env(python)
    env.update({"BENCH_ORIGINAL_MODEL": spec, "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
                "OMP_NUM_THREADS": str(threads), "MXNET_CPU_WORKER_NTHREADS": "1"})
    return Server(label, [python or sys.executable, os.path.join(HERE, "original_server.py")], env, log_dir)


def post(session, url, body, content_type):
    reply = session.post(url + "/invocations", data=body, headers={"Content-Type": content_type}, timeout=120)
    if reply.status_code != 200:
        raise RuntimeError("POST /invocations answered %d: %s" % (reply.status_code, reply.text[:500]))
    return reply


def latencies(server, body, content_type, count):
    session = requests.Session()
    post(session, server.url, body, content_type)  # a new connection and this body's first pass: not counted
    seconds = []
    for _ in range(count):
        start = time.perf_counter()
        post(session, server.url, body, content_type)
        seconds.append(time.perf_counter() - start)
    return seconds


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


def floor_env(threads, extra_env=None):
    """bench/floor.py's environment: a server worker's threads."""
    env = python_env()
    env.pop("SSD_GRAPH_FUSION", None)
    env.update({"OMP_NUM_THREADS": str(threads), "MXNET_CPU_WORKER_NTHREADS": "1"})
    env.update(extra_env or {})
    return env


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


class Floor(object):
    """bench/floor.py kept running: the graph's forward, timed on request between the servers' requests."""

    def __init__(self, label, model_dir, threads, log_dir, extra_env=None):
        self.label = label
        self.log_path = os.path.join(log_dir, "%s.log" % label)
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "floor.py"), "--model-dir", model_dir],
            env=floor_env(threads, extra_env), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, universal_newlines=True)
        self.info = None

    def wait_ready(self):
        """The model is loaded and warmed up (floor.py's first line)."""
        if self.info is None:
            self.info = self._read()
        return self.info

    def _read(self):
        line = self.process.stdout.readline()
        if not line:
            with open(self.log_path, errors="replace") as stream:
                raise RuntimeError("%s failed:\n%s" % (self.label, stream.read()[-4000:]))
        return json.loads(line)

    def forward(self, count=1):
        self.process.stdin.write("forward %d\n" % count)
        self.process.stdin.flush()
        return self._read()

    def stop(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.flush()
                self.process.wait(30)
            except (OSError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()
        self.log.close()


def start_servers(specs, log_dir):
    """Start several servers at once (they load in parallel), then wait until each has its model."""
    servers = {}
    try:
        for name, make in specs:
            servers[name] = make()
        for name, server in servers.items():
            server.wait_healthy()
            server.wait_ready()
    except Exception:
        for server in servers.values():
            server.stop()
        raise
    return servers


def server_start(server):
    configured = [l for l in server.output().splitlines() if "worker(s) x" in l]
    return configured[-1].split("with ", 1)[-1].strip() if configured else None


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
            "front_write": durations["front"] - durations["read"] - durations["upstream"], "client": client_ms}


def timeline_summary(timelines):
    """p50 of each part over the requests that carried a timeline, and how many did."""
    measured = [t for t in timelines if t]
    if not measured:
        return {"skipped": "no answer carried a Server-Timing header"}
    result = dict((part, float(np.percentile([t[part] for t in measured], 50)))
                  for part in [p for p, _ in TIMELINE_PARTS] + ["client"])
    result["requests"] = len(measured)
    return result


def measure_model(key, spec, entry, photos, photos_dir, plan, log_dir, cores, on_cpu, skip_original, stacks):
    """Every server and floor of one model up at once, their requests interleaved round by round.

    `stacks` maps each Python that serves to what it serves with (stack_info), recorded in each row."""
    name = spec["name"]
    int8_dir = spec.get("int8_dir")
    ei_dir = spec.get("ei_dir")
    original = not skip_original
    log("%s: loading the floor processes (%d thread(s)) and the servers" % (name, cores))
    stages = stage_timings(spec["dir"], photos_dir, plan, cores)
    floors = {"fp32": Floor("%s-floor" % key, spec["dir"], cores, log_dir)}
    try:
        if on_cpu and not plan.quick:
            floors["unfused"] = Floor("%s-floor-unfused" % key, spec["dir"], cores, log_dir, {"SSD_GRAPH_FUSION": "0"})
        if int8_dir:
            floors["int8"] = Floor("%s-floor-int8" % key, int8_dir, cores, log_dir)
        # the served row runs the server's default worker layout (SSD_WORKER_LAYOUT=auto), the alternative row
        # the other one; int8 and the ei stack run the default's, so that the deploy targets compare like with like
        served_layout = default_layout(spec["dir"], on_cpu)
        other_layout = "latency" if served_layout == "throughput" else "throughput"
        # the served workers' own thread count, when not every core: the floor at it tells a slower forward inside
        # the worker (the OpenCV-beside-OpenMP slowdown) from one that only has fewer threads
        worker_threads = 1 if served_layout == "throughput" else cores
        if worker_threads != cores:
            floors["worker_threads"] = Floor("%s-floor-%d-thread" % (key, worker_threads), spec["dir"],
                                             worker_threads, log_dir)
        specs = [("served", lambda: our_server("%s-served" % key, spec["dir"], log_dir))]
        if key == "demo":  # the serving path's own cost, apart from any model: once is enough
            specs.append(("noop", lambda: our_server("noop", spec["dir"], log_dir, layout=served_layout, extra_env={
                "SAGEMAKER_PROGRAM": "noop_inference.py", "PYTHONPATH": os.path.join(HERE, "noop")})))
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
        if original:
            specs.append(("original", lambda: original_server("%s-original" % key, spec["original"], log_dir,
                                                              workers=cores, threads=1)))
            if cores > 1 and not plan.quick:
                specs.append(("original_all_cores", lambda: original_server(
                    "%s-original-all-cores" % key, spec["original"], log_dir, workers=1, threads=cores)))
            if spec.get("ei_python"):  # as the write-up ran it: MXNet 1.4.1 (GluonCV 0.5), mxnet-model-server 1.0.5
                specs.append(("original_mxnet14", lambda: original_server(
                    "%s-original-mxnet14" % key, spec["original"], log_dir, workers=cores, threads=1,
                    python=spec["ei_python"])))
        log("%s: starting %s" % (name, ", ".join(n for n, _ in specs)))
        servers = start_servers(specs, log_dir)
        try:
            for floor_process in floors.values():
                floor_process.wait_ready()
            probes = [("floor", lambda: floors["fp32"].forward(1), 1)]
            if "unfused" in floors:
                probes.append(("floor_unfused", lambda: floors["unfused"].forward(1), 2))
            if "worker_threads" in floors:
                probes.append(("floor_worker_threads", lambda: floors["worker_threads"].forward(1), 1))
            sessions = dict((n, requests.Session()) for n in servers)
            # the answers' ids, to find each request's stages in the server's log, and their timelines
            answered = {"served": [], "int8": []}
            timelines = {"served": [], "noop": []}
            for body in BODIES:
                probes.append(("served:" + body, timed_post(sessions["served"], servers["served"].url,
                                                            *request_body(photos, body),
                                                            request_ids=answered["served"] if body == "jpeg_640x480"
                                                            else None,
                                                            timelines=timelines["served"] if body == "jpeg_640x480"
                                                            else None), 1))
            if "noop" in servers:
                probes.append(("noop:jpeg_640x480", timed_post(sessions["noop"], servers["noop"].url,
                                                               *request_body(photos, "jpeg_640x480"),
                                                               timelines=timelines["noop"]), 1))
            if "alternative" in servers:
                probes.append(("alternative:jpeg_640x480", timed_post(
                    sessions["alternative"], servers["alternative"].url, *request_body(photos, "jpeg_640x480")), 1))
            probes.append(("batched:jpeg_640x480", timed_post(
                sessions["batched"], servers["batched"].url, *request_body(photos, "jpeg_640x480")), 1))
            if "int8" in servers:
                probes.append(("int8_floor", lambda: floors["int8"].forward(1), 1))
                probes.append(("int8:jpeg_640x480", timed_post(sessions["int8"], servers["int8"].url,
                                                               *request_body(photos, "jpeg_640x480"),
                                                               request_ids=answered["int8"]), 1))
            if "ei" in servers:
                probes.append(("ei:jpeg_640x480", timed_post(sessions["ei"], servers["ei"].url,
                                                             *request_body(photos, "jpeg_640x480")), 1))
            if "original" in servers:
                probes.append(("original:base64_json_640x480", timed_post(
                    sessions["original"], servers["original"].url, *request_body(photos, "base64_json_640x480")), 1))
                probes.append(("original:base64_json_12mp", timed_post(
                    sessions["original"], servers["original"].url, *request_body(photos, "base64_json_12mp")), 2))
            if "original_all_cores" in servers:
                probes.append(("original_all_cores:base64_json_640x480", timed_post(
                    sessions["original_all_cores"], servers["original_all_cores"].url,
                    *request_body(photos, "base64_json_640x480")), 2))
            if "original_mxnet14" in servers:
                probes.append(("original_mxnet14:base64_json_640x480", timed_post(
                    sessions["original_mxnet14"], servers["original_mxnet14"].url,
                    *request_body(photos, "base64_json_640x480")), 1))
            log("%s: %d interleaved rounds of %s" % (name, plan.rounds, ", ".join(p[0] for p in probes)))
            samples = interleave(probes, plan.rounds)

            def floor_entry(which, sample_name):
                result = dict(floors[which].info)
                result["forward_ms"] = summary(samples[sample_name])
                result["mxnet"] = stacks[sys.executable]["mxnet"]  # floor.py runs on this Python
                return result

            entry["floor"] = floor_entry("fp32", "floor")
            entry["floor"].update(stages)
            if "floor_unfused" in samples:
                entry["floor"]["forward_unfused_ms"] = summary(samples["floor_unfused"])
            if "floor_worker_threads" in samples:
                entry["floor"]["forward_at_worker_threads_ms"] = dict(summary(samples["floor_worker_threads"]),
                                                                      threads=worker_threads)

            def server_entry(server_name):
                server = servers[server_name]
                stack = dict(stacks[server.python], **server.launched())
                stack["model_server_version"] = stack["model_servers"].get(stack["model_server"])
                result = {"config": server_start(server), "latency_ms": {}, "stack": stack}
                for sample_name, values in samples.items():
                    if sample_name.startswith(server_name + ":"):
                        result["latency_ms"][sample_name.split(":", 1)[1]] = summary(values)
                return result

            entry["served"] = server_entry("served")
            entry["served"]["worker_stages_ms"] = worker_stages(servers["served"], answered["served"])
            entry["served"]["timeline_ms"] = timeline_summary(timelines["served"])
            if "noop" in servers:
                entry["noop"] = server_entry("noop")
                entry["noop"]["timeline_ms"] = timeline_summary(timelines["noop"])
            entry["batched"] = server_entry("batched")
            entry["batched"].update({"server_batch_size": SERVER_BATCH_SIZE,
                                     "server_batch_delay_ms": SERVER_BATCH_DELAY_MS})
            for name_, section in (("alternative", "alternative_config"), ("original", "original"),
                                   ("original_all_cores", "original_all_cores"),
                                   ("original_mxnet14", "original_mxnet14")):
                if name_ in servers:
                    entry[section] = server_entry(name_)
            if "original_mxnet14" in servers:
                check_ei_stack(entry["original_mxnet14"], spec["ei_python"])
            elif original:
                entry["original_mxnet14"] = {"skipped": spec.get("ei_skipped") or "not measured"}
            if "alternative" not in servers:
                entry["alternative_config"] = {"skipped": "quick run" if plan.quick else "one core"}
            if "original" in servers and "original_all_cores" not in servers:
                entry["original_all_cores"] = {"skipped": "quick run" if plan.quick else "one core"}
            if "int8" in servers:
                entry["int8"] = server_entry("int8")
                entry["int8"]["model_dir"] = int8_dir
                entry["int8"]["floor"] = floor_entry("int8", "int8_floor")
                entry["int8"]["worker_stages_ms"] = worker_stages(servers["int8"], answered["int8"])
            else:
                entry["int8"] = {"skipped": "int8 is the CPU target (MXNet >= 1.9 with oneDNN); this run is on a GPU"}
            if "ei" in servers:
                entry["ei_stack"] = server_entry("ei")
                entry["ei_stack"]["model_dir"] = ei_dir
                check_ei_stack(entry["ei_stack"], spec["ei_python"])
            else:
                entry["ei_stack"] = {"skipped": spec.get("ei_skipped") or "not measured"}

            # throughput: the two worker layouts in turn at each concurrency, again under the same load, and
            # at DEPLOY_CONCURRENCY the other deploy targets (int8, the ei stack) in the same turn
            layouts = (("served", "served"), ("alternative_config", "alternative"))
            deploy_targets = (("batched", "batched"), ("int8", "int8"), ("ei_stack", "ei"))
            for section, server_name in layouts + deploy_targets:
                if server_name in servers:
                    entry[section]["throughput"] = {}
            for concurrency in CONCURRENCY:
                for section, server_name in layouts + (deploy_targets if concurrency == DEPLOY_CONCURRENCY else ()):
                    if server_name not in servers:
                        continue
                    measured = throughput(servers[server_name], *request_body(photos, "jpeg_640x480"),
                                          concurrency=concurrency, duration=plan.throughput_s)
                    entry[section]["throughput"][str(concurrency)] = measured
                    log("  %s %s concurrency %d: %.2f req/s" % (name, server_name, concurrency, measured["rps"]))
            entry["batched"]["requests_per_worker_call"] = requests_per_worker_call(servers["batched"])
            for section, server_name in (("served", "served"), ("alternative_config", "alternative"),
                                         ("batched", "batched"), ("int8", "int8"), ("ei_stack", "ei"), ("original", "original"),
                                         ("original_all_cores", "original_all_cores"),
                                         ("original_mxnet14", "original_mxnet14")):
                if server_name in servers:
                    entry[section].update(servers[server_name].memory())
        finally:
            for server in servers.values():
                server.stop()
    finally:
        for floor_process in floors.values():
            floor_process.stop()
    if int8_dir and key == "demo":
        log("demo: int8 accuracy against fp32 on %d held-out scenes" % plan.eval_scenes)
        entry["int8"]["accuracy"] = evaluate_int8(spec["dir"], int8_dir, plan.eval_scenes)


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


# --------------------------------------------------------------------------------------- ratios

def ratio(numerator, denominator):
    if numerator is None or denominator in (None, 0):
        return None
    return round(numerator / denominator, 3)


def p50(section, body):
    try:
        return section["latency_ms"][body]["p50"]
    except (KeyError, TypeError):
        return None


def batch_gain(stages):
    """Forward time per image at batch 1 over that at batch 4 (one process, one after the other): what
    server-side batching could gain at most on this device."""
    try:
        return ratio(stages["forward_batch_1"]["p50"], stages["forward_batch_4"]["p50"] / 4.0)
    except (KeyError, TypeError):
        return None


def ratios_for(entry):
    served, original = entry.get("served", {}), entry.get("original", {})
    floor_p50 = entry["floor"]["forward_ms"]["p50"]
    ours_jpeg = p50(served, "jpeg_640x480")
    values = {
        "e2e_p50_over_floor": ratio(ours_jpeg, floor_p50),
        "e2e_p50_minus_floor_ms": round(ours_jpeg - floor_p50, 1) if ours_jpeg is not None else None,
        "speedup_vs_original_p50": ratio(p50(original, "base64_json_640x480"), p50(served, "base64_json_640x480")),
        "speedup_vs_original_p50_jpeg_in": ratio(p50(original, "base64_json_640x480"), ours_jpeg),
        "first_over_steady": ratio(entry.get("start", {}).get("first_request_after_ping_ms"), ours_jpeg),
        "first_after_ready_over_steady": ratio(entry.get("start", {}).get("first_request_after_ready_ms"), ours_jpeg),
        "jpeg_12mp_over_640": ratio(p50(served, "jpeg_12mp"), ours_jpeg),
        "worker_forward_over_floor": ratio(served.get("worker_stages_ms", {}).get("Forward"), floor_p50),
        # the same with the floor at the worker's threads (the floor itself where the worker has every core)
        "worker_forward_over_floor_at_its_threads": ratio(
            served.get("worker_stages_ms", {}).get("Forward"),
            entry["floor"].get("forward_at_worker_threads_ms", entry["floor"]["forward_ms"])["p50"]),
        "batch4_forward_per_image_gain": batch_gain(entry["floor"].get("stages_ms", {})),
        "base64_12mp_over_640": ratio(p50(served, "base64_json_12mp"), p50(served, "base64_json_640x480")),
    }
    original_mxnet14 = p50(entry.get("original_mxnet14"), "base64_json_640x480")
    if original_mxnet14:  # the write-up's own stack: what its 0.8 s per image was measured on
        values["speedup_vs_original_mxnet14_p50"] = ratio(original_mxnet14, p50(served, "base64_json_640x480"))
        values["int8_speedup_vs_original_mxnet14_p50"] = ratio(original_mxnet14, p50(entry.get("int8"), "jpeg_640x480"))
    if entry.get("original_all_cores", {}).get("latency_ms"):
        values["speedup_vs_original_all_cores_p50"] = ratio(p50(entry["original_all_cores"], "base64_json_640x480"),
                                                            p50(served, "base64_json_640x480"))
    unfused = entry["floor"].get("forward_unfused_ms")
    if unfused:
        values["fusion_speedup"] = ratio(unfused["p50"], floor_p50)
    int8 = entry.get("int8") or {}
    if int8.get("floor"):
        values["int8_floor_speedup"] = ratio(floor_p50, int8["floor"]["forward_ms"]["p50"])
        values["int8_e2e_p50_ms"] = p50(int8, "jpeg_640x480")
        values["int8_e2e_speedup"] = ratio(ours_jpeg, p50(int8, "jpeg_640x480"))
    if int8.get("accuracy"):
        values["int8_map_drop_points"] = int8["accuracy"].get("drop_points")
    batched = entry.get("batched") or {}
    at_deploy = lambda section: section.get("throughput", {}).get(str(DEPLOY_CONCURRENCY), {}).get("rps")  # noqa
    if batched.get("latency_ms"):  # MMS's server-side batching against the same layout without it
        values["batched_p50_over_default"] = ratio(p50(batched, "jpeg_640x480"), ours_jpeg)
        values["batched_rps_over_default_c%d" % DEPLOY_CONCURRENCY] = ratio(at_deploy(batched), at_deploy(served))
    alternative = entry.get("alternative_config")
    if alternative and "throughput" in alternative:
        values["alternative_p50_over_default"] = ratio(p50(alternative, "jpeg_640x480"), ours_jpeg)
        best = lambda section: max(v["rps"] for v in section["throughput"].values())  # noqa: E731
        values["alternative_peak_rps_over_default"] = ratio(best(alternative), best(served))
    return values


def deploy_targets_for(entry):
    """What each deploy target costs per image on this machine, from rows measured in the same rounds:
    the ei image's stack (its CPU path: no EI accelerator here), the cpu image fp32 and int8."""
    rows = {}
    for target, section_name, label in DEPLOY_TARGETS:
        section = entry.get(section_name) or {}
        if not section.get("latency_ms"):
            rows[target] = {"label": label, "skipped": section.get("skipped", "not measured")}
            continue
        stack = section["stack"]
        rows[target] = {"label": label, "mxnet": stack["mxnet"],
                        "precision": "int8" if target == "cpu_int8" else "fp32",
                        "model_server": "%s %s" % (stack["model_server"], stack["model_server_version"]),
                        "config": section.get("config"), "model_dir": section.get("model_dir", entry.get("model_dir")),
                        "p50_ms_jpeg_640x480": p50(section, "jpeg_640x480"),
                        "rps_at_concurrency_%d" % DEPLOY_CONCURRENCY:
                            section.get("throughput", {}).get(str(DEPLOY_CONCURRENCY), {}).get("rps")}
    rps_key = "rps_at_concurrency_%d" % DEPLOY_CONCURRENCY
    ei = rows["ei"]
    ratios = {}
    for target in ("cpu_fp32", "cpu_int8"):
        # below 1 for p50 and above 1 for req/s: that cpu target is the cheaper one per image
        ratios["%s_over_ei_p50" % target] = ratio(rows[target].get("p50_ms_jpeg_640x480"),
                                                  ei.get("p50_ms_jpeg_640x480"))
        ratios["%s_over_ei_rps" % target] = ratio(rows[target].get(rps_key), ei.get(rps_key))
    return {"targets": rows, "ratios": ratios, "concurrency": DEPLOY_CONCURRENCY, "body": "jpeg_640x480",
            "note": "ei stack: our server on MXNet 1.4.1 (upstream mxnet 1.4.1 standing in for amazonei_mxnet) and "
                    "mxnet-model-server 1.0.5, as the ei image serves; no EI accelerator can be attached here, so it "
                    "runs the ei image's CPU path. The default model's EI-stack export is made by MXNet 1.4.1 "
                    "(GluonCV 0.5) with its own random weights: MXNet 1.4.1 cannot read GluonCV 0.10's export."}


def targets_for(key, values):
    checked = {}
    for name, (op, limit, meaning) in TARGETS.items():
        if name == "int8_e2e_p50_ms" and key != "default":
            continue
        if name == "int8_map_drop_points" and key != "demo":
            continue
        if isinstance(limit, dict):
            if key not in limit:
                continue
            limit = limit[key]
        value = values.get(name)
        met = None if value is None else (value <= limit if op == "<=" else value >= limit)
        checked[name] = {"value": value, "target": "%s %g" % (op, limit), "met": met, "meaning": meaning}
    return checked


# ---------------------------------------------------------------------------------------- table

def fmt(value, unit=""):
    if value is None:
        return "-"
    if isinstance(value, float):
        return ("%.2f" % value if abs(value) < 10 else "%.1f" % value) + unit
    return str(value) + unit


def lat(section, body):
    try:
        entry = section["latency_ms"][body]
        return "%s / %s / %s" % (fmt(entry["p50"]), fmt(entry["p90"]), fmt(entry["p99"]))
    except (KeyError, TypeError):
        return "-"


def table(report):
    keys = [k for k in ("default", "demo") if k in report["models"]]
    entries = [report["models"][k] for k in keys]
    rows = [("", [e["name"] + (" (random weights, trained-like scores)" if e.get("trained_like") else
                               " (random weights)" if e.get("random_weights") else "") for e in entries])]

    def add(label, getter):
        values = []
        for entry in entries:
            try:
                values.append(getter(entry))
            except (KeyError, TypeError, ValueError):
                values.append("-")
        rows.append((label, values))

    add("floor: graph forward, batch 1, p50 ms", lambda e: "%s (%s, %s)" % (
        fmt(e["floor"]["forward_ms"]["p50"]), e["floor"]["device"], e["floor"]["precision"]))
    add("  exported graph unfused, p50 ms", lambda e: fmt(e["floor"]["forward_unfused_ms"]["p50"]))
    add("  at the served workers' threads, p50 ms", lambda e: "%s (%d thread(s))" % (
        fmt(e["floor"]["forward_at_worker_threads_ms"]["p50"]), e["floor"]["forward_at_worker_threads_ms"]["threads"])
        if "forward_at_worker_threads_ms" in e["floor"] else "the floor (all cores)")
    add("  decode 640x480 / 12 MP reduced / 12 MP full, ms", lambda e: "%s / %s / %s" % tuple(
        fmt(e["floor"]["stages_ms"][k]["p50"]) for k in ("decode_640x480", "decode_12mp_reduced", "decode_12mp_full")))
    add("  forward at batch 1 / batch 4 per image (one process, for server-side batching), ms",
        lambda e: "%s / %s" % (fmt(e["floor"]["stages_ms"]["forward_batch_1"]["p50"]),
                               fmt(e["floor"]["stages_ms"]["forward_batch_4"]["p50"] / 4.0)))
    add("served config", lambda e: e["served"]["config"])
    add("  in the worker, p50 ms (640x480 JPEG): queue / decode / preprocess / forward / postprocess / encode",
        lambda e: " / ".join(fmt(e["served"]["worker_stages_ms"][k]) for k in STAGE_METRICS))
    for body in BODIES:
        add("/invocations %s p50/p90/p99 ms" % body, lambda e, b=body: lat(e["served"], b))
    timeline_parts = [p for p, _ in TIMELINE_PARTS]
    add("  one request's timeline, p50 ms (640x480): " + " / ".join(timeline_parts),
        lambda e: " / ".join(fmt(e["served"]["timeline_ms"][p]) for p in timeline_parts))
    add("no-op entry point (same server, answers at once): /invocations p50/p90/p99 ms",
        lambda e: lat(e["noop"], "jpeg_640x480"))
    add("  its timeline, p50 ms: " + " / ".join(timeline_parts),
        lambda e: " / ".join(fmt(e["noop"]["timeline_ms"][p]) for p in timeline_parts))
    add("start: /ping healthy / model loaded, s after launch", lambda e: "%s / %s" % (
        fmt(e["start"]["ping_healthy_s"]), fmt(e["start"]["model_ready_s"])))
    add("first request sent when /ping turns healthy, ms", lambda e: fmt(e["start"]["first_request_after_ping_ms"]))
    add("first request once the model is loaded (fresh server), ms", lambda e: fmt(e["start"]["first_request_after_ready_ms"]))
    add("throughput req/s at concurrency 1/2/4/8", lambda e: " / ".join(
        fmt(e["served"]["throughput"][str(c)]["rps"]) for c in CONCURRENCY))
    add("RSS per worker, MB", lambda e: ", ".join(fmt(v) for v in e["served"]["rss_mb_per_worker"]))
    add("other config", lambda e: e["alternative_config"]["config"])
    add("  /invocations jpeg_640x480 p50/p90/p99 ms", lambda e: lat(e["alternative_config"], "jpeg_640x480"))
    add("  throughput req/s at concurrency 1/2/4/8", lambda e: " / ".join(
        fmt(e["alternative_config"]["throughput"][str(c)]["rps"]) for c in CONCURRENCY))
    add("  RSS per worker, MB", lambda e: ", ".join(fmt(v) for v in e["alternative_config"]["rss_mb_per_worker"]))
    add("server-side batching (MMS batch_size %d, max_batch_delay %d ms), default layout" % (
        SERVER_BATCH_SIZE, SERVER_BATCH_DELAY_MS), lambda e: e["batched"]["config"])
    add("  /invocations jpeg_640x480 p50/p90/p99 ms", lambda e: lat(e["batched"], "jpeg_640x480"))
    add("  throughput req/s at concurrency %d; requests per worker call, mean / max" % DEPLOY_CONCURRENCY,
        lambda e: "%s; %s / %s" % (fmt(e["batched"]["throughput"][str(DEPLOY_CONCURRENCY)]["rps"]),
                                   fmt(e["batched"]["requests_per_worker_call"]["mean"]),
                                   e["batched"]["requests_per_worker_call"]["max"]))
    add("int8: floor p50 ms", lambda e: fmt(e["int8"]["floor"]["forward_ms"]["p50"]) if e["int8"].get("floor")
        else e["int8"].get("skipped", "-"))
    add("int8: /invocations jpeg_640x480 p50/p90/p99 ms", lambda e: lat(e["int8"], "jpeg_640x480"))
    add("  in the worker, p50 ms: queue / decode / preprocess / forward / postprocess / encode",
        lambda e: " / ".join(fmt(e["int8"]["worker_stages_ms"][k]) for k in STAGE_METRICS))
    add("int8: mAP fp32 -> int8 (held-out scenes)", lambda e: "%.3f -> %.3f" % (
        e["int8"]["accuracy"]["map_fp32"], e["int8"]["accuracy"]["map_int8"]))
    add("cold start: docker run -> /ping healthy / first answer, s", lambda e: "%s / %s" % (
        fmt(e["cold_start"]["docker_run_to_ping_s"]), fmt(e["cold_start"]["docker_run_to_first_answer_s"]))
        if "docker_run_to_ping_s" in e["cold_start"] else e["cold_start"].get("skipped", "-"))
    add("original (%s) base64_json_640x480 p50/p90/p99 ms" % (entries[0].get("original", {}).get("config") or ""),
        lambda e: lat(e["original"], "base64_json_640x480"))
    add("  original base64_json_12mp p50/p90/p99 ms", lambda e: lat(e["original"], "base64_json_12mp"))
    add("  original with 1 worker x all cores, 640 p50 ms", lambda e: fmt(p50(e["original_all_cores"], "base64_json_640x480")))
    add("  original RSS per worker, MB", lambda e: ", ".join(fmt(v) for v in e["original"]["rss_mb_per_worker"]))
    add("  original on MXNet 1.4.1 (GluonCV 0.5, mxnet-model-server 1.0.5), base64_json_640x480 p50/p90/p99 ms",
        lambda e: lat(e["original_mxnet14"], "base64_json_640x480") if "latency_ms" in e.get("original_mxnet14", {})
        else e.get("original_mxnet14", {}).get("skipped", "-"))
    deploy_rows(add)
    rows.append(("ratios", ["" for _ in entries]))
    names = ["e2e_p50_over_floor", "e2e_p50_minus_floor_ms", "worker_forward_over_floor",
             "worker_forward_over_floor_at_its_threads", "speedup_vs_original_p50",
             "speedup_vs_original_p50_jpeg_in", "speedup_vs_original_all_cores_p50", "speedup_vs_original_mxnet14_p50",
             "int8_speedup_vs_original_mxnet14_p50", "first_over_steady", "first_after_ready_over_steady",
             "jpeg_12mp_over_640", "base64_12mp_over_640", "fusion_speedup", "batch4_forward_per_image_gain",
             "alternative_p50_over_default", "alternative_peak_rps_over_default", "batched_p50_over_default",
             "batched_rps_over_default_c%d" % DEPLOY_CONCURRENCY, "int8_floor_speedup",
             "int8_e2e_speedup", "int8_e2e_p50_ms", "int8_map_drop_points"]
    for name in names:
        values = []
        for entry in entries:
            value = entry["ratios"].get(name)
            target = entry["targets"].get(name)
            text = fmt(value)
            if target and target["met"] is not None:
                text += " [%s %s: %s]" % ("target", target["target"], "met" if target["met"] else "MISSED")
            values.append(text)
        if any(v != "-" for v in values):
            rows.append(("  " + name, values))
    width = max(len(label) for label, _ in rows)
    columns = [max(len(str(row[1][i])) for row in rows) for i in range(len(entries))]
    lines = []
    for label, values in rows:
        lines.append("| %s | %s |" % (label.ljust(width), " | ".join(str(v).ljust(columns[i]) for i, v in enumerate(values))))
        if label == "":
            lines.append("|%s|%s|" % ("-" * (width + 2), "|".join("-" * (c + 2) for c in columns)))
    return "\n".join(lines)


def deploy_rows(add):
    """The deploy targets side by side, each value "ei stack / cpu fp32 / cpu int8"."""
    def each(e, getter):
        targets = e["deploy_targets"]["targets"]
        return " / ".join(getter(targets[target]) if "skipped" not in targets[target] else "-"
                          for target, _, _ in DEPLOY_TARGETS)

    def ratios(e, target):
        values = e["deploy_targets"]["ratios"]
        return "%s, %s" % (fmt(values["%s_over_ei_p50" % target]), fmt(values["%s_over_ei_rps" % target]))

    add("deploy targets: ei stack (CPU path, no EI here) / cpu fp32 / cpu int8", lambda e: "MXNet " + each(
        e, lambda t: t["mxnet"]))
    add("  per image p50 (640x480 JPEG), ms", lambda e: each(e, lambda t: fmt(t["p50_ms_jpeg_640x480"])))
    add("  throughput at concurrency %d, req/s" % DEPLOY_CONCURRENCY, lambda e: each(
        e, lambda t: fmt(t["rps_at_concurrency_%d" % DEPLOY_CONCURRENCY])))
    add("  cpu fp32 / ei stack: p50, req/s", lambda e: ratios(e, "cpu_fp32"))
    add("  cpu int8 / ei stack: p50, req/s", lambda e: ratios(e, "cpu_int8"))


# ----------------------------------------------------------------------------------------- main

def prepare_models(keys, models_dir, want_int8, ei):
    """The exports each model is served from; `ei` is (the MXNet 1.4.1 Python, its stack_info) or (None, why not)."""
    prepared = {}
    if "default" in keys:
        fp32 = run_text([os.path.join(HERE, "models.py"), "random-init", "--model", DEFAULT_MODEL_NAME,
                         "--out", os.path.join(models_dir, DEFAULT_MODEL_NAME + "-trained-like")]).strip()
        with open(os.path.join(fp32, "model-meta.json")) as stream:
            trained_like = json.load(stream)["weights"]["trained_like"]
        log("default model stand-in: random weights, background bias %+.2f: keeps %.3f%% of candidates (the trained "
            "demo keeps %.3f%%)" % (trained_like["background_bias"], 100 * trained_like["kept_share"],
                                    100 * trained_like["target_kept_share"]))
        prepared["default"] = {"name": DEFAULT_MODEL_NAME, "dir": fp32, "random_weights": True,
                               "trained_like": trained_like,
                               "original": "zoo-random:%s@%s" % (DEFAULT_MODEL_NAME, trained_like["background_bias"])}
    if "demo" in keys:
        prepared["demo"] = {"name": "ssd_256_demo_shapes", "dir": DEMO_MODEL, "random_weights": False,
                            "original": "demo:%s" % DEMO_MODEL}
    for key, entry in prepared.items():
        if want_int8:
            entry["int8_dir"] = run_text([os.path.join(HERE, "models.py"), "int8", "--from", entry["dir"],
                                          "--out", os.path.join(models_dir, "%s-int8" % key)]).strip()
        ei_python, ei_stack = ei
        if ei_python is None:
            entry["ei_skipped"] = ei_stack
        elif key == "demo":  # committed, and readable by MXNet 1.4.1: the ei image bakes this very folder
            entry["ei_python"], entry["ei_dir"] = ei_python, entry["dir"]
        else:  # exported by MXNet 1.4.1 itself, as the ei image's exporter stage does
            out = os.path.join(models_dir, "%s-trained-like-mxnet%s" % (entry["name"], ei_stack["mxnet"]))
            entry["ei_python"] = ei_python
            entry["ei_dir"] = run_text([os.path.join(HERE, "models.py"), "random-init", "--model", entry["name"],
                                        "--out", out], python=ei_python).strip()
    return prepared


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests, short throughput windows")
    parser.add_argument("--models", default="default,demo", help="comma-separated: default, demo")
    parser.add_argument("--docker", choices=("auto", "skip"), default="auto",
                        help="auto: build the cpu image (docker/build.sh) and time cold starts where an engine runs")
    parser.add_argument("--image", default=os.environ.get("BENCH_IMAGE", "ssd-serving:bench-cpu"),
                        help="tag of the image built and cold-started")
    parser.add_argument("--skip-original", action="store_true", help="leave out the original approach")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "latest.json"))
    args = parser.parse_args(argv)
    plan = Plan(args.quick)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    work = os.path.join(ROOT, "build", "bench")
    log_dir = tempfile.mkdtemp(prefix="logs-", dir=os.makedirs(work, exist_ok=True) or work)
    models_dir = os.path.join(work, "models")
    started = time.time()
    host = host_info()
    on_cpu = host.get("gpus", 0) == 0 and os.environ.get("SSD_CONTEXT", "auto") in ("auto", "cpu")
    cores = multiprocessing.cpu_count()
    report = {"schema": SCHEMA, "started": datetime.datetime.now().isoformat(timespec="seconds"), "quick": plan.quick,
              "host": host, "load_before": loadavg(), "logs": log_dir, "models": {}, "targets": TARGETS}
    log("host: %s, %d CPUs %s, MXNet %s, GPUs %s; logs in %s" % (host.get("cpu_model"), cores, host.get("cpu_flags"),
                                                                  host["mxnet"], host.get("gpus"), log_dir))

    photos_dir = os.path.join(work, "photos")
    photos = prepare_photos(photos_dir)
    report["photos"] = dict((k, {"size": v["size"], "jpeg_bytes": v["bytes"], "base64_json_bytes": v["json_bytes"]})
                            for k, v in photos.items() if isinstance(v, dict))
    report["photos"]["source"] = photos["source"]
    stacks = {sys.executable: stack_info(sys.executable)}
    ei_path, ei_why_not = ei_python()
    if ei_path and not on_cpu:
        ei_path, ei_why_not = None, "the deploy targets compare CPU paths; this run serves on a GPU"
    if ei_path:
        stacks[ei_path] = stack_info(ei_path)
        log("ei stack: %s (MXNet %s)" % (ei_path, stacks[ei_path]["mxnet"]))
    else:
        log("ei stack skipped: %s" % ei_why_not)
    report["stacks"] = stacks
    log("preparing models (random-init exports and int8 variants are cached in %s)" % models_dir)
    prepared = prepare_models(keys, models_dir, want_int8=on_cpu,
                              ei=(ei_path, stacks[ei_path]) if ei_path else (None, ei_why_not))

    image_ready, docker_note = False, None
    if args.docker == "skip":
        docker_note = "skipped (--docker skip)"
    elif not docker_available():
        docker_note = "skipped: no Docker engine (docker/ensure-engine.sh starts one)"
    else:
        try:
            log("building %s with docker/build.sh cpu (cached steps are reused)" % args.image)
            report["image_build_s"] = build_image(args.image, log_dir)
            image_ready = True
        except Exception as err:  # the rest of the table is still worth having
            docker_note = "skipped: %s" % err

    for key in keys:
        spec = prepared[key]
        entry = {"name": spec["name"], "model_dir": spec["dir"], "random_weights": spec["random_weights"],
                 "trained_like": spec.get("trained_like"), "load_avg_at_start": loadavg()}
        report["models"][key] = entry
        log("%s: start-up: first request when /ping turns healthy, and once the model is loaded" % spec["name"])
        entry["start"] = measure_start("%s-start" % key, spec["dir"], photos, log_dir, after_ready=not plan.quick)
        measure_model(key, spec, entry, photos, photos_dir, plan, log_dir, cores, on_cpu, args.skip_original, stacks)
        if image_ready:
            log("%s: cold start of %s" % (spec["name"], args.image))
            try:
                entry["cold_start"] = cold_start(args.image, spec["dir"] if key != "demo" else None, photos, key,
                                                 log_dir)
            except Exception as err:
                entry["cold_start"] = {"skipped": "failed: %s" % err}
        else:
            entry["cold_start"] = {"skipped": docker_note}
        entry["load_avg_at_end"] = loadavg()
        entry["ratios"] = ratios_for(entry)
        entry["deploy_targets"] = deploy_targets_for(entry) if on_cpu else {
            "skipped": "the deploy targets compare CPU paths; this run serves on a GPU"}
        entry["targets"] = targets_for(key, entry["ratios"])

    report["load_after"] = loadavg()
    report["duration_s"] = round(time.time() - started, 1)
    report["table"] = table(report)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as stream:
        json.dump(report, stream, indent=2, sort_keys=True)
    print("SSD serving benchmark, %s, %s (%d CPUs%s), MXNet %s, %s, load average %s -> %s, %.0f s%s" % (
        report["started"], host.get("cpu_model"), cores, ", " + "/".join(host.get("cpu_flags") or []),
        host["mxnet"], "GPU" if not on_cpu else "CPU", report["load_before"], report["load_after"],
        report["duration_s"], ", QUICK (smoke run, not for comparison)" if plan.quick else ""))
    print(report["table"])
    print("written to %s" % os.path.relpath(args.out, os.getcwd()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
