"""The local smoke test: `docker run IMAGE serve`, wait for /ping, post a real photo, check the answer, stop."""
from __future__ import absolute_import

import binascii
import os
import socket
import time

from ssd_serving.ports import free_port

from . import answers, docker
from .photos import Photo
from .report import DeployError, note, step

from urllib import error as urlerror
from urllib import request as urlrequest

# Never through a proxy: the container listens on this host.
_OPENER = urlrequest.build_opener(urlrequest.ProxyHandler({}))
RETRY_STATUSES = (502, 503, 504)


def _http(method, url, body=None, headers=None, timeout=5):
    """(status, body bytes); status None when nothing answered."""
    request = urlrequest.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read()
    except urlerror.HTTPError as err:
        return err.code, err.read()
    except (urlerror.URLError, socket.timeout, ConnectionError, OSError):
        return None, b""


def _running(container):
    code, out, _ = docker.output("inspect", "--format", "{{.State.Running}} {{.State.ExitCode}}", container)
    if code != 0:
        return False, "gone"
    running, exit_code = out.split()
    return running == "true", exit_code


def _wait_for(what, deadline, container, attempt):
    """Call attempt() until it returns a value; fail if the container exits or time runs out."""
    started = time.time()
    last_report = started
    while True:
        value = attempt()
        if value is not None:
            return value
        running, exit_code = _running(container)
        if not running:
            raise DeployError("the container exited (status %s) before %s" % (exit_code, what),
                              "read its log above; run the image by hand with `docker run IMAGE serve` to debug")
        if time.time() > deadline:
            raise DeployError("no %s within --test-timeout" % what,
                              "read the container's log above; raise --test-timeout if the model is just slow to load")
        if time.time() - last_report >= 15:
            note("still waiting for %s (%ds)" % (what, time.time() - started))
            last_report = time.time()
        time.sleep(0.5)


def run(settings):
    """Serve the local image, check /ping and one real request, print the detections; returns the answer."""
    docker.check_engine()
    image = settings.local_image
    docker.require_image(image)
    photo = Photo(settings.photo)
    try:
        port = settings.port or free_port()
    except RuntimeError as err:
        raise DeployError(str(err), "pass --port")
    url = "http://127.0.0.1:%d" % port
    name = "ssd-smoke-%s" % binascii.hexlify(os.urandom(4)).decode()
    step("docker run %s serve  (container %s, port %d via SAGEMAKER_BIND_TO_PORT)" % (image, name, port))
    code, container, err = docker.output("run", "--detach", "--name", name, "--network", "host",
                                         "--env", "SAGEMAKER_BIND_TO_PORT=%d" % port, image, "serve")
    if code != 0:
        docker.output("rm", "--force", name)  # docker may have created it before failing to start it
        raise DeployError("docker could not start `%s serve`: %s" % (image, err),
                          "the image must start its server on `docker run IMAGE serve` (SageMaker's contract); "
                          "check --image, or rebuild it with `build`")
    deadline = time.time() + settings.test_timeout
    try:
        started = time.time()
        _wait_for("a 200 from GET /ping", deadline, container,
                  lambda: True if _http("GET", url + "/ping", timeout=2)[0] == 200 else None)
        note("GET /ping answered 200 after %.1fs" % (time.time() - started))

        step("POST /invocations with %s" % photo.describe())

        def post():
            status, body = _http("POST", url + "/invocations", photo.data,
                                 {"Content-Type": photo.content_type, "Accept": "application/json"}, timeout=60)
            if status in (None,) + RETRY_STATUSES:
                return None
            return status, body
        status, body = _wait_for("an answer to POST /invocations", deadline, container, post)
        if status != 200:
            raise DeployError("POST /invocations answered HTTP %d: %r" % (status, body[:300]),
                              "read the container's log above")
        document = answers.parse(body, "the local container", photo.size)
        for line in answers.table(document):
            note(line)
        if (document.get("model") or {}).get("demo"):
            note("WARNING: the image serves the DEMO model (it could not get the real weights when it was built)")
        return document
    except DeployError:
        _, logs, logs_err = docker.output("logs", "--tail", "60", container)
        note("last lines of the container's log:")
        for line in (logs + "\n" + logs_err).strip().splitlines():
            note("| " + line)
        raise
    finally:
        step("stopping container %s (docker stop: SIGTERM, SIGKILL after 30 s, as SageMaker does)" % name)
        started = time.time()
        docker.output("stop", "--time", "30", container)
        note("stopped in %.1fs" % (time.time() - started))
        docker.output("rm", "--force", container)
