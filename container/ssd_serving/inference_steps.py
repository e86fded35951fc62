"""The SageMaker inference steps (model_fn, input_fn, predict_fn, output_fn) over this package, and this project's
predict_batch_fn (requests handed over together share one forward). code/inference.py delegates to them.

One calling contract: input_fn, predict_fn and output_fn take the request's Context as their extra last argument,
as sagemaker-inference >= 1.7 passes it (predict_batch_fn: the requests' Contexts). Its callers:

- this project's Multi Model Server handler (handler.py) passes a RequestContext (request_context.py): the
  request's headers, and its metrics, into which the steps time the request's stages. Errors are raised: the
  handler answers them under the request's id;
- AWS's stock toolkit in its images passes its MMS Context, or before 1.7 nothing (toolkit_compat.py finds it on
  the stack); errors are answered in place, never raised to it (toolkit_compat.refuse);
- tools and tests call them without a Context: no headers are read, errors are raised.
"""
from __future__ import absolute_import

import io
import logging
import time
from collections import namedtuple

import numpy as np
from PIL import Image

from .environment import RECORDS_TIME_SHARE, RESPONSE_TIMEOUT_ENV, Environment
from .errors import InferenceError, TooManyRecordsError, UnsupportedMediaTypeError
from .media import CUSTOM_ATTRIBUTES, JSON, JSON_LINES_TYPES
from .model import load_detector
from .request import read_request, split_request
from .request_context import RequestContext, request_header
from .response import ImageResult, Prediction, RecordError, encode_prediction
from .timing import RequestMetrics
from .toolkit_compat import Refusal, refuse, stock_context

LOG = logging.getLogger(__name__)


def _stock(context):
    """The stock toolkit's MMS Context when the toolkit calls; None when this project's handler or a tool does."""
    return None if isinstance(context, RequestContext) else stock_context(context)


def _metrics(context):
    """The request's metrics from this project's handler; elsewhere ones that nobody reads."""
    return context.request_metrics if isinstance(context, RequestContext) else RequestMetrics()


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
    encode_prediction(_predict(read_request(warm_up_photo(size), "image/jpeg"), detector, RequestMetrics()), JSON)
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


def _predict(raw, detector, metrics):
    """Decode the request's images one at a time (large JPEGs at reduced scale, never below the model's input)
    and detect. In batch mode (SAGEMAKER_BATCH) a record that cannot be used is answered in its place."""
    request = _split(raw, detector)
    if isinstance(request, Prediction):
        return request
    return _detect_each(request, raw, detector, metrics)


def _split(raw, detector):
    """The request's images (a DetectionRequest); in batch mode, the Prediction answering a body that cannot be used."""
    settings = detector.settings
    try:
        request = split_request(raw, settings)
    except InferenceError as error:
        if not (settings.records_answered_in_place and _usable(error)):
            raise
        return Prediction([RecordError(error)], detector.info, False, settings, _default_media(raw))
    _check_records(request, detector)
    return request


def _decode_item(item, request, detector, metrics):
    """Decode one image of the request and return its class filter (model class ids, None for all). An image that
    cannot be used is raised as its InferenceError, or in batch mode returned as the RecordError answering it."""
    settings = detector.settings
    try:
        with metrics.stage("decode"):
            item.decode(settings, (detector.input_width, detector.input_height))
        return item.params.class_ids(detector.classes)
    except InferenceError as error:
        error = item.named(error) if request.batch else error
        if not (settings.records_answered_in_place and _usable(error)):
            raise error
        return RecordError(error)


def _options(item, class_ids):
    """An image's Detector.detections keyword arguments."""
    return {"threshold": item.params.threshold, "top_k": item.params.top_k, "class_ids": class_ids,
            "original_size": item.image.original_size}


def _detect(detector, images, options, metrics_each):
    """Detections for each image, its Detector's stages timed into its request's metrics: its own preprocess and
    postprocess, and the whole forward, which each image of it waited for (one forward for all the images)."""
    inputs = []
    for rgb, metrics in zip(images, metrics_each):
        with metrics.stage("preprocess"):
            inputs.append(detector.prepare(rgb))
    started = time.perf_counter()
    outputs = detector.run_graph(inputs)
    forward_ms = (time.perf_counter() - started) * 1000.0
    found = []
    for rgb, output, option, metrics in zip(images, outputs, options, metrics_each):
        metrics.add("forward", forward_ms)
        with metrics.stage("postprocess"):
            found.append(detector.detections(output, rgb.shape, **option))
    return found


def _detect_each(request, raw, detector, metrics):
    """Each image of the request decoded and detected in turn: a batch keeps one decoded image at a time."""
    results = []
    for item in request.items:
        class_ids = _decode_item(item, request, detector, metrics)
        if isinstance(class_ids, RecordError):
            results.append(class_ids)
            continue
        decoded = item.image
        detections, = _detect(detector, [decoded.rgb], [_options(item, class_ids)], [metrics])
        if len(request.items) > 1:
            decoded.rgb = None  # only a single image is drawn
        results.append(ImageResult(detections, decoded))
    return Prediction(results, detector.info, request.batch, detector.settings, _default_media(raw))


# a request of one image waiting for the shared forward of predict_batch_fn
_LoneImage = namedtuple("_LoneImage", "position raw item class_ids metrics")


def predict_batch_fn(requests, detector, contexts=None):
    """Predictions for several requests at once (server-side batching, SSD_SERVER_BATCH_SIZE): the images of the
    requests that hold one image each go through the graph together, in one forward; other requests are answered
    one by one. `contexts`: each request's, from this project's handler. The list holds each request's Prediction,
    or the exception it failed with, in order: one bad request never fails the others."""
    settings = detector.settings
    outcomes = [None] * len(requests)
    together = []
    for position, (raw, context) in enumerate(zip(requests, contexts or [None] * len(requests))):
        metrics = _metrics(context)
        try:
            request = _split(raw, detector)
            if isinstance(request, Prediction):
                outcomes[position] = request
            elif request.batch or len(request.items) != 1:
                outcomes[position] = _detect_each(request, raw, detector, metrics)
            else:
                class_ids = _decode_item(request.items[0], request, detector, metrics)
                if isinstance(class_ids, RecordError):
                    outcomes[position] = Prediction([class_ids], detector.info, False, settings, _default_media(raw))
                else:
                    together.append(_LoneImage(position, raw, request.items[0], class_ids, metrics))
        except Exception as error:  # pylint: disable=broad-except
            outcomes[position] = error
    if together:  # MMS hands over at most SSD_SERVER_BATCH_SIZE requests: one forward for their images
        try:
            found = _detect(detector, [lone.item.image.rgb for lone in together],
                            [_options(lone.item, lone.class_ids) for lone in together],
                            [lone.metrics for lone in together])
        except Exception as error:  # pylint: disable=broad-except
            found = [error] * len(together)
        for lone, detections in zip(together, found):
            outcomes[lone.position] = detections if isinstance(detections, Exception) else Prediction(
                [ImageResult(detections, lone.item.image)], detector.info, False, settings, _default_media(lone.raw))
    return outcomes


def _step(stock, function, *args):
    """function(*args); under the stock toolkit (its Context, `stock`) a failure becomes a Refusal, never an
    exception."""
    if stock is None:
        return function(*args)
    try:
        return function(*args)
    except Exception as error:  # pylint: disable=broad-except
        return refuse(stock, error)


def input_fn(request_body, content_type, context=None):
    """A RawRequest: the body kept as sent (predict_fn, which has the model, decodes it), its content type checked
    and the parameters of its X-Amzn-SageMaker-Custom-Attributes header read."""
    stock = _stock(context)
    header = request_header(stock or context, CUSTOM_ATTRIBUTES)
    return _step(stock, read_request, request_body, content_type, header)


def predict_fn(request, detector, context=None):
    if isinstance(request, Refusal):
        return request
    return _step(_stock(context), _predict, request, detector, _metrics(context))


def output_fn(prediction, accept, context=None):
    """(body bytes, content type); the stock toolkits of every version take such a tuple apart."""
    if not isinstance(prediction, Refusal):
        prediction = _step(_stock(context), encode_prediction, prediction, accept)
    return (prediction.body(), JSON) if isinstance(prediction, Refusal) else prediction
