"""The real server started for a bench, a soak or a test on a free port, waited for, and stopped with all it started."""
from __future__ import absolute_import, division, print_function

import os
import signal
import subprocess
import sys
import tempfile
import time

import psutil
import requests

from ssd_serving.ports import free_port

SERVING = ("-m", "ssd_serving.serving")
# What the launcher logs once the model is loaded and warmed up in every worker (serving.py).
READY_LINE = "ready:"
# What MMS logs when a worker cannot load the model; it would retry that worker for minutes.
LOAD_FAILED_LINE = "Load model failed"
LOG_TAIL_CHARS = 4000
# After the server itself has exited: how long what it started may take to follow before it is killed.
LEFTOVER_GRACE_S = 10


class ServerFailed(RuntimeError):
    """The server exited, or was not healthy or ready in time; the message ends with the tail of its log."""


def python_env(python=None, base=None):
    """`base` (default: this process's environment) to run `python` (default: this one) with: its venv's bin first
    on PATH, where serving looks for the model server (another venv's MMS would run its own Python), and
    unbuffered output, so that the log is current."""
    env = dict(os.environ if base is None else base)
    bin_dir = os.path.dirname(os.path.abspath(python or sys.executable))
    mine = os.path.dirname(os.path.abspath(sys.executable))
    others = [p for p in env.get("PATH", "").split(os.pathsep) if p and os.path.abspath(p) != mine]
    env["PATH"] = os.pathsep.join([bin_dir] + others)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def serve_command(python=None, launcher=SERVING, args=()):
    """`python -m ssd_serving.serving serve ARGS` (or `python LAUNCHER... serve ARGS`)."""
    return [python or sys.executable] + list(launcher) + ["serve"] + list(args)


class ServerProcess(object):
    """One server process (by default `python -m ssd_serving.serving serve`) in a session of its own, on a free port,
    its output in a log file: `log_path`, or a temporary file removed by stop().

    `env`: the whole environment (default: python_env(python)); then SSD_MODEL_DIR is `model_dir` (when given),
    SAGEMAKER_BIND_TO_PORT the port, and `extra_env` is applied last. `port_argument`: also pass `--port PORT`
    (a launcher that takes its port only so)."""

    def __init__(self, model_dir=None, extra_env=None, python=None, env=None, command=None, label="server",
                 log_path=None, port_argument=False):
        self.label = label
        self.python = python or sys.executable
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        env = dict(python_env(self.python) if env is None else env)
        if model_dir is not None:
            env["SSD_MODEL_DIR"] = model_dir
        env["SAGEMAKER_BIND_TO_PORT"] = str(self.port)
        env.update(extra_env or {})
        command = list(command or serve_command(self.python))
        if port_argument:
            command += ["--port", str(self.port)]
        self.temporary_log = log_path is None
        if self.temporary_log:
            self.log = tempfile.NamedTemporaryFile(prefix="ssd-server-", suffix=".log", delete=False)
            self.log_path = self.log.name
        else:
            self.log_path = log_path
            self.log = open(log_path, "w")
        self.started = time.time()
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)

    def output(self):
        with open(self.log_path, errors="replace") as stream:
            return stream.read()

    def _failed(self, what, tail=LOG_TAIL_CHARS):
        return ServerFailed("%s %s; the end of its log (%s):\n%s" % (self.label, what, self.log_path,
                                                                      self.output()[-tail:]))

    def _check_running(self):
        if self.process.poll() is not None:
            raise self._failed("exited with status %s" % self.process.returncode)

    def healthy(self):
        """GET /ping answers 200 with a healthy body (MMS alone answers 200 with "Unhealthy" or "Partial Healthy")."""
        try:
            reply = requests.get(self.url + "/ping", timeout=2)
        except requests.RequestException:
            return False
        return reply.status_code == 200 and "Unhealthy" not in reply.text and "Partial" not in reply.text

    def wait_healthy(self, timeout=300, poll_s=0.02):
        """Seconds from start until healthy(); ServerFailed if it exits first or `timeout` s after its start."""
        deadline = self.started + timeout
        while time.time() < deadline:
            self._check_running()
            if self.healthy():
                return time.time() - self.started
            time.sleep(poll_s)
        raise self._failed("was not healthy (GET /ping) %ss after its start" % timeout)

    def wait_ready(self, timeout=300, poll_s=0.05, fail_on_load_failure=True):
        """Seconds from start until the launcher logs that the model is loaded in every worker; ServerFailed if it
        exits first or `timeout` s after its start, or (`fail_on_load_failure`) at once when a worker could not
        load the model."""
        deadline = self.started + timeout
        while time.time() < deadline:
            output = self.output()
            if READY_LINE in output:
                return time.time() - self.started
            if fail_on_load_failure and LOAD_FAILED_LINE in output:
                raise self._failed("has a worker that could not load the model", tail=6000)
            self._check_running()
            time.sleep(poll_s)
        raise self._failed("was not ready (%r in its log) %ss after its start" % (READY_LINE, timeout))

    def wait_serving(self, timeout=180, poll_s=0.5):
        """This server, once healthy and ready (a worker that failed to load is left to MMS's retries); ServerFailed
        if it exits first or is not both within `timeout` s of its start."""
        # this class's waits, whatever a subclass (tests/helpers.RunningServer) makes of its own wait_ready
        ServerProcess.wait_healthy(self, timeout, poll_s)
        ServerProcess.wait_ready(self, timeout, poll_s, fail_on_load_failure=False)
        return self

    def stop(self, grace_s=60, leftover_grace_s=LEFTOVER_GRACE_S):
        """SIGTERM to the server (it drains and stops what it started), SIGKILL to its process group after `grace_s`;
        then whatever it had started and still runs `leftover_grace_s` later is killed too. Nothing it started runs
        afterwards."""
        if self.log.closed:  # stopped already: its pid may name another process now
            return
        started = []
        if self.process.poll() is None:  # not reaped: the pid is still this server's
            try:
                started = psutil.Process(self.process.pid).children(recursive=True)
            except psutil.Error:
                pass
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                kill_group(self.process.pid)
                self.process.wait()
        kill_group(self.process.pid)  # anything left in its session
        _, left = psutil.wait_procs(started, timeout=leftover_grace_s)
        for process in left:  # what it started in sessions of their own (MMS), had it not stopped them
            try:
                process.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(left, timeout=leftover_grace_s)
        self.log.close()
        if self.temporary_log:
            os.unlink(self.log_path)


def kill_group(pgid):
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:  # no process left in it
        pass
