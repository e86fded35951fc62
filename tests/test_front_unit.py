"""The front door's pieces in seconds: chunked bodies, limits, error rewriting, forwarding and admission.

The front door runs for real on a loopback port; what stands behind it is a small in-process HTTP server
playing Multi Model Server's part (it records what reached it and answers as told), so each behaviour is
checked without starting MMS or loading a model. tests/test_server.py and tests/test_faults.py check the
same door in front of the real model server.
"""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from ssd_serving.front import FrontDoor, normalise_error
from ssd_serving.ports import free_port

LIMIT = 1000


class Upstream(object):
    """Stands in for MMS: records each request it gets and answers with `self.answer` (status, headers, body)."""

    def __init__(self):
        self.seen = []
        self.answer = (200, {"Content-Type": "application/json"}, b'{"ok": true}')
        self.delay = 0.0
        self.hold = None  # a threading.Event: each request waits at the model server until it is set
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                upstream.seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                      "body": self.rfile.read(length)})
                if upstream.hold is not None:
                    upstream.hold.wait(30)
                time.sleep(upstream.delay)
                status, headers, body = upstream.answer
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _any

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def upstream():
    server = Upstream()
    yield server
    server.stop()


class Door(object):
    def __init__(self, upstream_port, healthy=True, **kwargs):
        self.healthy = healthy
        self.front = FrontDoor(free_port(), upstream_port, lambda: (self.healthy, "starting"), LIMIT,
                               host="127.0.0.1", **kwargs).start()
        self.url = "http://127.0.0.1:%d" % self.front.port

    def raw(self, payload):
        """Send bytes as they are (a request requests would not write) and return the raw answer."""
        with socket.create_connection(("127.0.0.1", self.front.port), timeout=10) as sock:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return received
                received += chunk


@pytest.fixture()
def door(upstream):
    made = Door(upstream.port)
    yield made
    made.front.stop()


def _json_error(reply, status):
    assert reply.status_code == status and reply.headers["Content-Type"] == "application/json", reply.text
    document = reply.json()
    assert document["status"] == status and document["error"]
    return document["error"]


def test_a_chunked_body_reaches_the_model_server_whole_with_its_length(door, upstream):
    def pieces():
        yield b'{"image": '
        yield b'"abc"}'
    reply = requests.post(door.url + "/invocations", data=pieces(), headers={"Content-Type": "application/json"})
    assert reply.status_code == 200 and reply.json() == {"ok": True}
    seen = upstream.seen[-1]
    assert seen["body"] == b'{"image": "abc"}' and seen["headers"]["Content-Length"] == "16"
    assert "Transfer-Encoding" not in seen["headers"]


def test_a_chunked_body_over_the_limit_is_413_before_it_is_forwarded(door, upstream):
    def pieces():
        for _ in range(20):
            yield b"x" * 100
    assert "limit is %d bytes" % LIMIT in _json_error(requests.post(door.url + "/invocations", data=pieces()), 413)
    assert upstream.seen == []


def test_a_malformed_chunked_body_is_400(door, upstream):
    answer = door.raw(b"POST /invocations HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
    assert answer.startswith(b"HTTP/1.1 400") and b"malformed chunked request body" in answer
    assert upstream.seen == []


def test_a_declared_length_over_the_limit_is_413_without_reaching_the_model_server(door, upstream):
    assert "limit is 1000 bytes" in _json_error(requests.post(door.url + "/invocations", data=b"x" * 1500), 413)
    answer = door.raw(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400") and b"non-negative integer" in answer
    assert upstream.seen == []


def test_forwarding_keeps_the_request_and_drops_hop_by_hop_headers(door, upstream):
    upstream.answer = (200, {"Content-Type": "image/png", "X-Custom": "kept", "Connection": "keep-alive"}, b"PNG")
    reply = requests.post(door.url + "/invocations?x=1", data=b"body", headers={
        "Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": "top_k=1", "Keep-Alive": "300",
        "TE": "trailers"})
    assert reply.status_code == 200 and reply.content == b"PNG"
    assert reply.headers["Content-Type"] == "image/png" and reply.headers["X-Custom"] == "kept"
    seen = upstream.seen[-1]
    assert (seen["method"], seen["path"], seen["body"]) == ("POST", "/invocations?x=1", b"body")
    assert seen["headers"]["X-Amzn-SageMaker-Custom-Attributes"] == "top_k=1"
    assert not {"Keep-Alive", "TE"} & set(seen["headers"])


def test_the_workers_emf_line_is_printed_by_the_front_door_and_not_forwarded(door, upstream, capsys):
    """The front door asks the worker for its EMF line (X-Ssd-Emf: relay, whatever the client sent) and prints it on
    a line of its own once the client has the answer; only a line that is EMF is printed."""
    line = '{"_aws":{"Timestamp":1},"Model":"m","RequestId":"r-1","Status":200}'
    upstream.answer = (200, {"Content-Type": "application/json", "X-Ssd-Emf": line}, b"{}")
    capsys.readouterr()
    reply = requests.post(door.url + "/invocations", data=b"body", headers={"X-Ssd-Emf": "print this"})
    assert reply.status_code == 200 and "X-Ssd-Emf" not in reply.headers
    assert upstream.seen[-1]["headers"]["X-Ssd-Emf"] == "relay"
    deadline = time.time() + 5
    out = ""
    while line not in out and time.time() < deadline:  # printed just after the answer, by the front door's thread
        out += capsys.readouterr().out
        time.sleep(0.01)
    assert out.splitlines().count(line) == 1
    upstream.answer = (200, {"Content-Type": "application/json", "X-Ssd-Emf": "not a metrics line"}, b"{}")
    assert requests.post(door.url + "/invocations", data=b"body").status_code == 200
    time.sleep(0.2)
    assert "not a metrics line" not in capsys.readouterr().out


def test_a_request_and_its_answer_each_leave_in_one_write(door, upstream, monkeypatch):
    """Head and body in one write, to MMS and to the client: in two, the reader is woken twice (a scheduler trace
    showed MMS's Netty loop and the client each woken twice per request)."""
    from ssd_serving import front
    to_upstream, to_client = [], []
    plain_send, plain_setup = front._UpstreamConnection.send, front.FrontDoorHandler.setup

    def send(connection, data):
        to_upstream.append(bytes(data))
        return plain_send(connection, data)

    class Recording(object):
        """The front door's writer to its client, recording each write."""

        def __init__(self, writer):
            self.writer = writer

        def write(self, data):
            to_client.append(bytes(data))
            return self.writer.write(data)

        def __getattr__(self, name):
            return getattr(self.writer, name)

    def setup(handler):
        plain_setup(handler)
        handler.wfile = Recording(handler.wfile)
    monkeypatch.setattr(front._UpstreamConnection, "send", send)
    monkeypatch.setattr(front.FrontDoorHandler, "setup", setup)
    upstream.answer = (200, {"Content-Type": "application/json"}, b'{"detections": []}')
    reply = requests.post(door.url + "/invocations", data=b"x" * 500, headers={"Content-Type": "image/jpeg"})
    assert reply.status_code == 200 and reply.content == b'{"detections": []}'
    assert len(to_upstream) == 1 and to_upstream[0].startswith(b"POST /invocations ")
    assert to_upstream[0].endswith(b"\r\n\r\n" + b"x" * 500)
    assert len(to_client) == 1 and to_client[0].startswith(b"HTTP/1.1 200")
    assert to_client[0].endswith(b'\r\n\r\n{"detections": []}')
    del to_client[:]
    assert requests.post(door.url + "/invocations", data=b"x" * 1500).status_code == 413  # an answer of our own
    assert len(to_client) == 1 and to_client[0].endswith(b"}")


def test_connection_is_read_as_a_list_of_options(door, upstream):
    """RFC 7230 6.1: `close` among the Connection header's options closes the connection after the answer, and the
    headers it names are the client's connection's own, not forwarded (the standard library knows only the header
    that is one word)."""
    with socket.create_connection(("127.0.0.1", door.front.port), timeout=10) as sock:
        sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nConnection: X-Trace\r\nX-Trace: 1\r\n"
                     b"Connection: close, X-Span\r\nX-Span: 2\r\n"  # two fields make one list (RFC 7230 3.2.2)
                     b"Content-Type: image/jpeg\r\nContent-Length: 4\r\n\r\nbody")
        received = b""
        while True:  # the front door closes after its answer; a kept connection would time out here
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"\r\nConnection: close" in head and body == b'{"ok": true}'
    seen = upstream.seen[-1]
    assert seen["body"] == b"body" and not {"X-Trace", "X-Span"} & set(seen["headers"]), seen["headers"]
    # and an HTTP/1.0 client that asks to keep its connection among other options keeps it
    with socket.create_connection(("127.0.0.1", door.front.port), timeout=10) as sock:
        answers = sock.makefile("rb")
        for _ in range(2):  # the second request on the same connection is answered too
            sock.sendall(b"GET /ping HTTP/1.0\r\nConnection: Keep-Alive, X-Trace\r\n\r\n")
            head = b"".join(iter(answers.readline, b"\r\n"))
            assert head.startswith(b"HTTP/1.1 200") and b"Connection: close" not in head, head
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            assert json.loads(answers.read(length))["status"] == "Healthy"


def test_the_model_servers_error_json_is_rewritten_and_ours_kept(door, upstream):
    upstream.answer = (507, {"Content-Type": "application/json"},
                       json.dumps({"code": 507, "type": "InsufficientMemory", "message": "no room"}).encode())
    assert _json_error(requests.post(door.url + "/invocations", data=b"x"), 507) == "model server: no room"
    ours = json.dumps({"error": "threshold must be between 0 and 1", "status": 400}).encode()
    upstream.answer = (400, {"Content-Type": "application/json"}, ours)
    reply = requests.post(door.url + "/invocations", data=b"x")
    assert reply.status_code == 400 and reply.content == ours
    upstream.answer = (404, {}, b"")
    assert _json_error(requests.get(door.url + "/nowhere"), 404) == "Not Found"


@pytest.mark.parametrize("status, body, expected", [
    (200, b'{"message": "fine"}', None),
    (413, b"", {"error": "Payload Too Large", "status": 413}),
    (429, b"", {"error": "Too Many Requests", "status": 429}),  # http.HTTPStatus's phrase
    (599, b"", {"error": "error 599", "status": 599}),  # a status it does not know
    (503, b'{"code": 503, "type": "ServiceUnavailableException", "message": "Model \\"m\\" has no worker"}',
     {"error": 'model server: Model "m" has no worker', "status": 503}),
    (500, b"<html>not json</html>", None),
    (400, b'{"error": "ours", "status": 400}', None),
])
def test_normalise_error(status, body, expected):
    rewritten = normalise_error(status, body)
    assert (None if rewritten is None else json.loads(rewritten)) == expected


def test_ping_answers_from_health_and_never_reaches_the_model_server(door, upstream):
    assert requests.get(door.url + "/ping").json() == {"status": "Healthy"}
    door.healthy = False
    reply = requests.get(door.url + "/ping")
    assert reply.status_code == 503 and reply.json() == {"status": "Unhealthy", "error": "starting"}
    assert requests.post(door.url + "/ping").status_code == 405
    assert upstream.seen == []


def test_a_model_server_that_is_gone_is_503_and_one_too_slow_is_504(upstream):
    slow = Door(upstream.port, upstream_timeout=0.5)
    gone = Door(free_port())
    try:
        upstream.delay = 2.0
        assert "did not answer within" in _json_error(requests.post(slow.url + "/invocations", data=b"x"), 504)
        assert "not answering" in _json_error(requests.post(gone.url + "/invocations", data=b"x"), 503)
    finally:
        slow.front.stop()
        gone.front.stop()


def test_requests_beyond_the_in_flight_limit_wait_then_get_503(upstream):
    door = Door(upstream.port, max_in_flight=1, queue_timeout=0.3)
    upstream.hold = threading.Event()  # the first request holds the one slot until the test lets it go
    try:
        first = threading.Thread(target=requests.post, args=(door.url + "/invocations",), kwargs={"data": b"a"})
        first.start()
        _wait_until(lambda: len(upstream.seen) == 1)
        assert "the server is busy" in _json_error(requests.post(door.url + "/invocations", data=b"b"), 503)
        upstream.hold.set()
        first.join(10)
        assert not first.is_alive() and len(upstream.seen) == 1
    finally:
        upstream.hold.set()
        door.front.stop()


def _wait_until(condition, timeout=10.0):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out waiting"
        time.sleep(0.02)


def test_a_drain_answers_the_requests_in_flight_and_refuses_new_ones(upstream):
    """What the launcher does on SIGTERM: the request already at the model server gets its answer (and its
    connection closes), /ping and new requests get 503 JSON, requests waiting for a slot are refused then."""
    door = Door(upstream.port, max_in_flight=1, queue_timeout=30)
    upstream.delay = 1.5
    answers = {}

    def post(name):
        answers[name] = requests.post(door.url + "/invocations", data=name.encode())

    try:
        first = threading.Thread(target=post, args=("in flight",))
        first.start()
        _wait_until(lambda: len(upstream.seen) == 1)
        waiting = threading.Thread(target=post, args=("waiting for a slot",))
        waiting.start()
        time.sleep(0.2)
        drained = []
        drainer = threading.Thread(target=lambda: drained.append(door.front.drain(10)))
        drainer.start()
        _wait_until(lambda: "waiting for a slot" in answers)
        assert "stopping" in _json_error(answers["waiting for a slot"], 503)
        ping = requests.get(door.url + "/ping")
        assert ping.status_code == 503 and "stopping" in ping.json()["error"]
        assert "stopping" in _json_error(requests.post(door.url + "/invocations", data=b"new"), 503)
        first.join(10)
        drainer.join(10)
        reply = answers["in flight"]
        assert reply.status_code == 200 and reply.json() == {"ok": True}
        assert reply.headers["Connection"] == "close"
        assert drained == [(1, 0)] and len(upstream.seen) == 1  # nothing new reached the model server
    finally:
        door.front.stop()


def test_a_drain_gives_up_after_its_timeout_or_when_aborted(upstream):
    door = Door(upstream.port)
    upstream.delay = 3.0
    try:
        posting = threading.Thread(target=requests.post, args=(door.url + "/invocations",), kwargs={"data": b"a"})
        posting.start()
        _wait_until(lambda: len(upstream.seen) == 1)
        assert door.front.drain(0.3) == (1, 1)
        assert door.front.drain(30, abort=lambda: True) == (1, 1)
        posting.join(10)
        # the handler frees its slot just after the answer's last byte: the client may see the answer first
        assert door.front.drain(10)[1] == 0
    finally:
        door.front.stop()


def test_a_model_server_error_for_a_request_cut_off_by_the_stop_is_503_to_retry(upstream):
    """MMS 1.0.5 may answer a request in flight "Worker died" (500) while the launcher stops it under the request (a
    second signal, the drain timeout): the client gets the 503 of a request cut off by a stop, not the 500. Before
    the stop the same answer is passed on as the model server's error."""
    door = Door(upstream.port)
    upstream.answer = (500, {"Content-Type": "application/json"},
                       b'{"code": 500, "type": "InternalServerException", "message": "Worker died."}')
    answers = []
    try:
        assert "Worker died" in _json_error(requests.post(door.url + "/invocations", data=b"a"), 500)
        upstream.hold = threading.Event()
        posting = threading.Thread(target=lambda: answers.append(requests.post(door.url + "/invocations", data=b"b")))
        posting.start()
        _wait_until(lambda: len(upstream.seen) == 2)
        door.front.stop()  # what the launcher's shut_down does before it stops the model server
        upstream.hold.set()
        posting.join(10)
    finally:
        upstream.hold.set()
        door.front.stop()
    assert "stopped before this request was answered (it answered 500)" in _json_error(answers[0], 503)
    assert answers[0].headers["Connection"] == "close"


def test_a_front_door_that_stopped_serving_says_why(upstream):
    closed, ended = Door(upstream.port), Door(upstream.port)
    try:
        assert closed.front.failure() is None and ended.front.failure() is None
        closed.front.httpd.socket.close()
        assert "listening socket on port %d was closed" % closed.front.port in closed.front.failure()
        ended.front.httpd.shutdown()  # as if serve_forever had returned on its own
        _wait_until(lambda: not ended.front.thread.is_alive())
        assert "its thread ended" in ended.front.failure()
    finally:
        closed.front.stop()
        ended.front.stop()
        assert closed.front.failure() is None  # stopped on purpose


@pytest.fixture()
def multi_model_door(upstream, tmp_path):
    """A multi-model endpoint's front door with no model loaded (its Models' management port has no MMS)."""
    from ssd_serving.environment import Environment
    from ssd_serving.layout import choose_layout
    from ssd_serving.multimodel import Models
    settings = Environment.defaults()
    made = Door(upstream.port, models=Models(free_port(), str(tmp_path), settings, choose_layout(settings)))
    yield made
    made.front.stop()


def test_a_multi_model_endpoint_answers_a_request_for_no_path_404(multi_model_door, upstream):
    answer = multi_model_door.raw(b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 ") and json.loads(body.decode())["status"] == 404, answer
    assert not upstream.seen


@pytest.mark.parametrize("method, path, status, words", [
    ("PUT", "/models", 405, "/models answers GET and POST, not PUT"),
    ("POST", "/models/m", 405, "/models/{name} answers GET and DELETE, not POST"),
    ("GET", "/models/m/invoke", 405, "/models/{name}/invoke answers POST, not GET"),
    ("POST", "/ping", 405, "/ping answers GET and HEAD, not POST"),
    ("GET", "/models/m", 404, "model m is not loaded"),
    ("GET", "/models/a%2Fb", 404, "model a/b is not loaded"),  # a name may hold any character
    ("DELETE", "/models/m", 404, "model m is not loaded"),
    ("POST", "/models/m/invoke", 404, "model m is not loaded"),
    ("POST", "/invocations", 404, "not POST /invocations"),
    ("GET", "/models/m/other", 404, "not GET /models/m/other"),
    ("POST", "/models", 400, "takes a JSON object"),
    ("GET", "/models?next_page_token=x", 400, "next_page_token 'x'"),
])
def test_a_multi_model_endpoint_routes_each_method_and_path(multi_model_door, upstream, method, path, status, words):
    reply = requests.request(method, multi_model_door.url + path, data=b"not json", timeout=10)
    assert words in _json_error(reply, status), reply.text
    # a request is named (its id in the header and the body); the front door's own /ping is not
    assert ("X-Ssd-Request-Id" in reply.headers) == (path != "/ping") and not upstream.seen


def test_a_multi_model_endpoint_lists_its_models_for_get_and_head(multi_model_door):
    assert requests.get(multi_model_door.url + "/models", timeout=10).json() == {"models": []}
    head = requests.head(multi_model_door.url + "/models/", timeout=10)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) > 0 and not head.content


def test_the_connection_to_mms_sends_without_waiting_for_acknowledgements():
    # http.client writes a request's head and body apart: with Nagle's algorithm on, the body may wait for MMS's
    # acknowledgement of the head
    from ssd_serving.front import _UpstreamConnection
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    connection = _UpstreamConnection("127.0.0.1", listener.getsockname()[1], timeout=5)
    try:
        connection.connect()
        assert connection.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        connection.close()
        listener.close()
