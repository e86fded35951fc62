"""What the bench scripts share: their log line, timings summed up, and the machine and Python stacks they ran on."""
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

from ssd_tools.figures import host_facts
from ssd_tools.server_process import python_env

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
EI_PYTHON_ENV = "BENCH_EI_PYTHON"
# the script that logs: "[bench ...]" from bench.py, "[hosting ...]" from hosting.py
TOOL = os.path.splitext(os.path.basename(sys.argv[0]))[0] or "bench"
SUMMARY_STATS = ("p50", "p90", "p99", "mean")


def log(message):
    sys.stderr.write("[%s %s] %s\n" % (TOOL, time.strftime("%H:%M:%S"), message))
    sys.stderr.flush()


def summary(seconds, stats=SUMMARY_STATS):
    """Timings in seconds as ms, rounded to 0.01: `stats` among p50, p90, p99, mean and min, and n; None for none."""
    if not seconds:
        return None
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    values = {"p50": np.percentile(ms, 50), "p90": np.percentile(ms, 90), "p99": np.percentile(ms, 99),
              "mean": ms.mean(), "min": ms.min()}
    result = dict((stat, round(float(values[stat]), 2)) for stat in stats)
    result["n"] = int(ms.size)
    return result


def write_results(path, results, text):
    """A bench script's end: `results` as JSON at `path`, `text` (its table) printed, and where the JSON went."""
    with open(path, "w") as stream:
        json.dump(results, stream, indent=1, sort_keys=True)
    print(text)
    log("written %s" % path)


def loadavg():
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def run_text(args, env=None, timeout=1800, python=None):
    """Run a Python helper (with `python`, default this one), return what it prints."""
    done = subprocess.run([python or sys.executable] + args, env=env or python_env(python), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, universal_newlines=True)
    if done.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(args), done.returncode, done.stderr[-4000:]))
    return done.stdout


def host_info():
    """This machine as ssd_tools.figures records one (model, CPUs, the flags int8 depends on), with this Python's
    MXNet, oneDNN and GPUs, and the commit it measures."""
    import mxnet as mx
    info = host_facts()
    info.update({"python": platform.python_version(), "mxnet": mx.__version__})
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
