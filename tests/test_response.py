"""Response encoding: Accept negotiation, the JSON shape, and drawn pictures."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from ssd_serving.decoder import DecodedImage
from ssd_serving.errors import NotAcceptableError
from ssd_serving.response import ImageResult, Prediction, choose_accept, encode_prediction

DETECTION = {"class_id": 1, "label": "square", "score": 0.912345, "box": [10.123, 20.0, 50.5, 60.0]}
INFO = {"name": "ssd_demo_shapes", "demo": True}


def prediction(count=1):
    decoded = DecodedImage(np.zeros((100, 80, 3), np.uint8), (80, 100), "PNG")
    return Prediction([ImageResult([DETECTION], decoded) for _ in range(count)], INFO, count > 1)


@pytest.mark.parametrize("accept,expected", [
    (None, "application/json"), ("*/*", "application/json"), ("application/json", "application/json"),
    ("image/png", "image/png"), ("image/*", "image/jpeg"), ("text/html, image/png;q=0.5", "image/png"),
    ("image/jpeg;q=0.2, application/json", "application/json"),
])
def test_accept_negotiation(accept, expected):
    assert choose_accept(accept) == expected


def test_unproduced_accept_is_406():
    with pytest.raises(NotAcceptableError) as caught:
        choose_accept("text/csv")
    assert caught.value.status_code == 406


def test_json_document():
    body, media = encode_prediction(prediction(), None)
    document = json.loads(body)
    assert media == "application/json"
    assert document["model"] == INFO and document["image_size"] == [80, 100]
    assert document["detections"] == [{"class_id": 1, "label": "square", "score": 0.9123,
                                       "box": [10.12, 20.0, 50.5, 60.0]}]


def test_batch_is_a_list():
    body, _ = encode_prediction(prediction(2), "application/json")
    assert len(json.loads(body)) == 2


@pytest.mark.parametrize("accept,fmt", [("image/png", "PNG"), ("image/jpeg", "JPEG")])
def test_drawn_picture(accept, fmt):
    body, media = encode_prediction(prediction(), accept)
    picture = Image.open(io.BytesIO(body))
    assert media == accept and picture.format == fmt and picture.size == (80, 100)
    pixels = np.asarray(picture.convert("RGB"))
    assert pixels[20:61, 10].max() > 100  # the box's left edge is drawn on the black image


def test_picture_of_a_batch_is_406():
    with pytest.raises(NotAcceptableError):
        encode_prediction(prediction(2), "image/png")


def test_a_picture_over_the_response_limit_is_406_not_a_dead_worker(monkeypatch):
    # MMS disconnects (and restarts) a worker whose answer is over its max_response_size
    noise = np.random.RandomState(0).randint(0, 256, (300, 400, 3)).astype(np.uint8)
    decoded = DecodedImage(noise, (400, 300), "PNG")
    big = Prediction([ImageResult([DETECTION], decoded)], INFO, False)
    monkeypatch.setenv("SSD_MAX_RESPONSE_BYTES", "100000")
    with pytest.raises(NotAcceptableError) as caught:
        encode_prediction(big, "image/png")
    assert "response limit" in str(caught.value) and "application/json" in str(caught.value)
    body, media = encode_prediction(big, "application/json")
    assert media == "application/json" and json.loads(body)["detections"]
