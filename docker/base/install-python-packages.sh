#!/bin/sh
# Build step of docker/base/Dockerfile: a virtual environment in /opt/python holding STACK's pinned
# packages (docker/base/STACK.txt; versions from requirements/*.txt and docker/base/constraints.txt).
# A CA bundle mounted as the build secret `ca_bundle` is used for this step only (TLS-inspecting proxies).
set -eu
STACK=$1
case "$STACK" in
    ei) MXNET_PINS=/tmp/pins/requirements/mxnet-1.4.txt ;;
    cpu) MXNET_PINS=/tmp/pins/requirements/mxnet-1.9.txt ;;
    *) echo "ERROR: unknown stack '$STACK' (ei or cpu)" >&2; exit 1 ;;
esac
if [ -s /run/secrets/ca_bundle ]; then
    echo "using the CA bundle passed as build secret ca_bundle"
    export PIP_CERT=/run/secrets/ca_bundle
fi
python3 -m venv /opt/python
/opt/python/bin/python /tmp/pins/pip_install_pinned.py "/tmp/pins/base/$STACK.txt" \
    -c /tmp/pins/requirements/common.txt -c "$MXNET_PINS" -c /tmp/pins/base/constraints.txt || {
    echo "ERROR: installing the $STACK stack failed; if pip reports CERTIFICATE_VERIFY_FAILED, pass the" >&2
    echo "       build host's CA bundle (docker/build.sh does: CA_BUNDLE=/path/to/ca.crt)" >&2
    exit 1
}
# byte-compile once here: the images set PYTHONDONTWRITEBYTECODE, so without this every start
# (and every model server worker) would compile MXNet and the model server from source again
/opt/python/bin/python -W ignore -m compileall -q -j 0 /opt/python/lib >/dev/null
