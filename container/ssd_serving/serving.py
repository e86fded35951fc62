"""The server entry point: check the model, configure and start Multi Model Server, watch it, drain and stop it.

Layout: the front door (front.py) owns the public port (SAGEMAKER_BIND_TO_PORT, default 8080) and answers
`/ping` from what the workers report; Multi Model Server listens on loopback ports only (inference and
management) and runs the workers. Each worker writes a marker named after its pid once its model is
loaded (Environment.mark_model_loaded); a worker counts as ready while that process is alive.

Exit statuses: 0 stopped by SIGTERM or SIGINT (after the drain), 1 the public port cannot be listened on,
2 a bad setting or a model that fails the start-up checks, 3 no worker loaded the model at start, 4 none has
had it for SSD_STARTUP_TIMEOUT after workers died, 5 the model server (its JVM) exited, 6 the front door
stopped serving the public port.
"""
from __future__ import absolute_import

import argparse
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from . import artifact, page
from .environment import MODEL_DIR_ENV, PORT_ENV, READY_DIR_ENV, Environment
from .errors import ModelLoadError
from .front import FrontDoor
from .memory import memory_size, plan_memory, worker_estimate, workers_that_fit
from .model import candidate_contexts, choose_graph, find_model_dir, verify_params
from .multimodel import Models, management_request, registration_path
from .ports import INTERNAL_PORTS, MMS_PORT_LIMIT, free_port, port_is_free

LOG = logging.getLogger("ssd_serving.serving")

MODEL_NAME = "model"
HANDLER = "ssd_serving.handler:handle"
# After the drain the model server has nothing left to answer: it stops in about a second (measured), and a
# default drain (20 s) plus this stays within the 30 s SageMaker gives between SIGTERM and SIGKILL.
STOP_GRACE_SECONDS = 5
EXIT_MODEL_SERVER_EXITED = 5
EXIT_FRONT_DOOR_STOPPED = 6
# the front door waits this much longer than MMS gives a worker, so that MMS's own timeout answers first
UPSTREAM_GRACE_SECONDS = 30
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


def preflight(settings=None):
    """Refuse to start (exit with a message) rather than serve a model that cannot load.

    Also picks the graph the workers will load (fp32 or int8, see precision.py) and logs which and why.
    Returns the model folder found and that choice.
    """
    settings = settings or Environment()
    found = find_model_dir(settings=settings)
    # an int8 graph on MXNet 1.4.1 (EI image) or on a GPU is refused here, saying why, before MXNet fails to read it
    choice = choose_graph(found, artifact.read_metadata(found), settings)
    model_dir, meta = choice.model_dir, choice.meta
    verify_params(model_dir, meta)
    import mxnet as mx
    try:
        mx.sym.load(os.path.join(model_dir, meta.get("symbol_file", artifact.SYMBOL_FILE)))
    except Exception as err:
        raise ModelLoadError("the graph in %s cannot be read by MXNet %s: %s" % (model_dir, mx.__version__, err))
    weights = meta.get("weights", {})
    LOG.info("model %s%s in %s; weights from %s (%s), sha256 %s", meta["model_name"],
             " (DEMO model trained on synthetic shapes, not a pretrained detector)" if meta.get("demo") else "",
             model_dir, weights.get("source"), weights.get("location"), meta.get("params_sha256"))
    LOG.info("serving the %s graph: %s", choice.precision, choice.reason)
    if choice.warning:
        LOG.warning("%s", choice.warning)
    params_bytes = os.path.getsize(os.path.join(model_dir, meta.get("params_file", artifact.PARAMS_FILE)))
    device_name = candidate_contexts(settings.context)[0][0]
    memory, limited = memory_size()
    fit = workers_that_fit(memory, params_bytes)
    why = settings.choose_layout(params_bytes, device_name, max_workers=fit)
    LOG.info("%d worker(s) x %d thread(s): %s", settings.workers, settings.threads, why)
    if settings.workers > fit:
        LOG.warning("%d worker(s) of about %d MB each may not fit in %s%d MB: the kernel would kill one for memory "
                    "(the model server then starts another, and /ping answers 503 meanwhile)", settings.workers,
                    worker_estimate(params_bytes) // (1024 * 1024), "the container's " if limited else "",
                    memory // (1024 * 1024))
    return found, choice


def _model_server_command():
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


def write_config(run_dir, store, port, mgmt_port, settings, host="0.0.0.0", model_server=None, jvm_args=None):
    model_server = model_server or _model_server_command()
    config = os.path.join(run_dir, "config.properties")
    lines = [
        "inference_address=http://%s:%d" % (host, port),
        "management_address=http://127.0.0.1:%d" % mgmt_port,
        "model_store=%s" % store,
        # MMS loads the models it finds at start with a batch size of one: a batching server registers its model
        # through the management API instead (register_batched_model)
        "load_models=%s" % ("" if settings.registers_batched_model else "ALL"),
        "default_workers_per_model=%d" % settings.workers,
        # The worker's model load (with warm-up) and each request must finish within this.
        "default_response_timeout=%d" % response_timeout_setting(model_server, settings.response_timeout),
        "default_response_timeout_seconds=%d" % settings.response_timeout,
        "decode_input_request=false",
        "enable_envvars_config=true",
        "max_request_size=%d" % settings.max_request_bytes,
        # MMS's queue holds whatever the front door lets through (SSD_MAX_CONCURRENT_REQUESTS), and more
        "job_queue_size=%d" % max(100, settings.max_concurrent_requests),
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


WARM_UP_ROUNDS = 6
WARM_UP_BUDGET_S = 0.5


def warm_up_frontend(port, workers=1, timeout=60.0, rounds=WARM_UP_ROUNDS, budget_s=WARM_UP_BUDGET_S):
    """Photo-sized requests through the front door once the model is loaded, `workers` at a time so that every
    worker takes some, for `rounds` rounds or until `budget_s` is spent (one round at least). A fresh JVM and
    each worker's channel run MMS's request path cold: after one small request the first client still waited
    18 ms in the queue against 3.5 ms later, and the next dozen requests paid a few ms each (demo model)."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.request import Request, urlopen
    from .service import warm_up_photo
    body = warm_up_photo()

    def one(_):
        request = Request("http://127.0.0.1:%d/invocations" % port, data=body, headers={"Content-Type": "image/jpeg"})
        with urlopen(request, timeout=timeout) as reply:
            reply.read()

    started = time.time()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in range(rounds):
                list(pool.map(one, range(workers)))
                if time.time() - started > budget_s:
                    break
    except Exception as err:  # a warm-up must never stop the server; the first client pays instead
        LOG.warning("warm-up request through port %d failed: %s", port, err)


def worker_status(mgmt_port, timeout=2.0):
    """MMS's view of the model's workers, e.g. ['READY'], or None if it does not answer."""
    try:
        from urllib.request import urlopen
        with urlopen("http://127.0.0.1:%d/models/%s" % (mgmt_port, MODEL_NAME), timeout=timeout) as reply:
            described = json.loads(reply.read().decode("utf-8"))
    except Exception:
        return None
    if isinstance(described, list):  # multi-model-server 1.1 answers a list
        described = described[0] if described else {}
    return [worker.get("status") for worker in described.get("workers", [])]


def management_answers(mgmt_port, timeout=2.0):
    """Whether MMS's management API answers (a multi-model endpoint is ready to load models then)."""
    try:
        from urllib.request import urlopen
        with urlopen("http://127.0.0.1:%d/models" % mgmt_port, timeout=timeout) as reply:
            return reply.status == 200
    except Exception:
        return False


def register_batched_model(mgmt_port, settings, timeout=10.0):
    """Register the store's model with MMS's batching (SSD_SERVER_BATCH_SIZE, SSD_SERVER_BATCH_DELAY_MS) and the
    workers wanted; MMS loads it in the background (wait_ready watches). Raises RuntimeError if MMS refuses."""
    status, body = management_request(mgmt_port, "POST", registration_path(MODEL_NAME, settings, synchronous=False),
                                      timeout)
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
    """One MMS process group started by us, and only ours, stopped on exit."""

    def __init__(self, port, settings, run_dir=None, handler=HANDLER, python_path=None, model_path=None,
                 host="0.0.0.0", worker_env=None, jvm_args=None):
        self.port = port
        self.jvm_args = jvm_args
        self.settings = settings
        self.host = host
        self.model_path = model_path
        self.handler = handler
        self.python_path = python_path or _python_path(settings)
        self.worker_env = worker_env or {}
        self.run_dir = run_dir or tempfile.mkdtemp(prefix="ssd-serving-")
        self.mgmt_port = internal_port(taken=(port,), safe_range=settings.safe_port_range)
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
        workers, threads = self.settings.workers, self.settings.threads
        store = _write_model_store(self.store, self.handler, self.model_path, self.multi_model)
        model_server = _model_server_command()
        config = write_config(self.run_dir, store, self.port, self.mgmt_port, self.settings, host=self.host,
                              jvm_args=self.jvm_args,
                              model_server=model_server)
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
            if self.multi_model and management_answers(self.mgmt_port):
                return True
            if self.settings.registers_batched_model and not self._registered and management_answers(self.mgmt_port):
                try:
                    register_batched_model(self.mgmt_port, self.settings)
                except (OSError, RuntimeError) as err:
                    LOG.error("%s", err)
                    return False
                self._registered = True
            if self.models_loaded() and "READY" in (worker_status(self.mgmt_port) or []):
                return True
            _sleep(0.5, give_up)
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


def _sleep(seconds, wake=None, step=0.05):
    """Sleep up to `seconds`, returning early once `wake()` (a flag a signal handler sets) is true."""
    deadline = time.time() + seconds
    while time.time() < deadline and not (wake and wake()):
        time.sleep(min(step, max(0.0, deadline - time.time())))


def watch(server, unhealthy_limit, poll=0.5, front=None, stop_requested=None):
    """Follow the running server until it exits, stops or `stop_requested()`; return the exit status.

    A worker that dies is restarted by MMS, and /ping answers 503 until the new one has loaded the
    model. If no worker has the model for `unhealthy_limit` seconds, the model server (its JVM) exits, or
    the front door stops serving the public port, the server stops with a message instead of staying up
    unable to serve, or healthy in front of nothing (SageMaker then replaces the container).
    """
    unhealthy_since = None
    while not server.stopping and not (stop_requested and stop_requested()):
        if server.process.poll() is not None:
            if server.stopping:
                break
            LOG.error("the model server (%s and its JVM) exited with status %d; stopping with exit status %d so "
                      "the endpoint replaces this container", os.path.basename(server.process.args[0]),
                      server.process.returncode, EXIT_MODEL_SERVER_EXITED)
            return EXIT_MODEL_SERVER_EXITED
        failure = front.failure() if front is not None else None
        if failure:
            LOG.error("the front door stopped serving port %d: %s; stopping with exit status %d so the endpoint "
                      "replaces this container", front.port, failure, EXIT_FRONT_DOOR_STOPPED)
            return EXIT_FRONT_DOOR_STOPPED
        ready, reason = server.health()
        now = time.time()
        if ready and unhealthy_since is not None:
            LOG.info("a worker has the model loaded again after %.1f s; /ping answers 200", now - unhealthy_since)
            unhealthy_since = None
        elif not ready and unhealthy_since is None and not server.stopping:
            LOG.warning("%s: /ping answers 503 until a worker has the model loaded", reason)
            unhealthy_since = now
        elif not ready and not server.stopping and now - unhealthy_since > unhealthy_limit:
            LOG.error("no worker has had the model loaded for %.0f s (%s); stopping so the endpoint replaces "
                      "this container", now - unhealthy_since, reason)
            return 4
        _sleep(poll, stop_requested)
    return 0


def _serve_until_stopped(front, server, settings, stop, warmed_up, public_port):
    """From the model server's start until a signal or a failure; returns the exit status."""
    if not server.wait_ready(settings.startup_timeout, give_up=stop.requested):
        if stop.requested() or server.stopping:
            return 0
        if server.process.poll() is not None:
            LOG.error("the model server exited with status %d before the model was ready", server.process.returncode)
            return 3
        LOG.error("the model did not become ready within %.0f s; stopping so the endpoint is not "
                  "reported healthy without a model", settings.startup_timeout)
        return 3
    if settings.multi_model:
        warmed_up.set()  # no model to warm up: each is warmed up by its worker when SageMaker loads it
        LOG.info("ready: multi-model endpoint, POST http://localhost:%d/models to load a model, POST "
                 "/models/{name}/invoke, GET /ping", public_port)
        return watch(server, settings.startup_timeout, front=front, stop_requested=stop.requested)
    # through the front door, so that its path and MMS's are both warm for the first client
    warm_up_frontend(public_port, settings.workers)
    warmed_up.set()
    LOG.info("ready: POST http://localhost:%d/invocations, GET /ping", public_port)
    return watch(server, settings.startup_timeout, front=front, stop_requested=stop.requested)


class _StopRequest(object):
    """The signals asking the server to stop: set by the handler (plain assignments only: a signal handler
    must not take a lock the thread it interrupted may hold), read by the main loop."""

    def __init__(self):
        self.signals = 0
        self.first_at = None
        self.signum = None

    def requested(self):
        return self.signals > 0

    def at_once(self):
        return self.signals > 1


def drain(front, server, stop, timeout):
    """Let the requests in flight at the stop signal be answered, for up to `timeout` s or until a second
    signal; new ones are refused meanwhile. Logs what it did."""
    started = time.time()
    LOG.info("signal %d: draining %d request(s) in flight for up to %.0f s; /ping and new requests answer 503",
             stop.signum, front.admission.in_flight, timeout)
    at_start, left = front.drain(timeout, abort=lambda: stop.at_once() or server.process.poll() is not None)
    took = time.time() - started
    if not left:
        LOG.info("drained: %d request(s) answered in %.1f s", at_start, took)
    elif stop.at_once():
        LOG.warning("a second signal: stopping at once with %d of %d request(s) still in flight (%.1f s into the "
                    "drain)", left, at_start, took)
    elif server.process.poll() is not None:
        LOG.warning("the model server exited during the drain; %d request(s) unanswered", left)
    else:
        LOG.warning("drain timeout: %d of %d request(s) still in flight after %.1f s (SSD_DRAIN_TIMEOUT); "
                    "stopping anyway", left, at_start, took)


def serve(port=None):
    """Run the server until it stops or SIGTERM arrives; return the exit status."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Environment()
        # a multi-model endpoint starts with no model: each is checked when SageMaker loads it (multimodel.py)
        model_dir = settings.sagemaker_model_dir if settings.multi_model else preflight(settings)[0]
    except ModelLoadError as err:  # SettingError included: a bad setting stops here, naming it
        LOG.error("not starting: %s", err)
        return 2
    worker_env = {}
    if model_dir != settings.sagemaker_model_dir:
        # workers run in another directory: give them the absolute path
        worker_env[MODEL_DIR_ENV] = os.path.abspath(model_dir)
    public_port = port or settings.http_port
    # MMS on loopback only; the front door owns the public port and answers /ping honestly
    plan = plan_memory(settings)
    if plan.in_flight < settings.max_concurrent_requests:
        LOG.warning("%d requests in flight (SSD_MAX_CONCURRENT_REQUESTS) would not fit in the model server's heap "
                    "with %d MB of memory; letting %d through at a time", settings.max_concurrent_requests,
                    plan.memory // (1024 * 1024), plan.in_flight)
        settings.max_concurrent_requests = plan.in_flight
    LOG.info(plan.describe())
    server = ModelServer(internal_port(taken=(public_port,), safe_range=settings.safe_port_range), settings,
                         host="127.0.0.1", worker_env=worker_env, jvm_args=plan.jvm_args())
    warmed_up = threading.Event()

    def public_health():
        """/ping stays 503 until the launcher's warm-up request has been through the front door too:
        a client sent in the moment /ping turned 200 otherwise queued behind it (measured: the first
        request cost 1.23x a steady one for ssd_512_resnet50, 2.2x for the demo model)."""
        ready, reason = server.health()
        if ready and not warmed_up.is_set():
            return False, "the model is loaded; warming up the request path"
        return ready, reason

    try:
        front = FrontDoor(public_port, server.port, public_health, settings.max_request_bytes,
                          upstream_timeout=settings.response_timeout + UPSTREAM_GRACE_SECONDS,
                          max_in_flight=settings.max_concurrent_requests, queue_timeout=settings.queue_timeout,
                          execution_parameters=settings.execution_parameters(),
                          models=Models(server.mgmt_port, server.store, settings) if settings.multi_model else None,
                          invocations_path=server.invocations_path,
                          web_page=page.html() if settings.web_page else None,
                          server_timing=settings.request_metrics)
    except OSError as err:
        LOG.error("not starting: cannot listen on port %d: %s", public_port, err)
        server.cleanup()
        return 1

    stop = _StopRequest()

    def _terminate(signum, frame):
        # no logging here: a handler that writes to stdout while the main thread is writing to it fails
        # ("reentrant call"); the main loop logs the signal once it wakes, within _sleep's step
        stop.signals += 1
        if stop.signals == 1:
            stop.first_at, stop.signum = time.time(), signum
            front.stop_admitting()  # at once, not when the main loop wakes
        else:
            server.request_stop()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    status = None
    try:
        front.start()
        server.start()
        status = _serve_until_stopped(front, server, settings, stop, warmed_up, public_port)
        return status
    finally:
        if stop.requested() and not stop.at_once() and not server.stopping:
            drain(front, server, stop, settings.drain_timeout)
        elif stop.at_once():
            LOG.warning("signal %d and another: stopping at once", stop.signum)
        front.stop()  # the public port closes: new connections are refused from here on
        server.stop(grace=1 if stop.at_once() else STOP_GRACE_SECONDS)
        if front.admission.in_flight:
            # requests the model server no longer answers: a moment for their 503 JSON to be written
            # before this process exits and their clients see a reset connection instead
            front.drain(1.0)
        server.cleanup()
        if stop.requested():
            LOG.info("stopped %.1f s after signal %d%s", time.time() - stop.first_at, stop.signum,
                     "" if status is None else " (exit status %d)" % status)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.add_argument("--port", type=int, help="port to serve on (default: %s or 8080)" % PORT_ENV)
    args = parser.parse_args(argv)
    sys.exit(serve(args.port))


if __name__ == "__main__":
    main()
