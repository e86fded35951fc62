#!/bin/sh
# Last build step of the serving image: the baked model must load with the base image's MXNet
# (a graph exported by a newer GluonCV/MXNet can use operators an older MXNet lacks), the serving
# code must import (and the build-host tools must not be there), and the model server must be there.
# Fails the build otherwise.
set -eu
PYTHON=$(command -v python || command -v python3)
export PYTHONPATH="${SSD_CODE_DIR:-/opt/ssd/code}${PYTHONPATH:+:$PYTHONPATH}"
if ! "$PYTHON" -c 'import mxnet' 2>/dev/null; then
    if [ -d /usr/local/cuda ]; then
        echo "check: skipped, MXNet cannot be imported on this build host (a CUDA build without a GPU driver)"
        exit 0
    fi
    "$PYTHON" -c 'import mxnet'
fi
"$PYTHON" - <<'PY'
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="check: %(message)s")
import mxnet
from ssd_serving import handler, serving  # noqa: F401  the modules the model server loads
from ssd_serving.model_server import model_server_command
from ssd_serving.startup import preflight
import inference  # noqa: F401  code/inference.py
try:  # the image ships the serving runtime only; the tools (export, int8, demo, AWS) stay on the build host
    import ssd_tools  # noqa: F401
    sys.exit("check: ssd_tools is importable in the serving image; only ssd_serving belongs there")
except ImportError:
    pass
model_dir, choice, _ = preflight()
print("check: MXNet %s on Python %s reads %s (%s graph here); model server %s" % (
    mxnet.__version__, sys.version.split()[0], model_dir, choice.precision, model_server_command()))
try:
    import gluoncv  # noqa: F401
    print("check: note: this base has GluonCV; serving does not use it")
except ImportError:
    pass
PY
