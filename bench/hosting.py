"""Hosting modes measured on the built cpu image: Batch Transform throughput, and serverless cold start and memory.

    make bench-hosting       (docker/build.sh cpu, then: .venv/mx19/bin/python bench/hosting.py --image TAG)

For the demo model baked into the image and for ssd_512_resnet50_v1_voc (the default architecture with RANDOM
weights made by bench/models.py, timing only, mounted as /opt/ml/model), in one run:

- serverless: the container started under each memory size SageMaker Serverless offers up to 3 GB
  (`docker run --memory`), timed from `docker run` to GET /ping 200 (the image already on the host: SageMaker's
  cold start adds pulling it) and to the first answer; then 5 requests one at a time and a burst of 8 at once;
  the peak memory of the container's cgroup, the resident memory of its processes, and whether the kernel
  killed it for memory (then that size cannot serve the model);
- Batch Transform: the container with SAGEMAKER_BATCH=true, sent a folder of photos as SageMaker sends them
  (SingleRecord: one image per request, MaxConcurrentTransforms at a time, from GET /execution-parameters;
  MultiRecord: JSON Lines mini-batches up to MaxPayloadInMB), in images per second.

Writes build/bench/hosting.json (--out); `make docs-results` takes it into docs/results/hosting.json, from which
docs/hosting.md's figures are rendered.
"""
import argparse
import base64
import datetime
import io
import json
import os
import subprocess
import sys
import threading
import time
import uuid

import numpy as np
import requests
from PIL import Image

from common import host_info, log  # the same description of the machine as make bench's, and log lines
from ssd_serving.ports import free_port

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_MODEL = "ssd_512_resnet50_v1_voc"
MEMORY_SIZES_MB = (1024, 2048, 3072)
BURST = 8  # requests sent at once after the steady ones
READY_TIMEOUT = 300
LOCAL = {"http": None, "https": None}


def docker(*args, **kwargs):
    return subprocess.run(["docker"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)


def photos(count):
    """JPEGs to send: the real photos of matplotlib's and scikit-image's wheels, then synthetic scenes."""
    from ssd_tools.demo import scenes
    from ssd_tools.quantize import builtin_photos
    found = []
    for _, path in builtin_photos():
        with open(path, "rb") as stream:
            image = Image.open(stream).convert("RGB")
        found.append(image)
    seed = 100
    while len(found) < count:
        rgb, _, _ = scenes.make_scene(seed, 640, 480)
        found.append(Image.fromarray(rgb))
        seed += 1
    encoded = []
    for image in found[:count]:
        stream = io.BytesIO()
        image.save(stream, format="JPEG", quality=90)
        encoded.append(stream.getvalue())
    return encoded


class Container(object):
    """One `docker run -d` of the image on a free host port; stop() removes exactly it."""

    def __init__(self, image, env=None, memory_mb=None, model_dir=None):
        self.name = "ssd-hosting-%s" % uuid.uuid4().hex[:12]
        self.port = free_port()
        command = ["run", "-d", "--name", self.name, "--network", "host", "-e", "SAGEMAKER_BIND_TO_PORT=%d" % self.port]
        for key, value in sorted((env or {}).items()):
            command += ["-e", "%s=%s" % (key, value)]
        if memory_mb:
            command += ["--memory", "%dm" % memory_mb, "--memory-swap", "%dm" % memory_mb]
        if model_dir:
            command += ["-v", "%s:/opt/ml/model:ro" % os.path.abspath(model_dir)]
        self.started = time.time()
        done = docker(*(command + [image, "serve"]))
        if done.returncode != 0:
            raise RuntimeError("docker run failed: %s" % done.stderr.decode(errors="replace"))
        self.url = "http://127.0.0.1:%d" % self.port

    def state(self):
        done = docker("inspect", "--format", "{{json .State}}", self.name)
        return json.loads(done.stdout.decode()) if done.returncode == 0 else {}

    def wait_ready(self):
        """Seconds from `docker run` to /ping 200, or None when the container stopped or never got there."""
        deadline = self.started + READY_TIMEOUT
        while time.time() < deadline:
            if not self.state().get("Running"):
                return None
            try:
                if requests.get(self.url + "/ping", timeout=2, proxies=LOCAL).status_code == 200:
                    return time.time() - self.started
            except requests.RequestException:
                pass
            time.sleep(0.1)
        return None

    def peak_memory_mb(self):
        """The container cgroup's peak memory (cgroup v2 memory.peak, else v1 max_usage_in_bytes), in MB."""
        for path in ("/sys/fs/cgroup/memory.peak", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes"):
            done = docker("exec", self.name, "cat", path)
            if done.returncode == 0 and done.stdout.strip().isdigit():
                return round(int(done.stdout) / 1048576.0, 1)
        return None

    def rss_by_process(self):
        """Resident memory of the server's processes, in MB: the launcher (with the front door), the model
        server's JVM, and its Python workers."""
        done = docker("top", self.name, "-o", "pid,rss,args")  # docker top needs the pid column
        groups = {}
        for line in done.stdout.decode(errors="replace").splitlines()[1:]:
            fields = line.split(None, 2)
            if len(fields) < 3 or not fields[1].isdigit():
                continue
            rss, command = fields[1], fields[2]
            kind = ("jvm" if "java" in command else "workers" if "model_service_worker" in command
                    else "launcher" if "ssd_serving.serving" in command else "other")
            groups[kind] = round(groups.get(kind, 0) + int(rss) / 1024.0, 1)
        return groups

    def stop(self):
        docker("rm", "-f", self.name)


def post(url, body, content_type, timeout=600):
    started = time.time()
    reply = requests.post(url + "/invocations", data=body, headers={"Content-Type": content_type},
                          timeout=timeout, proxies=LOCAL)
    return reply, time.time() - started


def serverless(image, model_dir, photo):
    """Cold start and memory at each serverless size."""
    rows = []
    for memory in MEMORY_SIZES_MB:
        log("serverless: %s MB" % memory)
        container = Container(image, memory_mb=memory, model_dir=model_dir)
        try:
            ready = container.wait_ready()
            row = {"memory_mb": memory, "ping_s": round(ready, 2) if ready else None}
            if ready:
                reply, first = post(container.url, photo, "image/jpeg")
                row["first_answer_s"] = round(ready + first, 2) if reply.status_code == 200 else None
                steady = [post(container.url, photo, "image/jpeg")[1] for _ in range(5)]
                row["steady_p50_ms"] = round(1000 * float(np.median(steady)), 1)
                # a burst, as a serverless endpoint at its MaxConcurrency sends: queues in MMS and the JVM grow
                burst = [threading.Thread(target=post, args=(container.url, photo, "image/jpeg"))
                         for _ in range(BURST)]
                for thread in burst:
                    thread.start()
                for thread in burst:
                    thread.join()
                row["rss_mb"] = container.rss_by_process()
            state = container.state()
            row["oom_killed"] = bool(state.get("OOMKilled"))
            row["serves"] = bool(ready) and row.get("first_answer_s") is not None and state.get("Running", False)
            row["peak_mb"] = container.peak_memory_mb() if state.get("Running") else None
            rows.append(row)
            log("  %s" % row)
        finally:
            container.stop()
    return rows


def transform(image, model_dir, images):
    """Images per second sent as a transform job sends them, SingleRecord and MultiRecord (JSON Lines)."""
    container = Container(image, env={"SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "20"},
                          model_dir=model_dir)
    try:
        if container.wait_ready() is None:
            raise RuntimeError("the transform container did not start: %s" % docker("logs", container.name).stderr)
        parameters = requests.get(container.url + "/execution-parameters", timeout=10, proxies=LOCAL).json()
        post(container.url, images[0], "image/jpeg")
        concurrency = parameters["MaxConcurrentTransforms"]
        queue = list(images)
        lock = threading.Lock()
        failures = []

        def worker():
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                reply, _ = post(container.url, body, "application/x-image")
                if reply.status_code != 200:
                    failures.append(reply.status_code)

        started = time.time()
        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        single = len(images) / (time.time() - started)
        limit = parameters["MaxPayloadInMB"] * 1024 * 1024
        batches, current = [], []
        for body in images:
            line = json.dumps(base64.b64encode(body).decode()).encode() + b"\n"
            if current and sum(len(x) for x in current) + len(line) > limit:
                batches.append(b"".join(current))
                current = []
            current.append(line)
        batches.append(b"".join(current))
        started = time.time()
        answered = 0
        for body in batches:
            reply, _ = post(container.url, body, "application/jsonlines")
            if reply.status_code != 200:
                failures.append(reply.status_code)
            answered += len(reply.text.splitlines())
        multi = len(images) / (time.time() - started)
        if failures or answered != len(images):
            raise RuntimeError("transform answers failed: %s, %d of %d lines" % (failures, answered, len(images)))
        return {"execution_parameters": parameters, "images": len(images), "requests_multi_record": len(batches),
                "single_record_images_per_s": round(single, 2), "multi_record_images_per_s": round(multi, 2)}
    finally:
        container.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image", required=True, help="the cpu serving image (docker/build.sh cpu prints it)")
    parser.add_argument("--images", type=int, default=24, help="photos in the transform run")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "hosting.json"))
    args = parser.parse_args(argv)
    started = time.time()
    models_dir = os.path.join(ROOT, "build", "bench", "models")
    default_dir = os.path.join(models_dir, DEFAULT_MODEL)
    log("exporting %s with random weights (timing only) into %s" % (DEFAULT_MODEL, default_dir))
    subprocess.run([sys.executable, os.path.join(HERE, "models.py"), "random-init", "--model", DEFAULT_MODEL,
                    "--out", default_dir], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["chmod", "-R", "a+rX", default_dir], check=True)  # the image's server user reads it
    sent = photos(args.images)
    report = {"schema": 1, "started": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "image": args.image,
              "host": host_info(), "models": {}}
    for key, model_dir in (("demo", None), (DEFAULT_MODEL, default_dir)):
        log("model %s" % key)
        report["models"][key] = {"random_weights": model_dir is not None,
                                 "serverless": serverless(args.image, model_dir, sent[0]),
                                 "transform": transform(args.image, model_dir, sent)}
    report["duration_s"] = round(time.time() - started)
    if not os.path.isdir(os.path.dirname(args.out)):
        os.makedirs(os.path.dirname(args.out))
    with open(args.out, "w") as stream:
        json.dump(report, stream, indent=1, sort_keys=True)
    log("wrote %s" % args.out)
    print(json.dumps(report["models"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
