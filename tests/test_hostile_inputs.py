"""A corpus of hostile and odd requests, each sent over HTTP to the real server (one for the session).

Every case states the answer the README documents (a 4xx JSON error, or a correct result) and is
followed by a valid request that must succeed: bad input never takes the worker down. The README's
"Limits and errors" section lists these answers.
"""
import base64
import io
import json
import os
import socket
import struct
import time
import zlib

import numpy as np
import pytest
import requests
from PIL import Image, ImageOps

from helpers import (RECALL_SCORE, assert_scene_detected, demo_meta, encode, png_chunk, png_declaring,
                      synthetic_scene)

MAX_REQUEST_BYTES = 6553500
MAX_IMAGES = 16
SCENE_SIZE = (480, 360)
THRESHOLD = {"X-Amzn-SageMaker-Custom-Attributes": "threshold=%s" % RECALL_SCORE}


def _scene():
    return synthetic_scene(2718, *SCENE_SIZE)


def _save(image, fmt, **kwargs):
    stream = io.BytesIO()
    image.save(stream, format=fmt, **kwargs)
    return stream.getvalue()


def _b64(data):
    return base64.b64encode(data).decode("ascii")


def _small_jpeg():
    return encode(synthetic_scene(5, 64, 48)[0])


def _with_orientation(rgb, orientation):
    """A JPEG stored so that applying its EXIF `orientation` displays `rgb`."""
    stored = Image.fromarray(rgb).transpose({3: Image.ROTATE_180, 6: Image.ROTATE_90, 8: Image.ROTATE_270}[orientation])
    exif = stored.getexif()
    exif[0x0112] = orientation
    return _save(stored, "JPEG", quality=95, exif=exif.tobytes())


def _sixteen_bit_rgb_png(rgb):
    """16 bits per channel (Pillow cannot write these): raw big-endian scanlines, filter 0."""
    wide = rgb.astype(">u2") * 257
    rows = b"".join(b"\x00" + row.tobytes() for row in wide)
    return png_declaring(rgb.shape[1], rgb.shape[0], bit_depth=16, color_type=2, rows=rows)


def _real_png_bomb(side=10000):
    """A valid 1-bit PNG of side x side pixels (100 MP) that compresses to a few kilobytes."""
    row = b"\x00" * (1 + (side + 7) // 8)
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", data) + png_chunk(b"IEND", b"")


def _animated_gif(first):
    frames = [Image.fromarray(first).quantize(256), Image.fromarray(
        np.random.RandomState(3).randint(0, 256, first.shape).astype(np.uint8)).quantize(256)]
    return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def _mpo(rgb):
    return _save(Image.fromarray(rgb), "MPO", quality=95, save_all=True, append_images=[Image.new("RGB", (8, 8))])


def _photo_with_orientation(photo_jpeg, orientation):
    image = Image.open(io.BytesIO(photo_jpeg))
    exif = image.getexif()
    exif[0x0112] = orientation
    return _save(image, "JPEG", quality=90, exif=exif.tobytes()), image.size


# ---- the corpus: (id, build() -> (body, content type, headers), expected status, check of a 200 answer)
# build functions get the `materials` dict below; checks get (document, materials, body sent).

def _detects_the_scene(document, materials, body=None):
    rgb, boxes, class_ids = materials["scene"]
    assert document["image_size"] == [rgb.shape[1], rgb.shape[0]]
    assert_scene_detected(boxes, class_ids, document["detections"], demo_meta()["classes"])


def _size_is(width, height):
    def check(document, materials, body=None):
        assert document["image_size"] == [width, height]
    return check


def _as_displayed(document, materials, body):
    """The same answer as for the picture a viewer shows (first frame, EXIF applied, RGB), sent losslessly.

    For conversions that lose colour (palette, GIF, CMYK JPEG, grayscale) the objects may score
    differently than in the original scene; what must hold is that the server saw those pixels.
    """
    shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(body))).convert("RGB"))
    reference = materials["server"].post(encode(shown, "PNG"), "image/png", headers=dict(THRESHOLD))
    assert reference.status_code == 200, reference.text
    assert document["image_size"] == reference.json()["image_size"]
    assert document["detections"] == reference.json()["detections"]


def _mode(mode, fmt="PNG", **kwargs):
    return lambda m: (_save(Image.fromarray(m["scene"][0]).convert(mode), fmt, **kwargs), "image/*", THRESHOLD)


def _json(document, headers=None):
    return json.dumps(document).encode("utf-8"), "application/json", headers or {}


def _params(**params):
    """A valid image in JSON with these parameters."""
    return lambda m: _json(dict({"image": _b64(m["jpeg"])}, **params))


def _header(value):
    return lambda m: (m["jpeg"], "image/jpeg", {"X-Amzn-SageMaker-Custom-Attributes": value})


CASES = [
    # empty and undecodable bodies
    ("empty body", lambda m: (b"", "image/jpeg", {}), 400, None),
    ("empty json body", lambda m: (b"", "application/json", {}), 400, None),
    ("random bytes as jpeg", lambda m: (os.urandom(4000), "image/jpeg", {}), 400, None),
    ("random bytes as octet-stream", lambda m: (os.urandom(4000), "application/octet-stream", {}), 400, None),
    ("NUL bytes", lambda m: (b"\x00" * 5000, "image/png", {}), 400, None),
    ("truncated jpeg", lambda m: (m["photo"][:len(m["photo"]) // 3], "image/jpeg", {}), 400, None),
    ("jpeg header only", lambda m: (m["photo"][:600], "image/jpeg", {}), 400, None),
    ("truncated png", lambda m: (encode(m["scene"][0], "PNG")[:2000], "image/png", {}), 400, None),
    ("png with a bad crc", lambda m: (png_declaring(64, 64)[:29] + b"\xde\xad\xbe\xef" +
                                      png_declaring(64, 64)[33:], "image/png", {}), 400, None),
    ("png of zero width", lambda m: (png_declaring(0, 100), "image/png", {}), 400, None),
    # decompression bombs and size limits
    ("png declaring 100000x100000", lambda m: (png_declaring(100000, 100000), "image/png", {}), 413, None),
    ("png declaring 9000x9000", lambda m: (png_declaring(9000, 9000), "image/png", {}), 413, None),
    ("valid 100 MP png bomb", lambda m: (m["bomb"], "image/png", {}), 413, None),
    ("gif declaring 65535x65535", lambda m: (b"GIF89a\xff\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\xff\xff\xff\xff"
                                             b"\x00\x02\x02D\x01\x00;", "image/gif", {}), 413, None),
    ("body over the 6 MB limit", lambda m: (b"\xff" * (MAX_REQUEST_BYTES + 1), "image/jpeg", {}), 413, None),
    ("body over the limit with Expect 100-continue",
     lambda m: (b"\xff" * (MAX_REQUEST_BYTES + 100), "image/jpeg", {"Expect": "100-continue"}), 413, None),
    # content types
    ("missing content type", lambda m: (m["jpeg"], None, {}), 415, None),
    ("video content type", lambda m: (m["jpeg"], "video/mp4", {}), 415, None),
    ("multipart content type", lambda m: (m["jpeg"], "multipart/form-data; boundary=x", {}), 415, None),
    ("html content type", lambda m: (b"<html></html>", "text/html", {}), 415, None),
    ("jpeg sent as json", lambda m: (m["jpeg"], "application/json", {}), 400, None),
    ("jpeg sent as base64 text", lambda m: (m["jpeg"], "text/plain", {}), 400, None),
    ("json sent as png", lambda m: (json.dumps({"image": _b64(m["jpeg"])}).encode(), "image/png", {}), 400, None),
    ("png labelled jpeg is sniffed", lambda m: (encode(m["scene"][0], "PNG"), "image/jpeg", THRESHOLD), 200,
     _detects_the_scene),
    ("content type with parameters and capitals",
     lambda m: (m["jpeg"], "Image/JPEG; charset=binary", THRESHOLD), 200, _detects_the_scene),
    ("TGA is not an accepted format", lambda m: (_save(Image.fromarray(m["scene"][0]), "TGA"), "image/x-tga", {}),
     400, None),
    # base64
    ("bad base64", lambda m: (b"###", "text/plain", {}), 400, None),
    ("base64 with bad padding", lambda m: (b"abcde", "text/plain", {}), 400, None),
    ("base64 of random bytes", lambda m: (base64.b64encode(os.urandom(3000)), "text/plain", {}), 400, None),
    ("base64 of a truncated jpeg", lambda m: (base64.b64encode(m["photo"][:5000]), "application/base64", {}),
     400, None),
    ("data uri of garbage", lambda m: (b"data:image/png;base64,!!!!", "text/plain", {}), 400, None),
    ("non-ascii base64", lambda m: ("ÿÿÿÿ".encode("utf-8"), "text/plain", {}), 400, None),
    ("base64 with newlines and a data uri", lambda m: (b"data:image/jpeg;base64," + base64.encodebytes(m["jpeg"]),
                                                       "text/plain", THRESHOLD), 200, _detects_the_scene),
    # JSON syntax
    ("bad json", lambda m: (b"{nope", "application/json", {}), 400, None),
    ("truncated json", lambda m: (json.dumps({"image": _b64(m["jpeg"])}).encode()[:500], "application/json", {}),
     400, None),
    ("json that is not utf-8", lambda m: (b'{"image": "\xff\xfe"}', "application/json", {}), 400, None),
    ("deeply nested json list", lambda m: (b"[" * 100000 + b"]" * 100000, "application/json", {}), 400, None),
    ("deeply nested json object", lambda m: (b'{"a":' * 100000, "application/json", {}), 400, None),
    ("json null", lambda m: (b"null", "application/json", {}), 400, None),
    ("json number", lambda m: (b"12", "application/json", {}), 400, None),
    ("json string that is no image", lambda m: (b'"aGVsbG8="', "application/json", {}), 400, None),
    # JSON field types
    ("json image is a number", lambda m: _json({"image": 12}), 400, None),
    ("json image is null", lambda m: _json({"image": None}), 400, None),
    ("json image is a list", lambda m: _json({"image": [_b64(m["jpeg"])]}), 400, None),
    ("json images is a string", lambda m: _json({"images": _b64(m["jpeg"])}), 400, None),
    ("json images holds numbers", lambda m: _json({"images": [1, 2]}), 400, None),
    ("json images is empty", lambda m: _json({"images": []}), 400, None),
    ("json with image and images", lambda m: _json({"image": _b64(m["jpeg"]), "images": [_b64(m["jpeg"])]}), 400,
     None),
    ("json unknown field", lambda m: _json({"img": _b64(m["jpeg"])}), 400, None),
    ("json threshold is a word", _params(threshold="high"), 400, None),
    ("json threshold is a boolean", _params(threshold=True), 400, None),
    ("json threshold is a list", _params(threshold=[0.5]), 400, None),
    ("json top_k is a fraction", _params(top_k=2.5), 400, None),
    ("json top_k is an object", _params(top_k={"n": 1}), 400, None),
    ("json classes is an object", _params(classes={"circle": 1}), 400, None),
    ("json classes is empty", _params(classes=[]), 400, None),
    ("json classes holds lists", _params(classes=[["circle"]]), 400, None),
    ("json one bad image in a list", lambda m: _json({"images": [_b64(m["jpeg"]), "!!"]}), 400, None),
    # many images
    ("json list of 5000 images", lambda m: _json([_b64(m["tiny"])] * 5000), 413, None),
    ("json images field of 5000 images", lambda m: _json({"images": [_b64(m["tiny"])] * 5000}), 413, None),
    ("one image over the per-request limit", lambda m: _json({"images": [_b64(m["tiny"])] * (MAX_IMAGES + 1)}),
     413, None),
    ("exactly the per-request limit", lambda m: _json({"images": [_b64(m["tiny"])] * MAX_IMAGES}), 200, None),
    # frames, bit depths and colour modes: all answered, on the right pixels
    ("multi-frame gif", lambda m: (_animated_gif(m["scene"][0]), "image/gif", THRESHOLD), 200, _as_displayed),
    ("16-bit rgb png", lambda m: (_sixteen_bit_rgb_png(m["scene"][0]), "image/png", THRESHOLD), 200,
     _detects_the_scene),
    ("16-bit grayscale png", lambda m: (_save(Image.fromarray(
        m["scene"][0].mean(axis=2).astype(np.uint16) * 257), "PNG"), "image/png", {}), 200, _size_is(*SCENE_SIZE)),
    ("cmyk jpeg", _mode("CMYK", "JPEG", quality=95), 200, _as_displayed),
    ("cmyk tiff", _mode("CMYK", "TIFF"), 200, _detects_the_scene),
    ("palette png", lambda m: (_save(Image.fromarray(m["scene"][0]).quantize(256), "PNG"), "image/png", THRESHOLD),
     200, _as_displayed),
    ("grayscale jpeg", _mode("L", "JPEG"), 200, _as_displayed),
    ("1-bit png", _mode("1"), 200, _as_displayed),
    ("rgba png", _mode("RGBA"), 200, _detects_the_scene),
    ("grayscale with alpha png", _mode("LA"), 200, _as_displayed),
    ("bmp", _mode("RGB", "BMP"), 200, _detects_the_scene),
    ("webp", _mode("RGB", "WEBP", lossless=True), 200, _detects_the_scene),
    ("mpo (a phone's multi-picture jpeg)", lambda m: (_mpo(m["scene"][0]), "image/jpeg", THRESHOLD), 200,
     _detects_the_scene),
    ("1x1 png", lambda m: (encode(np.zeros((1, 1, 3), np.uint8), "PNG"), "image/png", {}), 200, _size_is(1, 1)),
    ("4000x20 strip", lambda m: (encode(np.full((20, 4000, 3), 128, np.uint8)), "image/jpeg", {}), 200,
     _size_is(4000, 20)),
    # EXIF orientation: the answer is in the displayed image's frame
    ("exif orientation 3", lambda m: (_with_orientation(m["scene"][0], 3), "image/jpeg", THRESHOLD), 200,
     _detects_the_scene),
    ("exif orientation 6", lambda m: (_with_orientation(m["scene"][0], 6), "image/jpeg", THRESHOLD), 200,
     _detects_the_scene),
    ("exif orientation 8", lambda m: (_with_orientation(m["scene"][0], 8), "image/jpeg", THRESHOLD), 200,
     _detects_the_scene),
    ("exif-rotated real photo", lambda m: (m["rotated photo"][0], "image/jpeg", {}), 200,
     lambda d, m, b: _size_is(m["rotated photo"][1][1], m["rotated photo"][1][0])(d, m)),
    # parameters out of range
    ("threshold 5 in the header", _header("threshold=5"), 400, None),
    ("threshold 5 in json", _params(threshold=5), 400, None),
    ("negative threshold", _header("threshold=-0.1"), 400, None),
    ("threshold nan", _header("threshold=nan"), 400, None),
    ("threshold infinity in json", lambda m: (('{"image": "%s", "threshold": Infinity}' % _b64(m["jpeg"])).encode(),
                                              "application/json", {}), 400, None),
    ("top_k -1", _header("top_k=-1"), 400, None),
    ("top_k 0 in json", _params(top_k=0), 400, None),
    ("top_k 1e400 in json", lambda m: (('{"image": "%s", "top_k": 1e400}' % _b64(m["jpeg"])).encode(),
                                       "application/json", {}), 400, None),
    ("threshold of 400 digits", lambda m: (('{"image": "%s", "threshold": %s}' % (_b64(m["jpeg"]), "9" * 400)).encode(),
                                           "application/json", {}), 400, None),
    ("unknown class name", _header("classes=unicorn"), 400, None),
    ("unknown class id", _params(classes=[99]), 400, None),
    ("custom attributes that are bad json", _header('{"threshold": '), 400, None),
    ("custom attributes json that is a list", _header('[{"threshold": 5}]'), 200, None),  # neither pairs nor an object
    ("unknown custom attributes are ignored", _header("trace=abc;x=1;threshold=%s" % RECALL_SCORE), 200,
     _detects_the_scene),
    ("top_k 1 and one class", _header("top_k=1;classes=circle,3;threshold=0.01"), 200,
     lambda d, m, b: (len(d["detections"]) == 1 and d["detections"][0]["label"] in ("circle", "star")) or
     pytest.fail("expected one circle or star: %s" % d["detections"])),
    # Accept
    ("accept nothing producible", lambda m: (m["jpeg"], "image/jpeg", {"Accept": "text/csv"}), 406, None),
    ("picture asked for several images", lambda m: (_json({"images": [_b64(m["tiny"])] * 2}, {"Accept": "image/png"})),
     406, None),
]


@pytest.fixture(scope="module")
def materials(server, photo_jpeg):
    rgb, boxes, class_ids = _scene()
    return {
        "server": server,
        "scene": (rgb, boxes, class_ids),
        "jpeg": encode(rgb, quality=95),
        "tiny": _small_jpeg(),
        "photo": photo_jpeg,
        "rotated photo": _photo_with_orientation(photo_jpeg, 6),
        "bomb": _real_png_bomb(),
    }


def _assert_still_serving(server, materials):
    reply = server.post(materials["jpeg"], "image/jpeg", headers=dict(THRESHOLD))
    assert reply.status_code == 200, "the request after a hostile one failed: %s %s" % (reply.status_code, reply.text)
    _detects_the_scene(reply.json(), materials)


@pytest.mark.parametrize("name,build,status,check", CASES, ids=[case[0] for case in CASES])
def test_hostile_input_gets_the_documented_answer_and_the_server_keeps_serving(server, materials, name, build,
                                                                               status, check):
    body, content_type, headers = build(materials)
    reply = server.post(body, content_type, headers=dict(headers))
    assert reply.status_code == status, "%s: %s %s" % (name, reply.status_code, reply.text[:500])
    assert reply.headers["Content-Type"].startswith("application/json"), reply.headers
    document = reply.json()
    if status >= 400:
        # the error, its status, and the request's id (the same id as the answer's header and the worker's log line)
        assert set(document) == {"error", "status", "request_id"} and document["status"] == status, document
        assert document["request_id"] == reply.headers["X-Ssd-Request-Id"], document
        assert isinstance(document["error"], str) and 0 < len(document["error"]) < 1000, document
    elif check is not None:
        check(document, materials, body)
    _assert_still_serving(server, materials)


def _raw_exchange(server, request_bytes, late_tail=0):
    """Send raw bytes to the server and read its whole answer (for requests `requests` cannot make); with
    `late_tail`, the last that many bytes go a moment later, as from a client slower than the server."""
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=30)
    try:
        if late_tail:
            sock.sendall(request_bytes[:-late_tail])
            time.sleep(0.3)
            request_bytes = request_bytes[-late_tail:]
        sock.sendall(request_bytes)
        sock.shutdown(socket.SHUT_WR)  # what was sent is all there is
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        sock.close()


def _chunked(body, size=7000):
    parts = [b"%x\r\n%s\r\n" % (len(body[i:i + size]), body[i:i + size]) for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def test_chunked_upload_is_served(server, materials):
    reply = server.post(iter([materials["jpeg"][:5000], materials["jpeg"][5000:]]), "image/jpeg",
                        headers=dict(THRESHOLD))
    assert reply.status_code == 200, reply.text
    _detects_the_scene(reply.json(), materials)


@pytest.mark.parametrize("late_tail", [0, 20], ids=["all at once", "the end of the body late"])
def test_chunked_upload_over_the_limit_is_413(server, materials, late_tail):
    # The front door reads the rest of the body before it answers and closes: closing with the client's end still
    # on its way resets the connection, and the client never reads the 413 (a CI run lost it so, under load).
    body = _chunked(b"\xff" * (MAX_REQUEST_BYTES + 10), size=1 << 16)
    answer = _raw_exchange(server, b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                                   b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + body,
                           late_tail=late_tail)
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413"), head
    assert json.loads(payload.decode())["status"] == 413
    _assert_still_serving(server, materials)


@pytest.mark.parametrize("raw", [
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: abc\r\n"
    b"Connection: close\r\n\r\n",
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\nzz\r\n",
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\n-5\r\nabc",
    b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n"
    b"Connection: close\r\n\r\n400\r\n\xff\xd8\xff",
], ids=["content-length not a number", "malformed chunk", "negative chunk size", "body ends inside a chunk"])
def test_malformed_framing_is_400(server, materials, raw):
    head, _, payload = _raw_exchange(server, raw).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), head
    assert json.loads(payload.decode())["status"] == 400
    _assert_still_serving(server, materials)


def test_a_client_that_disconnects_mid_body_does_not_hurt(server, materials):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    sock.sendall(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
                 + materials["jpeg"][:1000])
    sock.close()
    _assert_still_serving(server, materials)


@pytest.mark.parametrize("method,path,status", [
    ("GET", "/invocations", 415), ("POST", "/no-such-path", 404), ("PUT", "/ping", 405),
    ("DELETE", "/ping", 405)], ids=["GET /invocations without a body", "unknown path", "PUT /ping", "DELETE /ping"])
def test_wrong_methods_and_paths_get_json_errors(server, materials, method, path, status):
    reply = requests.request(method, server.url + path, timeout=30)
    assert reply.status_code == status, reply.text
    assert reply.json()["status"] == status and reply.json()["error"]
    _assert_still_serving(server, materials)
