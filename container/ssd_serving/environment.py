"""Settings read from the environment: where the model is, which device, limits and server knobs."""
from __future__ import absolute_import

import os

# The toolkits let SAGEMAKER_BASE_DIR move /opt/ml (used to run the stock layout outside a container).
SAGEMAKER_MODEL_DIR = os.path.join(os.environ.get("SAGEMAKER_BASE_DIR", "/opt/ml"), "model")

# Env var names, in one place so the docs, the image and the code agree.
MODEL_DIR_ENV = "SSD_MODEL_DIR"          # the model baked into the image (never /opt/ml/model)
CONTEXT_ENV = "SSD_CONTEXT"              # auto | eia | gpu | cpu
MAX_IMAGE_PIXELS_ENV = "SSD_MAX_IMAGE_PIXELS"
MAX_IMAGES_ENV = "SSD_MAX_IMAGES_PER_REQUEST"
MAX_REQUEST_BYTES_ENV = "SSD_MAX_REQUEST_BYTES"
MAX_RESPONSE_BYTES_ENV = "SSD_MAX_RESPONSE_BYTES"
MAX_CONCURRENT_ENV = "SSD_MAX_CONCURRENT_REQUESTS"
QUEUE_TIMEOUT_ENV = "SSD_QUEUE_TIMEOUT"
DEFAULT_THRESHOLD_ENV = "SSD_DEFAULT_SCORE_THRESHOLD"
STARTUP_TIMEOUT_ENV = "SSD_STARTUP_TIMEOUT"
GRAPH_FUSION_ENV = "SSD_GRAPH_FUSION"    # 0: run the fp32 graph unfused on CPU (oneDNN fusion is the default)
READY_DIR_ENV = "SSD_READY_DIR"          # set by the server: workers mark a loaded model there
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"

DEFAULT_MAX_IMAGE_PIXELS = 64 * 1000 * 1000   # above a 48 MP photo, below a decompression bomb
DEFAULT_MAX_IMAGES = 16
DEFAULT_MAX_REQUEST_BYTES = 6553500           # Multi Model Server's default; SageMaker's own limit is 6 MB
# A worker whose answer exceeds MMS's max_response_size (6553500 by default, also in AWS's toolkit) is
# disconnected and restarted by MMS: answers stay under it, with room for MMS's framing.
DEFAULT_MAX_RESPONSE_BYTES = 6 * 1024 * 1024
DEFAULT_THRESHOLD = 0.5


def _int(name, default):
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def _float(name, default):
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def context_preference():
    return os.environ.get(CONTEXT_ENV, "auto").strip().lower() or "auto"


def max_image_pixels():
    return _int(MAX_IMAGE_PIXELS_ENV, DEFAULT_MAX_IMAGE_PIXELS)


def max_images_per_request():
    return _int(MAX_IMAGES_ENV, DEFAULT_MAX_IMAGES)


def max_request_bytes():
    return _int(MAX_REQUEST_BYTES_ENV, DEFAULT_MAX_REQUEST_BYTES)


def max_response_bytes():
    return _int(MAX_RESPONSE_BYTES_ENV, DEFAULT_MAX_RESPONSE_BYTES)


def max_concurrent_requests(workers):
    """Requests read and handed to the model server at a time: enough to keep every worker busy."""
    return _int(MAX_CONCURRENT_ENV, max(16, 4 * workers))


def queue_timeout():
    """Seconds a request may wait for one of those slots before a 503 (SageMaker gives up after 60 s)."""
    return _float(QUEUE_TIMEOUT_ENV, 30.0)


def default_score_threshold():
    return _float(DEFAULT_THRESHOLD_ENV, DEFAULT_THRESHOLD)


def default_accept():
    return os.environ.get(DEFAULT_ACCEPT_ENV, "application/json")


def graph_fusion():
    return os.environ.get(GRAPH_FUSION_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def startup_timeout():
    """How long the server may go without a worker that has the model: at start, or after workers died."""
    return _float(STARTUP_TIMEOUT_ENV, 200.0)


def mark_model_loaded():
    """Tell the server process this worker has its model (MMS reports workers READY before that)."""
    ready_dir = os.environ.get(READY_DIR_ENV)
    if ready_dir and os.path.isdir(ready_dir):
        with open(os.path.join(ready_dir, "worker-%d" % os.getpid()), "w") as stream:
            stream.write("loaded\n")
