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
    assert len(request.items) == 1 and request.items[0].image.original_size == (64, 48)
    assert not request.batch


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-image", "image/jpeg"])
def test_base64_bodies(content_type):
    request = parse_request(B64, content_type)
    assert request.items[0].image.original_size == (64, 48)


def test_data_uri_in_json():
    body = json.dumps({"image": "data:image/jpeg;base64," + B64.decode()})
    assert parse_request(body, "application/json").items[0].image.original_size == (64, 48)


def test_json_with_parameters():
    body = json.dumps({"image": B64.decode(), "threshold": 0.3, "top_k": 5, "classes": ["circle", 2]})
    request = parse_request(body, "application/json")
    assert request.items[0].params.threshold == 0.3 and request.items[0].params.top_k == 5
    assert request.items[0].params.class_ids(["circle", "square", "triangle"]) == {0, 2}


def test_json_list_of_images_is_a_batch():
    body = json.dumps({"images": [B64.decode(), B64.decode()]})
    request = parse_request(body, "application/json")
    assert request.batch and len(request.items) == 2
    assert parse_request(json.dumps([B64.decode()]), "application/json").batch


def test_custom_attributes_header():
    assert parse_custom_attributes("threshold=0.7;top_k=3;classes=star,circle;trace=abc") == \
        {"threshold": "0.7", "top_k": "3", "classes": ["star", "circle"]}
    request = parse_request(JPEG, "image/jpeg", '{"threshold": 0.2, "classes": ["star"]}')
    assert request.items[0].params.threshold == 0.2 and request.items[0].params.classes == ["star"]


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
        request.items[0].params.class_ids(["circle", "square"])
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


def test_a_json_list_of_objects_gets_each_its_own_parameters_in_order():
    small = base64.b64encode(encode(RGB[:24, :32])).decode()
    body = json.dumps([{"image": B64.decode(), "threshold": 0.3, "classes": ["star"]},
                       small,
                       {"image": small, "top_k": 2}])
    request = parse_request(body, "application/json", "threshold=0.7")
    assert request.batch and [item.image.original_size for item in request.items] == [(64, 48), (32, 24), (32, 24)]
    first, second, third = [item.params for item in request.items]
    assert (first.threshold, first.classes, first.top_k) == (0.3, ["star"], None)
    assert (second.threshold, second.top_k) == (0.7, None)      # the header's, as nothing overrides it
    assert (third.threshold, third.top_k) == (0.7, 2)


def test_body_parameters_apply_to_every_image_and_an_element_overrides_them():
    body = json.dumps({"images": [B64.decode(), {"image": B64.decode(), "threshold": 0.9}], "threshold": 0.2})
    first, second = [item.params.threshold for item in parse_request(body, "application/json").items]
    assert (first, second) == (0.2, 0.9)


@pytest.mark.parametrize("element, message", [
    ({"img": "x"}, r"images\[1\]: unknown field\(s\) 'img'"),
    ({"top_k": 1}, r"images\[1\]: no \"image\""),
    ({"image": "@@@"}, r"images\[1\]: image is not valid base64"),
    ({"image": B64.decode(), "threshold": 7}, r"images\[1\]: threshold must be between 0 and 1"),
])
def test_a_bad_element_of_a_list_is_named(element, message):
    with pytest.raises(BadRequestError, match=message):
        parse_request(json.dumps([B64.decode(), element]), "application/json")


def test_the_content_type_is_refused_before_anything_is_decoded():
    from ssd_serving.request import read_request
    with pytest.raises(UnsupportedMediaTypeError):
        read_request(b"not looked at", "video/mp4")
    raw = read_request(b"not decoded yet", "image/jpeg", "top_k=3")
    assert raw.body == b"not decoded yet" and raw.header_params == {"top_k": "3"}


def test_limits_and_defaults_come_from_the_settings_given():
    from ssd_serving.environment import Environment
    settings = Environment({"SSD_MAX_IMAGES_PER_REQUEST": "2", "SSD_DEFAULT_SCORE_THRESHOLD": "0.25"})
    request = parse_request(JPEG, "image/jpeg", settings=settings)
    assert request.items[0].params.threshold == 0.25
    with pytest.raises(PayloadTooLargeError, match="limit is 2 per request"):
        parse_request(json.dumps([B64.decode()] * 3), "application/json", settings=settings)
