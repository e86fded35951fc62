"""The docker CLI: engine check, build, images, tags, registry login and push."""
from __future__ import absolute_import

import os
import shutil
import subprocess
import sys

from .report import DeployError, note, step

ENGINE_TODO = ("start a Docker engine: docker/ensure-engine.sh installs and starts one on Debian "
               "(or `sudo systemctl start docker`), or point DOCKER_HOST at a running engine")


def _run(args, **kwargs):
    return subprocess.Popen(["docker"] + list(args), universal_newlines=True, **kwargs)


def output(*args):
    """(exit status, stdout, stderr) of a docker command."""
    process = _run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = process.communicate()
    return process.returncode, out.strip(), err.strip()


def check(*args):
    """Run a docker command with its output on stderr; a DeployError when it fails."""
    code = _run(args, stdout=sys.stderr, stderr=sys.stderr).wait()
    if code != 0:
        raise DeployError("`docker %s` failed (exit status %d, output above)" % (" ".join(args), code),
                          "fix what docker said, then rerun this step")


def check_engine():
    if shutil.which("docker") is None:
        raise DeployError("there is no docker client on PATH", ENGINE_TODO)
    code, out, err = output("info", "--format", "{{.ServerVersion}}")
    if code != 0 or not out:
        reason = (err or out or "no answer").splitlines()[-1]
        raise DeployError("no Docker engine answers (%s)" % reason, ENGINE_TODO)
    return out


def image_id(reference):
    code, out, _ = output("image", "inspect", "--format", "{{.Id}}", reference)
    return out if code == 0 else None


def require_image(reference):
    found = image_id(reference)
    if not found:
        raise DeployError("there is no local image %s" % reference,
                          "build it first (`./build_and_push.sh build`, same --target/--tag), or pass --image")
    return found


def login(registry, password_command, todo):
    """`PASSWORD_COMMAND | docker login --username AWS --password-stdin REGISTRY`; the password stays in the pipe."""
    step("docker login %s (password piped from `%s`)" % (registry, " ".join(password_command[:3])))
    source = subprocess.Popen(password_command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sink = subprocess.Popen(["docker", "login", "--username", "AWS", "--password-stdin", registry],
                            stdin=source.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)
    source.stdout.close()
    out, err = sink.communicate()
    source_err = source.communicate()[1].decode("utf-8", "replace").strip()
    if source.returncode != 0:
        raise DeployError("`%s` failed: %s" % (" ".join(password_command[:3]),
                                               source_err or "exit status %d" % source.returncode), todo)
    if sink.returncode != 0:
        raise DeployError("docker login %s failed: %s" % (registry, (err or out).strip()), todo)
    note((out.strip().splitlines() or ["logged in"])[-1])


def push(reference):
    """Push and return the pushed digest (sha256:...), from the engine's record of the push."""
    check("push", reference)
    repository = reference.rsplit(":", 1)[0] if ":" in reference.rsplit("/", 1)[-1] else reference
    code, out, _ = output("image", "inspect", "--format", "{{json .RepoDigests}}", reference)
    if code == 0:
        import json
        for digest in json.loads(out or "[]"):
            if digest.split("@")[0] == repository:
                return digest.split("@")[1]
    return None


def nice_prefix():
    """Heavy work (docker build) runs at nice SSD_NICE (default 19), like docker/lib.sh does."""
    level = os.environ.get("SSD_NICE", "19")
    return ["nice", "-n", level] if shutil.which("nice") else []
