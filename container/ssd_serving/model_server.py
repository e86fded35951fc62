"""Multi Model Server, as the launcher runs it: its configuration (config.properties, log configuration, model
store, JVM arguments, response timeout), its loopback ports, and its process group, started and stopped by us.

MMS listens on loopback ports only (inference and management) and runs the workers. Each worker writes a marker
named after its pid once its model is loaded (Environment.mark_model_loaded); a worker counts as ready while that
process is alive.
"""
from __future__ import absolute_import

import http.client
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from .environment import READY_DIR_ENV
from .layout import choose_layout
from .management import Management
from .ports import INTERNAL_PORTS, MMS_PORT_LIMIT, free_port, port_is_free

# the launcher's lines keep the one name they had before it was split (docs/int8.md shows them)
LOG = logging.getLogger("ssd_serving.serving")

MODEL_NAME = "model"
# the MMS entry point of our workers, in the launcher's model store and in each multi-model endpoint's model folder
HANDLER = "ssd_serving.handler:handle"
# After the drain the model server has nothing left to answer: it stops in about a second (measured), and a
# default drain (20 s) plus this stays within the 30 s SageMaker gives between SIGTERM and SIGKILL.
STOP_GRACE_SECONDS = 5

# An out-of-memory JVM exits (so does this server, and SageMaker replaces the container) instead of limping
# on. Its maximum heap comes from memory.MemoryPlan (the launcher's -Xmx): AWS's images' 8% initial heap
# (-XX:InitialRAMPercentage=8) made the JVM touch over 1 GB within a 10-minute soak on a 23 GB host.
JVM_ARGS = "-XX:+ExitOnOutOfMemoryError"


def internal_port(taken=(), safe_range=None):
    """A loopback port for MMS that cannot clash with SageMaker's: its safe range
    (SAGEMAKER_SAFE_PORT_RANGE), else one from INTERNAL_PORTS."""
    if safe_range:
        low, high = safe_range
        for port in range(low, min(high, MMS_PORT_LIMIT) + 1):
            if port not in taken and port_is_free(port):
                return port
    for _ in range(20):
        port = free_port(*INTERNAL_PORTS)
        if port not in taken:
            return port
    raise RuntimeError("no free port for the model server")


def model_server_command():
    """The installed model server: multi-model-server (1.1.x), else mxnet-model-server (1.0.5, the EI image)."""
    for name in ("multi-model-server", "mxnet-model-server"):
        path = shutil.which(name) or os.path.join(os.path.dirname(sys.executable), name)
        if os.path.isfile(path):
            return os.path.abspath(path)
    raise RuntimeError("neither multi-model-server nor mxnet-model-server is installed")


def log_config(model_server):
    """MMS's log configuration (logging_config/): log4j 1.2 for mxnet-model-server 1.0.5, log4j2 for 1.1.x."""
    name = "log4j.properties" if os.path.basename(model_server) == "mxnet-model-server" else "log4j2.xml"
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "logging_config", name)


def _write_model_store(store, handler, model_path=None, multi_model=False):
    """An MMS model store in the folder `store`; our handler finds the model itself, so its model path can stay
    empty. A multi-model endpoint's store starts empty: multimodel.Models writes each model's folder when SageMaker
    loads it."""
    os.makedirs(store)
    if multi_model:
        return store
    if not model_path:
        model_path = os.path.join(os.path.dirname(store), "model-files")
        os.makedirs(model_path)
    archiver = os.path.abspath(shutil.which("model-archiver") or
                               os.path.join(os.path.dirname(sys.executable), "model-archiver"))
    subprocess.check_call([archiver, "--model-name", MODEL_NAME, "--handler", handler, "--model-path", model_path,
                           "--export-path", store, "--archive-format", "no-archive", "-f"])
    return store


def response_timeout_setting(model_server, seconds):
    """default_response_timeout for `seconds` (SSD_RESPONSE_TIMEOUT): its unit differs between the model servers.

    mxnet-model-server 1.0.5 (the EI image) reads it as seconds; multi-model-server 1.1.8 (AWS's 1.9.0
    images) as minutes, and 1.1.11 as minutes unless default_response_timeout_seconds is set (read in
    their WorkerThread and ConfigManager classes).
    """
    if os.path.basename(model_server or "") == "mxnet-model-server":
        return seconds
    return -(-seconds // 60)


def write_config(run_dir, store, port, mgmt_port, settings, host="0.0.0.0", model_server=None, jvm_args=None,
                 layout=None):
    """MMS's config.properties for the worker layout `layout` (default: the one chosen without the model's size)."""
    layout = layout or choose_layout(settings)
    model_server = model_server or model_server_command()
    config = os.path.join(run_dir, "config.properties")
    lines = [
        "inference_address=http://%s:%d" % (host, port),
        "management_address=http://127.0.0.1:%d" % mgmt_port,
        "model_store=%s" % store,
        # MMS loads the models it finds at start with a batch size of one: a batching server registers its model
        # through the management API instead (register_batched_model)
        "load_models=%s" % ("" if settings.registers_batched_model else "ALL"),
        "default_workers_per_model=%d" % layout.workers,
        # The worker's model load (with warm-up) and each request must finish within this.
        "default_response_timeout=%d" % response_timeout_setting(model_server, settings.response_timeout),
        "default_response_timeout_seconds=%d" % settings.response_timeout,
        "decode_input_request=false",
        "enable_envvars_config=true",
        "max_request_size=%d" % settings.max_request_bytes,
        # MMS's queue holds whatever the front door lets through (SSD_MAX_CONCURRENT_REQUESTS), and more
        "job_queue_size=%d" % max(100, layout.max_concurrent_requests),
        # answers are kept under SSD_MAX_RESPONSE_BYTES by the handler; MMS gets room for its framing
        "max_response_size=%d" % (settings.max_response_bytes + (1 << 20)),
        "vmargs=%s" % " ".join([JVM_ARGS] + ([jvm_args] if jvm_args else [])),
    ]
    with open(config, "w") as stream:
        stream.write("\n".join(lines) + "\n")
    return config


def _python_path(settings):
    """Where workers import the entry point from: user code shipped in model.tar.gz's code/ first (SageMaker's
    layout), then the baked code/inference.py; this package itself is installed."""
    paths = [p for p in (settings.user_code_dir, settings.code_dir) if os.path.isdir(p)]
    if os.environ.get("PYTHONPATH"):
        paths.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(paths)


def register_batched_model(management, settings, layout, timeout=10.0):
    """Register the store's model with MMS's batching (SSD_SERVER_BATCH_SIZE, SSD_SERVER_BATCH_DELAY_MS) and the
    layout's workers; MMS loads it in the background (wait_ready watches). Raises RuntimeError if MMS refuses or
    answers something that is not HTTP, OSError if it does not answer."""
    try:
        status, body = management.register(MODEL_NAME, settings, layout, synchronous=False, timeout=timeout)
    except http.client.HTTPException as err:
        raise RuntimeError("the model server's answer to registering the model with batch size %d was not HTTP "
                           "(%s: %s)" % (settings.server_batch_size, err.__class__.__name__, err))
    if status not in (200, 202):
        raise RuntimeError("the model server refused to register the model with batch size %d: %d %s" % (
            settings.server_batch_size, status, body.strip()))
    LOG.info("model registered with server-side batching: up to %d request(s) per worker call, waiting up to "
             "%d ms to fill one", settings.server_batch_size, settings.server_batch_delay_ms)


def _alive_since(pid, marked_at):
    """Whether process `pid` runs (not a zombie) and is the one that wrote a marker at `marked_at`."""
    import psutil  # a dependency of Multi Model Server, pinned in every image and environment
    try:
        process = psutil.Process(pid)
        return process.status() != psutil.STATUS_ZOMBIE and process.create_time() <= marked_at + 1.0
    except psutil.Error:
        return False


class ModelServer(object):
    """One MMS process group started by us, and only ours, stopped on exit; its workers as `layout` says (default:
    the layout chosen without the model's size)."""

    def __init__(self, port, settings, run_dir=None, handler=HANDLER, python_path=None, model_path=None,
                 host="0.0.0.0", worker_env=None, jvm_args=None, layout=None):
        self.port = port
        self.jvm_args = jvm_args
        self.settings = settings
        self.layout = layout or choose_layout(settings)
        self.host = host
        self.model_path = model_path
        self.handler = handler
        self.python_path = python_path or _python_path(settings)
        self.worker_env = worker_env or {}
        self.run_dir = run_dir or tempfile.mkdtemp(prefix="ssd-serving-")
        self.mgmt_port = internal_port(taken=(port,), safe_range=settings.safe_port_range)
        self.management = Management(self.mgmt_port)
        self.process = None
        self.stopping = False
        self.ready_dir = os.path.join(self.run_dir, "ready")
        self.multi_model = settings.multi_model
        # a batching server's model is registered once MMS's management API answers (register_batched_model), so
        # it is not MMS's default model: /invocations goes to its own path
        self.invocations_path = "/predictions/%s" % MODEL_NAME if settings.registers_batched_model else None
        self._registered = False
        self.store = os.path.join(self.run_dir, "store")

    def request_stop(self):
        """Ask the server's process group to stop; safe inside a signal handler (it does not wait)."""
        self.stopping = True
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except OSError:
                pass

    def models_loaded(self):
        """How many live workers have their model loaded (see Environment.mark_model_loaded).

        The marker of a worker that died is removed: MMS starts a new worker, which writes its own.
        """
        try:
            names = os.listdir(self.ready_dir)
        except OSError:
            return 0
        alive = 0
        for name in names:
            path = os.path.join(self.ready_dir, name)
            try:
                pid = int(name.rsplit("-", 1)[-1])
                marked_at = os.stat(path).st_mtime
            except (ValueError, OSError):
                continue
            if _alive_since(pid, marked_at):
                alive += 1
            else:
                try:
                    os.unlink(path)
                except OSError:
                    pass
        return alive

    def health(self):
        """(ready, reason): ready while the model server runs and a worker with the model is alive."""
        if self.process is None or self.process.poll() is not None:
            return False, "the model server is not running"
        if self.stopping:
            return False, "the server is stopping"
        if self.multi_model:  # healthy while it can take models: none is loaded at start
            return True, "ok"
        if not self.models_loaded():
            return False, "no model server worker has the model loaded (starting, or restarting a worker)"
        return True, "ok"

    def wait(self):
        """The server's exit status, once it has exited."""
        while self.process.poll() is None:
            time.sleep(0.5)
        return self.process.returncode

    def start(self):
        workers, threads = self.layout.workers, self.layout.threads
        store = _write_model_store(self.store, self.handler, self.model_path, self.multi_model)
        model_server = model_server_command()
        config = write_config(self.run_dir, store, self.port, self.mgmt_port, self.settings, host=self.host,
                              jvm_args=self.jvm_args,
                              model_server=model_server, layout=self.layout)
        env = dict(os.environ)
        env.update(self.worker_env)
        tmp = os.path.join(self.run_dir, "tmp")
        os.makedirs(tmp)
        os.makedirs(self.ready_dir)
        env[READY_DIR_ENV] = self.ready_dir
        # MMS keeps its pid file in the temp dir: a private one lets several servers coexist.
        env.update({"TMPDIR": tmp, "TEMP": tmp, "PYTHONPATH": self.python_path, "OMP_NUM_THREADS": str(threads),
                    "MXNET_CPU_WORKER_NTHREADS": env.get("MXNET_CPU_WORKER_NTHREADS", "1")})
        command = [model_server, "--start", "--foreground", "--mms-config", config,
                   "--model-store", store, "--log-config", log_config(model_server)]
        LOG.info("starting %s on %s:%d with %d worker(s) x %d thread(s)", os.path.basename(command[0]),
                 self.host, self.port, workers, threads)
        self.process = subprocess.Popen(command, env=env, cwd=self.run_dir, start_new_session=True)

    def wait_ready(self, timeout, give_up=None):
        deadline = time.time() + timeout
        while time.time() < deadline and not self.stopping and not (give_up and give_up()):
            if self.process.poll() is not None:
                return False
            if self.multi_model and self.management.answers():
                return True
            if self.settings.registers_batched_model and not self._registered and self.management.answers():
                try:
                    register_batched_model(self.management, self.settings, self.layout)
                except (OSError, RuntimeError) as err:
                    LOG.error("%s", err)
                    return False
                self._registered = True
            if self.models_loaded() and "READY" in (self.management.worker_statuses(MODEL_NAME) or []):
                return True
            sleep_until(0.5, give_up)
        return False

    def stop(self, grace=STOP_GRACE_SECONDS):
        """Stop MMS and every worker it started (they share its process group); SIGKILL after `grace` s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
            except OSError:
                return
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                LOG.warning("the model server did not stop within %.0f s of SIGTERM; killing it", grace)
        # What is left of its process group has no one left to answer to: workers of an MMS that exited on its own
        # (a port it could not bind, a crash; a fresh-clone bench run left one behind), a worker still in the middle
        # of a request after a drain timeout or a second signal (it would finish its forward after the server has
        # stopped), or an MMS that ignored SIGTERM.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except OSError:
            pass  # the group is empty
        self.process.wait()

    def cleanup(self):
        shutil.rmtree(self.run_dir, ignore_errors=True)


def sleep_until(seconds, wake=None, step=0.05):
    """Sleep up to `seconds`, returning early once `wake()` (a flag a signal handler sets) is true."""
    deadline = time.time() + seconds
    while time.time() < deadline and not (wake and wake()):
        time.sleep(min(step, max(0.0, deadline - time.time())))

