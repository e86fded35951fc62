"""The Multi Model Server custom service: load the entry point's model once, answer each request in a batch."""
from __future__ import absolute_import

import importlib
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
            # SageMaker's model folder, as AWS's toolkits give it: MMS's own folder for the model is an empty store
            # (ours finds the model it serves from there, falling back to the baked one: model.find_model_dir)
            self.model = self.entry.model_fn(self.settings.sagemaker_model_dir)
        else:
            self.model = self._load_target(model_dir, pointer)
            if hasattr(self.model, "target_model"):
                self.model.target_model = pointer["model_name"]
        # the launcher counts this worker ready from here (whatever entry point loaded the model: a user's own
        # model_fn knows nothing of this server)
        self.settings.mark_model_loaded()
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

    def handle(self, data, context):
        """Answer MMS's batch (one request, or up to SSD_SERVER_BATCH_SIZE with server-side batching) in order:
        input_fn for each, then one predict_batch_fn over those read (when the entry point has it and there are
        several) or predict_fn for each, then output_fn for each. A request that fails is answered with its
        error; the others are still answered."""
        calls = [_Call(context, index, request) for index, request in enumerate(data)]
        for call in calls:
            self._run(call, self._read)
        pending = [call for call in calls if call.answer is None]
        predict_batch = getattr(self.entry, "predict_batch_fn", None)
        if len(pending) > 1 and predict_batch is not None:
            self._predict_together(pending, predict_batch)
        else:
            for call in pending:
                self._run(call, self._predict)
        for call in calls:
            if call.answer is None:
                self._run(call, self._write)
            self._report_times(call, len(calls))
        return [call.answer for call in calls]

    def _read(self, call):
        call.data = self.entry.input_fn(call.body, call.content_type, call.attributes)

    def _predict(self, call):
        self._predicted(call, self.entry.predict_fn(call.data, self.model))

    @staticmethod
    def _predicted(call, prediction):
        call.prediction = prediction
        # the prediction's own StageTimes, unless an entry point of the user's returns something else
        found = getattr(prediction, "times", None)
        if isinstance(found, timing.StageTimes):
            call.times = found

    def _predict_together(self, calls, predict_batch):
        try:
            outcomes = predict_batch([call.data for call in calls], self.model)
            if len(outcomes) != len(calls):
                raise RuntimeError("predict_batch_fn returned %d results for %d requests" % (len(outcomes), len(calls)))
        except Exception as error:  # pylint: disable=broad-except
            outcomes = [error] * len(calls)
        for call, outcome in zip(calls, outcomes):
            if isinstance(outcome, Exception):
                self._run(call, _raise, outcome)
            else:
                self._predicted(call, outcome)

    def _write(self, call):
        with call.times.stage("encode"):
            payload, media = self.entry.output_fn(call.prediction, call.accept)
        call.context.set_response_content_type(call.index, media)
        call.answer = payload

    def _run(self, call, step, *args):
        """step(call, *args); a failure becomes the call's error answer (a 4xx for an InferenceError, else a 500)."""
        try:
            step(call, *args)
        except InferenceError as error:
            call.status = error.status_code
            LOG.info("request %s refused with %d: %s", call.request_id, error.status_code, error)
            call.answer = call.fail(error.status_code, error.phrase, error.body(call.request_id))
        except Exception as error:  # keep the worker serving; the client learns it was our fault
            call.status = 500
            LOG.exception("request %s failed", call.request_id)
            call.answer = call.fail(500, "Internal Server Error",
                                    error_json(500, "internal error: %s" % (error,), call.request_id))

    def _report_times(self, call, batch_size):
        """The request's stages in its answer's Server-Timing header and as one CloudWatch EMF line on stdout
        (SSD_REQUEST_METRICS=0 turns both off)."""
        settings = self.settings
        if not settings.request_metrics:
            return
        total_ms = (time.perf_counter() - call.started) * 1000.0
        times = call.times
        if call.waited is not None:
            times.add("queue_wait", call.waited)
        if settings.server_batch_size == 1:
            # With server-side batching on, Multi Model Server's frontend (1.1.8) takes a worker's answer that carries
            # response headers for a corrupted frame ("Message size exceed limit", "Invalid message size") and
            # restarts the worker, whatever the size of the batch it answers. So with SSD_SERVER_BATCH_SIZE > 1 a
            # request's Server-Timing has only the front door's timings; its EMF line still has them all.
            call.context.set_response_header(call.index, timing.SERVER_TIMING_HEADER,
                                             timing.server_timing(times, total_ms))
        prediction = call.prediction
        info = getattr(prediction, "model_info", None) or getattr(self.model, "info", None) or {}
        images = len(getattr(prediction, "results", None) or ())
        line = timing.emf_line(times, settings.metrics_namespace, info.get("name"), call.request_id, call.status,
                               images, total_ms, batch=batch_size, target_model=info.get("target_model"))
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _raise(call, error):
    raise error


class _Call(object):
    """One request of MMS's batch: what it brought, how far it got, and its answer once it has one."""

    def __init__(self, context, index, request):
        self.started = time.perf_counter()
        self.context = context
        self.index = index
        self.waited = timing.queue_wait_ms(_header(context, index, timing.RECEIVED_AT_HEADER))
        self.request_id = _request_id(context, index)
        body = request.get("body")
        self.body = request.get("data") if body is None else body
        self.content_type = _header(context, index, "Content-Type")
        self.accept = _header(context, index, "Accept")
        self.attributes = _header(context, index, CUSTOM_ATTRIBUTES)
        self.data = None
        self.prediction = None
        self.times = timing.StageTimes()
        self.status = 200
        self.answer = None

    def fail(self, status, phrase, body):
        self.context.set_response_status(status, phrase, self.index)
        self.context.set_response_content_type(self.index, "application/json")
        return body


_service = DetectionService()


def handle(data, context):
    """MMS entry: `data` is None when MMS only wants the model loaded."""
    if not _service.initialized:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout)
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
