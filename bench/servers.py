"""The processes a bench run measures: our server and the original approach's (through ssd_tools.server_process), and the
floor (bench/floor.py)."""
import json
import os
import re
import subprocess
import sys

import psutil

from common import HERE
from ssd_tools.server_process import ServerProcess, python_env


def our_server(label, model_dir, log_dir, workers=None, threads=None, python=None, precision="fp32", layout=None,
               extra_env=None):
    """Our server (front door + MMS) from `python`'s environment (default: this one's, the cpu stack).
    `layout`: SSD_WORKER_LAYOUT (default: the server's own choice)."""
    python = python or sys.executable
    env = python_env(python)
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
    return ServerProcess(model_dir, python=python, env=env, label=label,
                         log_path=os.path.join(log_dir, "%s.log" % label), port_argument=True)


def default_layout(model_dir, on_cpu):
    """The worker layout SSD_WORKER_LAYOUT=auto picks for this model: latency or throughput."""
    from ssd_serving.artifact import PARAMS_FILE, read_metadata
    from ssd_serving.environment import Environment
    from ssd_serving.layout import choose_layout
    params = os.path.join(model_dir, read_metadata(model_dir).get("params_file", PARAMS_FILE))
    layout = choose_layout(Environment({}), os.path.getsize(params), "cpu" if on_cpu else "gpu")
    return "throughput" if layout.workers > 1 else "latency"


def original_server(label, spec, log_dir, workers, threads, python=None):
    """The original write-up's path (bench/original_service.py) on `python`'s MXNet (default: this one)."""
    env = python_env(python)
    env.update({"BENCH_ORIGINAL_MODEL": spec, "SAGEMAKER_MODEL_SERVER_WORKERS": str(workers),
                "OMP_NUM_THREADS": str(threads), "MXNET_CPU_WORKER_NTHREADS": "1"})
    return ServerProcess(python=python, env=env,
                         command=[python or sys.executable, os.path.join(HERE, "original_server.py")], label=label,
                         log_path=os.path.join(log_dir, "%s.log" % label), port_argument=True)


def launched(server):
    """The model server the launcher started and the Python its workers run, as MMS logs them at start."""
    output = server.output()
    model_server = re.search(r"starting (\S+) on ", output)
    worker_python = re.search(r"Python executable: (\S+)", output)
    return {"model_server": model_server.group(1) if model_server else None,
            "worker_python": worker_python.group(1) if worker_python else None}


def memory(server):
    """RSS of each worker (the process holding a model) and PSS of the whole server, in MB."""
    try:
        processes = psutil.Process(server.process.pid).children(recursive=True)
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


def server_config(server):
    """The worker layout the launcher logged it started with (`N worker(s) x M thread(s)`)."""
    configured = [l for l in server.output().splitlines() if "worker(s) x" in l]
    return configured[-1].split("with ", 1)[-1].strip() if configured else None


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


def floor_env(threads, extra_env=None):
    """bench/floor.py's environment: a server worker's threads."""
    env = python_env()
    env.pop("SSD_GRAPH_FUSION", None)
    env.update({"OMP_NUM_THREADS": str(threads), "MXNET_CPU_WORKER_NTHREADS": "1"})
    env.update(extra_env or {})
    return env


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
