"""Building the image: docker/build.sh on the local stand-in base, or `docker build` FROM AWS's base image."""
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


def _local_base(settings, reference):
    if not os.path.isfile(BUILD_SCRIPT):
        raise DeployError("docker/build.sh (the stand-in base build) is not in this checkout",
                          "update the checkout (it comes with the Dockerfile), or build FROM AWS's base "
                          "without --local-base")
    step("docker/build.sh %s --tag %s  (local stand-in base)" % (settings.target, reference))
    process = subprocess.Popen(["bash", BUILD_SCRIPT, settings.target, "--tag", reference], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=sys.stderr, universal_newlines=True)
    last = ""
    for line in process.stdout:
        sys.stderr.write(line)
        if line.strip():
            last = line.strip()
    if process.wait() != 0:
        raise DeployError("docker/build.sh %s failed (exit status %d, output above)" % (settings.target,
                                                                                      process.returncode),
                          "fix what it said, then rerun `build`")
    if last != reference:
        if not docker.image_id(last):
            raise DeployError("docker/build.sh did not print the built image on its last line (got %r)" % last,
                              "check docker/build.sh's output above")
        docker.check("tag", last, reference)


def _aws_base(settings, base, reference):
    try:
        with open(DOCKERFILE) as stream:
            declares = re.search(r"^\s*ARG\s+BASE_IMAGE\b", stream.read(), re.MULTILINE)
    except (IOError, OSError):
        raise DeployError("there is no Dockerfile at the top of the checkout", "update the checkout")
    if not declares:
        raise DeployError("the Dockerfile declares no BASE_IMAGE build argument, so it cannot be built FROM %s" % base,
                          "build on the stand-in base with --local-base (or SSD_LOCAL_BASE=1)")
    registry = base.split("/", 1)[0]
    if ".dkr.ecr." in registry:
        docker.login(registry, password_command(registry.split(".")[3]),
                     "AWS's images need credentials that may call ecr:GetAuthorizationToken; on a host that "
                     "cannot reach AWS, build with --local-base")
    step("docker pull %s" % base)
    code, _, err = docker.output("pull", base)
    if code != 0:
        raise DeployError("cannot pull the AWS base image %s (%s)" % (base, (err.splitlines() or ["?"])[-1]),
                          "check network access to %s and your credentials, or build on the local stand-in base "
                          "with --local-base" % registry)
    step("docker build --build-arg BASE_IMAGE=%s --tag %s (nice %s)" % (base, reference,
                                                                      os.environ.get("SSD_NICE", "19")))
    command = docker.nice_prefix() + ["docker", "build", "--network", "host", "--build-arg", "BASE_IMAGE=" + base,
                                      "--label", "org.opencontainers.image.revision=" + settings.image_tag,
                                      "--tag", reference, "--file", DOCKERFILE, ROOT]
    if subprocess.call(command, stdout=sys.stderr, stderr=sys.stderr) != 0:
        raise DeployError("docker build failed (output above)", "fix what it said, then rerun `build`")


def build(settings, aws):
    """Build REPOSITORY:TAG for the target; prints the image reference."""
    base = None if settings.local_base else settings.base_image or targets.base_image(settings.target, aws.region)
    docker.check_engine()
    reference = "%s:%s" % (settings.repository, settings.image_tag)
    if settings.local_base:
        _local_base(settings, reference)
    else:
        _aws_base(settings, base, reference)
    note("built %s (%s)" % (reference, docker.image_id(reference)))
    result(reference)
    return reference
