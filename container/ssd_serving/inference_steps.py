"""The four SageMaker inference steps (model_fn, input_fn, predict_fn, output_fn) over this package.

Two kinds of caller run them, through code/inference.py:

- this project's Multi Model Server handler (handler.py) passes the X-Amzn-SageMaker-Custom-Attributes
  header string as input_fn's third argument and turns a raised InferenceError into its HTTP answer;
- the stock SageMaker MXNet serving toolkit in AWS's images (sagemaker_inference's Transformer). From
  sagemaker-inference 1.7 on it passes the MMS Context as an extra last argument to every function that
  takes one more parameter than it gives; before 1.7 it passes none, but its Transformer.transform(data,
  context) is on the call stack. From 1.3.2 on it appends a Python traceback to the body of every error it
  catches, so under the toolkit nothing is raised to it: the status goes onto the Context here, and the
  JSON error body travels on through predict_fn and output_fn as an ordinary result.
"""
from __future__ import absolute_import

import io
import logging
import sys
import time
from collections import namedtuple

import numpy as np
from PIL import Image

from .environment import RECORDS_TIME_SHARE, RESPONSE_TIMEOUT_ENV, Environment
from .errors import InferenceError, TooManyRecordsError, UnsupportedMediaTypeError
from .media import JSON, JSON_LINES_TYPES, header_value
from .model import load_detector
from .request import read_request, split_request
from .response import ImageResult, Prediction, RecordError, encode_prediction
from .timing import StageTimes

LOG = logging.getLogger(__name__)

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"
# Frames between a step and the toolkit's Transformer.transform: inference.py, _default_transform_fn and,
# in 1.7+, _run_handler_function; with room to spare, but bounded.
_STACK_DEPTH = 16

class Refusal(object):
    """A request already answered with an error under the stock toolkit: its status is set on the
    toolkit's Context, and predict_fn and output_fn pass it on until output_fn returns its JSON body."""

    def __init__(self, error):
        self.error = error

    def body(self):
        return self.error.body().encode("utf-8")


def _is_context(value):
    return hasattr(value, "request_processor") and hasattr(value, "set_response_status")


def _context_on_stack():
    """The Context argument of the stock toolkit's Transformer.transform up the stack (sagemaker-inference
    before 1.7 does not pass it on), or None: not the toolkit (it is never imported under handler.py)."""
    transformer = sys.modules.get("sagemaker_inference.transformer")
    if transformer is None:
        return None
    frame = sys._getframe(2)
    for _ in range(_STACK_DEPTH):
        if frame is None:
            return None
        if frame.f_code.co_name == "transform":
            local = frame.f_locals
            if isinstance(local.get("self"), transformer.Transformer) and _is_context(local.get("context")):
                return local["context"]
        frame = frame.f_back
    return None


def toolkit_context(argument):
    """The stock toolkit's MMS Context for this request, or None when this project's handler calls.

    `argument` is the step's extra last argument: the Context (sagemaker-inference >= 1.7), the
    custom-attributes header string or None (handler.py), or None (older toolkits: found on the stack).
    """
    if _is_context(argument):
        return argument
    if argument is not None:
        return None
    return _context_on_stack()


def request_header(context, name):
    """A request header from an MMS Context, its name matched case-insensitively (the toolkit serves
    index 0 only: one request per call)."""
    try:
        headers = context.request_processor[0].get_request_properties()
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return header_value(headers, name)


def _refuse(context, error):
    """Answer the toolkit's request with `error` (an InferenceError keeps its status, anything else is a
    500) without raising: the toolkit would append a traceback to the body."""
    if not isinstance(error, InferenceError):
        LOG.exception("request failed")
        error = InferenceError("internal error: %s" % (error,))
    else:
        LOG.info("request refused with %d: %s", error.status_code, error)
    context.set_response_status(error.status_code, error.phrase, 0)
    context.set_response_content_type(0, JSON)
    return Refusal(error)


def model_fn(model_dir=None):
    """The Detector, loaded with the settings read once here; they travel with it to the other steps."""
    settings = Environment()
    detector = load_detector(model_dir, settings)
    warm_up_request(detector)
    return detector


def warm_up_request(detector, size=(640, 480)):
    """One whole request at load (JPEG decode, resize from a photo's size, detection, JSON): the graph's
    warm-up does not reach Pillow's JPEG plugin, the resize kernels or the encoder, and without this the
    first client paid for them (demo model: 63 ms instead of 42). It calls the steps' insides: under the
    toolkit before 1.7 the model loads inside a request, whose Context the public steps would find.
    Its time is what a record costs: in a transform job it bounds the records a request may hold."""
    started = time.perf_counter()
    encode_prediction(_predict(read_request(warm_up_photo(size), "image/jpeg"), detector), JSON)
    detector.record_seconds = max(time.perf_counter() - started, detector.forward_seconds or 0.0)
    settings = detector.settings
    if settings.batch:
        detector.max_records = settings.records_within_timeout(detector.record_seconds)
        LOG.info("a record took %.0f ms at warm-up (forward %.0f ms): a transform job's request may hold up to %d "
                 "records, answered within %.0f%% of %s=%d s", detector.record_seconds * 1000.0,
                 (detector.forward_seconds or 0.0) * 1000.0, detector.max_records, RECORDS_TIME_SHARE * 100,
                 RESPONSE_TIMEOUT_ENV, settings.response_timeout)


def warm_up_photo(size=(640, 480)):
    """A JPEG about as large and as dear to decode as a photo of `size` (textured, not flat), for warm-ups."""
    width, height = size
    texture = np.random.RandomState(0).randint(0, 256, (height, width, 3)).astype(np.uint8)
    ramp = np.linspace(0, 255, width * height * 3, dtype=np.float64).reshape(height, width, 3)
    stream = io.BytesIO()
    Image.fromarray((ramp * 0.75 + texture * 0.25).astype(np.uint8)).save(stream, format="JPEG", quality=85)
    return stream.getvalue()


def _usable(error):
    """A 4xx about the data itself: in batch mode the record's answer, not the request's failure. A content
    type this server does not read stays a 415: the job, not one record, is set up wrong."""
    return error.status_code < 500 and not isinstance(error, (UnsupportedMediaTypeError, TooManyRecordsError))


def _check_records(request, detector):
    """Refuse (413) a transform job's request of more records than the worker answers within the response timeout,
    before decoding any: the job is told at once which setting to change, instead of its invocations timing out."""
    bound = detector.max_records
    count = len(request.items)
    if bound is None or not request.batch or count <= bound or not detector.settings.batch:
        return
    settings = detector.settings
    raise TooManyRecordsError(
        "the request holds %d records, but at %.0f ms a record (measured at warm-up) this worker answers at most %d "
        "within %.0f%% of %s=%d s; send fewer records per request: lower the job's MaxPayloadInMB or use "
        "BatchStrategy SingleRecord, or raise %s (and the job's InvocationsTimeoutInSeconds with it) in the job's "
        "environment" % (count, detector.record_seconds * 1000.0, bound, RECORDS_TIME_SHARE * 100,
                         RESPONSE_TIMEOUT_ENV, settings.response_timeout, RESPONSE_TIMEOUT_ENV))


def _default_media(raw):
    return raw.media if raw.media in JSON_LINES_TYPES else None


def _predict(raw, detector):
    """Decode the request's images one at a time (large JPEGs at reduced scale, never below the model's input)
    and detect. In batch mode (SAGEMAKER_BATCH) a record that cannot be used is answered in its place."""
    times = StageTimes()
    request = _split(raw, detector, times)
    if isinstance(request, Prediction):
        return request
    return _detect_each(request, raw, detector, times)


def _split(raw, detector, times):
    """The request's images (a DetectionRequest); in batch mode, the Prediction answering a body that cannot be used."""
    settings = detector.settings
    try:
        request = split_request(raw, settings)
    except InferenceError as error:
        if not (settings.records_answered_in_place and _usable(error)):
            raise
        return Prediction([RecordError(error)], detector.info, False, settings, _default_media(raw), times)
    _check_records(request, detector)
    return request


def _decode_item(item, request, detector, times):
    """Decode one image of the request and return its class filter (model class ids, None for all). An image that
    cannot be used is raised as its InferenceError, or in batch mode returned as the RecordError answering it."""
    settings = detector.settings
    try:
        with times.stage("decode"):
            item.decode(settings, (detector.input_width, detector.input_height))
        return item.params.class_ids(detector.classes)
    except InferenceError as error:
        error = item.named(error) if request.batch else error
        if not (settings.records_answered_in_place and _usable(error)):
            raise error
        return RecordError(error)


def _detect_each(request, raw, detector, times):
    """Each image of the request decoded and detected in turn: a batch keeps one decoded image at a time."""
    results = []
    for item in request.items:
        class_ids = _decode_item(item, request, detector, times)
        if isinstance(class_ids, RecordError):
            results.append(class_ids)
            continue
        decoded = item.image
        detections = detector.detect(decoded.rgb, threshold=item.params.threshold, top_k=item.params.top_k,
                                     class_ids=class_ids, original_size=decoded.original_size, times=times)
        if len(request.items) > 1:
            decoded.rgb = None  # only a single image is drawn
        results.append(ImageResult(detections, decoded))
    return Prediction(results, detector.info, request.batch, detector.settings, _default_media(raw), times)


# a request of one image waiting for the shared forward of predict_batch_fn
_LoneImage = namedtuple("_LoneImage", "position raw item class_ids times")


def predict_batch_fn(requests, detector):
    """Predictions for several requests at once (server-side batching, SSD_SERVER_BATCH_SIZE): the images of the
    requests that hold one image each go through the graph together, in one forward; other requests are answered
    one by one. The list holds each request's Prediction, or the exception it failed
    with, in order: one bad request never fails the others."""
    settings = detector.settings
    outcomes = [None] * len(requests)
    together = []
    for position, raw in enumerate(requests):
        times = StageTimes()
        try:
            request = _split(raw, detector, times)
            if isinstance(request, Prediction):
                outcomes[position] = request
            elif request.batch or len(request.items) != 1:
                outcomes[position] = _detect_each(request, raw, detector, times)
            else:
                class_ids = _decode_item(request.items[0], request, detector, times)
                if isinstance(class_ids, RecordError):
                    outcomes[position] = Prediction([class_ids], detector.info, False, settings, _default_media(raw),
                                                    times)
                else:
                    together.append(_LoneImage(position, raw, request.items[0], class_ids, times))
        except Exception as error:  # pylint: disable=broad-except
            outcomes[position] = error
    if together:  # MMS hands over at most SSD_SERVER_BATCH_SIZE requests: one forward for their images
        options = [{"threshold": lone.item.params.threshold, "top_k": lone.item.params.top_k,
                    "class_ids": lone.class_ids, "original_size": lone.item.image.original_size} for lone in together]
        try:
            found = detector.detect_many([lone.item.image.rgb for lone in together], options,
                                         [lone.times for lone in together])
        except Exception as error:  # pylint: disable=broad-except
            found = [error] * len(together)
        for lone, detections in zip(together, found):
            outcomes[lone.position] = detections if isinstance(detections, Exception) else Prediction(
                [ImageResult(detections, lone.item.image)], detector.info, False, settings, _default_media(lone.raw),
                lone.times)
    return outcomes


def _step(context, function, *args):
    """function(*args); under the stock toolkit (a Context) a failure becomes a Refusal, never an exception."""
    if context is None:
        return function(*args)
    try:
        return function(*args)
    except Exception as error:  # pylint: disable=broad-except
        return _refuse(context, error)


def input_fn(request_body, content_type, custom_attributes=None):
    """A RawRequest: the body kept as sent (predict_fn, which has the model, decodes it), its content type checked
    and its parameter header read. `custom_attributes`: the header string (handler.py) or the toolkit's Context."""
    context = toolkit_context(custom_attributes)
    header = custom_attributes if context is None else request_header(context, CUSTOM_ATTRIBUTES)
    return _step(context, read_request, request_body, content_type, header)


def predict_fn(request, detector, context=None):
    if isinstance(request, Refusal):
        return request
    return _step(toolkit_context(context), _predict, request, detector)


def output_fn(prediction, accept, context=None):
    """(body bytes, content type); the stock toolkits of every version take such a tuple apart."""
    if not isinstance(prediction, Refusal):
        prediction = _step(toolkit_context(context), encode_prediction, prediction, accept)
    return (prediction.body(), JSON) if isinstance(prediction, Refusal) else prediction
