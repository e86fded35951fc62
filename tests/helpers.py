"""Shared test helpers: real photos, synthetic scenes, image encoders, the demo model and a real server (the one
launcher, ssd_tools.server_process, refused to the unit tier)."""
import base64
import contextlib
import importlib.util
import json
import os
import shutil
import socket
import sys
import threading
import time

import psutil
import requests

from ssd_serving.ports import free_port  # noqa: F401 (the tests' too)
from ssd_tools.images import encode, png_chunk, png_declaring  # noqa: F401 (the tests' too)
from ssd_tools.server_process import SERVING, ServerFailed, ServerProcess, serve_command

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CODE = os.path.join(ROOT, "code")
RUNTIME_PACKAGE = os.path.join(ROOT, "container", "ssd_serving")
DEMO_MODEL = os.path.join(ROOT, "container", "models", "demo")


def load_entry_point():
    """code/inference.py as a module, as SageMaker's toolkits import it (it is not an installed package)."""
    spec = importlib.util.spec_from_file_location("inference", os.path.join(CODE, "inference.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_bench_module(name):
    """bench/NAME.py as a module, with bench/ on the import path as its scripts have it (they are not a package)."""
    bench = os.path.join(ROOT, "bench")
    if bench not in sys.path:
        sys.path.insert(0, bench)
    spec = importlib.util.spec_from_file_location("bench_" + name, os.path.join(bench, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TEST_PHOTOS = ("grace_hopper", "astronaut", "chelsea", "coffee", "rocket")


def photo_paths():
    """Real photos that ship inside the matplotlib and scikit-image wheels (those int8 calibration
    uses too), by name."""
    from ssd_tools.quantize import builtin_photos
    return dict((name, path) for name, path in builtin_photos() if name in TEST_PHOTOS)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_objects(boxes, class_ids, detections, classes):
    """For each true object, the best IoU among detections with its label."""
    found = []
    for box, class_id in zip(boxes, class_ids):
        same = [d for d in detections if d["label"] == classes[int(class_id)]]
        found.append(max([iou(list(box), d["box"]) for d in same] or [0.0]))
    return found


# The demo model's operating points in these tests: every object scores at least RECALL_SCORE (so a
# scene must be found completely above it), and nothing that is not an object scores PRECISION_SCORE.
RECALL_SCORE = 0.2
PRECISION_SCORE = 0.5


def assert_scene_detected(boxes, class_ids, detections, classes):
    """Every object found (IoU >= 0.5, right label) and every confident detection is a real object."""
    found = match_objects(boxes, class_ids, [d for d in detections if d["score"] >= RECALL_SCORE], classes)
    assert min(found) >= 0.5, ("objects missed", found, boxes, detections)
    for detection in detections:
        if detection["score"] >= PRECISION_SCORE:
            best = max([iou(list(box), detection["box"]) for box, class_id in zip(boxes, class_ids)
                        if classes[int(class_id)] == detection["label"]] or [0.0])
            assert best >= 0.5, ("a confident detection that is no object", detection, boxes)


def assert_scene_found_over_http(server, seed, size):
    """A synthetic scene posted as PNG (lossless: this checks decoding, resizing and box mapping, not
    JPEG noise) to `server` (anything with .post): the demo model answers and finds every object."""
    rgb, boxes, class_ids = synthetic_scene(seed, *size)
    reply = server.post(encode(rgb, "PNG"), "image/png",
                        headers={"X-Amzn-SageMaker-Custom-Attributes": "threshold=%s" % RECALL_SCORE})
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert document["model"]["name"] == demo_meta()["model_name"] and document["model"]["demo"] is True
    assert_scene_detected(boxes, class_ids, document["detections"], demo_meta()["classes"])


def demo_meta():
    with open(os.path.join(DEMO_MODEL, "model-meta.json")) as stream:
        return json.load(stream)


def rewrite_meta(model_dir, **changes):
    """Change fields of an exported model's metadata in place."""
    path = os.path.join(model_dir, "model-meta.json")
    with open(path) as stream:
        meta = json.load(stream)
    meta.update(changes)
    with open(path, "w") as stream:
        json.dump(meta, stream)


def copy_model(model_dir, out_dir, **meta_changes):
    """A copy of an exported model directory, with these metadata fields changed; returns `out_dir`."""
    shutil.copytree(model_dir, out_dir)
    if meta_changes:
        rewrite_meta(out_dir, **meta_changes)
    return out_dir


def process_group(pgid):
    """Live processes of process group `pgid` (a server started in its own session, and what it started)."""
    found = []
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process)
        except (OSError, psutil.Error):
            pass
    return found


def left_running(processes, timeout=10.0):
    """Those of `processes` still running after `timeout` s (a zombie waiting for init to reap it is not)."""
    deadline = time.time() + timeout
    while True:
        left = []
        for process in processes:
            try:
                if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                    left.append(process)
            except psutil.Error:
                pass
        if not left or time.time() > deadline:
            return left
        time.sleep(0.2)


class RunningServer(ServerProcess):
    """`python -m ssd_serving.serving serve` started by a test (ssd_tools.server_process), and stopped by it; a test of the
    unit tier may not start one."""

    def __init__(self, model_dir, extra_env=None, args=(), launcher=SERVING):
        if os.environ.get("SSD_TEST_TIER") == "unit":
            raise AssertionError("a test in the unit tier (make test-unit) started a server: name its module in "
                                 "tests/tiers.py SERVER")
        ServerProcess.__init__(self, model_dir, extra_env, command=serve_command(launcher=launcher, args=args))

    def wait_ready(self, timeout=180):
        """This server once /ping is healthy and the launcher logged ready:; AssertionError if it exits first or is
        not ready within `timeout` s of its start."""
        try:
            return self.wait_serving(timeout)
        except ServerFailed as failed:
            raise AssertionError(str(failed))

    def stop(self):
        ServerProcess.stop(self, grace_s=40)

    def post(self, body, content_type="image/jpeg", **kwargs):
        headers = kwargs.pop("headers", {})
        if content_type is not None:
            headers["Content-Type"] = content_type
        return requests.post(self.url + "/invocations", data=body, headers=headers, timeout=60, **kwargs)


@contextlib.contextmanager
def ready_server(model_dir, extra_env=None):
    """A RunningServer that is ready (/ping 200, launcher logged ready:), stopped on leaving."""
    running = RunningServer(model_dir, extra_env)
    try:
        yield running.wait_ready()
    finally:
        running.stop()


def slow_request(big_images=4, scene_seed=61):
    """(JSON body, scene boxes, scene class ids): a scene and `big_images` PNGs of 62 MP (under the pixel limit)
    in one request, which takes seconds to decode and resize (about 1.5 s each on 2 vCPUs, over 1 s on a fast
    CI machine) without any delay in the server's code. The answer lists the scene first."""
    rgb, boxes, class_ids = synthetic_scene(scene_seed, 640, 480)
    big = png_declaring(7900, 7900, bit_depth=1, color_type=0, rows=(b"\x00" * (1 + 7900 // 8 + 1)) * 7900)
    images = [base64.b64encode(encode(rgb, "PNG")).decode("ascii")]
    images += [base64.b64encode(big).decode("ascii")] * big_images
    body = json.dumps({"images": images, "threshold": RECALL_SCORE}).encode("ascii")
    return body, boxes, class_ids


def synthetic_scene(seed, width, height):
    from ssd_tools.demo import scenes
    rgb, boxes, class_ids = scenes.make_scene(seed, width, height)
    return rgb, boxes, class_ids


def emf_lines(output):
    """The worker's per-request CloudWatch EMF documents in a log: lines that are the JSON document itself."""
    return [json.loads(line) for line in output.splitlines() if line.startswith('{"_aws":')]


def emf_lines_of(server, request_ids, timeout=10.0):
    """The EMF document of each of `request_ids`, in order, once the server has logged them all."""
    deadline = time.time() + timeout
    while True:
        found = dict((document["RequestId"], document) for document in emf_lines(server.output()))
        if all(request_id in found for request_id in request_ids):
            return [found[request_id] for request_id in request_ids]
        if time.time() > deadline:
            raise AssertionError("no EMF line for %s in the log:\n%s" % (
                [r for r in request_ids if r not in found], server.output()[-3000:]))
        time.sleep(0.2)


def assert_same_detections(one, other):
    """Detections of one image run alone and in a batch: the same objects, scores and boxes to float noise."""
    assert [d["label"] for d in one] == [d["label"] for d in other]
    for a, b in zip(one, other):
        assert abs(a["score"] - b["score"]) < 1e-3 and max(abs(x - y) for x, y in zip(a["box"], b["box"])) < 0.5


def all_at_once(send, count, timeout=60):
    """send(0) ... send(count - 1), each in its own thread and released at the same moment; their results in order."""
    results = [None] * count
    barrier = threading.Barrier(count)

    def run(index):
        barrier.wait()
        results[index] = send(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    return results


def tcp_queues():
    """{(local port, remote port): (send queue, receive queue)} of the IPv4 TCP connections the kernel lists in
    /proc/net/tcp (this network namespace: the test's, a server's it started, a container's on --network host)."""
    found = {}
    with open("/proc/net/tcp") as stream:
        next(stream)
        for line in stream:
            fields = line.split()
            local, remote = (int(address.rsplit(":", 1)[1], 16) for address in fields[1:3])
            found[(local, remote)] = tuple(int(queue, 16) for queue in fields[4].split(":"))
    return found


class Answer(object):
    """An HTTP answer read off a socket by hand, with the parts of requests' Response the tests read."""

    def __init__(self, status_code, headers, content):
        from requests.structures import CaseInsensitiveDict
        self.status_code, self.headers, self.content = status_code, CaseInsensitiveDict(headers), content
        self.header_list = headers
        self.text = content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.text)


def read_answer(sock):
    """One HTTP/1.1 answer from `sock`, as long as its Content-Length says."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the connection closed before the answer's headers: %r" % received[:200])
        received += chunk
    head, _, content = received.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:]]
    length = int(dict((name.lower(), value) for name, value in headers).get("content-length", 0))
    while len(content) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the connection closed before the answer's body")
        content += chunk
    return Answer(int(lines[0].split()[1]), headers, content)


class RawRequest(object):
    """One POST written by hand on its own connection from a thread, so that a test can wait for where it is
    instead of sleeping: `read_by_server()` is true once the server has read every byte sent so far (both ends'
    kernel queues are empty). With `hold_back`, its last bytes are sent only on `send_the_rest()`: until then the
    server waits for them. `reply` is its Answer, or the name of the exception that ended it."""

    def __init__(self, port, body, content_type="application/json", path="/invocations", hold_back=0, timeout=120,
                 headers=None):
        self.port = port
        self.reply = None
        more = "".join("%s: %s\r\n" % item for item in sorted((headers or {}).items()))
        head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n" % (
            path, port, content_type, len(body), more)).encode("ascii")
        request = head + body
        self._first, self._rest = request[:len(request) - hold_back], request[len(request) - hold_back:]
        self._release = threading.Event()
        self._sent = threading.Event()
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.client_port = self.sock.getsockname()[1]
        self.thread = threading.Thread(target=self._run)
        self.thread.daemon = True
        self.thread.start()

    def _run(self):
        try:
            self.sock.sendall(self._first)
            self._sent.set()
            if self._rest:
                self._release.wait(300)
                self.sock.sendall(self._rest)
            self.reply = read_answer(self.sock)
        except (OSError, ValueError) as err:
            self.reply = err.__class__.__name__
        finally:
            self._sent.set()
            self.sock.close()

    def read_by_server(self):
        if not self._sent.is_set():
            return False
        queues = tcp_queues()
        client, server = queues.get((self.client_port, self.port)), queues.get((self.port, self.client_port))
        return client is not None and server is not None and client[0] == 0 and server[1] == 0

    def wait_until_read_by_server(self, timeout=60.0):
        deadline = time.time() + timeout
        while not self.read_by_server():
            if self.reply is not None or time.time() > deadline:
                raise AssertionError("the server did not read the request within %.0f s (it got %r)" % (
                    timeout, self.reply))
            time.sleep(0.01)

    def send_the_rest(self):
        self._release.set()
