"""code/inference.py unchanged inside the stock SageMaker MXNet serving toolkit, started as AWS's images do.

One toolkit pair per run: `make test-toolkits` runs this file once per pair, each in its own pytest and
in the pair's venv (.venv/toolkit-PAIR, requirements/toolkits/PAIR.txt), with SSD_STOCK_TOOLKIT_PAIR
naming it; elsewhere (the main suite) the server's tests skip and only the in-process tests of the
entry point's adapter run (a real MMS Context, the installed toolkit's Transformer). The server is the
toolkit's own `serve` entry, as AWS's dockerd-entrypoint.py calls it (`serving.main()`), not this
project's launcher. That entry writes
/etc/sagemaker-mms.properties (restored afterwards), runs model-archiver into ./.sagemaker (sagemaker-
inference before 1.8; the server runs in a temporary directory), and refuses to start when any other
Multi Model Server runs on the machine: so no other MMS may run meanwhile (the fixture fails naming it).

Where things go: every toolkit version reads SAGEMAKER_BASE_DIR (default /opt/ml) for the model
directory, so the model.tar.gz layout (exported demo model at the top, code/inference.py and the
ssd_serving package under code/) is unpacked into a temporary one and /opt/ml is never touched. The
port is SAGEMAKER_BIND_TO_PORT: inference, and (by sagemaker-inference 1.1.5.post1) the management
API too; 1.1.0 leaves management on MMS's default 127.0.0.1:8081, moved here with MMS_MANAGEMENT_ADDRESS
(its config enables MMS's environment overrides). SAGEMAKER_SAFE_PORT_RANGE is read by the versions
checked (1.1.0 to 1.10.1) and used by none. The server runs in its own session; that whole process
group (launcher, JVM and Python workers) is stopped at the end, and the fixture checks that none of it
is left.
"""
import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import mms.context  # MMS and sagemaker-inference are pinned in every venv that runs this file: import, never skip
import psutil
import pytest
import requests
import sagemaker_inference.transformer

from helpers import (CODE, ROOT, RUNTIME_PACKAGE, RECALL_SCORE, assert_scene_found_over_http, demo_meta, encode,
                     load_entry_point, process_group, synthetic_scene)
from ssd_serving.model_server import internal_port
from ssd_serving.ports import free_port

PAIR_ENV = "SSD_STOCK_TOOLKIT_PAIR"
PAIR = os.environ.get(PAIR_ENV)
NO_PAIR = ("the stock toolkit's own serve runs once per toolkit pair in its own pytest and venv (make "
           "test-toolkits sets %s): it refuses to start next to the other tests' model servers" % PAIR_ENV)

MMS_MAIN_CLASS = "com.amazonaws.ml.mms.ModelServer"  # what the toolkit looks for in every process's cmdline
MMS_CONFIG = "/etc/sagemaker-mms.properties"
SERVE = "from sagemaker_mxnet_serving_container import serving; serving.main()"
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
START_TIMEOUT = 180
STOP_GRACE = 30


# --- the entry point's adapter, in process (every venv with the toolkit and MMS; no server) ---------------

class BrokenDetector(object):
    """The real detector with a forward that falls over (a fault injected: what a graph failing at run time does)."""

    def __init__(self, detector):
        self._detector = detector

    def __getattr__(self, name):
        return getattr(self._detector, name)

    def run_graph(self, inputs):
        raise RuntimeError("the graph fell over")


def mms_context(headers=None):
    """A real MMS Context holding one request with these headers, as the toolkit is handed it."""
    context = mms.context.Context("model", "/nonexistent", None, 1, None, "test")
    context.request_processor = [mms.context.RequestProcessor(dict(headers or {}))]
    return context


def small_png():
    rgb, _, _ = synthetic_scene(5, 320, 240)
    return encode(rgb, "PNG")


def request_context(headers=None):
    """What this project's handler passes the steps: the request's own Context (here the only one of its batch)."""
    from ssd_serving.request_context import RequestContext
    from ssd_serving.timing import RequestMetrics
    return RequestContext(mms_context(headers), 0, RequestMetrics())


def test_adapter_under_this_projects_handler_takes_its_request_context_and_raises(detector):
    inference = load_entry_point()
    from ssd_serving.errors import BadRequestError, UnsupportedMediaTypeError
    context = request_context({CUSTOM_ATTRIBUTES.lower(): "top_k=1;threshold=0.3"})
    assert inference.input_fn(small_png(), "image/png", context).header_params == {"top_k": "1", "threshold": "0.3"}
    assert inference.input_fn(small_png(), "image/png").header_params == {}
    with pytest.raises(UnsupportedMediaTypeError):
        inference.input_fn(small_png(), "application/x-npy", request_context())
    with pytest.raises(BadRequestError):
        inference.predict_fn(inference.input_fn(b"\x00garbage", "image/jpeg", None), detector, request_context())
    context = request_context({CUSTOM_ATTRIBUTES: "classes=unicorn"})
    with pytest.raises(BadRequestError):
        inference.predict_fn(inference.input_fn(small_png(), "image/png", context), detector, context)
    assert context.get_response_status(0) == (200, None)  # raised for the handler to answer, nothing set here


def test_adapter_with_the_context_argument_of_sagemaker_inference_1_7_and_later(detector):
    inference = load_entry_point()
    from ssd_serving.toolkit_compat import Refusal
    context = mms_context({CUSTOM_ATTRIBUTES.lower(): "top_k=2;threshold=%s" % RECALL_SCORE})
    request = inference.input_fn(small_png(), "image/png", context)
    assert request.header_params == {"top_k": "2", "threshold": str(RECALL_SCORE)}
    body, media = inference.output_fn(inference.predict_fn(request, detector, context), "application/json",
                                      context)
    detections = json.loads(body.decode("utf-8"))["detections"]
    assert media == "application/json" and 1 <= len(detections) <= 2
    assert set(d["label"] for d in detections) <= set(detector.classes)
    assert context.get_response_status(0)[0] == 200

    cases = [  # (what goes wrong, in which step, status)
        (lambda c: inference.predict_fn(inference.input_fn(b"\x00garbage", "image/jpeg", c), detector, c), 400),
        (lambda c: inference.input_fn(b"abc", "application/x-npy", c), 415),
        (lambda c: inference.predict_fn(inference.input_fn(small_png(), "image/png", c), detector, c), 400),
        (lambda c: inference.predict_fn(inference.input_fn(small_png(), "image/png", c), BrokenDetector(detector),
                                        c), 500),
    ]
    headers = [{}, {}, {CUSTOM_ATTRIBUTES: "classes=unicorn"}, {}]
    for (step, status), header in zip(cases, headers):
        context = mms_context(header)
        refused = step(context)
        assert isinstance(refused, Refusal)
        assert inference.predict_fn(refused, detector, context) is refused
        body, media = inference.output_fn(refused, "application/json", context)
        document = json.loads(body.decode("utf-8"))
        assert media == "application/json" and document["status"] == status and set(document) == {"error", "status"}
        assert context.get_response_status(0)[0] == status
        assert context.get_response_content_type(0) == "application/json"

    context = mms_context()
    prediction = inference.predict_fn(inference.input_fn(small_png(), "image/png", context), detector, context)
    body, media = inference.output_fn(prediction, "text/csv", context)
    assert json.loads(body.decode("utf-8"))["status"] == 406 and context.get_response_status(0)[0] == 406


def test_adapter_finds_the_context_of_sagemaker_inference_before_1_7_on_the_stack(detector):
    """Before 1.7 the toolkit calls input_fn(body, content_type), predict_fn(data, model) and
    output_fn(prediction, accept) from inside Transformer.transform(data, context)."""
    inference = load_entry_point()

    class OldTransformer(sagemaker_inference.transformer.Transformer):
        def transform(self, data, context):
            request = inference.input_fn(data, "image/png")
            return request, inference.output_fn(inference.predict_fn(request, detector), "application/json")

    context = mms_context({CUSTOM_ATTRIBUTES: "top_k=3;threshold=%s" % RECALL_SCORE})
    request, (body, media) = OldTransformer().transform(small_png(), context)
    assert request.header_params == {"top_k": "3", "threshold": str(RECALL_SCORE)}
    assert json.loads(body.decode("utf-8"))["detections"]
    context = mms_context()
    _, (body, media) = OldTransformer().transform(b"\x00garbage", context)
    assert json.loads(body.decode("utf-8"))["status"] == 400 and context.get_response_status(0)[0] == 400


# --- the toolkit's own serve, one pair per run ------------------------------------------------------------

def pair_pins():
    """{distribution: version} from requirements/toolkits/PAIR.txt."""
    path = os.path.join(ROOT, "requirements", "toolkits", "%s.txt" % PAIR)
    pins = {}
    with open(path) as stream:
        for line in stream:
            line = line.split("#", 1)[0].strip()
            if line:
                name, version = line.split("==")
                pins[name.strip()] = version.strip()
    return pins


def mms_processes():
    """Running Multi Model Servers (what the toolkit's own check counts), as (pid, cmdline)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        info = process.info
        if info["status"] != psutil.STATUS_ZOMBIE and MMS_MAIN_CLASS in (info["cmdline"] or []):
            found.append((info["pid"], " ".join(info["cmdline"])[:200]))
    return found


def unpack_model_tar_layout(demo_model_dir, model_dir):
    """What SageMaker unpacks a model.tar.gz with code/ into."""
    shutil.copytree(demo_model_dir, model_dir)
    code_dir = os.path.join(model_dir, "code")
    os.makedirs(code_dir)
    shutil.copy(os.path.join(CODE, "inference.py"), code_dir)
    shutil.copytree(RUNTIME_PACKAGE, os.path.join(code_dir, "ssd_serving"),
                    ignore=shutil.ignore_patterns("__pycache__", "models"))


class StockServer(object):
    """The toolkit's serve entry in its own session, started and stopped by the test."""

    def __init__(self, workdir, base_dir):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.run_dir = os.path.join(workdir, "run")
        tmp = os.path.join(workdir, "tmp")
        os.makedirs(self.run_dir)
        os.makedirs(tmp)
        self.log_path = os.path.join(workdir, "serve.log")
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith(("SSD_", "SAGEMAKER_", "MMS_")))
        env.pop("PYTHONPATH", None)  # as in AWS's images: the toolkit adds the model's code/ itself
        env.update({
            "SAGEMAKER_BASE_DIR": base_dir, "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_BIND_TO_PORT": str(self.port), "SAGEMAKER_MODEL_SERVER_WORKERS": "1",
            "TMPDIR": tmp, "TEMP": tmp, "PYTHONUNBUFFERED": "1",
            # the pair's MMS launchers (their shebang is this venv's python) before the base's
            "PATH": os.path.dirname(os.path.abspath(sys.executable)) + os.pathsep + env.get("PATH", ""),
        })
        from sagemaker_inference.environment import Environment
        if not hasattr(Environment(), "management_http_port"):  # 1.1.0: management stays on MMS's default
            env["MMS_MANAGEMENT_ADDRESS"] = "http://127.0.0.1:%d" % internal_port(taken=(self.port,))
        self.env = env
        self.process = None

    def start(self):
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([sys.executable, "-c", SERVE], cwd=self.run_dir, env=self.env,
                                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def log(self, tail=6000):
        with open(self.log_path, errors="replace") as stream:
            return stream.read()[-tail:]

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("the toolkit's serve exited with %s:\n%s" % (self.process.returncode, self.log()))
            try:
                if requests.get(self.url + "/ping", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.5)
        raise AssertionError("the toolkit's server did not answer /ping in %ss:\n%s" % (timeout, self.log()))

    def stop(self):
        """SIGTERM to the whole group (the toolkit forwards it to MMS too), SIGKILL what is left; returns
        what still runs after that (nothing, or the test fails)."""
        if self.process is None:
            return []
        pgid = self.process.pid  # start_new_session: the launcher leads its own group
        for sig, grace in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 10)):
            try:
                os.killpg(pgid, sig)
            except OSError:
                pass
            deadline = time.time() + grace
            while time.time() < deadline:
                if self.process.poll() is not None and not process_group(pgid):
                    return []
                time.sleep(0.2)
        self.process.wait()
        return ["%d %s" % (p.pid, " ".join(p.cmdline())[:120]) for p in process_group(pgid)]

    def post(self, body, content_type="image/jpeg", headers=None, timeout=60):
        headers = dict(headers or {})
        if content_type is not None:
            headers["Content-Type"] = content_type
        return requests.post(self.url + "/invocations", data=body, headers=headers, timeout=timeout)


@pytest.fixture(scope="module")
def stock_server(demo_model_dir, tmp_path_factory):
    if not PAIR:
        pytest.skip(NO_PAIR)
    others = mms_processes()
    if others:
        pytest.fail("another Multi Model Server runs (pid %s): the stock toolkit's serve refuses to start while "
                    "one does; run this when no other model server runs on the machine" %
                    "; ".join("%d: %s" % other for other in others))
    workdir = str(tmp_path_factory.mktemp("stock-%s" % PAIR))
    base_dir = os.path.join(workdir, "opt_ml")
    unpack_model_tar_layout(demo_model_dir, os.path.join(base_dir, "model"))
    saved_config = None
    if os.path.exists(MMS_CONFIG):
        with open(MMS_CONFIG, "rb") as stream:
            saved_config = stream.read()
    server = StockServer(workdir, base_dir)
    left = []
    try:
        server.start()
        server.wait_ready()
        # the first answer may include loading the model (sagemaker-inference 1.1.0 loads it lazily)
        rgb, _, _ = synthetic_scene(3, 320, 240)
        reply = server.post(encode(rgb), timeout=START_TIMEOUT)
        assert reply.status_code == 200, "first request: %s %s\n%s" % (reply.status_code, reply.text, server.log())
        yield server
    finally:
        left = server.stop()
        if saved_config is None:
            if os.path.exists(MMS_CONFIG):
                os.unlink(MMS_CONFIG)
        else:
            with open(MMS_CONFIG, "wb") as stream:
                stream.write(saved_config)
    assert not left, "processes of the toolkit's server still running after stopping it: %s" % left


def assert_json_error(reply, status):
    assert reply.status_code == status, (reply.status_code, reply.text)
    assert "Traceback" not in reply.text, reply.text
    assert reply.headers.get("Content-Type", "").startswith("application/json"), reply.headers
    document = reply.json()
    assert set(document) == {"error", "status"} and document["status"] == status, document
    return document


def test_the_pair_runs_from_its_own_venv(stock_server):
    """The pinned toolkit pair is what this venv imports, and MMS's workers run this venv's interpreter."""
    from importlib import metadata
    import sagemaker_inference
    import sagemaker_mxnet_serving_container
    for name, version in pair_pins().items():
        assert metadata.version(name) == version, name
    for module in (sagemaker_inference, sagemaker_mxnet_serving_container):
        assert os.path.abspath(module.__file__).startswith(os.path.abspath(sys.prefix) + os.sep), module.__file__
    workers = [p for p in process_group(stock_server.process.pid)
               if any("model_service_worker" in part for part in p.cmdline())]
    assert workers, "no MMS worker in the server's process group"
    for worker in workers:
        assert os.path.abspath(worker.cmdline()[0]) == os.path.abspath(sys.executable), worker.cmdline()


def test_jpeg_scene_is_detected(stock_server):
    rgb, _, _ = synthetic_scene(21, 640, 480)
    reply = stock_server.post(encode(rgb), "image/jpeg")
    assert reply.status_code == 200, reply.text
    assert reply.headers.get("Content-Type", "").startswith("application/json")
    document = reply.json()
    assert document["model"]["name"] == demo_meta()["model_name"] and document["detections"]
    assert document["image_size"] == [640, 480]


def test_png_scene_is_found_completely(stock_server):
    """Every object of a synthetic scene found with the right label (threshold from custom attributes)."""
    assert_scene_found_over_http(stock_server, 22, (480, 360))


def test_base64_body_as_application_x_image(stock_server):
    rgb, _, _ = synthetic_scene(23, 320, 240)
    reply = stock_server.post(base64.b64encode(encode(rgb)), "application/x-image")
    assert reply.status_code == 200, reply.text
    assert reply.json()["model"]["name"] == demo_meta()["model_name"]


def _scene_with_two_classes():
    for seed in range(100, 200):
        rgb, boxes, class_ids = synthetic_scene(seed, 480, 360)
        if len(set(int(c) for c in class_ids)) >= 2:
            return rgb, class_ids
    raise AssertionError("no synthetic scene with two classes among seeds 100-199")


def test_custom_attributes_change_the_answer(stock_server):
    """threshold, top_k and classes from X-Amzn-SageMaker-Custom-Attributes, its name in any case."""
    rgb, class_ids = _scene_with_two_classes()
    body = encode(rgb, "PNG")
    low = "threshold=%s" % RECALL_SCORE
    everything = stock_server.post(body, "image/png", headers={CUSTOM_ATTRIBUTES: low})
    assert everything.status_code == 200, everything.text
    labels = set(d["label"] for d in everything.json()["detections"])
    assert len(everything.json()["detections"]) >= 2 and len(labels) >= 2, everything.json()

    top1 = stock_server.post(body, "image/png", headers={CUSTOM_ATTRIBUTES: low + ";top_k=1"})
    assert top1.status_code == 200, top1.text
    assert len(top1.json()["detections"]) == 1

    wanted = demo_meta()["classes"][int(class_ids[0])]
    only = stock_server.post(body, "image/png",
                             headers={CUSTOM_ATTRIBUTES.lower(): low + ";classes=%s" % wanted})
    assert only.status_code == 200, only.text
    kept = only.json()["detections"]
    assert kept and set(d["label"] for d in kept) == {wanted}
    assert len(kept) < len(everything.json()["detections"])


def test_unknown_class_in_custom_attributes_is_a_400(stock_server):
    """Refused in predict_fn (the class list is checked against the model's classes)."""
    rgb, _, _ = synthetic_scene(24, 320, 240)
    reply = stock_server.post(encode(rgb), "image/jpeg", headers={CUSTOM_ATTRIBUTES: "classes=unicorn"})
    document = assert_json_error(reply, 400)
    assert "unicorn" in document["error"] and "circle" in document["error"]


def test_bad_custom_attributes_are_a_400(stock_server):
    rgb, _, _ = synthetic_scene(25, 320, 240)
    reply = stock_server.post(encode(rgb), "image/jpeg", headers={CUSTOM_ATTRIBUTES: "threshold=2"})
    assert "threshold" in assert_json_error(reply, 400)["error"]


def test_garbage_image_is_a_400_without_traceback(stock_server):
    assert_json_error(stock_server.post(b"\x00garbage, not a JPEG" * 10, "image/jpeg"), 400)


def test_unknown_content_type_is_a_415(stock_server):
    document = assert_json_error(stock_server.post(b"\x93NUMPY\x01\x00", "application/x-npy"), 415)
    assert re.search("x-npy", document["error"])


def test_unproduced_accept_is_a_406(stock_server):
    """Refused in output_fn."""
    rgb, _, _ = synthetic_scene(26, 320, 240)
    assert_json_error(stock_server.post(encode(rgb), "image/jpeg", headers={"Accept": "text/csv"}), 406)


def test_drawn_picture_when_asked_for(stock_server):
    rgb, _, _ = synthetic_scene(27, 320, 240)
    reply = stock_server.post(encode(rgb), "image/jpeg", headers={"Accept": "image/png"})
    assert reply.status_code == 200, reply.text
    assert reply.headers.get("Content-Type") == "image/png" and reply.content.startswith(b"\x89PNG")


def test_the_next_valid_request_still_succeeds(stock_server):
    assert_json_error(stock_server.post(b"junk", "image/png"), 400)
    rgb, _, _ = synthetic_scene(28, 640, 480)
    reply = stock_server.post(encode(rgb), "image/jpeg")
    assert reply.status_code == 200, reply.text
    assert reply.json()["model"]["name"] == demo_meta()["model_name"]
