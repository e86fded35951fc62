#!/usr/bin/env bash
# Build, smoke-test, push to ECR, register on SageMaker and deploy the SSD serving image.
#   ./build_and_push.sh --help              everything, with each option's environment variable
#   ./build_and_push.sh [SUBCOMMAND] ...    build | test | push | register | deploy | invoke; none: the whole flow
# The AWS and docker logic is Python (container/ssd_tools/aws), run from the build-host tools venv
# .venv/deploy (boto3, the AWS CLI), which this script creates with `make deploy-env` when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

step() { printf '==> [%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    printf 'ERROR: %s\n' "$1" >&2
    [ $# -lt 2 ] || printf '       what to do: %s\n' "$2" >&2
    exit 1
}

USE_OTHER_PYTHON="or set SSD_DEPLOY_PYTHON to a Python with requirements/deploy.txt and this project (pip install -e .) installed"
if [ -n "${SSD_DEPLOY_PYTHON:-}" ]; then
    PY=$SSD_DEPLOY_PYTHON
else
    PY=$ROOT/.venv/deploy/bin/python
    if ! make -s -q -C "$ROOT" .venv/deploy/.installed 2>/dev/null; then
        command -v make >/dev/null 2>&1 || \
            die "make is not installed (needed to create the tools environment .venv/deploy)" \
                "install make (apt-get install make), $USE_OTHER_PYTHON"
        step "creating or updating the tools environment .venv/deploy (make deploy-env, nice ${SSD_NICE:-0})"
        nice -n "${SSD_NICE:-0}" make -s -C "$ROOT" deploy-env >&2 || \
            die "could not create .venv/deploy (output above)" \
                "check that python3 with venv and PyPI are reachable, then rerun (or: make deploy-env)"
    fi
fi
"$PY" -c 'import boto3' 2>/dev/null || die "$PY cannot import boto3" "run 'make deploy-env', $USE_OTHER_PYTHON"
"$PY" -c 'import ssd_tools.aws' 2>/dev/null || \
    die "$PY cannot import ssd_tools.aws (this project is not installed in it)" \
        "run 'make deploy-env', or '$PY -m pip install --no-deps -e $ROOT'"

export SSD_ROOT=$ROOT
exec "$PY" -m ssd_tools.aws "$@"
