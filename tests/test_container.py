"""The real Dockerfile, built on each local stand-in base and run as SageMaker runs it (`docker run IMAGE serve`).

Needs a Docker engine (docker/ensure-engine.sh starts one). Without one these tests skip and say why,
unless SSD_REQUIRE_DOCKER=1 (set by .ci/run), where a missing engine is a failure. Images are built
with docker/build.sh (its build cache makes rebuilds quick); every container a test starts has a
unique name and is removed by that test (or by the fixture that started it).
"""
import base64
import binascii
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
import uuid

import pytest
import requests
from PIL import Image

from helpers import (DEMO_MODEL, RECALL_SCORE, ROOT, assert_scene_detected, assert_scene_found_over_http, copy_model,
                      demo_meta, encode, free_port, photo_paths, synthetic_scene)

BUILD_SCRIPT = os.path.join(ROOT, "docker", "build.sh")
LOG_DIR = os.path.join(ROOT, "build", "docker-logs")
STACKS = ["cpu", "ei"]
STAND_IN_BASES = {"cpu": "ssd-local/mxnet-inference:1.9.0-cpu-standin",  # docker/build.sh's names
                  "gpu": "ssd-local/mxnet-inference:1.9.0-gpu-standin",
                  "ei": "ssd-local/mxnet-inference-eia:1.4.1-cpu-standin"}
READY_TIMEOUT = 180
CA_BUNDLE_DEFAULT = os.environ.get("CA_BUNDLE") or "/etc/ssl/certs/ca-certificates.crt"  # as docker/build.sh


def docker(*args, **kwargs):
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.PIPE)
    kwargs.setdefault("timeout", 120)
    return subprocess.run(["docker"] + list(args), **kwargs)


def _engine_problem():
    if shutil.which("docker") is None:
        return "no docker client on PATH"
    try:
        info = docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 30 s"
    if info.returncode != 0:
        return "no Docker engine answers (`docker info`: %s)" % info.stderr.decode(errors="replace").strip()[-300:]
    return None


@pytest.fixture(scope="session")
def docker_engine():
    problem = _engine_problem()
    if problem:
        message = "%s; run docker/ensure-engine.sh (as root) to install and start one" % problem
        if os.environ.get("SSD_REQUIRE_DOCKER") == "1":
            pytest.fail("SSD_REQUIRE_DOCKER=1 but " + message, pytrace=False)
        pytest.skip("container tests need a Docker engine: " + message)


def build_image(stack, tag, *build_args):
    """docker/build.sh STACK with IMAGE=tag; returns its output, fails the test with its end on error."""
    if not os.path.isdir(LOG_DIR):
        os.makedirs(LOG_DIR)
    env = dict(os.environ, IMAGE=tag, LOG_DIR=LOG_DIR)
    done = subprocess.run([BUILD_SCRIPT, stack] + list(build_args), env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=3600)
    return done.returncode, done.stdout.decode(errors="replace")


@pytest.fixture(scope="session", params=STACKS)
def image(request, docker_engine):
    """The top Dockerfile built on the `cpu` or `ei` stand-in base (docker/build.sh)."""
    # SSD_TEST_IMAGE_NAME: another name for the images, so two checkouts testing at once do not retag each other's
    tag = "%s:%s" % (os.environ.get("SSD_TEST_IMAGE_NAME") or "ssd-serving-test", request.param)
    started = time.time()
    status, output = build_image(request.param, tag)
    assert status == 0, "docker/build.sh %s failed:\n%s" % (request.param, output[-6000:])
    print("\nbuilt %s in %.0f s:\n%s" % (tag, time.time() - started,
                                         "\n".join(l for l in output.splitlines() if l.startswith("    "))))
    return {"stack": request.param, "tag": tag, "build_output": output}


class Container(object):
    """One `docker run -d` of a test, under a unique name; remove() removes exactly it."""

    def __init__(self, image_tag, args=("serve",), env=None, network="host", volumes=(), memory=None):
        self.name = "ssd-test-%s" % uuid.uuid4().hex[:12]
        self.port = None
        command = ["run", "-d", "--name", self.name, "--network", network]
        if memory:
            command += ["--memory", memory]
        env = dict(env or {})
        if network == "host":
            # the engine here has no bridge: the server binds a free host port, as SageMaker's
            # multi-container endpoints ask through SAGEMAKER_BIND_TO_PORT
            self.port = free_port()
            env["SAGEMAKER_BIND_TO_PORT"] = str(self.port)
        for key, value in sorted(env.items()):
            command += ["-e", "%s=%s" % (key, value)]
        for volume in volumes:
            command += ["-v", volume]
        self.started = time.time()
        done = docker(*(command + [image_tag] + list(args)))
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        self.ready_after = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def logs(self):
        done = docker("logs", self.name)
        return (done.stdout + done.stderr).decode(errors="replace")

    def state(self):
        done = docker("inspect", "--format", "{{json .State}}", self.name)
        return json.loads(done.stdout.decode()) if done.returncode == 0 else {}

    def wait_ready(self, ping=None, timeout=READY_TIMEOUT):
        """Until /ping answers 200 and the server logged `ready:` (a worker loaded the model)."""
        ping = ping or self._ping_from_host
        deadline = time.time() + timeout
        while time.time() < deadline:
            state = self.state()
            if not state.get("Running"):
                raise AssertionError("container %s stopped (exit %s):\n%s" % (self.name, state.get("ExitCode"),
                                                                             self.logs()[-6000:]))
            if ping() and "ready:" in self.logs():
                self.ready_after = time.time() - self.started
                return self
            time.sleep(0.25)
        raise AssertionError("container %s not ready after %ss:\n%s" % (self.name, timeout, self.logs()[-6000:]))

    def _ping_from_host(self):
        try:
            return requests.get(self.url + "/ping", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def post(self, body, content_type="image/jpeg", **kwargs):
        headers = kwargs.pop("headers", {})
        headers["Content-Type"] = content_type
        return requests.post(self.url + "/invocations", data=body, headers=headers, timeout=60, **kwargs)

    def exec_python(self, code, stdin=None, timeout=90):
        return docker("exec", "-i", self.name, "python", "-c", code, input=stdin, timeout=timeout)

    def remove(self):
        docker("rm", "-f", self.name)


@pytest.fixture(scope="session")
def server(image):
    """`docker run --network host -e SAGEMAKER_BIND_TO_PORT=<free port> IMAGE serve`, ready."""
    container = Container(image["tag"])
    try:
        container.wait_ready()
        print("\n%s: healthy /ping with the model loaded %.1f s after docker run" % (image["tag"],
                                                                                  container.ready_after))
        yield container
    finally:
        container.remove()


def test_image_follows_the_sagemaker_contract(image):
    config = json.loads(docker("image", "inspect", image["tag"]).stdout.decode())[0]["Config"]
    assert config["Labels"].get("com.amazonaws.sagemaker.capabilities.accept-bind-to-port") == "true"
    # the int8 check's verdict is labelled (docker/label-int8.sh); the ei image quantizes nothing
    assert config["Labels"].get("ssd.int8") == ("baked" if image["stack"] == "cpu" else "none"), config["Labels"]
    assert config["Entrypoint"] == ["/usr/local/bin/ssd-entrypoint"]  # exec form: `serve` replaces CMD
    assert config["Cmd"] == ["serve"]
    assert config["User"] and config["User"] not in ("root", "0")
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["SSD_MODEL_DIR"] == "/opt/ssd/model"  # never /opt/ml/model, which SageMaker mounts over
    # nothing of the build's CA bundle or GluonCV made it into the image, and /opt/ml/model is not baked
    check = ("import importlib.util, os, sys; "
             "print(importlib.util.find_spec('gluoncv') is None, os.path.exists('/run/secrets/ca_bundle'), "
             "os.path.exists('/opt/ml/model'), os.path.isfile('/opt/ssd/model/model-meta.json'))")
    done = docker("run", "--rm", "--network", "none", image["tag"], "python", "-c", check)
    assert done.stdout.decode().split() == ["True", "False", "False", "True"], done.stderr.decode()
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image["tag"]).stdout.decode()
    assert "BEGIN CERTIFICATE" not in history


def test_other_commands_run_as_given(image):
    done = docker("run", "--rm", "--network", "none", image["tag"], "sh", "-c", "echo hello from $(id -un)")
    assert done.returncode == 0 and done.stdout.decode().strip() == "hello from model-server", done.stderr


def test_ping(server):
    assert requests.get(server.url + "/ping", timeout=2).status_code == 200


@pytest.mark.parametrize("name", ["grace_hopper", "astronaut", "chelsea", "coffee"])
def test_real_photos(server, name):
    path = photo_paths()[name]
    with open(path, "rb") as stream:
        body = stream.read()
    reply = server.post(body, "image/png" if path.endswith(".png") else "image/jpeg")
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    document = reply.json()
    assert document["model"]["name"] == demo_meta()["model_name"] and document["model"]["demo"] is True
    assert document["image_size"] == list(Image.open(path).size)


@pytest.mark.parametrize("size", [(640, 480), (333, 500)])
def test_every_object_of_a_synthetic_scene_is_found(server, size):
    assert_scene_found_over_http(server, 4242 + size[1], size)


@pytest.mark.parametrize("body,content_type,status", [
    (b"", "image/jpeg", 400),
    (os.urandom(3000), "image/jpeg", 400),
    (b"###", "text/plain", 400),
    (b"{nope", "application/json", 400),
    (b"abc", "video/mp4", 415),
], ids=["empty", "random bytes", "bad base64", "bad json", "unsupported type"])
def test_bad_requests_get_4xx_json(server, body, content_type, status):
    reply = server.post(body, content_type)
    assert reply.status_code == status, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json()["error"]
    rgb, _, _ = synthetic_scene(7, 320, 240)
    assert server.post(encode(rgb)).status_code == 200  # the worker keeps serving


def test_starts_and_serves_without_any_network(image):
    """Nothing is downloaded at start: with --network none the server comes up and answers from inside."""
    container = Container(image["tag"], network="none")
    try:
        ping = "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/ping', timeout=2).status)"
        container.wait_ready(ping=lambda: container.exec_python(ping, timeout=30).stdout.strip() == b"200")
        offline = container.exec_python("import socket; socket.create_connection(('pypi.org', 443), timeout=5)")
        assert offline.returncode != 0, "the container reached the network"
        rgb, boxes, class_ids = synthetic_scene(4242 + 480, 640, 480)
        post = ("import sys, urllib.request; "
                "request = urllib.request.Request('http://127.0.0.1:8080/invocations', data=sys.stdin.buffer.read(), "
                "headers={'Content-Type': 'image/png', 'X-Amzn-SageMaker-Custom-Attributes': 'threshold=%s'}); "
                "sys.stdout.write(urllib.request.urlopen(request, timeout=60).read().decode())") % RECALL_SCORE
        done = container.exec_python(post, stdin=encode(rgb, "PNG"))
        assert done.returncode == 0, done.stderr.decode(errors="replace")
        document = json.loads(done.stdout.decode())
        assert document["model"]["name"] == demo_meta()["model_name"]
        assert_scene_detected(boxes, class_ids, document["detections"], demo_meta()["classes"])
        # SageMaker stops a container with SIGTERM and kills it 30 s later: exit code 0, not 137 (killed)
        docker("stop", "-t", "30", container.name, timeout=60)
        assert container.state().get("ExitCode") == 0, container.logs()[-3000:]
    finally:
        container.remove()


def test_model_in_opt_ml_model_overrides_the_baked_one(image, tmp_path):
    mounted = copy_model(DEMO_MODEL, str(tmp_path / "model"), model_name="ssd_256_demo_shapes_from_opt_ml_model")
    for path in (str(tmp_path), mounted):  # readable by the image's non-root user, as SageMaker's files are
        os.chmod(path, 0o755)
    container = Container(image["tag"], volumes=["%s:/opt/ml/model:ro" % mounted])
    try:
        container.wait_ready()
        rgb, _, _ = synthetic_scene(21, 400, 300)
        reply = container.post(encode(rgb))
        assert reply.status_code == 200, reply.text
        assert reply.json()["model"]["name"] == "ssd_256_demo_shapes_from_opt_ml_model"
    finally:
        container.remove()


def test_a_multi_model_endpoint_loads_invokes_and_unloads_models_from_opt_ml_models(image, tmp_path):
    """SageMaker's multi-model layout (/opt/ml/models/NAME/model, mounted read-only as SageMaker's files are),
    SAGEMAKER_MULTI_MODEL=true, no /opt/ml/model: two models with their own classes, a corrupt one refused
    naming its sha256, an unloaded one 404 while the other keeps serving (tests/test_multimodel.py has the rest)."""
    root = tmp_path / "models"
    copy_model(DEMO_MODEL, str(root / "demo" / "model"))
    copy_model(DEMO_MODEL, str(root / "renamed" / "model"), classes=["disc", "block", "wedge", "spark"])
    corrupt = copy_model(DEMO_MODEL, str(root / "corrupt" / "model"))
    with open(os.path.join(corrupt, "model-0000.params"), "r+b") as stream:
        stream.seek(1000)
        stream.write(b"\x00" * 64)
    for folder, _, _ in os.walk(str(tmp_path)):
        os.chmod(folder, 0o755)
    container = Container(image["tag"], env={"SAGEMAKER_MULTI_MODEL": "true"},
                          volumes=["%s:/opt/ml/models:ro" % root])
    try:
        container.wait_ready()
        assert requests.get(container.url + "/models", timeout=5).json() == {"models": []}
        rgb, _, _ = synthetic_scene(31, 640, 480)
        labels = {}
        for name in ("demo", "renamed"):
            loaded = requests.post(container.url + "/models", timeout=120,
                                   json={"model_name": name, "url": "/opt/ml/models/%s/model" % name})
            assert loaded.status_code == 200, (loaded.text, container.logs()[-3000:])
            reply = requests.post(container.url + "/models/%s/invoke" % name, data=encode(rgb, "PNG"), timeout=60,
                                  headers={"Content-Type": "image/png", "X-Amzn-SageMaker-Target-Model": name,
                                           "X-Amzn-SageMaker-Custom-Attributes": "threshold=%s" % RECALL_SCORE})
            assert reply.status_code == 200, reply.text
            assert reply.json()["model"]["target_model"] == name
            labels[name] = set(d["label"] for d in reply.json()["detections"])
        assert labels["demo"] and labels["demo"] <= set(demo_meta()["classes"])
        assert labels["renamed"] and labels["renamed"] <= {"disc", "block", "wedge", "spark"}
        refused = requests.post(container.url + "/models", timeout=60,
                                json={"model_name": "corrupt", "url": "/opt/ml/models/corrupt/model"})
        assert refused.status_code == 422 and "sha256" in refused.json()["error"], refused.text
        assert requests.delete(container.url + "/models/demo", timeout=60).status_code == 200
        gone = requests.post(container.url + "/models/demo/invoke", data=encode(rgb), timeout=60,
                             headers={"Content-Type": "image/jpeg"})
        assert gone.status_code == 404 and gone.json()["status"] == 404
        still = requests.post(container.url + "/models/renamed/invoke", data=encode(rgb), timeout=60,
                              headers={"Content-Type": "image/jpeg"})
        assert still.status_code == 200, still.text
        assert [m["modelName"] for m in requests.get(container.url + "/models", timeout=5).json()["models"]] == [
            "renamed"]
    finally:
        container.remove()


def test_workers_and_threads_follow_the_environment(image):
    container = Container(image["tag"], env={"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "OMP_NUM_THREADS": "1"})
    try:
        container.wait_ready()
        assert "with 2 worker(s) x 1 thread(s)" in container.logs()
        # each worker loads its own model copy and logs it; wait for the second one
        deadline = time.time() + 90
        while container.logs().count("serving model ssd_256_demo_shapes") < 2 and time.time() < deadline:
            time.sleep(0.5)
        assert container.logs().count("serving model ssd_256_demo_shapes") == 2, container.logs()[-5000:]
    finally:
        container.remove()


# a zoo model no build of this project downloads (so no build cache holds its weights), and proxies where nothing
# listens (Docker passes the predefined proxy build args to every RUN): the zoo is unreachable on purpose, on any host
UNREACHABLE_ZOO_MODEL = "ssd_300_vgg16_atrous_voc"
DEAD_PROXY = "http://127.0.0.1:9"


def test_require_zoo_weights_fails_the_build_when_the_zoo_is_unreachable(image):
    if image["stack"] != "cpu":
        pytest.skip("checked on the cpu stand-in only (same Dockerfile stage on both)")
    proxies = []
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        proxies += ["--build-arg", "%s=%s" % (name, DEAD_PROXY)]
    status, output = build_image("cpu", "ssd-serving-test:require-zoo", "--build-arg", "REQUIRE_ZOO_WEIGHTS=1",
                                 "--build-arg", "MODEL_NAME=%s" % UNREACHABLE_ZOO_MODEL, *proxies)
    assert status != 0, output[-3000:]
    assert "REQUIRE_ZOO_WEIGHTS=1 and the zoo weights of %s could not be downloaded" % UNREACHABLE_ZOO_MODEL \
        in output, output[-3000:]
    assert docker("image", "inspect", "ssd-serving-test:require-zoo").returncode != 0


def _posted_scene(container, seed=31):
    rgb, boxes, class_ids = synthetic_scene(seed, 640, 480)
    reply = container.post(encode(rgb, "PNG"), content_type="image/png",
                           headers={"X-Amzn-SageMaker-Custom-Attributes": "threshold=%s" % RECALL_SCORE})
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert_scene_detected(boxes, class_ids, document["detections"], demo_meta()["classes"])
    return document


def _cpu_flags():
    with open("/proc/cpuinfo") as stream:
        return set(next(line for line in stream if line.startswith("flags")).split(":", 1)[1].split())


def test_the_cpu_image_carries_int8_and_the_cpu_chooses(image):
    """The cpu image bakes fp32 and int8; SSD_PRECISION=auto picks by this host's CPU (int8 with VNNI/AMX,
    which the container sees as the host does), fp32 and int8 force it, and responses and the log say which."""
    if image["stack"] != "cpu":
        pytest.skip("int8 is baked for the cpu target only (the ei image's MXNet 1.4.1 cannot run it)")
    assert "graphs: fp32 + int8" in image["build_output"], image["build_output"][-3000:]
    # the build checked the demo's int8 accuracy against fp32 and kept what it measured
    check = docker("run", "--rm", "--network", "none", "--entrypoint", "cat", image["tag"],
                   "/opt/ssd/model/int8/accuracy-check.txt").stdout.decode()
    drop = float(re.search(r"drop_points=(-?[0-9.]+)", check).group(1))
    assert "reference_mAP=" in check and drop <= 1.0, check
    # and its figure is in the image's labels (docker/label-int8.sh), in the words of the start-up log
    labels = json.loads(docker("image", "inspect", image["tag"]).stdout.decode())[0]["Config"]["Labels"]
    assert labels["ssd.int8"] == "baked" and labels["ssd.int8.check.passed"] == "true", labels
    assert labels["ssd.int8.check.metric"] == "voc07_map_drop" and float(labels["ssd.int8.check.limit"]) == 1.0
    assert abs(float(labels["ssd.int8.check.value"]) - drop) < 0.01 and int(labels["ssd.int8.check.images"]) >= 50
    assert labels["ssd.int8.check"].startswith("int8 accuracy check passed: VOC07 mAP drop "), labels
    seen = [flag for flag in ("avx512_vnni", "avx_vnni", "amx_int8") if flag in _cpu_flags()]  # read here, not
    # through ssd_serving.precision (the code under test); the container sees the host's CPU
    for wanted, expected in (("auto", "int8" if seen else "fp32"), ("fp32", "fp32"), ("int8", "int8")):
        container = Container(image["tag"], env={"SSD_PRECISION": wanted})
        try:
            container.wait_ready()
            assert _posted_scene(container)["model"]["precision"] == expected
            logs = container.logs()
            assert "serving the %s graph: SSD_PRECISION=%s" % (expected, wanted) in logs, logs[-3000:]
            if expected == "int8":
                assert labels["ssd.int8.check"] in logs, (labels["ssd.int8.check"], logs[-3000:])
            if wanted != "fp32":  # the reason names the CPU instructions it looked for or found
                assert (", ".join(seen) if seen else "avx512_vnni, avx_vnni, amx_int8") in logs, logs[-3000:]
        finally:
            container.remove()


def test_a_bad_precision_setting_stops_the_container_with_a_message(image):
    container = Container(image["tag"], env={"SSD_PRECISION": "fast"})
    try:
        deadline = time.time() + 60
        while container.state().get("Running") and time.time() < deadline:
            time.sleep(0.5)
        assert container.state().get("ExitCode") not in (None, 0), container.logs()[-3000:]
        assert "not starting: SSD_PRECISION='fast' is not valid: it accepts one of auto, fp32, int8" in container.logs()
    finally:
        container.remove()


def test_the_gpu_image_builds_and_serves_fp32(docker_engine):
    """The gpu target on its stand-in base, whose MXNet is the CPU build (no GPU here): the image builds,
    serves fp32 (no int8 is baked for it) and falls back to the CPU, saying so. Not run on a GPU."""
    status, output = build_image("gpu", "ssd-serving-test:gpu")
    assert status == 0, output[-6000:]
    assert "graphs: fp32)" in output
    labels = json.loads(docker("image", "inspect", "ssd-serving-test:gpu").stdout.decode())[0]["Config"]["Labels"]
    assert labels["ssd.stand-in-for"] == "mxnet-inference:1.9.0-gpu-py38-cu112-ubuntu20.04-sagemaker"
    assert labels["com.amazonaws.sagemaker.capabilities.multi-models"] == "true"  # it answers SageMaker's /models
    container = Container("ssd-serving-test:gpu")
    try:
        container.wait_ready()
        document = _posted_scene(container)
        assert document["model"]["precision"] == "fp32" and document["model"]["device"] == "cpu"
        assert "serving the fp32 graph" in container.logs()
    finally:
        container.remove()


def test_stand_in_base_serves_like_aws_image(image, tmp_path):
    """The stand-in base itself, as AWS's image is used without this Dockerfile: `serve` runs the stock
    SageMaker MXNet toolkit on a model.tar.gz layout with code/inference.py and its package in code/."""
    model = tmp_path / "model"
    shutil.copytree(DEMO_MODEL, str(model))
    (model / "code").mkdir()
    shutil.copy(os.path.join(ROOT, "code", "inference.py"), str(model / "code" / "inference.py"))
    shutil.copytree(os.path.join(ROOT, "container", "ssd_serving"), str(model / "code" / "ssd_serving"),
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for path in [str(tmp_path), str(model)] + [os.path.join(d, n) for d, ds, fs in os.walk(str(model))
                                              for n in ds + fs]:
        os.chmod(path, 0o755)  # readable by the toolkit's model server user
    container = Container(STAND_IN_BASES[image["stack"]], volumes=["%s:/opt/ml/model:ro" % model])
    try:
        rgb, _, _ = synthetic_scene(5, 320, 240)
        deadline, reply = time.time() + READY_TIMEOUT, None
        while time.time() < deadline:  # the stock toolkit's /ping answers before the model is loaded
            try:
                reply = container.post(encode(rgb))
                if reply.status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert container.state().get("Running"), container.logs()[-5000:]
            time.sleep(1)
        assert reply is not None and reply.status_code == 200, container.logs()[-5000:]
        assert reply.json()["model"]["name"] == demo_meta()["model_name"]
        bad = container.post(b"garbage")
        assert bad.status_code == 400 and bad.json()["error"]
    finally:
        container.remove()


def test_stand_in_base_runs_other_commands_and_keeps_running(image):
    """Like AWS's dockerd-entrypoint.py: a command other than serve runs, then the container stays up."""
    container = Container(STAND_IN_BASES[image["stack"]], args=("touch", "/tmp/command-ran"), network="none")
    try:
        deadline = time.time() + 60
        while time.time() < deadline and docker("exec", container.name, "test", "-f", "/tmp/command-ran").returncode:
            time.sleep(0.5)
        assert docker("exec", container.name, "test", "-f", "/tmp/command-ran").returncode == 0, container.logs()
        assert container.state().get("Running")
    finally:
        container.remove()


# ---- image hygiene: what ships in the layers, pinned versions, verified weights, no root

LEAK_NAMES = re.compile(r"(^|/)(\.git(/|$)|\.aws/(credentials|config)$|\.docker/config\.json$|\.netrc$|\.pypirc$|"
                        r"id_(rsa|ecdsa|ed25519)$|run/secrets/)")
LEAK_CONTENT = [
    # AWS's documentation examples end in EXAMPLE (AKIAIOSFODNN7EXAMPLE; botocore's API examples have more)
    (re.compile(rb"(?<![A-Z0-9])(AKIA|ASIA)(?![A-Z0-9]{9}EXAMPLE(?![A-Z0-9]))[A-Z0-9]{16}(?![A-Z0-9])"),
     "an AWS access key id"),
    # a value on the same line, as credentials files and environment dumps hold it: botocore's own source,
    # which the cpu image carries like AWS's 1.9.0 image, names these keys with code after them
    (re.compile(rb"aws_secret_access_key[ \t]*[=:][ \t]*[A-Za-z0-9/+]{40}"), "an AWS secret access key"),
    (re.compile(rb"aws_session_token[ \t]*[=:][ \t]*[A-Za-z0-9/+=]{20}"), "an AWS session token"),
    (re.compile(rb"-----BEGIN (RSA |EC |OPENSSH |DSA |ENCRYPTED )?PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]{64}"),
     "a private key"),
]
# Private keys that are public knowledge, not secrets of this build: third-party packages' test fixtures
# (the `future` package ships CPython's test keycert.pem) and self-test keys compiled into libraries
# (libgnutls); the private-key pattern is not applied to those.
PUBLIC_TEST_FIXTURES = re.compile(r"(site-packages|dist-packages)/[^/]+/(.+/)?tests?/[^/]+\.pem$")


def _leaks(data):
    return [what for pattern, what in LEAK_CONTENT if pattern.search(data)]


def test_the_leak_patterns_find_credentials_files_and_not_botocore_source():
    # credentials of the right shapes, made up at run time so that no key-like string is written in the repository
    key_id = b"AKIA" + binascii.hexlify(os.urandom(8)).upper()
    secret = base64.b64encode(os.urandom(30))   # 40 characters, as AWS secret keys are
    token = base64.b64encode(os.urandom(60))
    assert _leaks(b"[default]\naws_access_key_id = " + key_id + b"\naws_secret_access_key = " + secret +
                  b"\naws_session_token = " + token + b"\n") == [
        "an AWS access key id", "an AWS secret access key", "an AWS session token"]
    # what botocore's source and API examples hold: key names followed by code, and AWS's ...EXAMPLE keys
    documented = [b"AKIA" + middle + b"EXAMPLE" for middle in (b"I44QH8DHB", b"1" * 9)]
    botocore = (b"        :param aws_session_token:\n            credential_inputs.append(x)\n"
                b"            aws_session_token=frozen_credentials.token,\n        aws_session_token=None,\n" +
                b"".join(b'"AccessKeyId": "' + key + b'"\n' for key in documented))
    assert _leaks(botocore) == []


def _public_key_material(name, data):
    return bool(PUBLIC_TEST_FIXTURES.search(name)) or data.startswith(b"\x7fELF")
SCAN_MAX_BYTES = 4 * 1024 * 1024
HOST_LOCAL_CAS = "/usr/local/share/ca-certificates"   # where a build host adds its proxy's CA


def _local_ca_bodies():
    """Distinctive base64 lines of the build host's locally added CAs (those of a TLS-inspecting proxy)."""
    bodies = []
    if os.path.isdir(HOST_LOCAL_CAS):
        for name in sorted(os.listdir(HOST_LOCAL_CAS)):
            with open(os.path.join(HOST_LOCAL_CAS, name), "rb") as stream:
                lines = [row.strip() for row in stream.read().splitlines() if row.strip() and b"-----" not in row]
            if len(lines) > 4:
                bodies.append((name, lines[len(lines) // 2]))
    return bodies


def _layers(saved):
    """(layer name, open tarfile) for each layer of a `docker save` archive (Docker or OCI layout)."""
    with tarfile.open(saved) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))
        for layer_path in manifest[0]["Layers"]:
            with tarfile.open(fileobj=outer.extractfile(layer_path)) as layer:
                yield layer_path, layer


def test_no_credentials_git_or_build_secrets_in_any_layer(image, tmp_path):
    saved = str(tmp_path / "image.tar")
    done = docker("save", "-o", saved, image["tag"], timeout=600)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    with open(CA_BUNDLE_DEFAULT, "rb") as stream:
        ca_bundle = stream.read() if os.path.getsize(CA_BUNDLE_DEFAULT) < 10 * SCAN_MAX_BYTES else b""
    ca_bodies = _local_ca_bodies()
    findings, files, scanned = [], 0, 0
    for layer_path, layer in _layers(saved):
        for member in layer:
            files += 1
            name = member.name.lstrip("./")
            if LEAK_NAMES.search(name):
                findings.append("%s: %s" % (layer_path, name))
            if not member.isfile() or member.size > SCAN_MAX_BYTES or member.size == 0:
                continue
            data = layer.extractfile(member).read()
            scanned += len(data)
            for pattern, what in LEAK_CONTENT:
                if pattern.search(data) and not (what == "a private key" and _public_key_material(name, data)):
                    findings.append("%s: %s holds %s" % (layer_path, name, what))
            for ca_name, body in ca_bodies:
                if body in data:
                    findings.append("%s: %s holds the build host's CA %s" % (layer_path, name, ca_name))
            if ca_bundle and data == ca_bundle:
                findings.append("%s: %s is the build's CA bundle" % (layer_path, name))
    print("\n%s: %d files in %d MB scanned, %d local CA(s) looked for" % (image["tag"], files, scanned >> 20,
                                                                         len(ca_bodies)))
    assert files > 1000 and not findings, findings
    config = json.loads(docker("image", "inspect", image["tag"]).stdout.decode())[0]["Config"]
    history = docker("history", "--no-trunc", "--format", "{{.CreatedBy}}", image["tag"]).stdout
    for text in [json.dumps(config).encode(), history]:
        for pattern, what in LEAK_CONTENT:
            assert not pattern.search(text), "image config or history holds %s" % what
    assert b"ca_bundle" not in json.dumps(config["Env"]).encode()


def _pins():
    pins = {}
    for path in ["requirements/common.txt", "requirements/mxnet-1.9.txt", "requirements/mxnet-1.4.txt",
                 "docker/base/constraints.txt"]:
        series = "1.4" if path.endswith("1.4.txt") else "1.9" if path.endswith("1.9.txt") else "any"
        with open(os.path.join(ROOT, path)) as stream:
            for line in stream:
                line = line.split("#", 1)[0].strip()
                if "==" in line:
                    name, version = line.split("==", 1)
                    pins.setdefault(re.sub(r"[-_.]+", "-", name).lower(), {})[series] = version.strip()
    return pins


def test_every_python_and_debian_package_is_at_its_pinned_version(image):
    done = docker("run", "--rm", "--network", "none", "--entrypoint", "sh", image["tag"], "-c",
                  "python -m pip freeze --all --disable-pip-version-check; echo ---; "
                  "dpkg-query -W -f '${Package} ${Version}\\n' python3 openjdk-17-jre-headless libgomp1 libquadmath0")
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    freeze, _, debian = done.stdout.decode().partition("---")
    series = "1.9" if image["stack"] == "cpu" else "1.4"
    pins, unpinned, wrong = _pins(), [], []
    for line in freeze.split():
        name, _, version = line.partition("==")
        canonical = re.sub(r"[-_.]+", "-", name).lower()
        if canonical in ("pip", "setuptools", "wheel"):  # the venv's own tools, from Debian's python3-venv
            continue
        pinned = pins.get(canonical, {})
        expected = pinned.get(series, pinned.get("any"))
        if expected is None:
            unpinned.append(line)
        elif version != expected:
            wrong.append("%s (pinned %s)" % (line, expected))
    assert freeze.split() and not unpinned and not wrong, ("unpinned", unpinned, "other versions", wrong)
    with open(os.path.join(ROOT, "docker", "base", "Dockerfile")) as stream:
        dockerfile = stream.read()
    args = dict(re.findall(r"^ARG (\w+_VERSION)=(\S+)$", dockerfile, re.M))
    expected_debian = {"python3": args["PYTHON3_VERSION"], "openjdk-17-jre-headless": args["JAVA_VERSION"],
                       "libgomp1": args["GCC_LIBS_VERSION"], "libquadmath0": args["GCC_LIBS_VERSION"]}
    installed = dict(line.split(" ", 1) for line in debian.strip().splitlines())
    assert installed == expected_debian, installed


def tampered_model(tmp_path):
    """A copy of the demo model whose params no longer match their sha256, readable by the image's user."""
    tampered = str(tmp_path / "model")
    shutil.copytree(DEMO_MODEL, tampered)
    with open(os.path.join(tampered, "model-0000.params"), "ab") as stream:
        stream.write(b"tampered")
    for path in (str(tmp_path), tampered) + tuple(os.path.join(tampered, n) for n in os.listdir(tampered)):
        os.chmod(path, 0o755)
    return tampered


def test_baked_weights_match_their_checksum_and_a_mismatch_is_refused(image, tmp_path):
    check = ("import hashlib, json, os; d = os.environ['SSD_MODEL_DIR']; m = json.load(open(os.path.join(d, "
             "'model-meta.json'))); h = hashlib.sha256(open(os.path.join(d, m.get('params_file', "
             "'model-0000.params')), 'rb').read()).hexdigest(); print(h, m['params_sha256'])")
    done = docker("run", "--rm", "--network", "none", image["tag"], "python", "-c", check)
    actual, recorded = done.stdout.decode().split()
    assert actual == recorded, done.stdout
    # the image's last build step runs docker/check-image.sh, which verifies them (startup.preflight) ...
    with open(os.path.join(ROOT, "Dockerfile")) as stream:
        assert "sh /opt/ssd/check-image.sh" in stream.read().split("FROM ${BASE_IMAGE} AS serving")[1]
    done = docker("run", "--rm", "--network", "none", image["tag"], "sh", "/opt/ssd/check-image.sh")
    assert done.returncode == 0 and b"reads /opt/ssd/model" in done.stdout, done.stdout + done.stderr
    # ... and refuses weights whose sha256 differs from the metadata
    tampered = tampered_model(tmp_path)
    done = docker("run", "--rm", "--network", "none", "-v", "%s:/opt/ml/model:ro" % tampered, image["tag"],
                  "sh", "/opt/ssd/check-image.sh")
    assert done.returncode != 0 and b"sha256" in done.stdout + done.stderr, done.stdout + done.stderr


def test_server_processes_do_not_run_as_root(server):
    done = docker("exec", server.name, "sh", "-c",
                  "for s in /proc/[0-9]*/status; do grep -H '^Uid:' $s; done 2>/dev/null; id -u")
    lines = done.stdout.decode().split("\n")
    uids = [line.split()[1] for line in lines if "Uid:" in line]  # real uid of each process
    assert len(uids) >= 3 and "0" not in uids, done.stdout.decode()  # entrypoint/serving, JVM, worker(s)


# ---- faults inside the container

FIND_WORKER = ("import os\n"
               "for pid in os.listdir('/proc'):\n"
               "    try:\n"
               "        command = open('/proc/%s/cmdline' % pid, 'rb').read()\n"
               "        environ = open('/proc/%s/environ' % pid, 'rb').read().split(b'\\0')\n"
               "    except (IOError, OSError):\n"
               "        continue\n"
               "    ready = [e.split(b'=', 1)[1] for e in environ if e.startswith(b'SSD_READY_DIR=')]\n"
               "    if b'model_service_worker' in command and ready and "
               "os.path.exists(os.path.join(ready[0].decode(), 'worker-' + pid)):\n"
               "        print(pid)\n")


def test_a_killed_worker_recovers_without_restarting_the_container(image):
    # one worker, so that its death leaves none with the model and /ping must say so
    container = Container(image["tag"], env={"SSD_WORKER_LAYOUT": "latency"})
    try:
        container.wait_ready()
        started = container.state()["StartedAt"]
        rgb, _, _ = synthetic_scene(8, 320, 240)
        assert container.post(encode(rgb)).status_code == 200
        pids = container.exec_python(FIND_WORKER).stdout.decode().split()
        assert pids, container.logs()[-3000:]
        killed_at = time.time()
        killed = container.exec_python("import os, signal; os.kill(%d, signal.SIGKILL)" % int(pids[0]))
        assert killed.returncode == 0, killed.stderr
        statuses, recovered = [], None
        while time.time() - killed_at < 60 and recovered is None:
            try:
                status = requests.get(container.url + "/ping", timeout=2).status_code
            except requests.RequestException as err:
                status = err.__class__.__name__
            statuses.append(status)
            if status == 200 and 503 in statuses:
                recovered = time.time() - killed_at
            time.sleep(0.1)
        assert recovered is not None, ("/ping after the kill", statuses)
        assert container.post(encode(rgb)).status_code == 200
        state = container.state()
        assert state["Running"] and state["StartedAt"] == started and state.get("RestartCount", 0) == 0
        assert pids[0] not in container.exec_python(FIND_WORKER).stdout.decode().split()
        print("\n%s: worker %s killed; /ping 503, then 200 after %.1f s, in the same container" % (
            image["tag"], pids[0], recovered))
    finally:
        container.remove()


def test_a_model_that_cannot_load_stops_the_container_with_a_message(image, tmp_path):
    _refused_with(image, tampered_model(tmp_path), "sha256")


def _refused_with(image, folder, message):
    """The container started with `folder` at /opt/ml/model exits non-zero, never healthy, saying `message`."""
    container = Container(image["tag"], volumes=["%s:/opt/ml/model:ro" % folder])
    try:
        deadline = time.time() + 120
        while container.state().get("Running") and time.time() < deadline:
            try:
                assert requests.get(container.url + "/ping", timeout=2).status_code != 200
            except requests.RequestException:
                pass
            time.sleep(0.2)
        state = container.state()
        assert not state.get("Running") and state.get("ExitCode") not in (None, 0), state
        assert "not starting" in container.logs() and message in container.logs(), container.logs()[-3000:]
    finally:
        container.remove()


def test_opt_ml_model_is_served_or_refused_never_passed_over_for_the_baked_model(image, tmp_path):
    """A model.tar.gz packed as mymodel/<the three files> is served; one holding other files, or a folder the
    server's user cannot read, stops the container with what it found, instead of the baked model answering."""
    packed = tmp_path / "packed"
    packed.mkdir()
    copy_model(DEMO_MODEL, str(packed / "mymodel"), model_name="ssd_256_demo_shapes_in_a_folder")
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "weights.params").write_bytes(b"not a model")
    (junk / "README.txt").write_text("not a model either")
    for path in [tmp_path] + [os.path.join(d, n) for d, ds, fs in os.walk(str(tmp_path)) for n in ds + fs]:
        os.chmod(str(path), 0o755)  # readable by the image's non-root user, as SageMaker's files are
    private = copy_model(DEMO_MODEL, str(tmp_path / "private"))
    os.chmod(private, 0o700)  # owned by root here: the image's model-server user cannot list it

    container = Container(image["tag"], volumes=["%s:/opt/ml/model:ro" % packed])
    try:
        container.wait_ready()
        rgb, _, _ = synthetic_scene(22, 400, 300)
        reply = container.post(encode(rgb))
        assert reply.status_code == 200 and reply.json()["model"]["name"] == "ssd_256_demo_shapes_in_a_folder"
    finally:
        container.remove()
    _refused_with(image, str(junk), "holds README.txt, weights.params, but no exported model")
    _refused_with(image, private, "cannot be read by this server's user")


# ---- stopping: docker stop drains, a dead JVM stops the container

def test_docker_stop_answers_the_request_in_flight_then_exits_0(image):
    """`docker stop -t 30` (SageMaker's SIGTERM, then SIGKILL 30 s later) while a request that takes seconds is
    in flight: the signal reaches the launcher (the entrypoint execs it), which answers that request, refuses
    new ones and /ping with 503 (or a closed port), and exits 0 well before the SIGKILL."""
    import threading
    from helpers import RawRequest, slow_request
    body, boxes, class_ids = slow_request()
    container = Container(image["tag"])
    try:
        container.wait_ready()
        in_flight = RawRequest(container.port, body)  # --network host: the kernel's queues are this host's
        in_flight.wait_until_read_by_server()  # the front door reads a body only in one of its slots
        sender = in_flight.thread
        stopped = {}

        def stop():
            began = time.time()
            stopped["done"] = docker("stop", "-t", "30", container.name, timeout=90)
            stopped["seconds"] = time.time() - began

        stopper = threading.Thread(target=stop)
        stopper.start()
        deadline = time.time() + 30
        while "signal 15: draining" not in container.logs():  # the launcher has taken docker stop's SIGTERM
            assert time.time() < deadline and stopper.is_alive(), container.logs()[-3000:]
            time.sleep(0.05)
        refused = []
        while sender.is_alive():
            for path in ("/ping", "/invocations"):
                try:
                    reply = requests.request("GET" if path == "/ping" else "POST", container.url + path, data=b"{}",
                                             headers={"Content-Type": "application/json"}, timeout=5)
                    refused.append((reply.status_code, reply.json()))
                except requests.RequestException as err:
                    refused.append((err.__class__.__name__, None))
            time.sleep(0.3)
        sender.join()
        stopper.join()
        logs = container.logs()
        reply = in_flight.reply
        print("\n%s: docker stop with one request in flight: it got %s; the container stopped %.1f s after "
              "docker stop; meanwhile %s" % (image["tag"], getattr(reply, "status_code", reply), stopped["seconds"],
                                             sorted(set(r[0] for r in refused), key=str)))
        assert stopped["done"].returncode == 0, stopped["done"].stderr
        assert container.state().get("ExitCode") == 0, logs[-3000:]
        assert getattr(reply, "status_code", None) == 200, (reply, logs[-3000:])
        documents = reply.json()
        assert len(documents) == 5
        assert_scene_detected(boxes, class_ids, documents[0]["detections"], demo_meta()["classes"])
        assert refused, "the request finished before docker stop signalled"
        for status, document in refused:
            assert status == "ConnectionError" or (status == 503 and "stopping" in document["error"]), \
                (status, document)
        # exit status 0 above: not SIGKILLed by docker stop after its 30 s (that would be 137)
        assert "drained: 1 request(s) answered in" in logs and "after signal 15 (exit status 0)" in logs, logs[-3000:]
    finally:
        container.remove()


FIND_JVM = ("import os\n"
            "for pid in os.listdir('/proc'):\n"
            "    try:\n"
            "        command = open('/proc/%s/cmdline' % pid, 'rb').read().split(b'\\0')\n"
            "    except (IOError, OSError):\n"
            "        continue\n"
            "    if command and os.path.basename(command[0]) == b'java':\n"
            "        print(pid)\n")


def test_a_killed_jvm_stops_the_container_with_a_message(image):
    """The JVM SIGKILLed inside the container: the container exits 5 with a message, and SageMaker replaces it."""
    container = Container(image["tag"])
    try:
        container.wait_ready()
        pids = container.exec_python(FIND_JVM).stdout.decode().split()
        assert len(pids) == 1, (pids, container.logs()[-3000:])
        killed_at = time.time()
        killed = container.exec_python("import os, signal; os.kill(%d, signal.SIGKILL)" % int(pids[0]))
        assert killed.returncode == 0, killed.stderr
        while container.state().get("Running") and time.time() - killed_at < 60:
            time.sleep(0.2)
        state = container.state()
        print("\n%s: JVM killed; the container exited %s %.1f s later" % (image["tag"], state.get("ExitCode"),
                                                                        time.time() - killed_at))
        assert not state.get("Running") and state.get("ExitCode") == 5, (state, container.logs()[-3000:])
        assert "its JVM) exited with status" in container.logs(), container.logs()[-3000:]
    finally:
        container.remove()


JVM_HEAP = ("import os\n"
            "for pid in os.listdir('/proc'):\n"
            "    try:\n"
            "        command = open('/proc/%s/cmdline' % pid, 'rb').read().split(b'\\0')\n"
            "    except (IOError, OSError):\n"
            "        continue\n"
            "    if command and command[0].endswith(b'java'):\n"
            "        print(' '.join(a.decode() for a in command if a.startswith(b'-Xmx')))\n")


def test_under_a_memory_limit_the_model_servers_heap_is_sized_from_it(image):
    # docker run --memory 1g: the launcher reads the cgroup's limit (v1 or v2, whichever the engine uses) and caps
    # the JVM's heap to hold the request bodies it may be handed, so that the JVM's RSS cannot grow toward a quarter
    # of the memory while serving goes on
    container = Container(image["tag"], memory="1g")
    try:
        container.wait_ready()
        logs = container.logs()
        assert "container memory limit 1024 MB" in logs, logs[-3000:]
        heap = container.exec_python(JVM_HEAP).stdout.decode().split()
        assert len(heap) == 1 and heap[0].startswith("-Xmx"), heap
        assert int(heap[0][4:-1]) <= 1024 // 4
        rgb, _, _ = synthetic_scene(12, 640, 480)
        reply = container.post(encode(rgb))
        assert reply.status_code == 200 and reply.json()["detections"], reply.text
    finally:
        container.remove()


def test_a_short_soak_in_the_container_under_a_memory_limit(image):
    # make soak-container runs 30 minutes of this; here a short one, in a container limited to 2 GB: every valid
    # request 200, every bad one its 4xx JSON, /ping within 2 s, nothing killed for memory, the writable layer not
    # growing, and memory judged as ssd_tools.soak judge_memory does: the JVM within its heap cap plus what it holds
    # outside the heap (its heap may fill toward the cap: a minute in it still is), every other process not still
    # rising in the last third of the run, and each of them seen in every sample.
    from ssd_tools.soak import ContainerServer, Soak, format_report
    seconds = float(os.environ.get("SOAK_CONTAINER_SECONDS", 60))
    server = ContainerServer(image["tag"], "2g", os.path.join(LOG_DIR, "soak-%s.log" % image["stack"]))
    try:
        server.wait_ready()
        soak = Soak(server.url, seconds, 8, server_pid=server.pid, warmup=min(20.0, seconds / 3),
                    disk=server.disk_bytes)
        report = soak.run()
        if server.oom_killed():
            report["problems"].append("the kernel killed a process of the container for memory")
    finally:
        server.stop()
    print("\n%s:\n%s" % (image["tag"], format_report(report)))
    assert not report["problems"], format_report(report)
    assert report["disk"] is not None and report["rss"]["jvm"]["check"] == "bound", format_report(report)
