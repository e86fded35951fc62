"""Response encoding: detections as JSON, or the annotated picture, chosen by Accept through a table of encoders."""
from __future__ import absolute_import

import io
import json

from .drawing import draw_detections
from .environment import Environment
from .errors import NotAcceptableError
from .media import JPEG, JSON, PNG, choose_accept


class ImageResult(object):
    """Detections for one image, with the decoded image they were found in (drawing needs it)."""

    def __init__(self, detections, decoded):
        self.detections = detections
        self.decoded = decoded


class Prediction(object):
    """What predict_fn hands output_fn: per-image results, the model's identity, and the settings it serves with."""

    def __init__(self, results, model_info, batch, settings=None):
        self.results = results
        self.model_info = model_info
        self.batch = batch
        self.settings = settings or Environment.defaults()


def _round_box(box):
    return [round(v, 2) for v in box]


def image_json(result, model_info):
    width, height = result.decoded.original_size
    return {
        "model": model_info,
        "image_size": [width, height],
        "detections": [dict(d, score=round(d["score"], 4), box=_round_box(d["box"])) for d in result.detections],
    }


def _encode_json(prediction):
    documents = [image_json(result, prediction.model_info) for result in prediction.results]
    return json.dumps(documents if prediction.batch else documents[0]).encode("utf-8")


def _picture_encoder(media, save_options):
    def encode(prediction):
        if len(prediction.results) != 1:
            raise NotAcceptableError("%s answers one image; this request sent %d, ask for application/json" %
                                     (media, len(prediction.results)))
        settings = prediction.settings
        stream = io.BytesIO()
        draw_detections(prediction.results[0], settings.max_image_pixels).save(stream, **save_options)
        limit = settings.max_response_bytes
        if stream.tell() > limit:
            # Multi Model Server drops a worker whose answer is over its limit: refuse instead
            raise NotAcceptableError("the drawn picture would be %d bytes as %s, over the %d-byte response limit; "
                                     "ask for application/json%s" % (stream.tell(), media, limit,
                                                                     " or image/jpeg" if media == PNG else ""))
        return stream.getvalue()
    return encode


# Accept media type -> encoder of a Prediction to body bytes.
ENCODERS = {
    JSON: _encode_json,
    JPEG: _picture_encoder(JPEG, {"format": "JPEG", "quality": 90}),
    PNG: _picture_encoder(PNG, {"format": "PNG"}),
}


def encode_prediction(prediction, accept):
    """(body bytes, content type) for a Prediction and the client's Accept header."""
    media = choose_accept(accept, prediction.settings.default_accept, tuple(ENCODERS))
    return ENCODERS[media](prediction), media
