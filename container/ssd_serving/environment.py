"""Environment: every setting of the server, read from the environment and checked once at start."""
from __future__ import absolute_import

import os

from . import media
from .errors import HTTPError

# Env var names, in one place so the docs, the image and the code agree.
BASE_DIR_ENV = "SAGEMAKER_BASE_DIR"       # the toolkits let it move /opt/ml (the stock layout outside a container)
MODEL_DIR_ENV = "SSD_MODEL_DIR"          # the model baked into the image (never /opt/ml/model)
CODE_DIR_ENV = "SSD_CODE_DIR"            # where the default code/inference.py lives (baked into the image)
CONTEXT_ENV = "SSD_CONTEXT"              # auto | eia | gpu | cpu
PRECISION_ENV = "SSD_PRECISION"          # auto | fp32 | int8
GRAPH_FUSION_ENV = "SSD_GRAPH_FUSION"    # 0: run the fp32 graph unfused on CPU (oneDNN fusion is the default)
MAX_IMAGE_PIXELS_ENV = "SSD_MAX_IMAGE_PIXELS"
MAX_IMAGES_ENV = "SSD_MAX_IMAGES_PER_REQUEST"
MAX_REQUEST_BYTES_ENV = "SSD_MAX_REQUEST_BYTES"
MAX_RESPONSE_BYTES_ENV = "SSD_MAX_RESPONSE_BYTES"
MAX_CONCURRENT_ENV = "SSD_MAX_CONCURRENT_REQUESTS"
QUEUE_TIMEOUT_ENV = "SSD_QUEUE_TIMEOUT"
DEFAULT_THRESHOLD_ENV = "SSD_DEFAULT_SCORE_THRESHOLD"
STARTUP_TIMEOUT_ENV = "SSD_STARTUP_TIMEOUT"
RESPONSE_TIMEOUT_ENV = "SSD_RESPONSE_TIMEOUT"  # seconds a worker has for its model load and for each request
DRAIN_TIMEOUT_ENV = "SSD_DRAIN_TIMEOUT"  # seconds requests in flight at SIGTERM have to finish
READY_DIR_ENV = "SSD_READY_DIR"          # set by the server: workers mark a loaded model there
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
PORT_ENV = "SAGEMAKER_BIND_TO_PORT"      # inference pipelines and multi-container endpoints move the port
SAFE_PORT_RANGE_ENV = "SAGEMAKER_SAFE_PORT_RANGE"
WORKERS_ENV = "SAGEMAKER_MODEL_SERVER_WORKERS"
LAYOUT_ENV = "SSD_WORKER_LAYOUT"         # auto | latency | throughput
THREADS_ENV = "OMP_NUM_THREADS"
ENTRY_POINT_ENV = "SAGEMAKER_PROGRAM"
# Batch Transform: SageMaker sets these in a transform job's container (and asks GET /execution-parameters)
BATCH_ENV = "SAGEMAKER_BATCH"
MAX_PAYLOAD_ENV = "SAGEMAKER_MAX_PAYLOAD_IN_MB"
BATCH_STRATEGY_ENV = "SAGEMAKER_BATCH_STRATEGY"
MAX_CONCURRENT_TRANSFORMS_ENV = "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"
STRICT_RECORDS_ENV = "SSD_STRICT_RECORDS"  # 1: in batch mode too, a bad record fails its request with a 4xx
REQUEST_METRICS_ENV = "SSD_REQUEST_METRICS"    # 0: no per-request stage timings (EMF lines, Server-Timing headers)
WEB_PAGE_ENV = "SSD_WEB_PAGE"  # 1: GET / serves the try-it page (make serve sets it; off in the image by default)
METRICS_NAMESPACE_ENV = "SSD_METRICS_NAMESPACE"  # the CloudWatch namespace of those metrics
# Multi-model endpoints: SageMaker sets SAGEMAKER_MULTI_MODEL=true and loads models through POST /models
MULTI_MODEL_ENV = "SAGEMAKER_MULTI_MODEL"
MODEL_MEMORY_ENV = "SSD_MODEL_MEMORY_MB"     # memory one more model needs before it is loaded (default: estimated)
MODELS_PAGE_SIZE_ENV = "SSD_MODELS_PAGE_SIZE"  # models per page of GET /models
# Server-side batching: Multi Model Server hands a worker up to this many requests at once (its batch_size), and
# their images run through the graph in one forward; it waits up to the delay (its max_batch_delay) to fill one
SERVER_BATCH_SIZE_ENV = "SSD_SERVER_BATCH_SIZE"
SERVER_BATCH_DELAY_ENV = "SSD_SERVER_BATCH_DELAY_MS"

CONTEXTS = ("auto", "eia", "gpu", "cpu")
# latency: one worker on every core (each request as fast as it gets); throughput: one single-threaded worker per
# core (more requests per second, each slower for a large model); auto: throughput for a small model on a CPU
LAYOUTS = ("auto", "latency", "throughput")
# spelled as SageMaker's API enum: the SDK's local mode rejects MULTI_RECORD
BATCH_STRATEGIES = ("MultiRecord", "SingleRecord")
MAX_PAYLOAD_MB = 100                          # SageMaker's largest MaxPayloadInMB
DEFAULT_PAYLOAD_MB = 6                        # and its default
DEFAULT_MAX_RECORDS = 1000                    # images in one batch request (lines of JSON Lines), in batch mode
# A transform job's request of several records must be answered within the response timeout: at most this share of
# it is planned for, at the time a record took at warm-up (larger photos decode slower; a machine has slow moments)
RECORDS_TIME_SHARE = 0.5
PRECISIONS = ("auto", "fp32", "int8")
DEFAULT_MAX_IMAGE_PIXELS = 64 * 1000 * 1000   # above a 48 MP photo, below a decompression bomb
DEFAULT_MAX_IMAGES = 16
MAX_SERVER_BATCH_SIZE = 64
DEFAULT_SERVER_BATCH_DELAY_MS = 10
DEFAULT_MAX_REQUEST_BYTES = 6553500           # Multi Model Server's default; SageMaker's own limit is 6 MB
# A worker whose answer exceeds MMS's max_response_size (6553500 by default, also in AWS's toolkit) is
# disconnected and restarted by MMS: answers stay under it, with room for MMS's framing.
DEFAULT_MAX_RESPONSE_BYTES = 6 * 1024 * 1024
DEFAULT_THRESHOLD = 0.5
DEFAULT_PORT = 8080
# SageMaker sends SIGKILL 30 s after SIGTERM: the drain and stopping the model server after it fit in that
DEFAULT_DRAIN_TIMEOUT = 20.0
MAX_DRAIN_TIMEOUT = 3600.0
DEFAULT_ENTRY_POINT = "inference.py"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SettingError(HTTPError):
    """A setting the server cannot start with; the message names the variable and what it accepts.

    Not a ModelLoadError: the model may be fine. Its 503 is what a worker under the stock toolkit answers with when
    the settings are read there (the launcher reads them first and stops, exit status 2)."""
    status_code = 503


class _Reader(object):
    """Typed reads of one environment mapping; an empty value means the default."""

    def __init__(self, environ):
        self.environ = environ

    def raw(self, name):
        value = self.environ.get(name)
        return None if value is None or not value.strip() else value.strip()

    def _refuse(self, name, value, accepts, default):
        raise SettingError("%s=%r is not valid: it accepts %s (default: %s)" % (name, value, accepts, default))

    def text(self, name, default=None):
        value = self.raw(name)
        return default if value is None else value

    def choice(self, name, choices, default):
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() not in choices:
            self._refuse(name, value, "one of " + ", ".join(choices), default)
        return value.lower()

    def flag(self, name, default):
        value = self.raw(name)
        if value is None:
            return default
        if value.lower() not in _TRUE + _FALSE:
            self._refuse(name, value, "1/true/yes/on or 0/false/no/off", "1" if default else "0")
        return value.lower() in _TRUE

    def integer(self, name, default, low=1, high=None):
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            number = None
        if number is None or number < low or (high is not None and number > high):
            self._refuse(name, value, "a whole number %s" % (
                "from %d to %d" % (low, high) if high is not None else ">= %d" % low), default)
        return number

    def number(self, name, default, low=0.0, high=None, low_inclusive=False):
        value = self.raw(name)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            number = None
        below = number is None or number != number or (number < low if low_inclusive else number <= low)
        if below or (high is not None and number > high) or number == float("inf"):
            bounds = "%s %g" % (">=" if low_inclusive else ">", low)
            if high is not None:
                bounds = "from %g to %g" % (low, high)
            self._refuse(name, value, "a number %s" % bounds, default)
        return number

    def batch_strategy(self, name, default):
        value = self.raw(name)
        if value is None:
            return default
        for strategy in BATCH_STRATEGIES:
            if value.replace("_", "").lower() == strategy.lower():
                return strategy
        self._refuse(name, value, "MultiRecord or SingleRecord", default)

    def port_range(self, name):
        value = self.raw(name)
        if value is None:
            return None
        parts = value.split("-")
        if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
            low, high = int(parts[0]), int(parts[1])
            if 0 < low <= high < 65536:
                return low, high
        self._refuse(name, value, "a port range LOW-HIGH", "none")


def _repo_code_dir():
    """code/ of this checkout, where the package runs from the working tree (tests, make serve)."""
    package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.path.join(os.path.dirname(package_root), "code")


class Environment(object):
    """The settings, parsed and validated when built (`Environment()` reads os.environ; start-up does it once).

    Request handling reads this object, never os.environ: a bad value stops the server at start with a
    SettingError naming the variable, instead of failing every request. A snapshot: nothing changes it once built
    (another environment is another Environment). The worker layout that follows from it and the model is
    layout.choose_layout's.
    """

    def __init__(self, environ=None):
        read = _Reader(os.environ if environ is None else environ)
        self.base_dir = read.text(BASE_DIR_ENV, "/opt/ml")
        self.sagemaker_model_dir = os.path.join(self.base_dir, "model")
        self.user_code_dir = os.path.join(self.sagemaker_model_dir, "code")
        self.baked_model_dir = read.text(MODEL_DIR_ENV)
        self.code_dir = read.text(CODE_DIR_ENV) or _repo_code_dir()
        self.entry_point = read.text(ENTRY_POINT_ENV, DEFAULT_ENTRY_POINT)
        self.context = read.choice(CONTEXT_ENV, CONTEXTS, "auto")
        self.precision = read.choice(PRECISION_ENV, PRECISIONS, "auto")
        self.graph_fusion = read.flag(GRAPH_FUSION_ENV, True)
        # Batch Transform: a record that cannot be decoded is answered in its place, not as a failed request
        self.batch = read.flag(BATCH_ENV, False)
        self.strict_records = read.flag(STRICT_RECORDS_ENV, False)
        self.max_payload_mb = read.integer(MAX_PAYLOAD_ENV, None, 1, MAX_PAYLOAD_MB)
        # SingleRecord unless told: with SplitType None (image files) MultiRecord gains nothing, and the SDK's local
        # mode fails on it; MultiRecord pays with JSON Lines split by line (docs/hosting.md)
        self.batch_strategy = read.batch_strategy(BATCH_STRATEGY_ENV, "SingleRecord")
        # requests and answers as large as the payload SageMaker was told it may send (up to 100 MB)
        payload = (self.max_payload_mb or 0) * 1024 * 1024
        self.max_image_pixels = read.integer(MAX_IMAGE_PIXELS_ENV, DEFAULT_MAX_IMAGE_PIXELS)
        self.max_images_per_request = read.integer(
            MAX_IMAGES_ENV, DEFAULT_MAX_RECORDS if self.batch else DEFAULT_MAX_IMAGES)
        self.max_request_bytes = read.integer(MAX_REQUEST_BYTES_ENV, max(DEFAULT_MAX_REQUEST_BYTES, payload))
        self.max_response_bytes = read.integer(MAX_RESPONSE_BYTES_ENV, max(DEFAULT_MAX_RESPONSE_BYTES, payload))
        self.default_threshold = read.number(DEFAULT_THRESHOLD_ENV, DEFAULT_THRESHOLD, 0.0, 1.0, low_inclusive=True)
        self.default_accept = read.choice(DEFAULT_ACCEPT_ENV, media.PRODUCED, media.JSON)
        self.http_port = read.integer(PORT_ENV, DEFAULT_PORT, 1, 65535)
        self.safe_port_range = read.port_range(SAFE_PORT_RANGE_ENV)
        self.layout = read.choice(LAYOUT_ENV, LAYOUTS, "auto")
        # None unless set: layout.choose_layout decides then
        self.given_workers = read.integer(WORKERS_ENV, None)
        self.given_threads = read.integer(THREADS_ENV, None)
        self.given_max_concurrent_requests = read.integer(MAX_CONCURRENT_ENV, None)
        self.given_max_concurrent_transforms = read.integer(MAX_CONCURRENT_TRANSFORMS_ENV, None)
        # 1 (the default): no server-side batching, each request is its own forward (docs/performance.md says why)
        self.server_batch_size = read.integer(SERVER_BATCH_SIZE_ENV, 1, 1, MAX_SERVER_BATCH_SIZE)
        self.server_batch_delay_ms = read.integer(SERVER_BATCH_DELAY_ENV, DEFAULT_SERVER_BATCH_DELAY_MS, 1, 10000)
        # seconds a request may wait for one of the front door's slots before a 503 (SageMaker gives up after 60 s)
        self.queue_timeout = read.number(QUEUE_TIMEOUT_ENV, 30.0)
        # how long the server may go without a worker that has the model: at start, or after workers died
        self.startup_timeout = read.number(STARTUP_TIMEOUT_ENV, 200.0)
        # whole seconds, as MMS counts them; an asynchronous endpoint's requests may take up to an hour
        self.response_timeout = read.integer(RESPONSE_TIMEOUT_ENV, 120, 1, 3600)
        # 0 stops at once, as before there was a drain; over 25 s, SageMaker's SIGKILL may come first
        self.drain_timeout = read.number(DRAIN_TIMEOUT_ENV, DEFAULT_DRAIN_TIMEOUT, 0.0, MAX_DRAIN_TIMEOUT,
                                         low_inclusive=True)
        self.ready_dir = read.text(READY_DIR_ENV)
        # each request's stages, logged by the worker as a CloudWatch embedded-metric-format line and sent back in the
        # answer's Server-Timing header
        self.request_metrics = read.flag(REQUEST_METRICS_ENV, True)
        # SageMaker routes only /ping and /invocations: the page is for a person trying the server, not the contract
        self.web_page = read.flag(WEB_PAGE_ENV, False)
        self.metrics_namespace = read.text(METRICS_NAMESPACE_ENV, "SSDServing")
        # a multi-model endpoint starts with no model and loads each on SageMaker's POST /models (multimodel.py)
        self.multi_model = read.flag(MULTI_MODEL_ENV, False)
        self.model_memory_mb = read.integer(MODEL_MEMORY_ENV, None)
        self.models_page_size = read.integer(MODELS_PAGE_SIZE_ENV, 100, 1, 10000)
        self._built = True

    def __setattr__(self, name, value):
        if getattr(self, "_built", False):
            raise AttributeError("Environment is a snapshot of the settings: %s cannot change once it is built" % name)
        object.__setattr__(self, name, value)

    @property
    def server_batching(self):
        """Whether Multi Model Server hands workers several requests at once (SSD_SERVER_BATCH_SIZE > 1)."""
        return self.server_batch_size > 1

    @property
    def registers_batched_model(self):
        """Whether the launcher registers the one model itself, once MMS's management API answers: MMS gives the models
        it loads at start a batch size of one. A multi-model endpoint registers each model it loads anyway."""
        return self.server_batching and not self.multi_model

    @property
    def records_answered_in_place(self):
        """Whether a bad record gets its {"error", "status"} document in the answer (batch mode) instead of
        failing the whole request with its 4xx (real-time endpoints, or SSD_STRICT_RECORDS=1)."""
        return self.batch and not self.strict_records

    def records_within_timeout(self, record_seconds):
        """The most records one transform-job request may hold so that its worker answers it within half the response
        timeout (RECORDS_TIME_SHARE of SSD_RESPONSE_TIMEOUT), at `record_seconds` a record (what one took at warm-up);
        a worker handed SSD_SERVER_BATCH_SIZE requests at once runs them one after another. At least 1, at most
        SSD_MAX_IMAGES_PER_REQUEST."""
        budget = self.response_timeout * RECORDS_TIME_SHARE / self.server_batch_size
        fits = int(budget / record_seconds) if record_seconds > 0 else self.max_images_per_request
        return max(1, min(self.max_images_per_request, fits))

    def execution_parameters(self, layout):
        """The answer to Batch Transform's GET /execution-parameters, for the worker layout `layout`."""
        return {"MaxConcurrentTransforms": layout.max_concurrent_transforms, "BatchStrategy": self.batch_strategy,
                "MaxPayloadInMB": min(MAX_PAYLOAD_MB, self.max_payload_mb or max(
                    DEFAULT_PAYLOAD_MB, self.max_request_bytes // (1024 * 1024)))}

    @classmethod
    def defaults(cls):
        """Every setting at its default, whatever the process environment says (tools and tests)."""
        return cls({})

    def mark_model_loaded(self):
        """Tell the server process this worker has its model (MMS reports workers READY before that)."""
        if self.ready_dir and os.path.isdir(self.ready_dir):
            with open(os.path.join(self.ready_dir, "worker-%d" % os.getpid()), "w") as stream:
                stream.write("loaded\n")
