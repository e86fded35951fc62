"""The launcher's supervision of what it started: the model server's workers and JVM and the front door, the stop
signals and the drain they start, and the one table of the launcher's exit statuses."""
from __future__ import absolute_import

import logging
import os
import signal
import time

from .model_server import STOP_GRACE_SECONDS, sleep_until
from .startup import warm_up_frontend

# the launcher's lines keep the one name they had before it was split (docs/int8.md shows them)
LOG = logging.getLogger("ssd_serving.serving")

EXIT_STOPPED = 0
EXIT_PUBLIC_PORT_UNAVAILABLE = 1
EXIT_NOT_STARTED = 2
EXIT_MODEL_NOT_READY = 3
EXIT_MODEL_LOST = 4
EXIT_MODEL_SERVER_EXITED = 5
EXIT_FRONT_DOOR_STOPPED = 6
# what each exit status means, as the launcher's --help lists them (exit_statuses_text)
EXIT_STATUSES = (
    (EXIT_STOPPED, "stopped by SIGTERM or SIGINT (after the drain)"),
    (EXIT_PUBLIC_PORT_UNAVAILABLE, "the public port cannot be listened on"),
    (EXIT_NOT_STARTED, "a bad setting or a model that fails the start-up checks"),
    (EXIT_MODEL_NOT_READY, "no worker loaded the model at start"),
    (EXIT_MODEL_LOST, "none has had it for SSD_STARTUP_TIMEOUT after workers died"),
    (EXIT_MODEL_SERVER_EXITED, "the model server (its JVM) exited"),
    (EXIT_FRONT_DOOR_STOPPED, "the front door stopped serving the public port"),
)


def exit_statuses_text():
    """The exit statuses as one sentence, for the launcher's docstring and --help."""
    return "Exit statuses: %s." % ", ".join("%d %s" % (status, meaning) for status, meaning in EXIT_STATUSES)


class StopRequest(object):
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


def stop_on_signals(front, server):
    """A StopRequest set by SIGTERM and SIGINT from now on: the first stops the front door admitting requests (the
    drain follows), a second stops the model server at once."""
    stop = StopRequest()

    def _terminate(signum, frame):
        # no logging here: a handler that writes to stdout while the main thread is writing to it fails
        # ("reentrant call"); the main loop logs the signal once it wakes, within sleep_until's step
        stop.signals += 1
        if stop.signals == 1:
            stop.first_at, stop.signum = time.time(), signum
            front.stop_admitting()  # at once, not when the main loop wakes
        else:
            server.request_stop()

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    return stop


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
            return EXIT_MODEL_LOST
        sleep_until(poll, stop_requested)
    return EXIT_STOPPED


def serve_until_stopped(front, server, settings, stop, warmed_up, public_port):
    """From the model server's start until a signal or a failure: wait for the model, warm up, watch; returns the
    exit status."""
    if not server.wait_ready(settings.startup_timeout, give_up=stop.requested):
        if stop.requested() or server.stopping:
            return EXIT_STOPPED
        if server.process.poll() is not None:
            LOG.error("the model server exited with status %d before the model was ready", server.process.returncode)
            return EXIT_MODEL_NOT_READY
        LOG.error("the model did not become ready within %.0f s; stopping so the endpoint is not "
                  "reported healthy without a model", settings.startup_timeout)
        return EXIT_MODEL_NOT_READY
    if settings.multi_model:
        warmed_up.set()  # no model to warm up: each is warmed up by its worker when SageMaker loads it
        LOG.info("ready: multi-model endpoint, POST http://localhost:%d/models to load a model, POST "
                 "/models/{name}/invoke, GET /ping", public_port)
        return watch(server, settings.startup_timeout, front=front, stop_requested=stop.requested)
    # through the front door, so that its path and MMS's are both warm for the first client
    warm_up_frontend(public_port, server.layout.workers)
    warmed_up.set()
    LOG.info("ready: POST http://localhost:%d/invocations, GET /ping", public_port)
    return watch(server, settings.startup_timeout, front=front, stop_requested=stop.requested)


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


def shut_down(front, server, stop, drain_timeout, status):
    """However serving ended (`status`, None when it raised): the drain a first signal asked for, then the public
    port closed, the model server's process group stopped and its run folder removed."""
    if stop.requested() and not stop.at_once() and not server.stopping:
        drain(front, server, stop, drain_timeout)
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
