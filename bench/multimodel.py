"""A multi-model endpoint measured on the real server: how long loading a model takes, and the memory it takes and gives back.

    make bench-multimodel    (this script under each MXNet stack's venv, into one build/bench/multimodel.json)

Starts `python -m ssd_serving.serving serve` with SAGEMAKER_MULTI_MODEL=true and no model, on a free port, then
`--rounds` times: the server's resident memory (the launcher, MMS's JVM and every worker, summed with psutil),
POST /models of a model derived from the demo model (its classes renamed, as a fine-tuned model's are: same
graph, its own metadata; not loaded before under that name), one request to it, the memory again, DELETE, and the
memory once the worker has gone. Then two such models at once, for what a second one adds. The stack's entry in
--out is replaced, the others kept; `make docs-results` takes the file into docs/results/multimodel.json, from
which docs/hosting.md's figures are rendered.
"""
import argparse
import datetime
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import psutil
import requests
from PIL import Image

from common import host_info  # the same description of the machine as make bench's
from ssd_tools.server_process import ServerProcess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEMO_MODEL = os.path.join(ROOT, "container", "models", "demo")
RENAMED = ["disc", "block", "wedge", "spark"]


def derived_model(folder, name):
    """The demo model with other class names and model name: a stand-in for a fine-tuned one."""
    shutil.copytree(DEMO_MODEL, folder)
    path = os.path.join(folder, "model-meta.json")
    with open(path) as stream:
        meta = json.load(stream)
    meta.update(classes=RENAMED, model_name=name)
    with open(path, "w") as stream:
        json.dump(meta, stream)
    return folder


def server_rss(process):
    launcher = psutil.Process(process.pid)
    total = 0
    for each in [launcher] + launcher.children(recursive=True):
        try:
            total += each.memory_info().rss
        except psutil.Error:
            pass
    return total


def settled_rss(process, seconds=3.0):
    """The server's RSS once it has been steady for a moment (a worker that stops takes a little while)."""
    time.sleep(seconds)
    return server_rss(process)


def photo():
    stream = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 140, 200)).save(stream, format="JPEG")
    return stream.getvalue()


def measure(rounds, workdir):
    server = ServerProcess(os.path.join(workdir, "none"), label="the multi-model server",
                           log_path=os.path.join(workdir, "server.log"), extra_env={
                               "SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_BASE_DIR": os.path.join(workdir, "opt-ml"),
                               "SSD_REQUEST_METRICS": "0"})
    url = server.url
    try:
        server.wait_healthy(120, poll_s=0.5)
        body = photo()
        results = []
        for index in range(rounds):
            name = "round-%d" % index
            folder = derived_model(os.path.join(workdir, "models", name, "model"), "ssd_256_demo_renamed")
            before = settled_rss(server.process)
            started = time.time()
            reply = requests.post(url + "/models", json={"model_name": name, "url": folder}, timeout=300)
            load_s = time.time() - started
            reply.raise_for_status()
            answer = requests.post(url + "/models/%s/invoke" % name, data=body,
                                   headers={"Content-Type": "image/jpeg"}, timeout=60)
            answer.raise_for_status()
            loaded = settled_rss(server.process)
            requests.delete(url + "/models/%s" % name, timeout=60).raise_for_status()
            after = settled_rss(server.process)
            results.append({"load_s": load_s, "rss_before": before, "rss_loaded": loaded, "rss_after_unload": after})
            print("%s: load %.2f s, RSS %.0f -> %.0f -> %.0f MB" % (name, load_s, before / 1e6, loaded / 1e6,
                                                                  after / 1e6))
        # two at once: what the second adds
        names = ["pair-a", "pair-b"]
        rss = [settled_rss(server.process)]
        for name in names:
            folder = derived_model(os.path.join(workdir, "models", name, "model"), "ssd_256_demo_" + name)
            requests.post(url + "/models", json={"model_name": name, "url": folder}, timeout=300).raise_for_status()
            requests.post(url + "/models/%s/invoke" % name, data=body, headers={"Content-Type": "image/jpeg"},
                          timeout=60).raise_for_status()
            rss.append(settled_rss(server.process))
        for name in names:
            requests.delete(url + "/models/%s" % name, timeout=60).raise_for_status()
        rss.append(settled_rss(server.process))
        return {"rounds": results, "two_models_rss": rss}
    finally:
        server.stop()


def stack():
    import mxnet as mx
    from ssd_serving.model_server import model_server_command
    server = os.path.basename(model_server_command())
    version = subprocess.run([sys.executable, "-m", "pip", "show", server], stdout=subprocess.PIPE,
                             universal_newlines=True).stdout
    version = next((l.split(":", 1)[1].strip() for l in version.splitlines() if l.startswith("Version:")), "?")
    return {"mxnet": mx.__version__, "model_server": "%s %s" % (server, version)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "multimodel.json"))
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="ssd-mme-bench-")
    try:
        measured = measure(args.rounds, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    measured.update(stack())
    measured["date"] = datetime.datetime.now().isoformat(timespec="seconds")
    document = {}
    if os.path.isfile(args.out):
        with open(args.out) as stream:
            document = json.load(stream)
    document.setdefault("stacks", {})[measured["mxnet"]] = measured
    document["host"] = host_info()  # with the commit it ran on
    if not os.path.isdir(os.path.dirname(args.out)):
        os.makedirs(os.path.dirname(args.out))
    with open(args.out, "w") as stream:
        json.dump(document, stream, indent=1, sort_keys=True)
        stream.write("\n")
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
