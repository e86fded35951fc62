"""The Multi Model Server custom service: load the entry point's model once, answer each request in a batch."""
from __future__ import absolute_import

import importlib
import json
import logging
import sys
import time

from . import artifact, timing
from .environment import Environment
from .errors import InferenceError, ModelLoadError, error_json
from .media import header_value
from .multimodel import read_pointer, record_load_error

LOG = logging.getLogger(__name__)

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


def _header(context, index, name):
    return header_value(context.get_all_request_header(index), name)


def _request_id(context, index):
    """The front door's id for the request (the caller's InferenceId when it sent one), else MMS's own."""
    found = _header(context, index, timing.REQUEST_ID_HEADER) or _header(context, index, timing.INFERENCE_ID_HEADER)
    if found:
        return found
    try:
        return context.get_request_id(index)
    except (AttributeError, KeyError, TypeError):
        return None


class DetectionService(object):
    """Calls the entry point's model_fn once, then input_fn, predict_fn and output_fn per request."""

    def __init__(self):
        self.entry = None
        self.model = None
        self.settings = None
        self.initialized = False

    def initialize(self, context, settings=None):
        """Import the entry point (SAGEMAKER_PROGRAM, default inference.py) and load its model once."""
        self.settings = settings or Environment()
        module_name = self.settings.entry_point
        if module_name.endswith(".py"):
            module_name = module_name[:-3]
        self.entry = importlib.import_module(module_name)
        model_dir = (context.system_properties or {}).get("model_dir")
        # a multi-model endpoint's model: MMS's folder points at the one SageMaker gave; load that one or fail,
        # never fall back to another model (find_model_dir would, for a folder without one)
        pointer = read_pointer(model_dir)
        if pointer is None:
            self.model = self.entry.model_fn(model_dir)
        else:
            self.model = self._load_target(model_dir, pointer)
            if hasattr(self.model, "target_model"):
                self.model.target_model = pointer["model_name"]
        self.initialized = True

    def _load_target(self, mms_dir, pointer):
        """A multi-model endpoint's model; why it failed is left in its MMS folder for the load's answer."""
        model_dir = pointer["url"]
        try:
            if not artifact.has_model(model_dir):
                raise ModelLoadError("%s holds no exported model" % model_dir)
            LOG.info("model %s: loading %s", pointer["model_name"], model_dir)
            return self.entry.model_fn(model_dir)
        except Exception as error:
            record_load_error(mms_dir, error)
            raise

    def _answer(self, context, index, request):
        started = time.perf_counter()
        waited = timing.queue_wait_ms(_header(context, index, timing.RECEIVED_AT_HEADER))
        request_id = _request_id(context, index)
        body = request.get("body")
        if body is None:
            body = request.get("data")
        content_type = _header(context, index, "Content-Type")
        accept = _header(context, index, "Accept")
        attributes = _header(context, index, CUSTOM_ATTRIBUTES)
        prediction = None
        times = timing.StageTimes()
        status = 200
        try:
            data = self.entry.input_fn(body, content_type, attributes)
            prediction = self.entry.predict_fn(data, self.model)
            # the prediction's own StageTimes, unless an entry point of the user's returns something else
            found = getattr(prediction, "times", None)
            times = found if isinstance(found, timing.StageTimes) else times
            with times.stage("encode"):
                payload, media = self.entry.output_fn(prediction, accept)
            context.set_response_content_type(index, media)
            return payload
        except InferenceError as error:
            status = error.status_code
            LOG.info("request %s refused with %d: %s", request_id, error.status_code, error)
            return self._fail(context, index, error.status_code, error.phrase, error.body(request_id))
        except Exception as error:  # keep the worker serving; the client learns it was our fault
            status = 500
            LOG.exception("request %s failed", request_id)
            body = error_json(500, "internal error: %s" % (error,), request_id)
            return self._fail(context, index, 500, "Internal Server Error", body)
        finally:
            self._log_times(times, prediction, waited, request_id, status, started)

    def _log_times(self, times, prediction, waited, request_id, status, started):
        """The request's stages as one CloudWatch EMF line on stdout (SSD_REQUEST_METRICS=0 turns them off)."""
        settings = self.settings
        if not settings.request_metrics:
            return
        total_ms = (time.perf_counter() - started) * 1000.0
        if waited is not None:
            times.add("queue_wait", waited)
        info = getattr(prediction, "model_info", None) or getattr(self.model, "info", None) or {}
        images = len(getattr(prediction, "results", None) or ())
        document = timing.emf_document(times, settings.metrics_namespace, info.get("name"), request_id, status, images,
                                       total_ms)
        if info.get("target_model"):  # a multi-model endpoint's name for the model, searchable in Logs Insights
            document["TargetModel"] = info["target_model"]
        line = json.dumps(document, separators=(",", ":"))
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    @staticmethod
    def _fail(context, index, status, phrase, body):
        context.set_response_status(status, phrase, index)
        context.set_response_content_type(index, "application/json")
        return body

    def handle(self, data, context):
        return [self._answer(context, index, request) for index, request in enumerate(data)]


_service = DetectionService()


def handle(data, context):
    """MMS entry: `data` is None when MMS only wants the model loaded."""
    if not _service.initialized:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout)
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
