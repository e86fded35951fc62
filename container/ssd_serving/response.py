"""Response encoding: detections as JSON, or the annotated picture, chosen by Accept through a table of encoders."""
from __future__ import absolute_import

import io
import json

from .drawing import draw_detections
from .environment import Environment
from .errors import NotAcceptableError
from .media import JPEG, JSON, JSON_LINES_TYPES, PNG, choose_accept


class ImageResult(object):
    """Detections for one image, with the decoded image they were found in (drawing needs it)."""

    def __init__(self, detections, decoded):
        self.detections = detections
        self.decoded = decoded


class RecordError(object):
    """A record of a batch request that could not be used (batch mode): its error document takes its place."""

    def __init__(self, error):
        self.error = error

    def document(self):
        return {"error": self.error.error, "status": self.error.status_code}


class Prediction(object):
    """What predict_fn hands output_fn: per-image results, the model's identity, and the settings it serves with.

    `default_media` answers a request without Accept: JSON Lines for a JSON Lines body, else the settings' default.
    """

    def __init__(self, results, model_info, batch, settings=None, default_media=None):
        self.results = results
        self.model_info = model_info
        self.batch = batch
        self.settings = settings or Environment.defaults()
        self.default_media = default_media or self.settings.default_accept


def _round_box(box):
    return [round(v, 2) for v in box]


def image_json(result, model_info):
    if isinstance(result, RecordError):
        return result.document()
    width, height = result.decoded.original_size
    return {
        "model": model_info,
        "image_size": [width, height],
        "detections": [dict(d, score=round(d["score"], 4), box=_round_box(d["box"])) for d in result.detections],
    }


def _encode_json(prediction):
    documents = [image_json(result, prediction.model_info) for result in prediction.results]
    return json.dumps(documents if prediction.batch else documents[0]).encode("utf-8")


def _encode_json_lines(prediction):
    """One JSON document per line, in the order of the images. No newline after the last one: Batch Transform's
    AssembleWith=Line adds one after each answer, and a second would leave an empty line between mini-batches."""
    return b"\n".join(json.dumps(image_json(result, prediction.model_info)).encode("utf-8")
                      for result in prediction.results)


def _picture_encoder(media, save_options):
    def encode(prediction):
        if len(prediction.results) != 1:
            raise NotAcceptableError("%s answers one image; this request sent %d, ask for application/json" %
                                     (media, len(prediction.results)))
        if isinstance(prediction.results[0], RecordError):
            return None  # the record's error document, as JSON (encode_prediction)
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
ENCODERS = dict([(JSON, _encode_json)] + [(kind, _encode_json_lines) for kind in JSON_LINES_TYPES] + [
    (JPEG, _picture_encoder(JPEG, {"format": "JPEG", "quality": 90})),
    (PNG, _picture_encoder(PNG, {"format": "PNG"})),
])


def encode_prediction(prediction, accept):
    """(body bytes, content type) for a Prediction and the client's Accept header."""
    media = choose_accept(accept, prediction.default_media, tuple(ENCODERS))
    body = ENCODERS[media](prediction)
    if body is None:  # a picture was asked of a record that could not be used: its error, as JSON
        return _encode_json(prediction), JSON
    return body, media
