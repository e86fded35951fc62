"""The Multi Model Server custom service: load the entry point's model once, answer each request in a batch."""
from __future__ import absolute_import

import importlib
import logging
import sys
from inspect import signature

from . import artifact, timing
from .environment import Environment
from .errors import HTTPError, ModelLoadError, error_json
from .multimodel import read_pointer, record_load_error
from .request_context import RequestContext, request_header

LOG = logging.getLogger(__name__)


def _request_id(context):
    """The front door's id for the request (the caller's InferenceId when it sent one), else MMS's own."""
    found = request_header(context, timing.REQUEST_ID_HEADER) or request_header(context, timing.INFERENCE_ID_HEADER)
    if found:
        return found
    try:
        return context.get_request_id()
    except (AttributeError, KeyError, TypeError):
        return None


_PARAMETER_COUNTS = {}  # the entry point's steps are fixed once loaded: their signatures are read once, not per request


def _takes_context(function, given):
    """Whether `function` takes one parameter more than the `given` arguments: the request's Context, passed as
    sagemaker-inference >= 1.7 passes its own (Transformer._run_handler_function)."""
    if function not in _PARAMETER_COUNTS:
        try:
            _PARAMETER_COUNTS[function] = len(signature(function).parameters)
        except (TypeError, ValueError):  # no signature to read (a builtin, say): called without
            _PARAMETER_COUNTS[function] = None
    return _PARAMETER_COUNTS[function] == given + 1


def _call_step(function, context, *args):
    """function(*args), and the request's Context (or the requests' list of them) last when it takes one more."""
    if _takes_context(function, len(args)):
        return function(*(args + (context,)))
    return function(*args)


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
        call.data = _call_step(self.entry.input_fn, call.context, call.body, call.content_type)

    def _predict(self, call):
        try:
            call.prediction = _call_step(self.entry.predict_fn, call.context, call.data, self.model)
        except Exception:
            call.metrics.discard(*timing.PREDICTION_STAGES)
            raise

    def _predict_together(self, calls, predict_batch):
        try:
            outcomes = _call_step(predict_batch, [call.context for call in calls], [call.data for call in calls],
                                  self.model)
            if len(outcomes) != len(calls):
                raise RuntimeError("predict_batch_fn returned %d results for %d requests" % (len(outcomes), len(calls)))
        except Exception as error:  # pylint: disable=broad-except
            outcomes = [error] * len(calls)
        for call, outcome in zip(calls, outcomes):
            if isinstance(outcome, Exception):
                call.metrics.discard(*timing.PREDICTION_STAGES)
                self._run(call, _raise, outcome)
            else:
                call.prediction = outcome

    def _write(self, call):
        with call.metrics.stage("encode"):
            payload, media = _call_step(self.entry.output_fn, call.context, call.prediction, call.accept)
        call.context.set_response_content_type(0, media)
        call.answer = payload

    def _run(self, call, step, *args):
        """step(call, *args); a failure becomes the call's error answer (an HTTPError's own status, else a 500)."""
        try:
            step(call, *args)
        except HTTPError as error:
            call.status = error.status_code
            LOG.info("request %s refused with %d: %s", call.request_id, error.status_code, error)
            call.answer = call.fail(error.status_code, error.phrase, error.body(call.request_id))
        except Exception as error:  # keep the worker serving; the client learns it was our fault
            call.status = 500
            LOG.exception("request %s failed", call.request_id)
            call.answer = call.fail(500, "Internal Server Error",
                                    error_json(500, "internal error: %s" % (error,), call.request_id))

    def _report_times(self, call, batch_size):
        """The request's stages in its answer's Server-Timing header and as one CloudWatch EMF line, which the front
        door prints when it forwarded the request, else the worker (SSD_REQUEST_METRICS=0 turns both off)."""
        settings = self.settings
        if not settings.request_metrics:
            return
        metrics = call.metrics
        total_ms = metrics.total_ms()
        if settings.server_batch_size == 1:
            # With server-side batching on, Multi Model Server's frontend (1.1.8) takes a worker's answer that carries
            # response headers for a corrupted frame ("Message size exceed limit", "Invalid message size") and
            # restarts the worker, whatever the size of the batch it answers. So with SSD_SERVER_BATCH_SIZE > 1 a
            # request's Server-Timing has only the front door's timings; its EMF line still has them all.
            call.context.set_response_header(0, timing.SERVER_TIMING_HEADER, timing.server_timing(metrics, total_ms))
        prediction = call.prediction
        info = getattr(prediction, "model_info", None) or getattr(self.model, "info", None) or {}
        images = len(getattr(prediction, "results", None) or ())
        line = timing.emf_line(metrics, settings.metrics_namespace, info.get("name"), call.request_id, call.status,
                               images, total_ms, batch=batch_size, target_model=info.get("target_model"))
        relayed = request_header(call.context, timing.EMF_RELAY_HEADER) == timing.EMF_RELAY
        if relayed and settings.server_batch_size == 1:
            # the front door prints it after answering (timing.EMF_RELAY_HEADER says why); with server-side batching
            # the answer can carry no header (above), so the worker prints it
            call.context.set_response_header(0, timing.EMF_RELAY_HEADER, line)
            return
        timing.print_line(line)


def _raise(call, error):
    raise error


class _Call(object):
    """One request of MMS's batch: its Context and metrics, what it brought, how far it got, and its answer once it
    has one."""

    def __init__(self, context, index, request):
        self.metrics = timing.RequestMetrics()
        self.context = RequestContext(context, index, self.metrics)
        waited = timing.queue_wait_ms(request_header(self.context, timing.RECEIVED_AT_HEADER))
        if waited is not None:
            self.metrics.add("queue_wait", waited)
        self.request_id = _request_id(self.context)
        body = request.get("body")
        self.body = request.get("data") if body is None else body
        self.content_type = request_header(self.context, "Content-Type")
        self.accept = request_header(self.context, "Accept")
        self.data = None
        self.prediction = None
        self.status = 200
        self.answer = None

    def fail(self, status, phrase, body):
        self.context.set_response_status(status, phrase)
        self.context.set_response_content_type(0, "application/json")
        return body


_service = DetectionService()


class ModelServerMetricLines(logging.Filter):
    """Drops the lines in which MMS's worker code logs its own metrics of each request (`[METRICS]PredictionTime...`,
    mms.service's emit_metrics) for its frontend to parse: the launcher's log configuration turns them off there
    (MODEL_METRICS), and each one woke the frontend's reader of the worker's output while the answer was on its way
    (docs/performance.md, "Where the hops go")."""

    def filter(self, record):
        return not str(record.msg).startswith("[METRICS]")


MODEL_SERVER_METRIC_LINES = ModelServerMetricLines()


def handle(data, context):
    """MMS entry: `data` is None when MMS only wants the model loaded."""
    if not _service.initialized:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout)
        logging.getLogger("mms.service").addFilter(MODEL_SERVER_METRIC_LINES)
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
