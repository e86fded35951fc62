"""Fixtures of the build_and_push.sh tests (defined in deploy_helpers.py, shared with the test modules)."""
from deploy_helpers import aws, docker_engine, moto_url, registry, sagemaker_proxy, small_image  # noqa: F401
