"""./build_and_push.sh build, test and push with a real Docker engine and registry, and the whole flow.

Without a Docker engine these skip, unless SSD_REQUIRE_DOCKER=1 (CI), which makes them fail."""
import binascii
import json
import os
import subprocess

import pytest

from deploy_helpers import (ACCESS_KEY, ACCOUNT, ECR_PASSWORD, ROLE_NAME, ROOT, SECRET_KEY, docker,
                            image_id, need, run_fails, run_script)
# fixtures (no conftest.py here: it would shadow tests/conftest.py, which the other modules import)
from deploy_helpers import aws, docker_engine, moto_url, registry, sagemaker_proxy, small_image  # noqa: F401

REPOSITORY = "sagemaker-ssd-gluoncv"
# The OS image the stand-in serving images start from (docker/make-os-image.sh makes it).
STAND_IN_BASE = os.environ.get("SSD_TEST_BASE_IMAGE", "ssd-local/debian:bookworm")


def unique_tag(prefix):
    return "%s-%s" % (prefix, binascii.hexlify(os.urandom(4)).decode())


def smoke_containers():
    listed = docker("ps", "--all", "--quiet", "--filter", "name=ssd-smoke-")
    return set(listed.stdout.split())


def test_push_then_pull_back(aws, registry, small_image):
    tag = unique_tag("ei-push")
    uri = "%s/%s:%s" % (registry.host, REPOSITORY, tag)
    try:
        run = run_script(["push", "--image", small_image, "--tag", tag, "--registry", registry.host], aws.env)
        assert run.last_line == uri
        assert "created ECR repository %s.dkr.ecr." % ACCOUNT in run.stderr
        assert "Login Succeeded" in run.stderr
        repository, = aws.client("ecr").describe_repositories(repositoryNames=[REPOSITORY])["repositories"]
        assert repository["imageScanningConfiguration"]["scanOnPush"] is True
        assert registry.manifest(REPOSITORY, tag).status_code == 200
        with open(os.path.join(aws.docker_config, "config.json")) as stream:
            assert registry.host in json.load(stream)["auths"], "docker login wrote to the test's DOCKER_CONFIG"

        # pull it back: drop the local tag, pull with the login the script made, compare image ids
        assert docker("rmi", uri).returncode == 0
        pulled = docker("pull", uri, env=dict(os.environ, DOCKER_CONFIG=aws.docker_config))
        assert pulled.returncode == 0, pulled.stderr
        assert image_id(uri) == image_id(small_image)

        again = run_script(["push", "--image", small_image, "--tag", tag, "--registry", registry.host], aws.env)
        assert "exists: reusing it" in again.stderr and again.last_line == uri
    finally:
        docker("rmi", uri)


def test_push_needs_the_ecr_login(aws, registry, small_image):
    """With --no-registry-login (and no earlier login) the registry refuses the push: the login is what opens it."""
    tag = unique_tag("ei-nologin")
    try:
        run_fails(["push", "--image", small_image, "--tag", tag, "--registry", registry.host, "--no-registry-login"],
                  aws.env, ["docker push", "failed"])
        assert registry.manifest(REPOSITORY, tag).status_code == 404
    finally:
        docker("rmi", "%s/%s:%s" % (registry.host, REPOSITORY, tag))


def test_push_of_a_missing_image(aws, docker_engine):
    run_fails(["push", "--image", "ssd-test/never-built:nothing", "--registry", "127.0.0.1:9"], aws.env,
              ["there is no local image ssd-test/never-built:nothing", "build it first"])


# ---------------------------------------------------------------------------------------------- smoke test

# A stand-in for the serving image, in perl (Debian's minbase has it), for the smoke test's own checks:
# /ping answers 503 for its first second, then 200; POST /invocations answers /answer.json.
STAND_IN_SERVER = r"""#!/usr/bin/perl
use strict; use IO::Socket::INET;
open(my $f, '<', '/answer.json') or die; local $/; my $answer = <$f>; close $f; $/ = "\n";
exit 3 if $answer =~ /^crash/;
my $port = $ENV{SAGEMAKER_BIND_TO_PORT} || 8080;
my $server = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port, Listen => 5, ReuseAddr => 1)
    or die "cannot listen on $port: $!";
$SIG{TERM} = sub { exit 0 };
my $started = time;
while (my $client = $server->accept) {
    my $request = <$client>; my $length = 0;
    while (my $line = <$client>) { last if $line =~ /^\r?\n$/; $length = $1 if $line =~ /^Content-Length:\s*(\d+)/i; }
    my $body = ''; read($client, $body, $length) if $length;
    my ($status, $out) = (404, '{}');
    if ($request =~ m{^GET /ping}) { ($status, $out) = time - $started < 1 ? (503, '{}') : (200, '{}'); }
    elsif ($request =~ m{^POST /invocations}) { ($status, $out) = length($body) > 1000 ? (200, $answer) : (400, '{}'); }
    print $client "HTTP/1.1 $status X\r\nContent-Type: application/json\r\nContent-Length: " . length($out)
        . "\r\nConnection: close\r\n\r\n$out";
    close $client;
}
"""

GOOD_ANSWER = {"model": {"name": "stand-in", "demo": False, "device": "cpu"}, "image_size": [512, 600],
               "detections": [{"class_id": 14, "label": "person", "score": 0.98, "box": [57.3, 23.9, 467.0, 596.2]}]}


@pytest.fixture(scope="module")
def stand_in_images(docker_engine, tmp_path_factory):
    """Serving stand-ins: `good` answers as documented, `bad` without detections, `crash` exits at start."""
    make_os_image = os.path.join(ROOT, "docker", "make-os-image.sh")
    if docker("image", "inspect", STAND_IN_BASE).returncode != 0 and os.path.isfile(make_os_image):
        made = subprocess.run(["bash", make_os_image, STAND_IN_BASE], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, universal_newlines=True)
        assert made.returncode == 0, made.stdout
    if docker("image", "inspect", STAND_IN_BASE).returncode != 0:
        need("no %s image to build the stand-in server on (docker/make-os-image.sh makes it; "
             "SSD_TEST_BASE_IMAGE picks another Debian image)" % STAND_IN_BASE)
    made = {}
    answers = {"good": json.dumps(GOOD_ANSWER), "bad": json.dumps({"model": {}, "image_size": [512, 600]}),
               "crash": "crash"}
    try:
        for name, answer in answers.items():
            context = tmp_path_factory.mktemp("stand-in-" + name)
            (context / "serve").write_text(STAND_IN_SERVER)
            os.chmod(str(context / "serve"), 0o755)
            (context / "answer.json").write_text(answer)
            (context / "Dockerfile").write_text("FROM %s\nCOPY answer.json /answer.json\n"
                                                "COPY serve /usr/local/bin/serve\n" % STAND_IN_BASE)
            reference = "ssd-test/stand-in-%s:%s" % (name, binascii.hexlify(os.urandom(4)).decode())
            built = subprocess.run(["docker", "build", "--network", "host", "--quiet", "--tag", reference,
                                    str(context)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   universal_newlines=True)
            assert built.returncode == 0, built.stdout
            made[name] = reference
        yield made
    finally:
        for reference in made.values():
            docker("rmi", reference)


def test_smoke_test_serves_posts_a_photo_and_stops(aws, stand_in_images):
    before = smoke_containers()
    run = run_script(["test", "--image", stand_in_images["good"]], aws.env)
    assert "GET /ping answered 200 after" in run.stderr
    assert "grace_hopper.jpg (image/jpeg, 512x600" in run.stderr, "the default photo"
    assert "model stand-in on cpu, image 512x600: 1 detection(s)" in run.stderr
    assert "person" in run.stderr and "box [57.3, 23.9, 467.0, 596.2]" in run.stderr
    assert "stopped in" in run.stderr
    assert smoke_containers() == before, "the smoke test removes the container it started"


def test_smoke_test_fails_loudly(aws, stand_in_images, small_image):
    before = smoke_containers()
    run_fails(["test", "--image", stand_in_images["bad"]], aws.env,
              ["answered, but not as documented", "no 'detections'", "last lines of the container's log"])
    run_fails(["test", "--image", stand_in_images["crash"]], aws.env, ["the container exited (status 3)"])
    run_fails(["test", "--image", small_image], aws.env, ["docker could not start", "docker run IMAGE serve"])
    run_fails(["test", "--image", stand_in_images["good"], "--photo", os.path.join(ROOT, "README.md")], aws.env,
              ["is not a photo the server can read"])
    assert smoke_containers() == before


# ---------------------------------------------------------------------------------------------- the whole flow

STAND_IN_FOR = {"cpu": "mxnet-inference:1.9.0-cpu-py38-ubuntu20.04-sagemaker",
                "gpu": "mxnet-inference:1.9.0-gpu-py38-cu112-ubuntu20.04-sagemaker",
                "ei": "mxnet-inference-eia:1.4.1-cpu-py36-ubuntu16.04"}


@pytest.mark.parametrize("target", os.environ.get("SSD_TEST_FLOW_TARGETS", "cpu,gpu").split(","))
def test_whole_flow_builds_tests_pushes_registers_and_deploys(aws, registry, sagemaker_proxy, target):
    """One run of ./build_and_push.sh with no subcommand, building through docker/build.sh (--local-base) on
    the stand-in of the target's AWS image: the image is smoke-tested, pushed (and pulled back), registered
    (with ml.eia2.medium for ei), deployed; no credential is printed or written into the image.
    SSD_TEST_FLOW_TARGETS picks the targets (default cpu,gpu: what users deploy today; ei's registration is
    tested in test_register_deploy)."""
    sagemaker_proxy(busy_polls=2)
    tag = unique_tag(target + "-flow")
    uri = "%s/%s:%s" % (registry.host, REPOSITORY, tag)
    try:
        run = run_script(["--local-base", "--target", target, "--tag", tag, "--registry", registry.host,
                          "--role", ROLE_NAME], aws.env, timeout=7200)
        for step in ("---- build ----", "---- test ----", "---- push ----", "---- register ----", "---- deploy ----",
                     "GET /ping answered 200", "detection(s)", "InService"):
            assert step in run.stderr, step
        assert run.last_line == "%s-%s" % (REPOSITORY, target)
        local = "%s:%s" % (REPOSITORY, tag)
        assert docker("rmi", uri).returncode == 0
        assert docker("pull", uri, env=dict(os.environ, DOCKER_CONFIG=aws.docker_config)).returncode == 0
        assert image_id(uri) == image_id(local)
        labels = json.loads(docker("image", "inspect", local).stdout)[0]["Config"]["Labels"]
        assert labels["ssd.stand-in-for"] == STAND_IN_FOR[target]  # built on that AWS image's stand-in
        sagemaker = aws.client("sagemaker")
        model = sagemaker.describe_model(ModelName="%s-%s" % (REPOSITORY, tag))
        assert model["PrimaryContainer"]["Image"] == uri
        config = sagemaker.describe_endpoint_config(EndpointConfigName="%s-%s" % (REPOSITORY, tag))
        variant, = config["ProductionVariants"]
        assert variant.get("AcceleratorType") == ("ml.eia2.medium" if target == "ei" else None)
        endpoint = sagemaker.describe_endpoint(EndpointName="%s-%s" % (REPOSITORY, target))
        assert endpoint["EndpointStatus"] == "InService"
        for inspect in (["image", "inspect", local], ["history", "--no-trunc", local]):
            shown = docker(*inspect).stdout
            for secret in (ACCESS_KEY, SECRET_KEY, ECR_PASSWORD):
                assert secret not in shown, "a credential is in the image (%s)" % " ".join(inspect)
    finally:
        docker("rmi", uri)
        docker("rmi", "%s:%s" % (REPOSITORY, tag))
