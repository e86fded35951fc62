"""Response encoding: Accept negotiation, the JSON shape, and drawn pictures."""
import io
import json

import numpy as np
import pytest
from PIL import Image

from ssd_serving.decoder import DecodedImage, decode_image
from ssd_serving.environment import Environment
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


def test_a_picture_over_the_response_limit_is_406_not_a_dead_worker():
    # MMS disconnects (and restarts) a worker whose answer is over its max_response_size
    noise = np.random.RandomState(0).randint(0, 256, (300, 400, 3)).astype(np.uint8)
    decoded = DecodedImage(noise, (400, 300), "PNG")
    big = Prediction([ImageResult([DETECTION], decoded)], INFO, False,
                     Environment({"SSD_MAX_RESPONSE_BYTES": "100000"}))
    with pytest.raises(NotAcceptableError) as caught:
        encode_prediction(big, "image/png")
    assert "response limit" in str(caught.value) and "application/json" in str(caught.value)
    body, media = encode_prediction(big, "application/json")
    assert media == "application/json" and json.loads(body)["detections"]


def _label_height(picture, detection):
    """Rows of the label tag drawn above the box: pixels of the class's colour at the box's left edge + 2."""
    pixels = np.asarray(picture.convert("RGB")).astype(int)
    x, top = int(detection["box"][0]) + 2, int(detection["box"][1])
    colour = np.array([60, 180, 75])  # class 1's colour
    column = pixels[:top, x]
    return int((np.abs(column - colour).sum(axis=1) < 30).sum())


def _photo_prediction(width, height, target):
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[height // 2:, :, 1] = 120
    stream = io.BytesIO()
    Image.fromarray(rgb).save(stream, format="JPEG", quality=90)
    decoded = decode_image(stream.getvalue(), target)
    detection = dict(DETECTION, box=[width * 0.2, height * 0.4, width * 0.6, height * 0.8])
    return decoded, Prediction([ImageResult([detection], decoded)], INFO, False), detection


def test_the_picture_comes_back_at_the_original_resolution_with_labels_sized_to_it():
    decoded, big, detection = _photo_prediction(2400, 2000, (256, 256))
    assert decoded.reduced and decoded.rgb.shape[0] < 2000  # decoded reduced for the network
    body, _ = encode_prediction(big, "image/png")
    picture = Image.open(io.BytesIO(body))
    assert picture.size == (2400, 2000)
    _, small, small_detection = _photo_prediction(640, 480, (256, 256))
    small_picture = Image.open(io.BytesIO(encode_prediction(small, "image/png")[0]))
    assert small_picture.size == (640, 480)
    small_label, big_label = _label_height(small_picture, small_detection), _label_height(picture, detection)
    assert 8 <= small_label <= 20 and big_label >= 3 * small_label, (small_label, big_label)
