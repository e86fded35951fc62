"""make bench: the SSD server's latency, throughput, memory and start-up next to its floor and the original approach, all measured in one run on this machine.

    python bench/bench.py [--quick] [--models default,demo] [--docker auto|skip] [--out build/bench/latest.json]

Prints one table and writes it as JSON, so runs can be compared. Not a test: nothing here asserts a
time. On a GPU machine the same code runs on the GPU (the context is picked as serving picks it).
"""
import argparse
import base64
import datetime
import io
import json
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
CONTAINER = os.path.join(ROOT, "container")
CODE = os.path.join(ROOT, "code")
DEMO_MODEL = os.path.join(CONTAINER, "models", "demo")
sys.path.insert(0, CONTAINER)

import numpy as np  # noqa: E402
import requests  # noqa: E402

from ssd_serving.serving import free_port  # noqa: E402

SCHEMA = 1
DEFAULT_MODEL_NAME = "ssd_512_resnet50_v1_voc"
CONCURRENCY = (1, 2, 4, 8)
BODIES = ("jpeg_640x480", "base64_json_640x480", "jpeg_12mp", "base64_json_12mp")
TARGETS = {
    "e2e_p50_over_floor": ("<=", 1.10, "end-to-end p50 (640x480 JPEG) / floor p50"),
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
        self.floor_runs = 5 if quick else 40
        self.stage_runs = 3 if quick else 15
        self.latency = dict((name, 3 if quick else n) for name, n in
                            (("jpeg_640x480", 40), ("base64_json_640x480", 25), ("jpeg_12mp", 25),
                             ("base64_json_12mp", 25)))
        self.alt_latency = 3 if quick else 20
        self.int8_latency = 3 if quick else 30
        self.original_latency = 2 if quick else 15
        self.throughput_s = 0.5 if quick else 8.0
        self.eval_scenes = 4 if quick else 300
        # a full run times the first request on a server of its own; a smoke run on the measured one
        self.separate_start = not quick


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


def python_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([CONTAINER, CODE] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_json(args, env=None, timeout=1800):
    """Run a Python helper, return the JSON it prints last."""
    done = subprocess.run([sys.executable] + args, env=env or python_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, universal_newlines=True)
    if done.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(args), done.returncode, done.stderr[-4000:]))
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_text(args, env=None, timeout=1800):
    done = subprocess.run([sys.executable] + args, env=env or python_env(), stdout=subprocess.PIPE,
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
                # MMS forks one process per worker connection from its worker server: that child holds the model
                if "model_service_worker" in cmdline and "model_service_worker" in " ".join(process.parent().cmdline()):
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


def our_server(label, model_dir, log_dir, workers=None, threads=None):
    env = python_env()
    env["SSD_MODEL_DIR"] = model_dir
    for name in ("SAGEMAKER_MODEL_SERVER_WORKERS", "OMP_NUM_THREADS", "SSD_CONTEXT"):
        env.pop(name, None)
    if workers:
        env["SAGEMAKER_MODEL_SERVER_WORKERS"] = str(workers)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return Server(label, [sys.executable, "-m", "ssd_serving.serving", "serve"], env, log_dir)


def original_server(label, spec, log_dir, workers, threads):
    env = python_env()
    env.update({"BENCH_ORIGINAL_MODEL": spec, "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
                "OMP_NUM_THREADS": str(threads), "MXNET_CPU_WORKER_NTHREADS": "1"})
    return Server(label, [sys.executable, os.path.join(HERE, "original_server.py")], env, log_dir)


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


def measure_start(label, model_dir, photos, log_dir):
    """A fresh server: the first request sent the moment GET /ping turns healthy, as SageMaker would."""
    server = our_server(label, model_dir, log_dir)
    try:
        ping_s = server.wait_healthy()
        first_ms = first_request_ms(server, photos)
        ready_s = server.wait_ready()
        return {"ping_healthy_s": round(ping_s, 2), "model_ready_s": round(ready_s, 2),
                "first_request_after_ping_ms": first_ms}
    finally:
        server.stop()


def measure_served(label, model_dir, photos, plan, log_dir, workers=None, threads=None, bodies=BODIES,
                   latency_counts=None, with_throughput=True, first_after_ping=False):
    """Start our server; once its model is loaded, time the first request, steady latencies,
    throughput and memory."""
    server = our_server(label, model_dir, log_dir, workers, threads)
    try:
        ping_s = server.wait_healthy()
        after_ping_ms = first_request_ms(server, photos) if first_after_ping else None
        ready_s = server.wait_ready()
        first_ms = first_request_ms(server, photos)
        configured = [l for l in server.output().splitlines() if "worker(s) x" in l]
        result = {"config": configured[-1].split("with ", 1)[-1].strip() if configured else None,
                  "start": {"ping_healthy_s": round(ping_s, 2), "model_ready_s": round(ready_s, 2),
                            "first_request_after_ready_ms": first_ms},
                  "latency_ms": {}}
        if first_after_ping:
            result["start"]["first_request_after_ping_ms"] = after_ping_ms
        for name in bodies:
            body, content_type = request_body(photos, name)
            count = latency_counts if latency_counts else plan.latency[name]
            result["latency_ms"][name] = summary(latencies(server, body, content_type, count))
            log("  %s %s p50 %.1f ms" % (label, name, result["latency_ms"][name]["p50"]))
        if with_throughput:
            body, content_type = request_body(photos, "jpeg_640x480")
            result["throughput"] = {}
            for concurrency in CONCURRENCY:
                result["throughput"][str(concurrency)] = throughput(server, body, content_type, concurrency,
                                                                    plan.throughput_s)
                log("  %s concurrency %d: %.2f req/s" % (label, concurrency,
                                                         result["throughput"][str(concurrency)]["rps"]))
        result.update(server.memory())
        return result
    finally:
        server.stop()


def measure_original(label, spec, photos, plan, log_dir, workers, threads):
    server = original_server(label, spec, log_dir, workers, threads)
    try:
        server.wait_healthy()
        server.wait_ready()
        result = {"config": "%d worker(s) x %d thread(s)" % (workers, threads), "latency_ms": {}}
        for name in ("base64_json_640x480", "base64_json_12mp"):
            body, content_type = request_body(photos, name)
            result["latency_ms"][name] = summary(latencies(server, body, content_type, plan.original_latency))
            log("  %s %s p50 %.1f ms" % (label, name, result["latency_ms"][name]["p50"]))
        result.update(server.memory())
        return result
    finally:
        server.stop()


def floor(model_dir, photos_dir, plan, threads, unfused=False):
    env = python_env()
    env.pop("SSD_GRAPH_FUSION", None)
    env.update({"OMP_NUM_THREADS": str(threads), "MXNET_CPU_WORKER_NTHREADS": "1"})
    args = [os.path.join(HERE, "floor.py"), "--model-dir", model_dir, "--photos", photos_dir,
            "--runs", str(plan.floor_runs), "--stage-runs", str(plan.stage_runs)]
    return run_json(args + (["--unfused"] if unfused else []), env)


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
    out = run_text(["-m", "ssd_serving.demo.evaluate", "--model-dir", int8_dir, "--compare-to", fp32_dir,
                    "--count", str(scenes)])
    import re
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
        "first_after_ready_over_steady": ratio(served.get("start", {}).get("first_request_after_ready_ms"), ours_jpeg),
        "jpeg_12mp_over_640": ratio(p50(served, "jpeg_12mp"), ours_jpeg),
        "base64_12mp_over_640": ratio(p50(served, "base64_json_12mp"), p50(served, "base64_json_640x480")),
    }
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
    alternative = entry.get("alternative_config")
    if alternative:
        values["alternative_p50_over_default"] = ratio(p50(alternative, "jpeg_640x480"), ours_jpeg)
        best = lambda section: max(v["rps"] for v in section["throughput"].values())  # noqa: E731
        values["alternative_peak_rps_over_default"] = ratio(best(alternative), best(served))
    return values


def targets_for(key, values):
    checked = {}
    for name, (op, limit, meaning) in TARGETS.items():
        if name == "int8_e2e_p50_ms" and key != "default":
            continue
        if name == "int8_map_drop_points" and key != "demo":
            continue
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
    rows = [("", [e["name"] + (" (random weights)" if e.get("random_weights") else "") for e in entries])]

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
    add("  decode 640x480 / 12 MP reduced / 12 MP full, ms", lambda e: "%s / %s / %s" % tuple(
        fmt(e["floor"]["stages_ms"][k]["p50"]) for k in ("decode_640x480", "decode_12mp_reduced", "decode_12mp_full")))
    add("served config", lambda e: e["served"]["config"])
    for body in BODIES:
        add("/invocations %s p50/p90/p99 ms" % body, lambda e, b=body: lat(e["served"], b))
    add("start: /ping healthy / model loaded, s after launch", lambda e: "%s / %s" % (
        fmt(e["start"]["ping_healthy_s"]), fmt(e["start"]["model_ready_s"])))
    add("first request sent when /ping turns healthy, ms", lambda e: fmt(e["start"]["first_request_after_ping_ms"]))
    add("first request once the model is loaded, ms", lambda e: fmt(e["served"]["start"]["first_request_after_ready_ms"]))
    add("throughput req/s at concurrency 1/2/4/8", lambda e: " / ".join(
        fmt(e["served"]["throughput"][str(c)]["rps"]) for c in CONCURRENCY))
    add("RSS per worker, MB", lambda e: ", ".join(fmt(v) for v in e["served"]["rss_mb_per_worker"]))
    add("other config", lambda e: e["alternative_config"]["config"])
    add("  /invocations jpeg_640x480 p50/p90/p99 ms", lambda e: lat(e["alternative_config"], "jpeg_640x480"))
    add("  throughput req/s at concurrency 1/2/4/8", lambda e: " / ".join(
        fmt(e["alternative_config"]["throughput"][str(c)]["rps"]) for c in CONCURRENCY))
    add("  RSS per worker, MB", lambda e: ", ".join(fmt(v) for v in e["alternative_config"]["rss_mb_per_worker"]))
    add("int8: floor p50 ms", lambda e: fmt(e["int8"]["floor"]["forward_ms"]["p50"]) if e["int8"].get("floor")
        else e["int8"].get("skipped", "-"))
    add("int8: /invocations jpeg_640x480 p50/p90/p99 ms", lambda e: lat(e["int8"], "jpeg_640x480"))
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
    rows.append(("ratios", ["" for _ in entries]))
    names = ["e2e_p50_over_floor", "e2e_p50_minus_floor_ms", "speedup_vs_original_p50", "speedup_vs_original_p50_jpeg_in",
             "speedup_vs_original_all_cores_p50", "first_over_steady", "first_after_ready_over_steady", "jpeg_12mp_over_640", "base64_12mp_over_640",
             "fusion_speedup", "alternative_p50_over_default", "alternative_peak_rps_over_default",
             "int8_floor_speedup", "int8_e2e_speedup", "int8_e2e_p50_ms", "int8_map_drop_points"]
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


# ----------------------------------------------------------------------------------------- main

def prepare_models(keys, models_dir, want_int8):
    prepared = {}
    if "default" in keys:
        fp32 = run_text([os.path.join(HERE, "models.py"), "random-init", "--model", DEFAULT_MODEL_NAME,
                         "--out", os.path.join(models_dir, DEFAULT_MODEL_NAME + "-random-init")]).strip()
        prepared["default"] = {"name": DEFAULT_MODEL_NAME, "dir": fp32, "random_weights": True,
                               "original": "zoo-random:%s" % DEFAULT_MODEL_NAME}
    if "demo" in keys:
        prepared["demo"] = {"name": "ssd_256_demo_shapes", "dir": DEMO_MODEL, "random_weights": False,
                            "original": "demo:%s" % DEMO_MODEL}
    for key, entry in prepared.items():
        if want_int8:
            entry["int8_dir"] = run_text([os.path.join(HERE, "models.py"), "int8", "--from", entry["dir"],
                                          "--out", os.path.join(models_dir, "%s-int8" % key)]).strip()
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
    log("preparing models (random-init export and int8 variants are cached in %s)" % models_dir)
    prepared = prepare_models(keys, models_dir, want_int8=on_cpu)

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
                 "load_avg_at_start": loadavg()}
        report["models"][key] = entry
        log("%s: floor (graph forward, batch 1) with %d thread(s)" % (spec["name"], cores))
        entry["floor"] = floor(spec["dir"], photos_dir, plan, cores, unfused=on_cpu)
        if plan.separate_start:
            log("%s: start-up, first request when /ping turns healthy" % spec["name"])
            entry["start"] = measure_start("%s-start" % key, spec["dir"], photos, log_dir)
        log("%s: served, default settings" % spec["name"])
        entry["served"] = measure_served("%s-served" % key, spec["dir"], photos, plan, log_dir,
                                         first_after_ping=not plan.separate_start)
        if not plan.separate_start:
            served_start = entry["served"]["start"]
            entry["start"] = dict((k, served_start[k]) for k in ("ping_healthy_s", "model_ready_s",
                                                            "first_request_after_ping_ms"))
        if cores > 1:
            log("%s: served, one worker per core" % spec["name"])
            entry["alternative_config"] = measure_served(
                "%s-workers-per-core" % key, spec["dir"], photos, plan, log_dir, workers=cores, threads=1,
                bodies=("jpeg_640x480",), latency_counts=plan.alt_latency)
        if spec.get("int8_dir"):
            log("%s: int8" % spec["name"])
            int8 = {"model_dir": spec["int8_dir"], "floor": floor(spec["int8_dir"], photos_dir, plan, cores)}
            int8.update(measure_served("%s-int8" % key, spec["int8_dir"], photos, plan, log_dir,
                                       bodies=("jpeg_640x480",), latency_counts=plan.int8_latency,
                                       with_throughput=False))
            if key == "demo":
                log("demo: int8 accuracy against fp32 on %d held-out scenes" % plan.eval_scenes)
                int8["accuracy"] = evaluate_int8(spec["dir"], spec["int8_dir"], plan.eval_scenes)
            entry["int8"] = int8
        else:
            entry["int8"] = {"skipped": "int8 is the CPU target (MXNet >= 1.9 with oneDNN); this run is on a GPU"}
        if not args.skip_original:
            log("%s: the original approach (stock toolkit settings: %d worker(s) x 1 thread)" % (spec["name"], cores))
            entry["original"] = measure_original("%s-original" % key, spec["original"], photos, plan, log_dir,
                                                 workers=cores, threads=1)
            if cores > 1 and plan.quick:
                entry["original_all_cores"] = {"skipped": "quick run"}
            elif cores > 1:
                log("%s: the original approach with 1 worker x %d threads" % (spec["name"], cores))
                entry["original_all_cores"] = measure_original("%s-original-all-cores" % key, spec["original"],
                                                               photos, plan, log_dir, workers=1, threads=cores)
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
