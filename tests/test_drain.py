"""Stopping on SIGTERM, against the real server: the request in flight is answered, then the server exits 0.

SageMaker stops a container with SIGTERM and SIGKILL 30 s later. The request in flight here is a real one
that takes seconds (helpers.slow_request: a scene and large PNGs in one JSON request); the signal comes
while the model server works on it. Measured times are printed, not asserted; the bounds are generous
behaviour checks (the server stops, within its drain timeout and a few seconds).
"""
import contextlib
import signal
import time

import psutil
import pytest
import requests

from helpers import RawRequest, RunningServer, assert_scene_detected, demo_meta, left_running, slow_request

STOP_BOUND = 15.0   # seconds beyond the drain timeout that stopping the model server may take, generously


def _outcome(running, path):
    """The status of one new request to `path`, or the exception's name (a refused connection)."""
    try:
        if path == "/ping":
            reply = requests.get(running.url + "/ping", timeout=2)
        else:
            reply = running.post(b"{}", "application/json")
    except requests.RequestException as err:
        return err.__class__.__name__, None
    return reply.status_code, reply


def _assert_refused(outcome):
    status, reply = outcome
    if status == 503:
        assert reply.headers["Content-Type"] == "application/json" and reply.json()["status"] == 503, reply.text
        assert "stopping" in reply.json()["error"], reply.text
    else:
        assert status == "ConnectionError", status  # the port closed once the drain was over


def _server_processes(running):
    return psutil.Process(running.process.pid).children(recursive=True)


def _wait_until_taken(running, timeout=10.0):
    """Wait until the server logs that it took the signal. Python runs a signal handler when the main thread
    next gets the interpreter: a request the front door's thread answers in that moment (a CI run: the first
    /ping, a few ms after kill() returned, on a machine busy with the request in flight) is answered as before
    the signal, and no server can do otherwise."""
    deadline = time.time() + timeout
    while "signal 15: draining" not in running.output() and time.time() < deadline:
        time.sleep(0.01)


@contextlib.contextmanager
def _sigterm_with_a_request_in_flight(demo_model_dir, body, env=None):
    """A server of its own, SIGTERMed once the front door has read all of `body`'s request (it reads a body only
    in one of its slots, and forwards it from there): (server, the request, the server's processes, when)."""
    running = RunningServer(demo_model_dir, extra_env=env)
    try:
        running.wait_ready()
        started_processes = _server_processes(running)
        in_flight = RawRequest(running.port, body)
        in_flight.wait_until_read_by_server()
        signalled = time.time()
        running.process.send_signal(signal.SIGTERM)
        _wait_until_taken(running)
        yield running, in_flight, started_processes, signalled
    finally:
        running.stop()


def test_sigterm_answers_the_request_in_flight_refuses_new_ones_and_exits_0(demo_model_dir):
    body, boxes, class_ids = slow_request()
    with _sigterm_with_a_request_in_flight(demo_model_dir, body) as (running, in_flight, started_processes, signalled):
        pings, new_requests = [], []
        while in_flight.thread.is_alive():
            pings.append(_outcome(running, "/ping"))
            new_requests.append(_outcome(running, "/invocations"))
            time.sleep(0.2)
        status = running.process.wait(20 + STOP_BOUND)
        exited_after = time.time() - signalled
        output = running.output()
        print("\nSIGTERM with one request in flight: it got %s; exit %s %.1f s after the signal; /ping %s" % (
            getattr(in_flight.reply, "status_code", in_flight.reply), status, exited_after,
            sorted(set(p[0] for p in pings), key=str)))
        assert status == 0, output[-3000:]
        reply = in_flight.reply
        assert getattr(reply, "status_code", None) == 200, (reply, getattr(reply, "text", "")[:300], output[-3000:])
        documents = reply.json()
        assert len(documents) == 5 and all(d["image_size"] == [7900, 7900] for d in documents[1:])
        assert_scene_detected(boxes, class_ids, documents[0]["detections"], demo_meta()["classes"])
        # while it was answered, the server looked unhealthy and took nothing new
        assert pings and all(p[0] == 503 for p in pings), [p[0] for p in pings]
        assert all("stopping" in p[1].json()["error"] for p in pings)
        for outcome in new_requests:
            _assert_refused(outcome)
        _assert_refused(_outcome(running, "/invocations"))  # and after the exit
        assert "draining 1 request(s) in flight" in output and "drained: 1 request(s) answered in" in output, \
            output[-3000:]
        assert "stopped " in output and "after signal 15 (exit status 0)" in output, output[-3000:]
        assert not left_running(started_processes)  # the model server, its JVM and workers stopped with it


@pytest.mark.parametrize("how", ["drain timeout", "second signal"])
def test_the_drain_timeout_or_a_second_signal_stops_at_once(demo_model_dir, how):
    body, _, _ = slow_request(big_images=8)  # longer than the 1 s timeout and the wait for a second signal
    env = {"SSD_DRAIN_TIMEOUT": "1"} if how == "drain timeout" else {}
    with _sigterm_with_a_request_in_flight(demo_model_dir, body, env) as (running, in_flight, started_processes,
                                                                          signalled):
        if how == "second signal":
            time.sleep(0.5)
            running.process.send_signal(signal.SIGINT)
        status = running.process.wait(20 + STOP_BOUND)
        exited_after = time.time() - signalled
        in_flight.thread.join(30)
        output = running.output()
        print("\n%s: exit %s %.1f s after SIGTERM; the request in flight got %s" % (
            how, status, exited_after, getattr(in_flight.reply, "status_code", in_flight.reply)))
        assert status == 0, output[-3000:]
        # stopped before the request could finish: it got a JSON error or lost its connection, never a hang
        reply = in_flight.reply
        assert reply is not None and getattr(reply, "status_code", None) != 200, reply
        if not isinstance(reply, str):
            assert reply.status_code in (503, 504) and reply.json()["error"], reply.text
        expected = "drain timeout: 1 of 1 request(s) still in flight" if how == "drain timeout" else \
            "a second signal: stopping at once with 1 of 1 request(s) still in flight"
        assert expected in output, output[-3000:]
        # a worker in the middle of the request when the model server stops is killed with what is left of the model
        # server's process group, not left to finish its forward after the server stopped (found when this test
        # stopped sleeping 1 s before the signal): gone at once, not once its forward is done (SIGKILL takes no time
        # the machine's speed decides; the 2 s are for the kernel to reap them)
        assert not left_running(started_processes, timeout=2.0)
