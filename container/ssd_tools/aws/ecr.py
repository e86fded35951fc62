"""ECR: the repository (created when missing), its registry, docker login with the ECR password, tag and push."""
from __future__ import absolute_import

import os
import shutil
import sys

from botocore import exceptions

from . import docker
from .awserrors import calling, error_code
from .report import DeployError, note, result, step


def aws_cli():
    """The AWS CLI next to this Python (the deploy venv's), else the one on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), "aws")
    found = local if os.access(local, os.X_OK) else shutil.which("aws")
    if not found:
        raise DeployError("the AWS CLI (`aws`, for `aws ecr get-login-password`) is not installed",
                          "run `make deploy-env` (it installs the pinned awscli into .venv/deploy)")
    return found


def password_command(region):
    return [aws_cli(), "ecr", "get-login-password", "--region", region]


def ensure_repository(aws, name):
    """The repository's URI; the repository is created (scan on push, mutable tags) when missing."""
    ecr = aws.client("ecr")
    with calling("look up the ECR repository %s" % name):
        try:
            found = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
            step("ECR repository %s exists: reusing it" % found["repositoryUri"])
            return found["repositoryUri"]
        except exceptions.ClientError as err:
            if error_code(err) != "RepositoryNotFoundException":
                raise
    with calling("create the ECR repository %s" % name):
        created = ecr.create_repository(repositoryName=name,
                                        imageScanningConfiguration={"scanOnPush": True},
                                        imageTagMutability="MUTABLE")["repository"]
    step("created ECR repository %s" % created["repositoryUri"])
    return created["repositoryUri"]


def target_repository(settings, repository_uri):
    """Where to push: the ECR repository, or the same repository path on --registry."""
    if settings.registry:
        return "%s/%s" % (settings.registry.rstrip("/"), settings.repository)
    return repository_uri


def image_uri(settings, aws):
    """The URI `push` gives the image for these settings (what `register` uses by default)."""
    if settings.image_uri:
        return settings.image_uri
    if settings.registry:
        return "%s/%s:%s" % (settings.registry.rstrip("/"), settings.repository, settings.image_tag)
    return "%s.dkr.ecr.%s.%s/%s:%s" % (aws.account, aws.region,
                                       "amazonaws.com.cn" if aws.region.startswith("cn-") else "amazonaws.com",
                                       settings.repository, settings.image_tag)


def check_pushed(settings, aws, uri):
    """Refuse to register an image that is not in ECR (skipped for --registry and --image-uri: not ECR's to say)."""
    if settings.registry or settings.image_uri:
        return
    with calling("look up the image %s in ECR" % uri):
        try:
            aws.client("ecr").describe_images(repositoryName=settings.repository,
                                              imageIds=[{"imageTag": settings.image_tag}])
        except exceptions.ClientError as err:
            if error_code(err) in ("ImageNotFoundException", "RepositoryNotFoundException"):
                raise DeployError("%s is not in ECR" % uri,
                                  "push it first: `./build_and_push.sh push` (same --target/--tag), "
                                  "or pass --image-uri")
            raise


def push(settings, aws):
    """Create the repository if missing, log docker in, tag and push; prints and returns the image URI."""
    docker.check_engine()
    local = settings.local_image
    docker.require_image(local)
    repository_uri = ensure_repository(aws, settings.repository)
    destination = target_repository(settings, repository_uri)
    registry = destination.split("/", 1)[0]
    if settings.registry:
        note("pushing to %s instead of the ECR registry %s (--registry)" % (registry, repository_uri.split("/")[0]))
    if settings.no_registry_login:
        note("not logging in to %s (--no-registry-login)" % registry)
    else:
        docker.login(registry, password_command(aws.region),
                     "check that your credentials may call ecr:GetAuthorizationToken%s" %
                     (" and that %s accepts the ECR password (or log in yourself and pass --no-registry-login)"
                      % registry if settings.registry else ""))
    uri = "%s:%s" % (destination, settings.image_tag)
    step("docker tag %s %s" % (local, uri))
    docker.check("tag", local, uri)
    step("docker push %s" % uri)
    digest = docker.push(uri)
    note("pushed %s%s" % (uri, " (%s)" % digest if digest else ""))
    result(uri)
    return uri
