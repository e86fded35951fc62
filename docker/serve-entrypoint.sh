#!/bin/sh
# ENTRYPOINT of the SSD serving image (exec form). SageMaker starts the container as
# `docker run IMAGE serve`: that runs `python -m ssd_serving.serving serve` (Multi Model Server in the
# foreground, port SAGEMAKER_BIND_TO_PORT or 8080). Any other command is run as given
# (`docker run IMAGE python -c ...`, `docker run -it IMAGE bash`).
set -eu
if [ "$#" -eq 0 ] || [ "$1" = serve ]; then
    if [ "$#" -gt 0 ]; then shift; fi
    PYTHON=$(command -v python || command -v python3)
    exec "$PYTHON" -m ssd_serving.serving serve "$@"
fi
exec "$@"
