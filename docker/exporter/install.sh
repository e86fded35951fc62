#!/bin/sh
# Exporter stage, step 1: add GluonCV (pinned for the base's MXNet) to the base image's Python, in
# this throwaway stage only; the served image never contains GluonCV.
# The CA bundle passed as build secret `ca_bundle` is used for this step only.
set -eu
PYTHON=$(command -v python || command -v python3)
MXNET_VERSION=$("$PYTHON" -c 'import mxnet; print(mxnet.__version__)') || {
    echo "ERROR: the base image's Python ($PYTHON) cannot import mxnet; a GPU base needs EXPORTER_IMAGE set to" >&2
    echo "       the CPU image of the same MXNet version (docker/build.sh aws-gpu does that)" >&2
    exit 1
}
SERIES=$(echo "$MXNET_VERSION" | cut -d. -f1,2)
LIST=/export/pins/exporter/mxnet-$SERIES.txt
echo "exporter: MXNet $MXNET_VERSION on Python $("$PYTHON" -c 'import platform; print(platform.python_version())'), packages from $LIST"
[ -f "$LIST" ] || {
    echo "ERROR: no exporter packages for MXNet $SERIES: add docker/exporter/mxnet-$SERIES.txt (the GluonCV release for it)" >&2
    exit 1
}
if [ -s /run/secrets/ca_bundle ]; then
    echo "exporter: using the CA bundle passed as build secret ca_bundle"
    export PIP_CERT=/run/secrets/ca_bundle
fi
"$PYTHON" /export/pins/pip_install_pinned.py "$LIST" -c /export/pins/requirements/common.txt \
    -c "/export/pins/requirements/mxnet-$SERIES.txt" -c /export/pins/base/constraints.txt
"$PYTHON" -c 'import gluoncv; print("exporter: GluonCV", gluoncv.__version__)'
case "${WITH_INT8:-0}" in
    0) ;;
    1)
        [ "$SERIES" = 1.9 ] || {
            echo "ERROR: WITH_INT8=1 needs MXNet >= 1.9 with oneDNN (the cpu target); this base has MXNet $MXNET_VERSION." >&2
            echo "       The ei and gpu images serve fp32: build them without WITH_INT8." >&2
            exit 1
        }
        # int8 calibrates on real photos that ship inside the matplotlib and scikit-image wheels: download
        # those wheels (for any Python: only their photo files are used, this stage's Python may be 3.8)
        PHOTO_WHEELS=$(grep -E '^(matplotlib|scikit-image)==' /export/pins/requirements/common.txt)
        echo "exporter: WITH_INT8=1, downloading the calibration photos' wheels:" $PHOTO_WHEELS
        "$PYTHON" -m pip download --no-deps --only-binary=:all: --python-version 3.11 \
            --platform manylinux2014_x86_64 --disable-pip-version-check -d /export/photo-wheels $PHOTO_WHEELS
        ;;
    *)
        echo "ERROR: WITH_INT8=$WITH_INT8: use 1 (bake the int8 variant too) or 0" >&2
        exit 1
        ;;
esac
