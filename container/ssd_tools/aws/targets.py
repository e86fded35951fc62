"""The targets (ei, cpu, gpu): their AWS base images, default instance and accelerator, and where EI exists."""
from __future__ import absolute_import

from .report import DeployError

TARGETS = ("ei", "cpu", "gpu")
# what a new account can deploy today: Elastic Inference takes no new customers
DEFAULT_TARGET = "cpu"

# AWS Deep Learning Containers each target builds FROM (as docker/build.sh's aws-eia, aws-cpu, aws-gpu do):
# the last MXNet inference images AWS published (1.9.0, Python 3.8; unsupported since 2023-10-01 but
# still pullable), and the 1.4.1 EI image, the only one with an EI build of MXNet.
BASE_REPOSITORY_TAGS = {
    "ei": "mxnet-inference-eia:1.4.1-cpu-py36-ubuntu16.04",
    "cpu": "mxnet-inference:1.9.0-cpu-py38-ubuntu20.04-sagemaker",
    "gpu": "mxnet-inference:1.9.0-gpu-py38-cu112-ubuntu20.04-sagemaker",
}
DLC_ACCOUNT = "763104351884"
DLC_ACCOUNTS_BY_REGION = {"af-south-1": "626614931356", "ap-east-1": "871362719292",
                          "ap-northeast-3": "364406365360", "eu-south-1": "692866216735",
                          "me-south-1": "217643126080", "cn-north-1": "727897471807",
                          "cn-northwest-1": "727897471807", "us-gov-west-1": "442386744353",
                          "us-iso-east-1": "886529160074"}
# Where AWS published its EI MXNet images (and where SageMaker offered EI accelerators).
EI_REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-northeast-2")

# cpu: Ice Lake with AVX-512 VNNI, where the image serves its int8 graph; gpu: T4 (ml.g5.xlarge's A10G needs
# CUDA >= 11.1, which the 1.9.0 image's CUDA 11.2 has; AWS's 1.4.1 GPU image with CUDA 10.0 did not)
DEFAULT_INSTANCE_TYPES = {"ei": "ml.m5.large", "cpu": "ml.c6i.xlarge", "gpu": "ml.g4dn.xlarge"}
DEFAULT_ACCELERATORS = {"ei": "ml.eia2.medium", "cpu": None, "gpu": None}
ACCELERATOR_TYPES = tuple("ml.eia%d.%s" % (g, s) for g in (1, 2) for s in ("medium", "large", "xlarge"))


def check_target(target):
    if target not in TARGETS:
        raise DeployError("unknown target %r" % target, "use one of: %s" % ", ".join(TARGETS))
    return target


def check_ei_region(region, why):
    if region not in EI_REGIONS:
        raise DeployError("%s, but region %s has no Elastic Inference: AWS published its EI images and "
                          "accelerators only in %s" % (why, region, ", ".join(EI_REGIONS)),
                          "use --region with one of those, or a target without EI: --target cpu or --target gpu")


def check_accelerator(target, accelerator):
    if accelerator is None:
        return None
    if accelerator not in ACCELERATOR_TYPES:
        raise DeployError("unknown accelerator type %r" % accelerator,
                          "use one of %s, or none" % ", ".join(ACCELERATOR_TYPES))
    if target != "ei":
        raise DeployError("an accelerator (%s) was asked for with the %s target, whose image has no EI build of "
                          "MXNet to use it" % (accelerator, target),
                          "drop --accelerator-type (or set it to none), or use --target ei")
    return accelerator


def dlc_registry(region):
    account = DLC_ACCOUNTS_BY_REGION.get(region, DLC_ACCOUNT)
    domain = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return "%s.dkr.ecr.%s.%s" % (account, region, domain)


def base_image(target, region):
    """The AWS base image URI for a target in a region."""
    if target == "ei":
        check_ei_region(region, "the ei target builds on AWS's MXNet EI image")
    return "%s/%s" % (dlc_registry(region), BASE_REPOSITORY_TAGS[target])
