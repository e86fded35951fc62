"""Building the image: through docker/build.sh (stand-in or AWS base), or `docker build` FROM a given base."""
from __future__ import absolute_import

import os
import re
import subprocess
import sys

from . import docker, targets
from .ecr import password_command
from .report import DeployError, note, result, step
from .settings import ROOT

BUILD_SCRIPT = os.path.join(ROOT, "docker", "build.sh")
DOCKERFILE = os.path.join(ROOT, "Dockerfile")
LABEL_SCRIPT = os.path.join(ROOT, "docker", "label-int8.sh")
# docker/build.sh's names for the targets: local stand-in bases, and AWS's images.
SCRIPT_TARGETS_LOCAL = {"ei": "ei", "cpu": "cpu", "gpu": "gpu"}
SCRIPT_TARGETS_AWS = {"ei": "aws-eia", "cpu": "aws-cpu", "gpu": "aws-gpu"}


def _script(script_target, reference, extra_env):
    """docker/build.sh TARGET --tag REFERENCE (IMAGE=REFERENCE too); its stdout is shown, its last line kept."""
    step("docker/build.sh %s --tag %s" % (script_target, reference))
    env = dict(os.environ, IMAGE=reference, **extra_env)
    process = subprocess.Popen(["bash", BUILD_SCRIPT, script_target, "--tag", reference], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=sys.stderr, universal_newlines=True)
    last = ""
    for line in process.stdout:
        sys.stderr.write(line)
        last = line.strip() or last
    if process.wait() != 0:
        raise DeployError("docker/build.sh %s failed (exit status %d, output above)" % (script_target,
                                                                                      process.returncode),
                          "fix what it said, then rerun `build`")
    if not docker.image_id(reference):
        if not (last and docker.image_id(last)):
            raise DeployError("docker/build.sh succeeded but neither %s nor its last line (%r) is an image" %
                              (reference, last), "check docker/build.sh's output above")
        docker.check("tag", last, reference)


def _plain_build(settings, base, reference):
    try:
        with open(DOCKERFILE) as stream:
            declares = re.search(r"^\s*ARG\s+BASE_IMAGE\b", stream.read(), re.MULTILINE)
    except (IOError, OSError):
        raise DeployError("there is no Dockerfile at the top of the checkout", "update the checkout")
    if not declares:
        raise DeployError("the Dockerfile declares no BASE_IMAGE build argument, so it cannot be built FROM %s" % base,
                          "build on the stand-in base with --local-base (or SSD_LOCAL_BASE=1)")
    step("docker pull %s" % base)
    code, _, err = docker.output("pull", base)
    if code != 0:
        raise DeployError("cannot pull the base image %s (%s)" % (base, (err.splitlines() or ["?"])[-1]),
                          "check network access to its registry and your credentials, or build on the local "
                          "stand-in base with --local-base")
    step("docker build --build-arg BASE_IMAGE=%s --tag %s (BuildKit, nice %s)" % (
        base, reference, os.environ.get("SSD_NICE", "19")))
    command = docker.nice_prefix() + ["docker", "build", "--network", "host", "--build-arg", "BASE_IMAGE=" + base,
                                      "--label", "org.opencontainers.image.revision=" + settings.image_tag,
                                      "--tag", reference, "--file", DOCKERFILE, ROOT]
    if subprocess.call(command, stdout=sys.stderr, stderr=sys.stderr, env=dict(os.environ, DOCKER_BUILDKIT="1")):
        raise DeployError("docker build failed (output above)",
                          "fix what it said (the Dockerfile needs BuildKit: install the buildx plugin if docker "
                          "says it is missing), then rerun `build`")
    # docker/build.sh labels its images with the int8 check's figure; a plain build gets the same labels
    if os.path.isfile(LABEL_SCRIPT):
        step("docker/label-int8.sh %s (the int8 accuracy check's figure into the image's labels)" % reference)
        if subprocess.call(["bash", LABEL_SCRIPT, reference], cwd=ROOT, stdout=sys.stderr, stderr=sys.stderr):
            raise DeployError("labelling %s with its int8 check failed (output above)" % reference,
                              "the image is built; fix what it said, then rerun `build`")


def build(settings, aws):
    """Build REPOSITORY:TAG for the target; prints the image reference."""
    reference = "%s:%s" % (settings.repository, settings.image_tag)
    have_script = os.path.isfile(BUILD_SCRIPT)
    if settings.local_base:
        docker.check_engine()
        if not have_script:
            raise DeployError("docker/build.sh (the stand-in base build) is not in this checkout",
                              "update the checkout (it comes with the Dockerfile), or build FROM AWS's base "
                              "without --local-base")
        if settings.target not in SCRIPT_TARGETS_LOCAL:
            raise DeployError("there is no local stand-in base for the %s target" % settings.target,
                              "build it FROM AWS's image (without --local-base) where ECR can be reached")
        _script(SCRIPT_TARGETS_LOCAL[settings.target], reference, {})
    else:
        base = settings.base_image or targets.base_image(settings.target, aws.region)
        docker.check_engine()
        registry = base.split("/", 1)[0]
        if ".dkr.ecr." in registry:
            docker.login(registry, password_command(registry.split(".")[3]),
                         "AWS's images need credentials that may call ecr:GetAuthorizationToken; on a host that "
                         "cannot reach AWS, build with --local-base")
        if have_script and not settings.base_image:
            _script(SCRIPT_TARGETS_AWS[settings.target], reference, {"REGION": aws.region})
        else:
            _plain_build(settings, base, reference)
    note("built %s (%s)" % (reference, docker.image_id(reference)))
    result(reference)
    return reference
