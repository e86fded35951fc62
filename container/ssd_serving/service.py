"""The four SageMaker inference steps (model_fn, input_fn, predict_fn, output_fn) over this package."""
from __future__ import absolute_import

import io

import numpy as np
from PIL import Image

from . import environment
from .model import load_detector
from .request import parse_request
from .response import ImageResult, Prediction, encode_prediction

# Requests carry the network input size so large JPEGs decode at reduced scale; input_fn has no
# model argument in the SageMaker contract, so model_fn records it here (one model per worker).
_loaded = {"target_size": None}


def model_fn(model_dir=None):
    detector = load_detector(model_dir)
    _loaded["target_size"] = (detector.input_width, detector.input_height)
    warm_up_request(detector)
    environment.mark_model_loaded()
    return detector


def warm_up_request(detector, size=(640, 480)):
    """One whole request at load (JPEG decode, resize from a photo's size, detection, JSON): the graph's
    warm-up does not reach Pillow's JPEG plugin, the resize kernels or the encoder, and without this the
    first client paid for them (demo model: 63 ms instead of 42)."""
    width, height = size
    ramp = np.linspace(0, 255, width * height * 3, dtype=np.float64).reshape(height, width, 3)
    stream = io.BytesIO()
    Image.fromarray(ramp.astype(np.uint8)).save(stream, format="JPEG", quality=90)
    output_fn(predict_fn(input_fn(stream.getvalue(), "image/jpeg"), detector), "application/json")


def input_fn(request_body, content_type, custom_attributes=None):
    return parse_request(request_body, content_type, custom_attributes, _loaded["target_size"])


def predict_fn(request, detector):
    params = request.params
    class_ids = params.class_ids(detector.classes)
    results = []
    for decoded in request.images:
        detections = detector.detect(decoded.rgb, threshold=params.threshold, top_k=params.top_k,
                                     class_ids=class_ids, original_size=decoded.original_size)
        results.append(ImageResult(detections, decoded))
    return Prediction(results, detector.info, request.batch)


def output_fn(prediction, accept):
    return encode_prediction(prediction, accept)
