"""Request decoding: content types, base64, JSON bodies and detection parameters."""
import base64
import json

import numpy as np
import pytest

from helpers import encode
from ssd_serving.errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from ssd_serving.request import parse_custom_attributes, parse_request

RGB = (np.arange(48 * 64 * 3) % 251).astype(np.uint8).reshape(48, 64, 3)
JPEG = encode(RGB)
B64 = base64.b64encode(JPEG)


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "application/x-image",
                                          "Image/JPEG; charset=binary", "application/octet-stream"])
def test_raw_image_bodies(content_type):
    request = parse_request(JPEG, content_type)
    assert len(request.images) == 1 and request.images[0].original_size == (64, 48)
    assert not request.batch


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-image", "image/jpeg"])
def test_base64_bodies(content_type):
    request = parse_request(B64, content_type)
    assert request.images[0].original_size == (64, 48)


def test_data_uri_in_json():
    body = json.dumps({"image": "data:image/jpeg;base64," + B64.decode()})
    assert parse_request(body, "application/json").images[0].original_size == (64, 48)


def test_json_with_parameters():
    body = json.dumps({"image": B64.decode(), "threshold": 0.3, "top_k": 5, "classes": ["circle", 2]})
    request = parse_request(body, "application/json")
    assert request.params.threshold == 0.3 and request.params.top_k == 5
    assert request.params.class_ids(["circle", "square", "triangle"]) == {0, 2}


def test_json_list_of_images_is_a_batch():
    body = json.dumps({"images": [B64.decode(), B64.decode()]})
    request = parse_request(body, "application/json")
    assert request.batch and len(request.images) == 2
    assert parse_request(json.dumps([B64.decode()]), "application/json").batch


def test_custom_attributes_header():
    assert parse_custom_attributes("threshold=0.7;top_k=3;classes=star,circle;trace=abc") == \
        {"threshold": "0.7", "top_k": "3", "classes": ["star", "circle"]}
    request = parse_request(JPEG, "image/jpeg", '{"threshold": 0.2, "classes": ["star"]}')
    assert request.params.threshold == 0.2 and request.params.classes == ["star"]


@pytest.mark.parametrize("body,content_type,error", [
    (b"", "image/jpeg", BadRequestError),
    (b"\x00\x01garbage", "image/jpeg", BadRequestError),
    (b"@@@not base64@@@", "text/plain", BadRequestError),
    (b"{not json", "application/json", BadRequestError),
    (b'{"image": 5}', "application/json", BadRequestError),
    (b'{"img": "abc"}', "application/json", BadRequestError),
    (b'{"image": "%s", "threshold": 5}' % B64, "application/json", BadRequestError),
    (b'{"image": "%s", "threshold": "high"}' % B64, "application/json", BadRequestError),
    (b'{"image": "%s", "top_k": -1}' % B64, "application/json", BadRequestError),
    (b'{"image": "%s", "top_k": 2.5}' % B64, "application/json", BadRequestError),
    (b'{"images": []}', "application/json", BadRequestError),
    (JPEG, "video/mp4", UnsupportedMediaTypeError),
    (JPEG, None, UnsupportedMediaTypeError),
])
def test_bad_requests(body, content_type, error):
    with pytest.raises(error) as caught:
        parse_request(body, content_type)
    assert 400 <= caught.value.status_code < 500
    assert json.loads(caught.value.body())["error"]


def test_too_many_images():
    body = json.dumps({"images": [B64.decode()] * 5000})
    with pytest.raises(PayloadTooLargeError):
        parse_request(body, "application/json")


def test_unknown_class_names_the_valid_ones():
    request = parse_request(JPEG, "image/jpeg", "classes=unicorn")
    with pytest.raises(BadRequestError) as caught:
        request.params.class_ids(["circle", "square"])
    assert "circle, square" in str(caught.value)


@pytest.mark.parametrize("body,attributes", [
    (b"[" * 100000 + b"]" * 100000, None),                       # RecursionError in json.loads
    (b'{"image": "%s", "top_k": 1e400}' % B64, None),            # int(inf): OverflowError
    (b'{"image": "%s", "top_k": -Infinity}' % B64, None),
    (b'{"image": "%s", "threshold": %s}' % (B64, b"9" * 400), None),  # float(10 ** 400): OverflowError
    (b'{"image": "%s"}' % B64, '{"top_k": 1e400}'),
    (b'{"image": "%s"}' % B64, '{"a": ' * 100000),
])
def test_hostile_json_is_a_bad_request_not_a_crash(body, attributes):
    with pytest.raises(BadRequestError):
        parse_request(body, "application/json", attributes)


def test_a_list_of_thousands_is_refused_before_decoding_any(monkeypatch):
    import ssd_serving.request as request_module

    def no_decoding(*args):
        raise AssertionError("decoded base64 before counting the images")
    monkeypatch.setattr(request_module, "_b64decode", no_decoding)
    with pytest.raises(PayloadTooLargeError):
        parse_request(json.dumps([B64.decode()] * 5000), "application/json")


def test_formats_outside_the_accepted_ones_are_400():
    import io
    from PIL import Image
    stream = io.BytesIO()
    Image.fromarray(RGB).save(stream, format="TGA")
    with pytest.raises(BadRequestError) as caught:
        parse_request(stream.getvalue(), "image/x-tga")
    assert "JPEG, MPO, PNG" in str(caught.value)
