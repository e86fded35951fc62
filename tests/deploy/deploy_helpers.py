"""Helpers and fixtures of the build_and_push.sh tests: real servers on localhost (moto, a registry, a proxy)."""
import binascii
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
import requests

from ssd_serving.ports import free_port

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "build_and_push.sh")
ACCOUNT = "123456789012"                 # moto's default account
REGION = "us-east-1"
ECR_PASSWORD = ACCOUNT + "-auth-token"   # what moto's ECR GetAuthorizationToken hands out
ROLE_NAME = "ssd-sagemaker-execution"
# Credentials the script must never print: checked on every run.
ACCESS_KEY = "AKIA" + binascii.hexlify(os.urandom(8)).decode().upper()
SECRET_KEY = "ssd-test-secret-" + binascii.hexlify(os.urandom(12)).decode()
_LOCAL = {"http": None, "https": None}   # never through a proxy to localhost


def grace_hopper():
    """The real photo the script sends by default (matplotlib's sample data), as the main suite uses it."""
    import matplotlib
    return os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")


class Process(object):
    """A server process started by a test, and stopped by it (only that process)."""

    def __init__(self, args, log_name, env=None):
        self.log = tempfile.NamedTemporaryFile(prefix=log_name + "-", suffix=".log", delete=False)
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def wait_for(self, url, statuses, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("%s exited with %s:\n%s" % (self.process.args, self.process.returncode,
                                                                 self.output()))
            try:
                if requests.get(url, timeout=2, proxies=_LOCAL).status_code in statuses:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise AssertionError("%s did not answer %s within %ss:\n%s" % (self.process.args, url, timeout, self.output()))

    def output(self):
        with open(self.log.name, errors="replace") as stream:
            return stream.read()

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        os.unlink(self.log.name)


@pytest.fixture(scope="session")
def moto_url():
    """moto's server on a free port: STS, IAM, ECR, SageMaker (+ Runtime), Application Auto Scaling (through
    moto_server.py, which lets moto's SageMaker accept the c6i and g5 instance types)."""
    port = free_port()
    server = Process([sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_server.py"),
                      "-H", "127.0.0.1", "-p", str(port)], "moto")
    try:
        server.wait_for("http://127.0.0.1:%d/moto-api/" % port, (200,))
        yield "http://127.0.0.1:%d" % port
    finally:
        server.stop()


class Aws(object):
    """The environment a test runs the script in, and boto3 clients on the same moto server."""

    def __init__(self, moto_url, tmp_dir):
        self.moto_url = moto_url
        self.docker_config = os.path.join(tmp_dir, "docker-config")
        os.makedirs(self.docker_config)
        env = dict((k, v) for k, v in os.environ.items()
                   if not k.startswith(("AWS_", "SSD_")) or k in ("SSD_DEPLOY_PYTHON", "SSD_NICE"))
        env.update({
            "AWS_ENDPOINT_URL": moto_url, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_REGION": REGION, "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.path.join(tmp_dir, "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": os.path.join(tmp_dir, "no-aws-credentials"),
            # docker login writes here, not into the user's ~/.docker
            "DOCKER_CONFIG": self.docker_config, "SSD_POLL_SECONDS": "0.2",
            # the default target is cpu; most of these tests exercise the ei target's extra paths (the
            # accelerator, EI regions, AWS's refusal), and the ones about cpu or gpu pass --target
            "SSD_TARGET": "ei"})
        self.env = env
        self.session = boto3.session.Session(aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                             region_name=REGION)

    def client(self, name, region=REGION):
        return self.session.client(name, endpoint_url=self.moto_url, region_name=region)

    def create_role(self, name=ROLE_NAME):
        trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                         "Principal": {"Service": "sagemaker.amazonaws.com"}}]}
        return self.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]


@pytest.fixture
def aws(moto_url, tmp_path):
    """A fresh moto state with a SageMaker execution role, and the environment to run the script in."""
    requests.post(moto_url + "/moto-api/reset", proxies=_LOCAL).raise_for_status()
    state = Aws(moto_url, str(tmp_path))
    state.role_arn = state.create_role()
    return state


class Run(object):
    def __init__(self, completed):
        self.returncode = completed.returncode
        self.stdout = completed.stdout
        self.stderr = completed.stderr
        self.lines = [line for line in self.stdout.splitlines() if line.strip()]

    @property
    def last_line(self):
        return self.lines[-1] if self.lines else ""

    def __repr__(self):
        return "exit %s\n--- stdout\n%s\n--- stderr\n%s" % (self.returncode, self.stdout, self.stderr)


def run_script(args, env, timeout=300, check=True):
    """./build_and_push.sh ARGS; fails the test if it printed a credential (or, with check, if it failed)."""
    completed = subprocess.run([SCRIPT] + list(args), env=env, cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, universal_newlines=True, timeout=timeout)
    run = Run(completed)
    for secret in (SECRET_KEY, ECR_PASSWORD):
        assert secret not in run.stdout + run.stderr, "the script printed a credential:\n%r" % run
    if check:
        assert run.returncode == 0, repr(run)
    return run


def run_fails(args, env, expected, timeout=300):
    """The script exits non-zero and says `expected` (each string) and what to do."""
    run = run_script(args, env, timeout=timeout, check=False)
    assert run.returncode != 0, repr(run)
    for text in expected:
        assert text in run.stderr, repr(run)
    assert "what to do:" in run.stderr, repr(run)
    return run


# ---------------------------------------------------------------------------------------------- docker

def _engine_answers():
    if shutil.which("docker") is None:
        return "there is no docker client"
    done = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True)
    return None if done.returncode == 0 else "no Docker engine answers `docker info`"


def need(reason):
    """Skip for a missing docker prerequisite, or fail when SSD_REQUIRE_DOCKER=1 (CI)."""
    if os.environ.get("SSD_REQUIRE_DOCKER") == "1":
        pytest.fail("%s, and SSD_REQUIRE_DOCKER=1" % reason)
    pytest.skip("%s (set SSD_REQUIRE_DOCKER=1 to make this a failure)" % reason)


def docker(*args, **kwargs):
    return subprocess.run(["docker"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, **kwargs)


@pytest.fixture(scope="session")
def docker_engine():
    reason = _engine_answers()
    if reason:
        need(reason)


class Registry(object):
    """Debian's docker-registry on a free port, with its own config and storage, requiring AWS/ECR_PASSWORD."""

    def __init__(self, binary, tmp_dir, password=ECR_PASSWORD):
        import bcrypt
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        storage = os.path.join(tmp_dir, "storage")
        os.makedirs(storage)
        htpasswd = os.path.join(tmp_dir, "htpasswd")
        with open(htpasswd, "w") as stream:
            stream.write("AWS:%s\n" % bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode())
        config = os.path.join(tmp_dir, "config.yml")
        with open(config, "w") as stream:
            stream.write("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n"
                         "http:\n  addr: %s\nauth:\n  htpasswd:\n    realm: ssd-test\n    path: %s\n"
                         % (storage, self.host, htpasswd))
        self.server = Process([binary, "serve", config], "registry")
        self.server.wait_for("http://%s/v2/" % self.host, (401,))

    def manifest(self, repository, tag, password=ECR_PASSWORD):
        return requests.get("http://%s/v2/%s/manifests/%s" % (self.host, repository, tag), auth=("AWS", password),
                            headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json"},
                            proxies=_LOCAL, timeout=10)


@pytest.fixture(scope="session")
def registry(docker_engine, tmp_path_factory):
    """A local registry that only accepts the ECR password moto hands out: a push works only after the
    script's `aws ecr get-login-password | docker login --password-stdin` ran."""
    unpacked = os.path.join(ROOT, "build", "tools", "docker-registry", "usr", "bin", "docker-registry")
    binary = shutil.which("docker-registry") or (unpacked if os.access(unpacked, os.X_OK) else None)
    if not binary:
        need("Debian's docker-registry is not here (`make %s` fetches it, or apt-get install docker-registry)"
             % os.path.relpath(unpacked, ROOT))
    running = Registry(binary, str(tmp_path_factory.mktemp("registry")))
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture(scope="session")
def small_image(docker_engine, tmp_path_factory):
    """The image the push/register tests push: SSD_TEST_IMAGE if set (kept), else a one-file image made with
    `docker import` (removed afterwards). Neither needs the model image's long build."""
    chosen = os.environ.get("SSD_TEST_IMAGE")
    if chosen:
        assert docker("image", "inspect", chosen).returncode == 0, "SSD_TEST_IMAGE=%s is not a local image" % chosen
        yield chosen
        return
    import tarfile
    folder = tmp_path_factory.mktemp("tiny-image")
    payload = folder / "hello.txt"
    payload.write_text("a tiny image for push tests\n")
    archive = str(folder / "tiny.tar")
    with tarfile.open(archive, "w") as tar:
        tar.add(str(payload), arcname="hello.txt")
    reference = "ssd-test/tiny:%s" % binascii.hexlify(os.urandom(4)).decode()
    made = docker("import", archive, reference)
    assert made.returncode == 0, made.stderr
    try:
        yield reference
    finally:
        docker("rmi", reference)


def image_id(reference):
    done = docker("image", "inspect", "--format", "{{.Id}}", reference)
    return done.stdout.strip() if done.returncode == 0 else None


# ---------------------------------------------------------------------------------------------- SageMaker proxy

class SageMakerProxy(object):
    """A proxy in front of moto for SageMaker and SageMaker Runtime only (AWS_ENDPOINT_URL_SAGEMAKER[_RUNTIME]),
    for what moto lacks:

    - `refuse_accelerators`: CreateEndpoint/UpdateEndpoint with an EI accelerator in the config gets the
      ResourceLimitExceeded error an account without EI gets (its message in AWS's service-quota wording);
    - UpdateEndpoint, which moto 5.2 does not implement: emulated by its end state (moto's endpoint is
      re-created on the new config), so the script's update path runs; AWS's blue/green switch is not emulated;
    - `busy_polls`: after a create or update, that many DescribeEndpoint answers say Creating/Updating, as
      AWS's do for minutes, so the script's waiting and progress lines run;
    - InvokeEndpoint with a binary body, on which moto's runtime fails (it JSON-encodes the body to key its
      queued answers): the request is recorded in `invocations` and moto gets the body's sha256 instead;
      with `model_error` (the container's status and JSON body) it answers the ModelError AWS answers then.
    Every other request goes to moto unchanged. `calls` records the SageMaker operations seen."""

    def __init__(self, aws, refuse_accelerators=False, busy_polls=2, model_error=None):
        self.aws = aws
        self.refuse_accelerators = refuse_accelerators
        self.busy_polls = busy_polls
        self.model_error = model_error
        self.calls = []
        self.invocations = []
        self._busy = {}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/endpoints/") and self.path.endswith("/invocations"):
                    status, headers, answer = proxy.invoke(self.path, dict(self.headers), body)
                else:
                    operation = (self.headers.get("X-Amz-Target") or "").split(".")[-1]
                    proxy.calls.append(operation)
                    status, headers, answer = proxy.handle(operation, json.loads(body or b"{}"), self.path,
                                                           dict(self.headers), body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _json(self, status, document):
        return status, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(document).encode()

    def _accelerator(self, config_name):
        config = self.aws.client("sagemaker").describe_endpoint_config(EndpointConfigName=config_name)
        return next((v["AcceleratorType"] for v in config["ProductionVariants"] if v.get("AcceleratorType")), None)

    def _forward(self, path, headers, body):
        forwarded = dict((k, v) for k, v in headers.items() if k.lower() not in ("host", "content-length"))
        return requests.post(self.aws.moto_url + path, data=body, headers=forwarded, proxies=_LOCAL, timeout=60)

    def invoke(self, path, headers, body):
        self.invocations.append({"path": path, "headers": headers, "body": body})
        if self.model_error:
            status, message = self.model_error
            return 424, {"Content-Type": "application/json", "x-amzn-ErrorType": "ModelError"}, json.dumps({
                "ErrorCode": "CLIENT_ERROR_FROM_MODEL", "OriginalStatusCode": status, "OriginalMessage": message,
                "Message": "Received client error (%d) from primary with message \"%s\". See CloudWatch." % (
                    status, message)}).encode()
        answer = self._forward(path, headers, hashlib.sha256(body).hexdigest().encode())
        relayed = dict((k, v) for k, v in answer.headers.items()
                       if k.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"))
        return answer.status_code, relayed, answer.content

    def handle(self, operation, request, path, headers, body):
        sagemaker = self.aws.client("sagemaker")
        if operation in ("CreateEndpoint", "UpdateEndpoint") and self.refuse_accelerators:
            accelerator = self._accelerator(request["EndpointConfigName"])
            if accelerator:
                return self._json(400, {"__type": "ResourceLimitExceeded", "message": (
                    "The account-level service limit '%s for endpoint usage' is 0 Instances, with current "
                    "utilization of 0 Instances and a request delta of 1 Instances. Please use AWS Service "
                    "Quotas to request an increase for this quota." % accelerator)})
        if operation == "UpdateEndpoint":
            name = request["EndpointName"]
            sagemaker.describe_endpoint(EndpointName=name)
            sagemaker.delete_endpoint(EndpointName=name)
            created = sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=request["EndpointConfigName"])
            self._busy[name] = ("Updating", self.busy_polls)
            return self._json(200, {"EndpointArn": created["EndpointArn"]})
        answer = self._forward(path, headers, body)
        content = answer.content
        if operation == "CreateEndpoint" and answer.status_code == 200:
            self._busy[request["EndpointName"]] = ("Creating", self.busy_polls)
        if operation == "DescribeEndpoint" and answer.status_code == 200:
            status, left = self._busy.get(request["EndpointName"], (None, 0))
            if left > 0:
                self._busy[request["EndpointName"]] = (status, left - 1)
                document = json.loads(content)
                document["EndpointStatus"] = status
                content = json.dumps(document).encode()
        return answer.status_code, {"Content-Type": answer.headers.get("Content-Type", "")}, content

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def sagemaker_proxy(aws):
    proxies = []

    def start(**kwargs):
        proxy = SageMakerProxy(aws, **kwargs)
        proxies.append(proxy)
        aws.env["AWS_ENDPOINT_URL_SAGEMAKER"] = proxy.url
        aws.env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = proxy.url
        return proxy
    try:
        yield start
    finally:
        for proxy in proxies:
            proxy.stop()
