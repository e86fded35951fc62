"""The server's front door: an honest `GET /ping`, request-size limits and JSON errors before Multi Model Server.

Multi Model Server answers `/ping` with HTTP 200 even while no worker has a model (both 1.0.5 and
1.1.11: its body says "Unhealthy" or "Partial Healthy", its status stays 200), so SageMaker would route
traffic to a container that can only fail. This small threaded HTTP server owns the public port:

- `GET /` serves the try-it page (page.py) when SSD_WEB_PAGE=1, and is forwarded like any other path otherwise;
- every answer forwarded from a worker carries the worker's stage timings in `Server-Timing`, to which this adds its
  own: `read` (from the request's headers to its whole body, its wait for a slot included), `upstream` (from
  forwarding it to MMS to having MMS's whole answer) and `front` (the whole request as it saw it), so that the hops
  between the front door, MMS and the worker can be told apart (unless SSD_REQUEST_METRICS=0);
- `GET /execution-parameters` answers Batch Transform's question (how many requests at a time, which batch
  strategy, how large a payload) from the settings;
- `GET /ping` answers 200 only while at least one worker process is alive with the model loaded (the
  `health` callable decides), and 503 with a JSON reason otherwise: during start-up, and while MMS
  restarts a worker that died;
- a body over the size limit gets 413 JSON without reaching MMS (MMS's own 413 has an empty body);
- at most `max_in_flight` requests are read and forwarded at a time; others wait, their bodies unread
  (the kernel's buffers and TCP hold them back), up to `queue_timeout` seconds, then get 503 JSON. This
  bounds the memory held for request bodies here and in MMS (a burst of 150 bodies of 6.4 MB made the
  JVM grow to 2.8 GB and this process to 1.2 GB before);
- on a multi-model endpoint (SAGEMAKER_MULTI_MODEL=true), SageMaker's `/models` API is answered here with
  multimodel.Models, and `POST /models/{name}/invoke` is forwarded as `/invocations` is, to that model only;
- everything else is forwarded to MMS on a loopback port, and MMS's own error bodies
  (`{"code", "type", "message"}`) are rewritten to this server's `{"error", "status"}` form;
- MMS not answering becomes 503 JSON, MMS not answering in time 504 JSON, and too many open
  connections 503 JSON, so a client always gets JSON and a status it can act on;
- once told to drain (the launcher's SIGTERM), `/ping` and every new request get 503 JSON, requests
  already let through are answered (their connections then close), and `drain` reports when none is left.

Standard library (and this package's error body), Python 3.6 and later (the EI image has Python 3.6.8).
"""
from __future__ import absolute_import

import http.client
import json
import logging
import socket
import socketserver
import threading
import time
import uuid
from collections import namedtuple
from http.server import BaseHTTPRequestHandler, HTTPServer

from urllib.parse import parse_qs, unquote

from .errors import HTTPError, error_json, reason_phrase
from .timing import (EMF_PREFIX, EMF_RELAY, EMF_RELAY_HEADER, INFERENCE_ID_HEADER, RECEIVED_AT_HEADER,
                     REQUEST_ID_HEADER, SERVER_TIMING_HEADER, print_line)

LOG = logging.getLogger(__name__)

# Headers that describe one connection, not the request: never forwarded (RFC 7230, 6.1).
_HOP_BY_HOP = frozenset(["connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
                         "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "host", "content-length"])
_OWN_HEADERS = frozenset(["server", "date"])  # send_response writes ours
# Set here on every forwarded request (a client's own values are dropped): the worker logs and answers with them
_STAMPS = frozenset([REQUEST_ID_HEADER.lower(), RECEIVED_AT_HEADER.lower(), EMF_RELAY_HEADER.lower()])
# the names of MMS's answer's headers that the front door takes for itself, as it compares them (lower-case)
_EMF_RELAY, _SERVER_TIMING = EMF_RELAY_HEADER.lower(), SERVER_TIMING_HEADER.lower()
# the headers of MMS's answer that are not passed on to the client
_NOT_PASSED_ON = _HOP_BY_HOP | _OWN_HEADERS | _STAMPS


class _UpstreamConnection(http.client.HTTPConnection):
    """The front door's keep-alive connection to MMS, with Nagle's algorithm off as on the client side
    (disable_nagle_algorithm), and a request's head and body in one write."""

    def connect(self):
        http.client.HTTPConnection.connect(self)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send_output(self, message_body=None, encode_chunked=False):
        """http.client's, but a body in bytes leaves with the head in one write: in two, MMS's Netty loop is woken
        for the head and again for the body (seen in a scheduler trace, `make bench-hops`). The head is what
        http.client built and checked."""
        if not isinstance(message_body, bytes) or encode_chunked:
            return http.client.HTTPConnection._send_output(self, message_body, encode_chunked)
        self._buffer.extend((b"", b""))
        head = b"\r\n".join(self._buffer)
        del self._buffer[:]
        self.send(head + message_body)


def error_body(status, message, request_id=None):
    return error_json(status, message, request_id).encode("utf-8")


def normalise_error(status, body, request_id=None):
    """MMS's error JSON `{"code": N, "type": ..., "message": ...}` as `{"error": ..., "status": N}`.

    Bodies that already have this server's form (the handler's errors) and non-JSON bodies stay as
    they are; an empty error body gets a message naming the status.
    """
    if status < 400:
        return None
    if not body.strip():
        return error_body(status, reason_phrase(status), request_id)
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    if isinstance(document, dict) and "message" in document and "error" not in document:
        return error_body(status, "model server: %s" % (document.get("message"),), request_id)
    return None


class _ChunkedBodyTooLarge(Exception):
    """A chunked body over the limit; `drained` when all of it was read, so the connection can answer cleanly."""

    def __init__(self, total, drained):
        Exception.__init__(self, total)
        self.total = total
        self.drained = drained


ADMITTED, BUSY, DRAINING = "admitted", "busy", "draining"


class Admission(object):
    """Which requests go through to MMS: at most `limit` at a time, none once draining; counts those in flight.

    Waiters are woken one at a time as slots free (not all at once: a burst may hold hundreds), and all at
    once when the drain begins, so that they are refused then instead of after their queue timeout.
    """

    def __init__(self, limit):
        self.limit = limit
        self.in_flight = 0
        # set without the lock by stop_admitting (from a signal handler, which must not take a lock the
        # interrupted thread may hold); drain() sets it again under the lock before counting
        self.draining = False
        self._lock = threading.Lock()
        self._free = threading.Condition(self._lock)
        self._idle = threading.Condition(self._lock)

    def enter(self, timeout):
        """ADMITTED (call leave() after), BUSY if no slot was free within `timeout`, or DRAINING."""
        deadline = time.time() + timeout
        with self._lock:
            while not self.draining and self.in_flight >= self.limit:
                remaining = deadline - time.time()
                if remaining <= 0:
                    return BUSY
                self._free.wait(remaining)
            if self.draining:
                return DRAINING
            self.in_flight += 1
            return ADMITTED

    def leave(self):
        with self._lock:
            self.in_flight -= 1
            self._free.notify()
            if not self.in_flight:
                self._idle.notify_all()

    def stop_admitting(self):
        """Refuse new requests from now on; safe in a signal handler (it takes no lock)."""
        self.draining = True

    def drain(self, timeout, abort=None, poll=0.1):
        """Refuse new requests and wait up to `timeout` s for those in flight; returns (at start, left)."""
        deadline = time.time() + timeout
        with self._lock:
            self.draining = True
            self._free.notify_all()
            at_start = self.in_flight
            while self.in_flight and time.time() < deadline and not (abort and abort()):
                self._idle.wait(min(poll, max(0.0, deadline - time.time())))
            return at_start, self.in_flight


class FrontDoorSettings(namedtuple("FrontDoorSettings", [
        "upstream_port", "health", "max_body", "upstream_timeout", "idle_timeout", "max_in_flight", "queue_timeout",
        "execution_parameters", "models", "invocations_path", "web_page", "server_timing"])):
    """What a front door is told at start, fixed from then on; its handler reads it as `self.settings`.

    upstream_port: MMS's loopback port; health: () -> (ready, reason) for /ping; max_body: the request size limit in
    bytes; upstream_timeout: seconds MMS has to answer; idle_timeout: seconds a kept-alive connection may sit idle;
    max_in_flight and queue_timeout: admission's slots and how long a request waits for one; execution_parameters: the
    JSON document of GET /execution-parameters (None: forwarded); models: a multimodel.Models on a multi-model
    endpoint (SAGEMAKER_MULTI_MODEL=true), else None; invocations_path: MMS's path for /invocations when it is not
    /invocations; web_page: the try-it page's HTML (bytes) for GET /, or None (then / is forwarded as any path is);
    server_timing: whether the front door adds its own durations to the Server-Timing header of forwarded answers.
    """
    __slots__ = ()


# The shapes of the paths the front door answers itself; a model's name is taken out of the /models paths.
PING, PAGE, EXECUTION_PARAMETERS, INVOCATIONS = "/ping", "/", "/execution-parameters", "/invocations"
MODELS, MODEL, INVOKE = "/models", "/models/{name}", "/models/{name}/invoke"
OTHER = None  # every path no shape above matches
ANY = "*"     # every method a shape's other routes do not name

# answer: the handler's method (it takes the Route and head_only); request: named and admitted as a request (its id in
# the answer, refused while draining) rather than answered by the front door itself; allows: a 405's list of methods
Route = namedtuple("Route", ["answer", "request", "allows"])


def _own(answer, allows=None):
    return Route(answer, False, allows)


def _request(answer, allows=None):
    return Route(answer, True, allows)


def route_table(settings):
    """{(method, path shape): Route} for a front door told `settings` (FrontDoorSettings)."""
    routes = {("GET", PING): _own("_ping"), ("HEAD", PING): _own("_ping"),
              # MMS would answer its own, always-healthy /ping
              (ANY, PING): _own("_not_allowed", "GET and HEAD")}
    if settings.web_page:
        routes.update({("GET", PAGE): _own("_page"), ("HEAD", PAGE): _own("_page")})
    if settings.execution_parameters:
        routes.update({("GET", EXECUTION_PARAMETERS): _own("_execution_parameters"),
                       ("HEAD", EXECUTION_PARAMETERS): _own("_execution_parameters")})
    if settings.models is None:
        routes[(ANY, OTHER)] = _request("_forward_as_sent")
        if settings.invocations_path:
            routes[(ANY, INVOCATIONS)] = _request("_forward_invocations")
        return routes
    routes.update({
        ("GET", MODELS): _request("_list_models"), ("HEAD", MODELS): _request("_list_models"),
        ("POST", MODELS): _request("_load_model"), (ANY, MODELS): _request("_not_allowed", "GET and POST"),
        ("GET", MODEL): _request("_describe_model"), ("HEAD", MODEL): _request("_describe_model"),
        ("DELETE", MODEL): _request("_unload_model"), (ANY, MODEL): _request("_not_allowed", "GET and DELETE"),
        # admission, limits and error forms as /invocations; a 405 does not read its body first (as a refused one's)
        ("POST", INVOKE): _request("_invoke_model"), (ANY, INVOKE): _request("_invoke_not_allowed", "POST"),
        (ANY, OTHER): _request("_not_found")})
    return routes


def path_shape(path):
    """(the shape of `path`, a path without its query; the model's name in it, or None)."""
    parts = [unquote(part) for part in path.split("/")[1:]]
    if not parts or parts[0] != "models":
        return path, None
    if len(parts) == 1 or (len(parts) == 2 and not parts[1]):
        return MODELS, None
    if len(parts) == 2:
        return MODEL, parts[1]
    if len(parts) == 3 and parts[2] == "invoke":
        return INVOKE, parts[1]
    return OTHER, None


class FrontDoorHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"   # keep-alive, as SageMaker's clients use it
    server_version = "ssd-serving"
    # Our answers leave in one write (_end_with), the standard library's own (its errors for a request it cannot
    # parse) in two: with Nagle on, such a body waits for the client's delayed ACK of the headers, about 40 ms per
    # answer on a kept-alive connection (measured when every answer took two writes: 72 ms against MMS's own 20 ms
    # for the demo model)
    disable_nagle_algorithm = True

    def version_string(self):
        return self.server_version

    def setup(self):
        # what every connection shares is on the front door's server (_FrontDoorServer)
        self.settings = self.server.settings
        self.admission = self.server.admission  # an Admission of settings.max_in_flight
        self.timeout = self.settings.idle_timeout  # read by StreamRequestHandler.setup
        BaseHTTPRequestHandler.setup(self)
        self._upstream = None
        self._request_id = None
        self._connection_options = frozenset()  # the request's Connection header, as parse_request read it

    def finish(self):
        try:
            BaseHTTPRequestHandler.finish(self)
        finally:
            self._close_upstream()

    def parse_request(self):
        """BaseHTTPRequestHandler's, with the Connection header read as the list of options it is (RFC 7230, 6.1):
        `close` among them closes the connection after the answer, `keep-alive` keeps an HTTP/1.0 client's, and
        the headers it names are the client connection's own, never forwarded. The standard library acts on the
        header only when it is that one word."""
        if not BaseHTTPRequestHandler.parse_request(self):
            return False
        listed = ",".join(self.headers.get_all("Connection") or [])  # one list, however many fields carry it
        options = frozenset(option.strip().lower() for option in listed.split(",") if option.strip())
        if "close" in options:
            self.close_connection = True
        elif "keep-alive" in options:
            self.close_connection = False
        self._connection_options = options
        return True

    def log_message(self, format, *args):  # MMS writes the access log; keep ours quiet
        LOG.debug("%s " + format, self.address_string(), *args)

    # --- answers of our own

    def _say_if_closing(self, close=False):
        """`Connection: close` on an answer after which the connection closes: when asked (`close`), when the
        request's own terms close it (HTTP/1.0 without keep-alive, or `close` among its Connection options: see
        parse_request), and while draining, so that the client's next request goes to another instance."""
        if close or self.admission.draining or self.close_connection:
            self.send_header("Connection", "close")
            self.close_connection = True

    def _end_with(self, body):
        """End the headers and send them with `body` in one write: in two, the client is woken for the head and again
        for the body (seen in a scheduler trace, `make bench-hops`)."""
        self._headers_buffer.append(b"\r\n")
        if body:
            self._headers_buffer.append(body)
        self.flush_headers()

    def _send(self, status, body, content_type="application/json", close=False, head_only=False):
        self.send_response(status, reason_phrase(status))
        if self._request_id:
            self.send_header(REQUEST_ID_HEADER, self._request_id)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self._say_if_closing(close)
        self._end_with(None if head_only else body)

    def _send_error(self, status, message, close=False):
        self._send(status, error_body(status, message, self._request_id), close=close)

    def _too_large(self, length):
        return "the request body is %s bytes; the limit is %d bytes" % (length, self.settings.max_body)

    def _name_request(self):
        """The request's id: the caller's InferenceId (InvokeEndpoint's), else a new one. It is in the answer's
        header, in error bodies and in the worker's log line for the request."""
        self._request_id = (self.headers.get(INFERENCE_ID_HEADER) or "").strip()[:128] or uuid.uuid4().hex
        self._received_at = time.time()

    def handle_expect_100(self):
        """`Expect: 100-continue` with a body over the limit: refuse before the client sends it."""
        length = self._declared_length()
        if length is not None and length > self.settings.max_body:
            self._name_request()
            self._send_error(413, self._too_large(length), close=True)
            return False
        return BaseHTTPRequestHandler.handle_expect_100(self)

    def _declared_length(self):
        value = self.headers.get("Content-Length")
        if value is None:
            return None
        try:
            length = int(value)
        except ValueError:
            return -1
        return length

    # --- the request body, within the limit

    def _read_chunked(self):
        """The chunked body; one over the limit is read to its end and dropped (up to a few times the limit, as
        with Content-Length) so that closing after the 413 does not reset the connection before the client
        reads it."""
        parts, total = [], 0
        while True:
            line = self.rfile.readline(1026)
            if not line.endswith(b"\n"):
                raise ValueError("the body ended inside a chunk header")
            size = int(line.split(b";", 1)[0].strip(), 16)
            if size < 0:
                raise ValueError("negative chunk size")
            if size == 0:
                while self.rfile.readline(1026) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                if total > self.settings.max_body:
                    raise _ChunkedBodyTooLarge(total, drained=True)
                return b"".join(parts)
            total += size
            if total > self._drain_limit():
                raise _ChunkedBodyTooLarge(total, drained=False)
            if total > self.settings.max_body:
                parts = []  # over the limit: keep reading to the end, keep nothing
                if not self._discard(size, size) or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                    raise _ChunkedBodyTooLarge(total, drained=False)
                continue
            chunk = self.rfile.read(size)
            if len(chunk) != size or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise ValueError("the body ended inside a chunk")
            parts.append(chunk)

    def _drain_limit(self):
        """How much of a body over the limit is read and dropped so that its client can read the 413."""
        return 4 * self.settings.max_body

    def _discard(self, length, limit):
        """Read and drop a body the client is sending anyway, so it can read our answer; False if too big."""
        if length > limit:
            return False
        remaining = length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 16))
            if not chunk:
                return False
            remaining -= len(chunk)
        return True

    def _body(self):
        """The request body, or None after answering the client with an error."""
        self._body_read = True
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            try:
                return self._read_chunked()
            except _ChunkedBodyTooLarge as err:
                self._send_error(413, self._too_large(("%d" if err.drained else "over %d") % err.total), close=True)
            except ValueError:
                self._send_error(400, "malformed chunked request body", close=True)
            return None
        length = self._declared_length()
        if length is None:
            return b""
        if length < 0:
            self._send_error(400, "Content-Length must be a non-negative integer", close=True)
            return None
        if length > self.settings.max_body:
            # drain bodies up to a few times the limit so the client reads a 413, not a reset connection
            drained = self._discard(length, self._drain_limit())
            self._send_error(413, self._too_large(length), close=True)
            if not drained:
                self.close_connection = True
            return None
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            return None
        return body

    # --- forwarding

    def _close_upstream(self):
        if self._upstream is not None:
            try:
                self._upstream.close()
            except Exception:
                pass
            self._upstream = None

    def _exchange(self, method, body, headers, path=None):
        """One request to MMS on this connection's upstream connection; reconnects once if it went stale."""
        for attempt in (0, 1):
            fresh = self._upstream is None
            if fresh:
                self._upstream = _UpstreamConnection("127.0.0.1", self.settings.upstream_port,
                                                     timeout=self.settings.upstream_timeout)
            try:
                self._upstream.request(method, path or self.path, body=body, headers=headers)
                reply = self._upstream.getresponse()
                return reply, reply.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self._close_upstream()
                if fresh or attempt:  # a stale keep-alive connection is retried once, on a new one
                    raise
            except Exception:
                self._close_upstream()
                raise

    def _forward(self, head_only=False, upstream_path=None):
        """Forward the request while holding one of the in-flight slots, which bounds the bodies held here
        and in MMS; a request that finds none free within `queue_timeout` is answered 503."""
        length = self._declared_length()
        if length is not None and (length < 0 or length > self.settings.max_body):
            self._body()  # answers 400 or 413 without waiting for a slot
            return
        admitted = self.admission.enter(self.settings.queue_timeout)
        if admitted == BUSY:
            self._refuse(length, "the server is busy: %d requests are being answered and none finished within "
                                 "%.0f s; retry later" % (self.settings.max_in_flight, self.settings.queue_timeout))
            return
        if admitted == DRAINING:
            self._refuse_stopping(length)
            return
        try:
            self._forward_in_slot(head_only, upstream_path)
        finally:
            self.admission.leave()

    def _refuse(self, length, message):
        if length is None or not self._discard(length, 4 * self.settings.max_body):
            self.close_connection = True
        self._send_error(503, message, close=self.close_connection)

    def _refuse_stopping(self, length):
        self._refuse(length, "the server is stopping (SIGTERM) and takes no new requests; retry on another "
                             "instance")

    def _forward_in_slot(self, head_only=False, upstream_path=None):
        body = self._body()
        if body is None:
            return
        body_read_at = time.time()
        dropped = _HOP_BY_HOP | _STAMPS | self._connection_options
        headers = dict((k, v) for k, v in self.headers.items() if k.lower() not in dropped)
        headers[REQUEST_ID_HEADER] = self._request_id
        headers[RECEIVED_AT_HEADER] = "%.6f" % self._received_at
        headers[EMF_RELAY_HEADER] = EMF_RELAY
        if body or self.command in ("POST", "PUT"):
            headers["Content-Length"] = str(len(body))
        try:
            forwarded_at = time.time()
            reply, payload = self._exchange(self.command, body if body or self.command in ("POST", "PUT") else None,
                                            headers, upstream_path)
            answered_at = time.time()
        except socket.timeout:
            self._send_error(504, "the model server did not answer within %.0f s" % self.settings.upstream_timeout)
            return
        except (OSError, http.client.HTTPException) as err:
            LOG.warning("model server not reachable: %s", err)
            self._send_error(503, "the model server is not answering (%s); retry later" % (err.__class__.__name__,))
            return
        if reply.status >= 500 and self.server.closing:
            # the launcher is stopping the model server under this request (a second signal, the drain timeout):
            # MMS may answer it "Worker died" (500) as its worker is killed, before its own port closes. The client
            # gets what any request cut off by the stop gets, a 503 it can retry elsewhere, not a 500 that reads
            # as the model's fault.
            self._send_error(503, "the server is stopping and its model server stopped before this request was "
                                  "answered (it answered %d); retry on another instance" % reply.status, close=True)
            return
        normalised = normalise_error(reply.status, payload, self._request_id)
        self.send_response(reply.status, reply.reason)
        self.send_header(REQUEST_ID_HEADER, self._request_id)
        content_type = None
        worker_timing = []
        metrics_lines = []
        for key, value in reply.getheaders():
            name = key.lower()
            if name == _EMF_RELAY:
                if value.startswith(EMF_PREFIX):  # the worker's line, nothing else, goes to the log
                    metrics_lines.append(value)
                continue
            if name in _NOT_PASSED_ON:
                continue
            if name == _SERVER_TIMING:
                worker_timing.append(value)
                continue
            if name == "content-type":
                content_type = value
                if normalised is not None:
                    continue
            self.send_header(key, value)
        if normalised is not None:
            payload = normalised
            self.send_header("Content-Type", "application/json")
        elif content_type is None and payload:
            self.send_header("Content-Type", "application/octet-stream")
        if self.settings.server_timing:
            worker_timing.append("read;dur=%.1f, upstream;dur=%.1f, front;dur=%.1f" % (
                (body_read_at - self._received_at) * 1000.0, (answered_at - forwarded_at) * 1000.0,
                (time.time() - self._received_at) * 1000.0))
        if worker_timing:
            self.send_header(SERVER_TIMING_HEADER, ", ".join(worker_timing))
        self.send_header("Content-Length", str(len(payload)))
        self._say_if_closing()
        try:
            self._end_with(None if head_only else payload)
        finally:  # after the answer, so that printing it costs the client nothing; whether or not it got there
            for line in metrics_lines:
                print_line(line)

    # --- routing: route_table says which of the answers below takes a request

    def _route(self, head_only=False):
        self._request_id = None
        self._body_read = False
        self._path = self.path.split("?", 1)[0]
        self._shape, self._model_name = path_shape(self._path)
        routes = self.server.routes
        route = routes.get((self.command, self._shape)) or routes.get((ANY, self._shape)) or routes[(ANY, OTHER)]
        if route.request:
            self._name_request()
            if self.admission.draining:
                self._refuse_stopping(self._declared_length())
                return
        try:
            getattr(self, route.answer)(route, head_only)
        except HTTPError as err:
            if not self._body_read:  # read the body the client sent anyway, so that it can read the answer
                length = self._declared_length()
                if length is None and self.headers.get("Transfer-Encoding") or length is not None and (
                        length < 0 or not self._discard(length, 4 * self.settings.max_body)):
                    self.close_connection = True
            self._send_error(err.status_code, err.error, close=self.close_connection)

    def _not_allowed(self, route, head_only):
        if self._body() is not None:
            raise HTTPError("%s answers %s, not %s" % (self._shape, route.allows, self.command), 405)

    def _invoke_not_allowed(self, route, head_only):
        raise HTTPError("%s answers %s, not %s" % (self._shape, route.allows, self.command), 405)

    # --- answers of the front door's own

    def _ping(self, route, head_only):
        if self._body() is None:
            return
        if self.admission.draining:
            ready, detail = False, "the server is stopping (SIGTERM): it answers the requests in flight, no new ones"
        else:
            ready, detail = self.settings.health()
        document = {"status": "Healthy" if ready else "Unhealthy"}
        if not ready:
            document["error"] = detail
        self._send(200 if ready else 503, json.dumps(document).encode("utf-8"), head_only=head_only)

    def _page(self, route, head_only):
        if self._body() is not None:
            self._send(200, self.settings.web_page, "text/html; charset=utf-8", head_only=head_only)

    def _execution_parameters(self, route, head_only):
        if self._body() is not None:
            self._send(200, json.dumps(self.settings.execution_parameters).encode("utf-8"), head_only=head_only)

    # --- requests forwarded to MMS

    def _forward_as_sent(self, route, head_only):
        self._forward(head_only=head_only)

    def _forward_invocations(self, route, head_only):
        self._forward(head_only, self.settings.invocations_path + self.path[len(self._path):])

    # --- a multi-model endpoint's /models API (multimodel.py does the work; it raises ModelsError, an HTTPError)

    def _not_found(self, route, head_only):
        if self._body() is not None:
            raise HTTPError("a multi-model endpoint answers /ping, /models and /models/{name}/invoke, not %s %s" % (
                self.command, self._path), 404)

    def _send_document(self, answered, head_only):
        status, document = answered
        self._send(status, json.dumps(document).encode("utf-8"), head_only=head_only)

    def _list_models(self, route, head_only):
        if self._body() is not None:
            query = parse_qs(self.path.split("?", 1)[1]) if "?" in self.path else {}
            self._send_document(self.settings.models.listing((query.get("next_page_token") or [None])[0]), head_only)

    def _load_model(self, route, head_only):
        body = self._body()
        if body is not None:
            self._send_document(self.settings.models.load(body), head_only)

    def _describe_model(self, route, head_only):
        if self._body() is not None:
            self._send_document(self.settings.models.describe(self._model_name), head_only)

    def _unload_model(self, route, head_only):
        if self._body() is not None:
            self._send_document(self.settings.models.unload(self._model_name), head_only)

    def _invoke_model(self, route, head_only):
        # MMS knows the model by its own name; 404 or 503 before the body is read when it is not loaded
        self._forward(head_only, "/predictions/%s" % self.settings.models.target(self._model_name))

    def do_GET(self):
        self._route()

    def do_HEAD(self):
        self._route(head_only=True)

    def do_POST(self):
        self._route()

    def do_PUT(self):
        self._route()

    def do_DELETE(self):
        self._route()

    def do_OPTIONS(self):
        self._route()


class _FrontDoorServer(socketserver.ThreadingMixIn, HTTPServer):
    """A thread per connection, at most `max_connections` open; holds what its handlers share: the settings, their
    routes and the admission."""
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, settings, admission, max_connections):
        HTTPServer.__init__(self, address, FrontDoorHandler)
        self.settings = settings
        self.routes = route_table(settings)
        self.admission = admission
        self.max_connections = max_connections
        self.open_connections = 0
        self.lock = threading.Lock()
        self.closing = False  # FrontDoor.stop() was called: the public port closes, the model server stops next

    def process_request(self, request, client_address):
        with self.lock:
            busy = self.open_connections >= self.max_connections
            if not busy:
                self.open_connections += 1
        if busy:
            try:
                body = error_body(503, "too many open connections (%d); retry later" % self.max_connections)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        socketserver.ThreadingMixIn.process_request(self, request, client_address)

    def process_request_thread(self, request, client_address):
        try:
            socketserver.ThreadingMixIn.process_request_thread(self, request, client_address)
        finally:
            with self.lock:
                self.open_connections -= 1


class FrontDoor(object):
    """The public HTTP server on `port`, forwarding to MMS on 127.0.0.1:`upstream_port`."""

    def __init__(self, port, upstream_port, health, max_body, host="0.0.0.0", upstream_timeout=150.0,
                 idle_timeout=120.0, max_connections=512, max_in_flight=16, queue_timeout=30.0,
                 execution_parameters=None, models=None, invocations_path=None, web_page=None, server_timing=False):
        """`invocations_path`: where MMS answers /invocations, when not at /invocations (a model registered through
        its management API, as a batching server's is, is not MMS's default model); `web_page`: the HTML served at
        GET / (None: / is forwarded); `server_timing`: add the front door's duration to Server-Timing."""
        self.settings = FrontDoorSettings(
            upstream_port=upstream_port, health=health, max_body=max_body, upstream_timeout=upstream_timeout,
            idle_timeout=idle_timeout, max_in_flight=max_in_flight, queue_timeout=queue_timeout,
            execution_parameters=execution_parameters, models=models, invocations_path=invocations_path,
            web_page=web_page, server_timing=server_timing)
        self.admission = Admission(max_in_flight)
        self.httpd = _FrontDoorServer((host, port), self.settings, self.admission, max_connections)
        self.port = self.httpd.server_address[1]
        self.thread = None
        self.error = None  # what ended serve_forever, if it raised

    def _serve(self):
        try:
            self.httpd.serve_forever(poll_interval=0.5)
        except BaseException as err:  # recorded for failure(), which the launcher's watcher reads
            self.error = err
            LOG.exception("the front door stopped serving")

    def start(self):
        self.thread = threading.Thread(target=self._serve, name="front-door")
        self.thread.daemon = True
        self.thread.start()
        return self

    def stop_admitting(self):
        """Answer /ping and new requests 503 from now on; safe in a signal handler."""
        self.admission.stop_admitting()

    def drain(self, timeout, abort=None):
        """Stop admitting, wait up to `timeout` s (or until `abort()`) for requests in flight to be answered;
        returns (in flight at the start, still in flight at the end). The port stays open meanwhile, so that
        new requests get 503 JSON, not a refused connection."""
        return self.admission.drain(timeout, abort)

    @property
    def stopping(self):
        """stop() was called (the handlers read the same flag on the server: closing)."""
        return self.httpd.closing

    def failure(self):
        """Why the public port is no longer served, or None while it is (or once stop() was called)."""
        if self.stopping or self.thread is None:
            return None
        if not self.thread.is_alive():
            return "its thread ended (%s)" % (
                "%s: %s" % (self.error.__class__.__name__, self.error) if self.error else "serve_forever returned")
        if self.httpd.socket.fileno() < 0:
            return "its listening socket on port %d was closed" % self.port
        return None

    def stop(self):
        self.httpd.closing = True
        if self.thread is not None:
            if self.thread.is_alive():
                self.httpd.shutdown()
            self.thread.join(10)
            self.thread = None
        self.httpd.server_close()
