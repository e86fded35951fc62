"""Every setting of build_and_push.sh: its flag, its environment variable, its default, and the derived names."""
from __future__ import absolute_import

import hashlib
import os
import re
import subprocess

from . import targets
from .report import DeployError

ROOT = os.environ.get("SSD_ROOT") or os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
DEFAULT_REPOSITORY = "sagemaker-ssd-gluoncv"
NAME_LIMIT = 63          # SageMaker model, endpoint-config and endpoint names
VERSION_ROOM = 5         # room for "-v999" when an existing name must be versioned
VARIANT_NAME = "AllTraffic"


class Option(object):
    """One setting: `--flag VALUE` wins over the environment variable, which wins over the default."""

    def __init__(self, dest, env, groups, help, type=str, default=None, metavar=None, boolean=False, choices=None):
        self.dest = dest
        self.flag = "--" + dest.replace("_", "-")
        self.env = env
        self.groups = groups
        self.help = help
        self.type = type
        self.default = default
        self.metavar = metavar
        self.boolean = boolean
        self.choices = choices


OPTIONS = [
    Option("target", "SSD_TARGET", "common", "what to build and deploy: cpu (AWS's mxnet-inference:1.9.0-cpu-py38 "
           "image, fp32 + int8 chosen by the CPU, default instance %s), gpu (mxnet-inference:1.9.0-gpu-py38-cu112, "
           "%s; ml.g5.xlarge works too), or ei (AWS's 1.4.1 EI image, for an Elastic Inference accelerator, "
           "which AWS no longer offers to new customers)" % (targets.DEFAULT_INSTANCE_TYPES["cpu"],
                                                            targets.DEFAULT_INSTANCE_TYPES["gpu"]),
           default=targets.DEFAULT_TARGET, choices=targets.TARGETS),
    Option("region", "AWS_REGION", "aws", "AWS region (else AWS_DEFAULT_REGION, else your AWS profile's)"),
    Option("account", "SSD_ACCOUNT", "aws", "refuse to run unless the credentials are for this account id "
           "(default: whatever STS says they are for)"),
    Option("repository", "SSD_REPOSITORY", "common", "ECR repository, and the local image name",
           default=DEFAULT_REPOSITORY),
    Option("tag", "SSD_TAG", "common", "image tag (default TARGET-COMMIT, plus -dirty-HASH when the work tree "
           "has uncommitted changes, so a dirty build never overwrites a commit's image)"),
    Option("image", "SSD_IMAGE", "local", "local image to smoke-test or push (default REPOSITORY:TAG, what "
           "`build` makes)", metavar="IMAGE:TAG"),
    Option("local_base", "SSD_LOCAL_BASE", "build", "build on the locally made stand-in base (docker/build.sh) "
           "instead of AWS's deep learning container image (for hosts that cannot reach AWS's registry)",
           boolean=True),
    Option("base_image", "SSD_BASE_IMAGE", "build", "AWS base image to build FROM (default AWS's MXNet inference "
           "image of the target in the region)", metavar="URI"),
    Option("photo", "SSD_PHOTO", "photo", "photo to send (default matplotlib's sample grace_hopper.jpg)",
           metavar="PATH"),
    Option("port", "SSD_TEST_PORT", "test", "local port for the smoke test (default: a free one)", type=int),
    Option("test_timeout", "SSD_TEST_TIMEOUT", "test", "seconds the served image has to answer /ping and the "
           "first request (SageMaker allows about 240 for /ping)", type=int, default=300, metavar="SECONDS"),
    Option("registry", "SSD_REGISTRY", "push", "push to this registry instead of the account's ECR registry "
           "(a mirror, a private or local registry); the ECR repository is still created",
           metavar="HOST[:PORT]"),
    Option("no_registry_login", "SSD_NO_REGISTRY_LOGIN", "push", "do not log docker in (you logged in to "
           "--registry yourself); by default the ECR password from `aws ecr get-login-password` is used",
           boolean=True),
    Option("image_uri", "SSD_IMAGE_URI", "register", "pushed image to register (default the URI `push` prints "
           "for these settings)", metavar="URI"),
    Option("role", "SSD_ROLE", "register", "SageMaker execution role: an ARN, or a role name looked up in IAM",
           metavar="ARN|NAME"),
    Option("model_data", "SSD_MODEL_DATA", "register", "s3://.../model.tar.gz of a fine-tuned model (optional; "
           "without it the image serves its baked model)", metavar="S3_URI"),
    Option("model_name", "SSD_MODEL_NAME", "register", "SageMaker model name (default REPOSITORY-TAG)"),
    Option("instance_type", "SSD_INSTANCE_TYPE", "register", "instance type (default %s)" % ", ".join(
           "%s for %s" % (kind, target) for target, kind in sorted(targets.DEFAULT_INSTANCE_TYPES.items()))),
    Option("accelerator_type", "SSD_ACCELERATOR_TYPE", "register", "EI accelerator of the variant (default "
           "ml.eia2.medium for ei; none for cpu and gpu); `none` for no accelerator"),
    Option("instance_count", "SSD_INSTANCE_COUNT", "register", "initial instance count", type=int, default=1,
           metavar="N"),
    Option("endpoint_config_name", "SSD_ENDPOINT_CONFIG_NAME", "register", "endpoint config name (default the "
           "model name)"),
    Option("endpoint_name", "SSD_ENDPOINT_NAME", "endpoint", "endpoint name (default REPOSITORY-TARGET); an "
           "existing endpoint is updated to the new config"),
    Option("autoscale", "SSD_AUTOSCALE", "deploy", "target-tracking autoscaling of the variant between MIN and "
           "MAX instances on invocations per instance (default: none)", metavar="MIN:MAX"),
    Option("invocations_per_instance", "SSD_INVOCATIONS_PER_INSTANCE", "deploy", "autoscaling target: "
           "invocations per instance per minute", type=float, default=100.0, metavar="N"),
    Option("wait_timeout", "SSD_WAIT_TIMEOUT", "deploy", "seconds to wait for the endpoint to be InService",
           type=int, default=3600, metavar="SECONDS"),
    Option("poll_seconds", "SSD_POLL_SECONDS", "deploy", "seconds between endpoint status checks", type=float,
           default=15.0, metavar="SECONDS"),
    Option("output", "SSD_INVOKE_OUTPUT", "invoke", "where `invoke` saves the photo with the detections drawn "
           "(default PHOTO-NAME-detections.jpg in the current directory)", metavar="PATH"),
    Option("threshold", "SSD_THRESHOLD", "invoke", "minimum score of the detections `invoke` asks for (sent as "
           "the threshold custom attribute; default the server's)", type=float),
]


def _from_env(option, environ):
    raw = environ.get(option.env)
    if option.dest == "region" and not raw:
        raw = environ.get("AWS_DEFAULT_REGION")
    if raw is None or raw == "":
        return None
    if option.boolean:
        return raw.strip().lower() not in ("0", "false", "no", "off")
    try:
        return option.type(raw)
    except ValueError:
        raise DeployError("%s=%r is not a valid %s" % (option.env, raw, option.type.__name__),
                          "fix or unset %s" % option.env)


def sagemaker_name(text, limit=NAME_LIMIT - VERSION_ROOM):
    """A valid SageMaker resource name from `text`: [a-zA-Z0-9-], no leading/trailing hyphen, at most `limit`."""
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", text).strip("-")
    return name[-limit:].lstrip("-")


def git_tag(root, target):
    """TARGET-COMMIT, plus -dirty-HASH (a hash of the uncommitted changes) when the work tree is not clean."""
    def git(*args):
        return subprocess.check_output(("git", "-C", root) + args, stderr=subprocess.STDOUT)
    try:
        commit = git("rev-parse", "--short=12", "HEAD").decode().strip()
        status = git("status", "--porcelain", "--untracked-files=normal")
    except (OSError, subprocess.CalledProcessError) as err:
        raise DeployError("cannot tag the image with the git commit (%s)" % (err,),
                          "run from a git checkout of the project, or pass --tag")
    tag = "%s-%s" % (target, commit)
    if status.strip():
        digest = hashlib.sha256(git("diff", "HEAD", "--binary") + status).hexdigest()[:8]
        tag += "-dirty-" + digest
    return tag


class Settings(object):
    """The resolved settings: flags, else environment, else defaults; derived names computed on first use."""

    def __init__(self, values, environ=None):
        environ = os.environ if environ is None else environ
        for option in OPTIONS:
            value = values.get(option.dest)
            if value is None:
                value = _from_env(option, environ)
            if value is None:
                value = option.default
            setattr(self, option.dest, value)
        targets.check_target(self.target)
        self._tag = self.tag

    @property
    def image_tag(self):
        if not self._tag:
            self._tag = git_tag(ROOT, self.target)
        return self._tag

    @property
    def local_image(self):
        return self.image or "%s:%s" % (self.repository, self.image_tag)

    @property
    def accelerator(self):
        raw = self.accelerator_type
        if raw is None:
            raw = targets.DEFAULT_ACCELERATORS[self.target]
        if raw is None or raw.strip().lower() in ("", "none"):
            return None
        return targets.check_accelerator(self.target, raw.strip())

    @property
    def instance(self):
        return self.instance_type or targets.DEFAULT_INSTANCE_TYPES[self.target]

    @property
    def model(self):
        return self.model_name or sagemaker_name("%s-%s" % (self.repository, self.image_tag))

    @property
    def endpoint_config(self):
        return self.endpoint_config_name or self.model

    @property
    def endpoint(self):
        return self.endpoint_name or sagemaker_name("%s-%s" % (self.repository, self.target), NAME_LIMIT)

    @property
    def autoscaling(self):
        """(min, max) instances, or None."""
        if not self.autoscale:
            return None
        match = re.match(r"^\s*(\d+)\s*:\s*(\d+)\s*$", self.autoscale)
        if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
            raise DeployError("--autoscale %r is not MIN:MAX with 1 <= MIN <= MAX" % self.autoscale,
                              "pass e.g. --autoscale 1:4")
        return int(match.group(1)), int(match.group(2))
