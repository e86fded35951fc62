"""Response encoding: detections as JSON, or the picture with boxes drawn, chosen by Accept."""
from __future__ import absolute_import

import io
import json

from PIL import Image, ImageDraw

from . import environment
from .errors import NotAcceptableError

JSON = "application/json"
JPEG = "image/jpeg"
PNG = "image/png"
PRODUCED = (JSON, JPEG, PNG)

_PALETTE = ((230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
            (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212))


class ImageResult(object):
    """Detections for one image, with what drawing them needs."""

    def __init__(self, detections, decoded):
        self.detections = detections
        self.decoded = decoded


class Prediction(object):
    """What predict_fn hands output_fn: per-image results and the model's identity."""

    def __init__(self, results, model_info, batch):
        self.results = results
        self.model_info = model_info
        self.batch = batch


def choose_accept(accept):
    """The media type to answer with, from an Accept header (q-values and wildcards honoured)."""
    if not accept or not accept.strip():
        return environment.default_accept()
    offers = []
    for position, item in enumerate(accept.split(",")):
        parts = [p.strip() for p in item.split(";")]
        media, quality = parts[0].lower(), 1.0
        for param in parts[1:]:
            if param.startswith("q="):
                try:
                    quality = float(param[2:])
                except ValueError:
                    quality = 0.0
        if media and quality > 0:
            offers.append((-quality, position, media))
    for _, _, media in sorted(offers):
        if media in PRODUCED:
            return media
        if media in ("*/*", "application/*"):
            return environment.default_accept() if media == "*/*" else JSON
        if media == "image/*":
            return JPEG
    raise NotAcceptableError("Accept %r is not produced here; ask for one of: %s" %
                             (accept, ", ".join(PRODUCED)))


def _round_box(box):
    return [round(v, 2) for v in box]


def image_json(result, model_info):
    width, height = result.decoded.original_size
    return {
        "model": model_info,
        "image_size": [width, height],
        "detections": [dict(d, score=round(d["score"], 4), box=_round_box(d["box"])) for d in result.detections],
    }


def draw_detections(result):
    """The decoded picture with each detection's box and label drawn on it."""
    picture = Image.fromarray(result.decoded.rgb)
    width, height = result.decoded.original_size
    scale_x = picture.size[0] / float(width)
    scale_y = picture.size[1] / float(height)
    draw = ImageDraw.Draw(picture)
    line = max(2, int(round(min(picture.size) / 200.0)))
    for detection in result.detections:
        colour = _PALETTE[detection["class_id"] % len(_PALETTE)]
        xmin, ymin, xmax, ymax = detection["box"]
        box = [xmin * scale_x, ymin * scale_y, xmax * scale_x, ymax * scale_y]
        draw.rectangle(box, outline=colour, width=line)
        caption = "%s %.2f" % (detection["label"], detection["score"])
        text_y = max(0, box[1] - 12)
        text_width = 6 * len(caption) + 4
        draw.rectangle([box[0], text_y, box[0] + text_width, text_y + 12], fill=colour)
        draw.text((box[0] + 2, text_y), caption, fill=(0, 0, 0))
    return picture


def encode_prediction(prediction, accept):
    """(body bytes, content type) for a Prediction and the client's Accept header."""
    media = choose_accept(accept)
    if media == JSON:
        documents = [image_json(result, prediction.model_info) for result in prediction.results]
        document = documents if prediction.batch else documents[0]
        return json.dumps(document).encode("utf-8"), JSON
    if len(prediction.results) != 1:
        raise NotAcceptableError("%s answers one image; this request sent %d, ask for application/json" %
                                 (media, len(prediction.results)))
    stream = io.BytesIO()
    picture = draw_detections(prediction.results[0])
    if media == JPEG:
        picture.save(stream, format="JPEG", quality=90)
    else:
        picture.save(stream, format="PNG")
    limit = environment.max_response_bytes()
    if stream.tell() > limit:
        # Multi Model Server drops a worker whose answer is over its limit: refuse instead
        raise NotAcceptableError("the drawn picture would be %d bytes as %s, over the %d-byte response limit; "
                                 "ask for application/json%s" % (stream.tell(), media, limit,
                                                                 " or image/jpeg" if media == PNG else ""))
    return stream.getvalue(), media
