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
NAME_LIMIT = 63          # SageMaker model, endpoint-config, endpoint and transform job names
SERVERLESS_MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)
SERVERLESS_MAX_CONCURRENCY = 200
# What an asynchronous endpoint's container is set up to take: images far over the 6 MB of real-time requests
# (SageMaker allows 1 GB; the pixel limit, 64 MP, bounds a decodable image long before that) and an hour.
ASYNC_MAX_REQUEST_MB = 200
ASYNC_RESPONSE_TIMEOUT = 3600
VERSION_ROOM = 5         # room for "-v999" when an existing name must be versioned
VARIANT_NAME = "AllTraffic"


class Option(object):
    """One setting: `--flag VALUE` wins over the environment variable, which wins over the default."""

    def __init__(self, dest, env, groups, help, type=str, default=None, metavar=None, boolean=False, choices=None,
                 flag=None):
        self.dest = dest
        self.flag = flag or "--" + dest.replace("_", "-")
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
    Option("multi_model", "SSD_MULTI_MODEL", "register", "a multi-model endpoint (cpu target): the model's "
           "container has Mode MultiModel and serves every model.tar.gz under this S3 prefix, loaded on first "
           "use (`invoke --target-model NAME.tar.gz`)", metavar="S3_PREFIX/"),
    Option("model_name", "SSD_MODEL_NAME", "register", "SageMaker model name (default REPOSITORY-TAG)"),
    Option("instance_type", "SSD_INSTANCE_TYPE", "register", "instance type (default %s)" % ", ".join(
           "%s for %s" % (kind, target) for target, kind in sorted(targets.DEFAULT_INSTANCE_TYPES.items()))),
    Option("accelerator_type", "SSD_ACCELERATOR_TYPE", "register", "EI accelerator of the variant (default "
           "ml.eia2.medium for ei; none for cpu and gpu); `none` for no accelerator"),
    Option("instance_count", "SSD_INSTANCE_COUNT", "register", "initial instance count", type=int, default=1,
           metavar="N"),
    Option("endpoint_config_name", "SSD_ENDPOINT_CONFIG_NAME", "config", "endpoint config name (default the "
           "model name)"),
    Option("async_output", "SSD_ASYNC_OUTPUT", "config", "an asynchronous endpoint (AsyncInferenceConfig) that "
           "writes each answer under this S3 prefix; requests then come from S3 (`invoke --async --input`), up to "
           "%d MB and %d minutes each" % (ASYNC_MAX_REQUEST_MB, ASYNC_RESPONSE_TIMEOUT // 60), metavar="S3_URI"),
    Option("async_max_concurrency", "SSD_ASYNC_MAX_CONCURRENCY", "config", "asynchronous endpoint: requests "
           "each instance is sent at a time (MaxConcurrentInvocationsPerInstance; default SageMaker's)", type=int,
           metavar="N"),
    Option("sns_success", "SSD_SNS_SUCCESS", "config", "asynchronous endpoint: SNS topic told of each answer",
           metavar="ARN"),
    Option("sns_error", "SSD_SNS_ERROR", "config", "asynchronous endpoint: SNS topic told of each failure",
           metavar="ARN"),
    Option("serverless", "SSD_SERVERLESS", "config", "a serverless endpoint (ServerlessConfig; cpu target, no "
           "instances): memory in MB (%s) and the most requests at a time (1-200)" % ", ".join(
               str(size) for size in SERVERLESS_MEMORY_SIZES), metavar="MEMORY_MB:MAX_CONCURRENCY"),
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
    Option("input", "SSD_INPUT", "input", "S3 input: the prefix (or object) a transform job reads, or the object "
           "`invoke --async` sends", metavar="S3_URI"),
    Option("transform_output", "SSD_TRANSFORM_OUTPUT", "transform", "S3 prefix the transform job writes its "
           "answers under (one INPUT-NAME.out per input object)", metavar="S3_URI", flag="--output"),
    Option("content_type", "SSD_CONTENT_TYPE", "transform", "content type of the input objects (default "
           "application/x-image: image files; application/jsonlines for base64 images one per line)"),
    Option("accept", "SSD_ACCEPT", "transform", "content type of the answers (default application/json; "
           "application/jsonlines with --split-type Line)"),
    Option("split_type", "SSD_SPLIT_TYPE", "transform", "None: one record per input object (image files); "
           "Line: one record per line (JSON Lines), reassembled line by line (default: Line for "
           "application/jsonlines, else None)", choices=("None", "Line")),
    Option("strategy", "SSD_BATCH_STRATEGY", "transform", "records per request: MultiRecord or SingleRecord "
           "(default: MultiRecord with --split-type Line, else SingleRecord)",
           choices=("MultiRecord", "SingleRecord")),
    Option("max_payload", "SSD_MAX_PAYLOAD", "transform", "largest request in MB, 1-100 (default: the "
           "container's announcement)", type=int, metavar="MB"),
    Option("job_name", "SSD_JOB_NAME", "transform", "transform job name (default MODEL-YYYYMMDD-HHMMSS); an "
           "existing job of that name is followed instead of created"),
    Option("wait", "SSD_WAIT", "transform", "wait for the job, showing its status and elapsed time, and end "
           "with a summary of inputs, outputs and records with errors", boolean=True),
    Option("async_invoke", "SSD_ASYNC", "invoke", "asynchronous: InvokeEndpointAsync with --input (an S3 object), "
           "then wait for the answer to appear in S3 and print it", boolean=True, flag="--async"),
    Option("output", "SSD_INVOKE_OUTPUT", "invoke", "where `invoke` saves the photo with the detections drawn "
           "(default PHOTO-NAME-detections.jpg in the current directory)", metavar="PATH"),
    Option("target_model", "SSD_TARGET_MODEL", "invoke", "on a multi-model endpoint, the model to call: its "
           "key under the endpoint's S3 prefix (InvokeEndpoint's TargetModel)", metavar="NAME.tar.gz"),
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
    def serverless_config(self):
        """ServerlessConfig of the variant, or None."""
        if not self.serverless:
            return None
        match = re.match(r"^\s*(\d+)\s*:\s*(\d+)\s*$", self.serverless)
        memory, concurrency = (int(match.group(1)), int(match.group(2))) if match else (None, None)
        if memory not in SERVERLESS_MEMORY_SIZES or not 1 <= concurrency <= SERVERLESS_MAX_CONCURRENCY:
            raise DeployError("--serverless %r is not MEMORY_MB:MAX_CONCURRENCY with a memory size of %s and a "
                              "concurrency of 1 to %d" % (self.serverless, ", ".join(
                                  str(size) for size in SERVERLESS_MEMORY_SIZES), SERVERLESS_MAX_CONCURRENCY),
                              "pass e.g. --serverless 3072:5")
        if self.target != "cpu":
            raise DeployError("serverless endpoints run on CPU without accelerators; --target %s cannot be one"
                              % self.target, "pass --target cpu with --serverless")
        if self.accelerator_type and self.accelerator_type.strip().lower() != "none":
            raise DeployError("a serverless endpoint has no accelerator", "drop --accelerator-type")
        if self.autoscale:
            raise DeployError("a serverless endpoint scales itself (up to its MAX_CONCURRENCY); --autoscale is "
                              "for instances", "drop --autoscale")
        return {"MemorySizeInMB": memory, "MaxConcurrency": concurrency}

    @property
    def async_config(self):
        """AsyncInferenceConfig of the endpoint config, or None."""
        extras = (self.async_max_concurrency, self.sns_success, self.sns_error)
        if not self.async_output:
            if any(value is not None for value in extras):
                raise DeployError("--async-max-concurrency, --sns-success and --sns-error describe an asynchronous "
                                  "endpoint", "pass --async-output s3://BUCKET/PREFIX too")
            return None
        if not self.async_output.startswith("s3://") or len(self.async_output) <= len("s3://"):
            raise DeployError("--async-output %r is not an s3:// URI" % self.async_output,
                              "pass the S3 prefix the answers go to, e.g. s3://my-bucket/ssd-async/")
        if self.serverless:
            raise DeployError("an endpoint is asynchronous or serverless, not both", "drop one of the two")
        output = {"S3OutputPath": self.async_output}
        notification = dict((key, value) for key, value in (("SuccessTopic", self.sns_success),
                                                             ("ErrorTopic", self.sns_error)) if value)
        if notification:
            output["NotificationConfig"] = notification
        config = {"OutputConfig": output}
        if self.async_max_concurrency is not None:
            if self.async_max_concurrency < 1:
                raise DeployError("--async-max-concurrency must be at least 1", "pass e.g. --async-max-concurrency 4")
            config["ClientConfig"] = {"MaxConcurrentInvocationsPerInstance": self.async_max_concurrency}
        return config

    @property
    def model_source(self):
        """(ModelDataUrl or None, Mode) of the model's container: one model.tar.gz, or a multi-model endpoint's
        S3 prefix."""
        if not self.multi_model:
            return self.model_data, "SingleModel"
        prefix = self.multi_model
        if not prefix.startswith("s3://") or len(prefix) <= len("s3://") or not prefix.endswith("/"):
            raise DeployError("--multi-model %r is not an s3://BUCKET/PREFIX/ URI (ending in /)" % prefix,
                              "pass the S3 prefix holding the model.tar.gz files, e.g. s3://my-bucket/detectors/")
        if self.model_data:
            raise DeployError("--model-data is one model; --multi-model serves every model under a prefix",
                              "drop one of the two")
        if self.serverless or self.async_output:
            raise DeployError("multi-model endpoints run on instances, answering in real time; not serverless or "
                              "asynchronous", "drop --serverless / --async-output")
        if self.target != "cpu":
            raise DeployError("this image serves multi-model endpoints on CPU only (SageMaker's GPU multi-model "
                              "endpoints need Triton); --target %s cannot be one" % self.target,
                              "pass --target cpu with --multi-model")
        return prefix, "MultiModel"

    @property
    def model_environment(self):
        """The container's environment in the SageMaker model: an asynchronous endpoint's requests may be large
        and long, so its server takes them (request size and response timeout, read once at start); a
        multi-model endpoint's server starts with no model and takes SageMaker's /models calls."""
        if self.multi_model:
            return {"SAGEMAKER_MULTI_MODEL": "true"}
        if not self.async_output:
            return {}
        return {"SSD_MAX_REQUEST_BYTES": str(ASYNC_MAX_REQUEST_MB * 1024 * 1024),
                "SSD_RESPONSE_TIMEOUT": str(ASYNC_RESPONSE_TIMEOUT)}

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
