"""Property-based fuzzing of request decoding (hypothesis): whatever arrives, the answer is a decoded
request or one of the package's 4xx errors, never another exception (which the handler would turn
into a 500).

Seeded, with a fixed budget per tier: every run draws the same examples (Hypothesis's derandomize), so a
failure in CI fails the same way on a laptop; the unit tier (`make test-unit`, SSD_TEST_TIER=unit) runs 100
examples per property for the inner loop, the full suite 800, about 30 s in all on a busy 2-vCPU machine. For a
longer or a different exploration, SSD_FUZZ_EXAMPLES sets the budget and SSD_FUZZ_SEED another seed, e.g.
`SSD_FUZZ_EXAMPLES=5000 SSD_FUZZ_SEED=7 .venv/mx19/bin/python -m pytest tests/test_fuzz.py`. No per-example
deadline: Hypothesis applies one to the `@example` cases too, and how long the heaviest of those (100000-deep
JSON, a PNG declaring 100000 x 100000 pixels) takes is the machine's speed, not a property of the answer; what is
checked is the answer itself. Inputs that once broke decoding stay as `@example` regression cases.
"""
import base64
import io
import json
import os
import string
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, event, example, given, seed, settings
from hypothesis import strategies as st
from PIL import Image

from helpers import png_chunk, png_declaring
from ssd_serving.decoder import DecodedImage, decode_image
from ssd_serving.errors import InferenceError
from ssd_serving.request import DetectionRequest, parse_custom_attributes, parse_params, parse_request
from ssd_serving.response import choose_accept

CLASSES = ["circle", "square", "triangle", "star"]
TARGET_SIZE = (256, 256)
EXAMPLES_PER_TIER = {"unit": 100}   # any other run (make test: every tier) gets FULL_EXAMPLES
FULL_EXAMPLES = 800
EXAMPLES = int(os.environ.get("SSD_FUZZ_EXAMPLES") or
               EXAMPLES_PER_TIER.get(os.environ.get("SSD_TEST_TIER", ""), FULL_EXAMPLES))
SEED = os.environ.get("SSD_FUZZ_SEED")


def fuzz_settings(share=1.0):
    """The examples for one property: its share of the tier's budget, drawn from a fixed seed."""
    chosen = settings(max_examples=max(10, int(EXAMPLES * share)), deadline=None, derandomize=SEED is None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                      database=None, print_blob=True)
    if SEED is None:
        return chosen
    return lambda test: seed(int(SEED))(chosen(test))


# ---- what the server may answer

def assert_decoded_or_refused(call):
    """Run `call`; a result must be well formed, an error must be one of ours with a 4xx status."""
    try:
        result = call()
    except InferenceError as err:
        event("refused with %d" % err.status_code)  # pytest --hypothesis-show-statistics shows the mix
        assert 400 <= err.status_code < 500, (err.status_code, str(err))
        document = json.loads(err.body())
        assert document["error"] and document["status"] == err.status_code
        return None
    event("answered")
    if isinstance(result, DetectionRequest):
        assert result.items
        for item in result.items:
            check_decoded(item.image)
            try:
                item.params.class_ids(CLASSES)
            except InferenceError as err:
                assert err.status_code == 400
    elif isinstance(result, DecodedImage):
        check_decoded(result)
    return result


def check_decoded(decoded):
    rgb = decoded.rgb
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.flags["C_CONTIGUOUS"]
    width, height = decoded.original_size
    assert width >= 1 and height >= 1
    assert rgb.shape[0] >= 1 and rgb.shape[1] >= 1


# ---- strategies

MODES = ["RGB", "L", "P", "RGBA", "LA", "CMYK", "1", "I;16", "I", "F", "YCbCr"]
FORMATS = ["JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "TGA"]


@st.composite
def images(draw):
    """Small images of many modes and formats, sometimes with an EXIF orientation (valid or not)."""
    width, height = draw(st.integers(1, 48)), draw(st.integers(1, 48))
    seed = draw(st.integers(0, 2 ** 31 - 1))
    pixels = np.random.RandomState(seed).randint(0, 256, (height, width, 3)).astype(np.uint8)
    image = Image.fromarray(pixels)
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(FORMATS))
    try:
        image = image.convert(mode) if mode not in ("I;16", "I", "F") else image.convert("L").convert(mode)
        stream = io.BytesIO()
        kwargs = {}
        if fmt in ("JPEG", "PNG", "TIFF", "WEBP") and draw(st.booleans()):
            exif = image.getexif()
            exif[0x0112] = draw(st.one_of(st.integers(0, 9), st.integers(0, 65535)))
            kwargs["exif"] = exif.tobytes()
        image.save(stream, format=fmt, **kwargs)
        return stream.getvalue()
    except (OSError, ValueError, KeyError, TypeError, struct.error):  # a mode this format cannot store
        return encode_png(pixels)


def encode_png(pixels):
    stream = io.BytesIO()
    Image.fromarray(pixels).save(stream, format="PNG")
    return stream.getvalue()


@st.composite
def mutated(draw, base):
    """`base` bytes with a few flips, truncations, insertions or duplicated stretches."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "duplicate", "zero"]))
        if not data:
            break
        position = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[position] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "duplicate":
            data[position:position] = data[position:position + draw(st.integers(1, 64))]
        else:
            data[position:position + draw(st.integers(1, 64))] = b"\x00" * 8
    return bytes(data)


@st.composite
def png_headers(draw):
    """PNGs whose header declares any size, depth and colour type, with little or no data."""
    width, height = draw(st.integers(0, 2 ** 32 - 1)), draw(st.integers(0, 2 ** 32 - 1))
    return png_declaring(width, height, bit_depth=draw(st.sampled_from([1, 2, 4, 8, 16, 3, 0])),
                         color_type=draw(st.sampled_from([0, 2, 3, 4, 6, 1, 7])),
                         rows=draw(st.binary(max_size=256)))


image_bytes = st.one_of(images(), mutated(images()), png_headers(), st.binary(max_size=512))

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-10, 10),
                         st.floats(allow_nan=True, allow_infinity=True), st.floats(0, 1),
                         st.text(max_size=20), st.sampled_from(CLASSES + ["7", "-1", "", "unicorn"]))
JSON_VALUES = st.recursive(JSON_SCALARS, lambda children: st.one_of(
    st.lists(children, max_size=5), st.dictionaries(st.text(max_size=8), children, max_size=4)), max_leaves=12)


# parameter values: mostly plausible (so decoding goes on), sometimes any JSON value
PARAMETER_VALUES = {
    "threshold": st.one_of(st.floats(0, 1), st.floats(-2, 2), st.floats(0, 1).map(repr), JSON_VALUES),
    "top_k": st.one_of(st.integers(-3, 200), st.integers(-3, 200).map(str), st.floats(-3, 200), JSON_VALUES),
    "classes": st.one_of(st.lists(st.sampled_from(CLASSES + [0, 3, 4, -1, "9", True, 2.0]), max_size=4),
                         st.sampled_from(CLASSES + [1, "1"]), JSON_VALUES),
}


@st.composite
def parameters(draw):
    return dict((key, draw(value)) for key, value in PARAMETER_VALUES.items() if draw(st.booleans()))


@st.composite
def base64_texts(draw):
    data = draw(image_bytes)
    text = base64.b64encode(data).decode("ascii")
    variant = draw(st.sampled_from(["plain", "data-uri", "newlines", "cut", "junk"]))
    if variant == "data-uri":
        text = "data:image/%s;base64,%s" % (draw(st.sampled_from(["png", "jpeg", "x y", ""])), text)
    elif variant == "newlines":
        text = "\n".join(text[i:i + 76] for i in range(0, len(text), 76))
    elif variant == "cut":
        text = text[:draw(st.integers(0, len(text)))]
    elif variant == "junk":
        position = draw(st.integers(0, len(text)))
        text = text[:position] + draw(st.text(max_size=4)) + text[position:]
    return text


@st.composite
def json_bodies(draw):
    """JSON documents shaped like requests: the known fields with valid or hostile values, other fields."""
    # a list element is a base64 string or an object with "image" and its own parameters (or anything else)
    element = st.one_of(base64_texts(), JSON_SCALARS, st.fixed_dictionaries(
        {"image": st.one_of(base64_texts(), JSON_VALUES)}, optional=dict(PARAMETER_VALUES, other=JSON_VALUES)))
    field_value = dict(PARAMETER_VALUES, image=st.one_of(base64_texts(), JSON_VALUES),
                       images=st.one_of(st.lists(element, max_size=4), JSON_VALUES))
    shape = draw(st.sampled_from(["object", "list", "string", "other"]))
    if shape == "object":
        document = {}
        for key, strategy in field_value.items():
            if draw(st.booleans()):
                document[key] = draw(strategy)
        if draw(st.integers(0, 5)) == 0:
            document[draw(st.text(max_size=6))] = draw(JSON_VALUES)
    elif shape == "list":
        document = draw(st.lists(element, max_size=5))
    elif shape == "string":
        document = draw(base64_texts())
    else:
        document = draw(JSON_VALUES)
    text = json.dumps(document, allow_nan=True)
    if draw(st.integers(0, 9)) == 0:  # broken syntax
        text = text[:draw(st.integers(0, len(text)))]
    return text.encode("utf-8")


@st.composite
def json_lines_bodies(draw):
    """JSON Lines as Batch Transform splits them: request-shaped JSON, bare base64 and junk, one per line."""
    lines = draw(st.lists(st.one_of(json_bodies(), base64_texts().map(lambda t: t.encode("ascii", "replace")),
                                    st.binary(max_size=40)), max_size=5))
    return draw(st.sampled_from([b"\n", b"\r\n"])).join(lines)


KNOWN_CONTENT_TYPES = st.sampled_from([
    "image/jpeg", "image/png", "image/*", "application/x-image", "application/octet-stream", "text/plain",
    "application/base64", "application/json", "application/json; charset=utf-8", "Image/JPEG; charset=binary",
    "application/jsonlines", "application/x-jsonlines"])
# mostly types the server decodes (so the body gets exercised), sometimes anything at all
CONTENT_TYPES = st.one_of(KNOWN_CONTENT_TYPES, KNOWN_CONTENT_TYPES, KNOWN_CONTENT_TYPES, KNOWN_CONTENT_TYPES,
                          st.sampled_from([None, "video/mp4", "multipart/form-data", "image"]), st.text(max_size=30))

CUSTOM_ATTRIBUTES = st.one_of(
    st.none(), st.text(max_size=60),
    st.lists(st.tuples(st.sampled_from(["threshold", "top_k", "classes", "trace", ""]),
                       st.one_of(st.text(alphabet=string.printable, max_size=12),
                                 st.floats(allow_nan=True).map(repr), st.integers().map(str))),
             max_size=4).map(lambda pairs: ";".join("%s=%s" % pair for pair in pairs)),
    JSON_VALUES.map(json.dumps))


def _nested(depth):
    return "[" * depth + "]" * depth


# ---- the properties

@fuzz_settings(share=1.0)
@given(body=st.one_of(image_bytes, json_bodies(), base64_texts().map(lambda t: t.encode("ascii", "replace")),
                     json_lines_bodies()),
       content_type=CONTENT_TYPES, attributes=CUSTOM_ATTRIBUTES)
# regression cases: inputs that raised something other than a 4xx InferenceError before they were fixed
@example(body=_nested(100000).encode(), content_type="application/json", attributes=None)   # RecursionError
@example(body=b'{"image": "", "top_k": 1e400}', content_type="application/json", attributes=None)  # OverflowError
@example(body=b'{"image": "", "threshold": ' + b"9" * 400 + b"}", content_type="application/json", attributes=None)
@example(body=b"", content_type="image/png", attributes='{"top_k": -Infinity}')                 # OverflowError
@example(body=b"", content_type="image/png", attributes='{"a":' * 100000)                       # RecursionError
@example(body=json.dumps(["AAAA"] * 5000).encode(), content_type="application/json", attributes=None)
def test_any_request_is_decoded_or_refused_with_a_4xx(body, content_type, attributes):
    assert_decoded_or_refused(lambda: parse_request(body, content_type, attributes, TARGET_SIZE))


@fuzz_settings(share=1.0)
@given(data=image_bytes,
       target=st.one_of(st.none(), st.just(TARGET_SIZE), st.tuples(st.integers(1, 64), st.integers(1, 64))))
@example(data=png_declaring(100000, 100000), target=None)
@example(data=png_declaring(0, 7), target=None)
def test_any_image_bytes_decode_or_are_refused(data, target):
    assert_decoded_or_refused(lambda: decode_image(data, target, max_pixels=1000 * 1000))


@fuzz_settings(share=0.5)
@given(raw=parameters())
@example(raw={"top_k": float("inf")})
@example(raw={"threshold": 10 ** 400})
@example(raw={"top_k": float("nan")})
@example(raw={"classes": ["\u00b2"]})  # "²".isdigit() is True, but int() refuses it
def test_any_parameters_are_valid_or_a_400(raw):
    assert_decoded_or_refused(lambda: parse_params(raw).class_ids(CLASSES))


@fuzz_settings(share=0.5)
@given(header=st.one_of(CUSTOM_ATTRIBUTES, st.text()))
def test_any_custom_attributes_header_parses_or_is_a_400(header):
    parsed = assert_decoded_or_refused(lambda: parse_custom_attributes(header))
    if parsed is not None:
        assert isinstance(parsed, dict) and set(parsed) <= {"threshold", "top_k", "classes"}


@fuzz_settings(share=0.5)
@given(accept=st.one_of(st.none(), st.text(max_size=40),
                        st.lists(st.sampled_from(["image/png", "image/jpeg", "*/*", "application/json", "text/csv",
                                                  "image/*;q=0", ";q=x", "application/*;q=0.5", ""]),
                                 max_size=4).map(", ".join)))
def test_any_accept_header_is_negotiated_or_a_406(accept):
    assert_decoded_or_refused(lambda: choose_accept(accept))


def test_fuzz_helpers_make_what_they_say():
    """The PNG helpers used above and in the corpus produce what Pillow reads as declared."""
    rows = b"".join(b"\x00" + bytes(range(6)) for _ in range(2))
    image = Image.open(io.BytesIO(png_declaring(2, 2, rows=rows)))
    assert image.size == (2, 2)
    image.load()
    assert png_chunk(b"IEND", b"") == struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__, "-q"])
