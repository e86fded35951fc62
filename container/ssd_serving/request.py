"""Request decoding: bodies by content type (a table), base64 and JSON, and per-image detection parameters."""
from __future__ import absolute_import

import binascii
import json
import re

from .decoder import decode_image
from .environment import DEFAULT_THRESHOLD, Environment
from .errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError
from .media import JSON, JSON_LINES_TYPES, media_type

RAW_IMAGE_TYPES = ("application/x-image", "application/octet-stream")
BASE64_TYPES = ("text/plain", "application/base64", "application/x-base64")
SUPPORTED_TYPES = ("image/* (jpeg, png, ...), application/x-image, application/json, application/jsonlines, "
                   "text/plain (base64)")

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_BASE64_HEAD = re.compile(b"^[A-Za-z0-9+/=\\r\\n]+$")  # binary images always hold other bytes
_DATA_URI = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)
_PARAM_KEYS = ("threshold", "top_k", "classes")
_JSON_KEYS = ("image", "images") + _PARAM_KEYS
_ITEM_KEYS = ("image",) + _PARAM_KEYS


class DetectionParams(object):
    """Per-image knobs: minimum score, most detections per image, and which classes to keep."""

    def __init__(self, threshold=DEFAULT_THRESHOLD, top_k=None, classes=None):
        self.threshold = threshold
        self.top_k = top_k
        self.classes = classes  # names or ids as sent; resolved against the model's classes later

    def class_ids(self, class_names):
        """The requested classes as model class ids; a 400 naming the valid ones for unknown classes."""
        if self.classes is None:
            return None
        ids = set()
        for item in self.classes:
            if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(class_names):
                ids.add(item)
            elif isinstance(item, str) and item in class_names:
                ids.add(class_names.index(item))
            # isdecimal, not isdigit: "²" is a digit that int() refuses; every decimal it accepts
            elif isinstance(item, str) and item.isdecimal() and int(item) < len(class_names):
                ids.add(int(item))
            else:
                raise BadRequestError("unknown class %s; this model's classes are: %s" %
                                      (_shorten(item), ", ".join(class_names)))
        return ids


class ImageRequest(object):
    """One image of a request: its bytes, where it came from and its parameters, decoded on demand (so a batch
    holds one decoded image at a time), or the 4xx error that makes this one record unusable."""

    def __init__(self, data, where, raw_params, error=None):
        self.data = data
        self.where = where
        self.raw_params = raw_params
        self.error = error
        self.image = None
        self.params = None

    def decode(self, settings, target_size=None):
        """Decode the image and check its parameters (self.image, self.params); raises its 4xx InferenceError."""
        if self.error is not None:
            raise self.error
        self.params = parse_params(self.raw_params, settings.default_threshold)
        self.image = decode_image(self.data, target_size, settings.max_image_pixels)
        return self

    def named(self, error):
        """`error` with this record's place in the request (images[2], line 7) in front of its message."""
        return type(error)("%s: %s" % (self.where, error))


class DetectionRequest(object):
    """The images of one request, in order."""

    def __init__(self, items, batch, media=None):
        self.items = items
        self.batch = batch  # True when the client sent a list or lines: answer with one result per image
        self.media = media  # the body's media type: JSON Lines are answered as JSON Lines by default


class RawRequest(object):
    """What input_fn keeps: the body, its media type and the header's parameters. predict_fn decodes it, since
    it has the model, whose input size says how far a large JPEG may be reduced while decoding."""

    def __init__(self, body, media, header_params):
        self.body = body
        self.media = media
        self.header_params = header_params


def _b64decode(text, where):
    if isinstance(text, bytes):
        text = text.decode("ascii", "replace")
    if not isinstance(text, str):
        raise BadRequestError("%s must be a base64 string, not %s" % (where, type(text).__name__))
    text = _DATA_URI.sub("", text.strip())
    # The checks of b64decode(validate=True), but in C: its regex took 7 of the 9 ms that a 12 MP photo's
    # base64 (1.7 MB) cost. Only alphabet characters, padding only at the end, then a2b_base64.
    try:
        raw = "".join(text.split()).encode("ascii")
    except UnicodeEncodeError:
        raise BadRequestError("%s is not valid base64 (non-ASCII characters)" % where)
    if raw.translate(None, _B64_ALPHABET):
        raise BadRequestError("%s is not valid base64 (characters outside the base64 alphabet)" % where)
    padding = raw.find(b"=")
    if padding != -1 and (len(raw) - padding > 2 or raw[padding:].strip(b"=")):
        raise BadRequestError("%s is not valid base64 (padding inside the data)" % where)
    try:
        return binascii.a2b_base64(raw)
    except (binascii.Error, ValueError) as err:
        raise BadRequestError("%s is not valid base64 (%s)" % (where, err))


def _shorten(value, limit=60):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _loads(text, where):
    """json.loads with every way it fails on hostile input (bad syntax, invalid UTF-8, deep nesting) a 400."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8")
        return json.loads(text)
    except (UnicodeDecodeError, ValueError) as err:
        raise BadRequestError("%s is not valid JSON: %s" % (where, err))
    except RecursionError:
        raise BadRequestError("%s nests JSON too deeply" % where)


def _number(value, name, kind):
    if isinstance(value, bool):
        raise BadRequestError("%s must be a number, not a boolean" % name)
    try:
        number = kind(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf), float(10 ** 400)
        raise BadRequestError("%s must be %s, not %s" % (name, "an integer" if kind is int else "a number",
                                                         _shorten(value)))
    if kind is int and isinstance(value, float) and value != number:
        raise BadRequestError("%s must be an integer, not %r" % (name, value))
    return number


def parse_params(raw, default_threshold=DEFAULT_THRESHOLD):
    """Validate a dict of parameters (from JSON or the custom-attributes header)."""
    threshold = raw.get("threshold")
    if threshold is not None:
        threshold = _number(threshold, "threshold", float)
        if not 0.0 <= threshold <= 1.0:
            raise BadRequestError("threshold must be between 0 and 1, not %r" % threshold)
    top_k = raw.get("top_k")
    if top_k is not None:
        top_k = _number(top_k, "top_k", int)
        if top_k < 1:
            raise BadRequestError("top_k must be at least 1, not %s" % _shorten(top_k))
    classes = raw.get("classes")
    if classes is not None:
        if isinstance(classes, (str, int)) and not isinstance(classes, bool):
            classes = [classes]
        if not isinstance(classes, list) or not classes:
            raise BadRequestError("classes must be a non-empty list of class names or ids")
        for item in classes:
            if isinstance(item, bool) or not isinstance(item, (str, int)):
                raise BadRequestError("classes must hold class names or ids, not %s" % _shorten(item))
    return DetectionParams(default_threshold if threshold is None else threshold, top_k, classes)


def parse_custom_attributes(header):
    """Parameters from X-Amzn-SageMaker-Custom-Attributes: 'threshold=0.6;top_k=5;classes=dog,cat'.

    A JSON object is accepted too. Keys this server does not know are ignored, since other tools
    share the header.
    """
    if not header or not header.strip():
        return {}
    header = header.strip()
    if header.startswith("{"):
        raw = _loads(header, "X-Amzn-SageMaker-Custom-Attributes")
        if not isinstance(raw, dict):
            raise BadRequestError("X-Amzn-SageMaker-Custom-Attributes JSON must be an object")
        return dict((k, v) for k, v in raw.items() if k in _PARAM_KEYS)
    raw = {}
    for pair in re.split(r"[;&]", header):
        if "=" not in pair:
            continue
        key, value = [part.strip() for part in pair.split("=", 1)]
        if key not in _PARAM_KEYS:
            continue
        raw[key] = [v.strip() for v in value.split(",") if v.strip()] if key == "classes" else value
    return raw


def _deferred(where, params, decode):
    """An ImageRequest from decode() (base64, an element's shape), or one carrying the 4xx it raised."""
    try:
        data, own = decode()
    except BadRequestError as err:
        return ImageRequest(None, where, params, err)
    merged = dict(params)
    merged.update(own)
    return ImageRequest(data, where, merged)


def _element(item):
    """(image bytes, own parameters) of one list element or JSON line: base64 text, or an object with `image`."""
    if isinstance(item, dict):
        unknown = sorted(set(item) - set(_ITEM_KEYS))
        if unknown:
            raise BadRequestError("unknown field(s) %s; expected image and optionally %s" %
                                  (", ".join(_shorten(k) for k in unknown), ", ".join(_PARAM_KEYS)))
        if "image" not in item:
            raise BadRequestError("no \"image\" (base64)")
        return _b64decode(item["image"], "image"), dict((k, item[k]) for k in _PARAM_KEYS if k in item)
    return _b64decode(item, "the image"), {}


def _check_count(count, limit):
    if count > limit:
        raise PayloadTooLargeError("the request holds %d images; the limit is %d per request" % (count, limit))
    if count == 0:
        raise BadRequestError("the request holds no image")


def _list(elements, params, limit):
    _check_count(len(elements), limit)  # before decoding anything: a list of thousands is refused at once
    return [_deferred("images[%d]" % i, params, lambda item=item: _element(item)) for i, item in enumerate(elements)]


def _images_from_json(payload, params, limit):
    """(list of ImageRequest, batch?) from a parsed JSON body; `params` are the header's."""
    if isinstance(payload, str):
        return [ImageRequest(_b64decode(payload, "the JSON string"), "the JSON string", params)], False
    if isinstance(payload, list):
        return _list(payload, params, limit), True
    if not isinstance(payload, dict):
        raise BadRequestError("the JSON body must be an object like {\"image\": \"<base64>\"}, or a list")
    unknown = sorted(set(payload) - set(_JSON_KEYS))
    if unknown:
        raise BadRequestError("unknown JSON field(s) %s; expected image or images, and optionally %s" %
                              (", ".join(_shorten(k) for k in unknown), ", ".join(_PARAM_KEYS)))
    if ("image" in payload) == ("images" in payload):
        raise BadRequestError("the JSON body needs exactly one of \"image\" (base64) or \"images\" (a list)")
    params = dict(params)
    params.update((k, payload[k]) for k in _PARAM_KEYS if k in payload)
    if "image" in payload:
        return [ImageRequest(_b64decode(payload["image"], "image"), "image", params)], False
    images = payload["images"]
    if not isinstance(images, list) or not images:
        raise BadRequestError("images must be a non-empty list of base64 strings or {\"image\": ...} objects")
    return _list(images, params, limit), True


def _raw_or_base64(body):
    """A raw-image body; bodies that are base64 text are accepted too (the original write-up's format)."""
    head = body[:1024]
    if _DATA_URI.match(head.decode("latin-1")) or _BASE64_HEAD.match(head):
        try:
            return _b64decode(body, "the body")
        except BadRequestError:
            raise BadRequestError("the body is neither a decodable image nor base64 text of one")
    return body


def _read_json(body, params, settings):
    if not body:
        raise BadRequestError("the request body is empty; send {\"image\": \"<base64>\"}")
    return _images_from_json(_loads(body, "the body"), params, settings.max_images_per_request)


def _line(text):
    """A JSON line, or bare base64 text (what a file of base64 images split by line holds)."""
    text = text.strip()
    if text[:1] in (b"{", b"[", b'"'):
        return _element(_loads(text, "the line"))
    return _b64decode(text, "the line"), {}


def _read_json_lines(body, params, settings):
    """One image per line (Batch Transform's SplitType=Line): base64 text, or an object with `image` and
    parameters; empty lines are skipped. A line that is not usable is that line's error, not the request's."""
    lines = [(number, line) for number, line in enumerate(body.split(b"\n"), 1) if line.strip()]
    _check_count(len(lines), settings.max_images_per_request)
    return [_deferred("line %d" % number, params, lambda line=line: _line(line)) for number, line in lines], True


def _read_image(body, params, settings):
    return [ImageRequest(_raw_or_base64(body), "the body", params)], False


def _read_base64(body, params, settings):
    return [ImageRequest(_b64decode(body, "the body"), "the body", params)], False


# Content type -> reader of (images, batch?); image/* not listed reads as an image.
BODY_READERS = dict([(JSON, _read_json)] + [(kind, _read_json_lines) for kind in JSON_LINES_TYPES] +
                    [(kind, _read_image) for kind in RAW_IMAGE_TYPES] + [(kind, _read_base64) for kind in BASE64_TYPES])


def _reader(kind):
    reader = BODY_READERS.get(kind)
    if reader is None and kind.startswith("image/"):
        return _read_image
    return reader


def read_request(body, content_type, custom_attributes=None):
    """input_fn's part: a RawRequest, or a 415 for a content type that is not read here, or a 400 for a bad
    custom-attributes header. Nothing is decoded yet."""
    kind = media_type(content_type)
    if _reader(kind) is None:
        if not kind:
            raise UnsupportedMediaTypeError("the request has no Content-Type; send one of: %s" % SUPPORTED_TYPES)
        raise UnsupportedMediaTypeError("Content-Type %s is not supported; send one of: %s" %
                                        (_shorten(kind), SUPPORTED_TYPES))
    if isinstance(body, str):
        body = body.encode("utf-8")
    return RawRequest(bytes(body or b""), kind, parse_custom_attributes(custom_attributes))


def split_request(raw, settings):
    """predict_fn's first part: the request's images, not decoded yet (ImageRequest.decode does that, one at a
    time), each with its parameters: the header's, overridden by the body's, overridden by a list element's or
    line's own. Raises a 4xx InferenceError for a body that holds no usable list of images."""
    items, batch = _reader(raw.media)(raw.body, raw.header_params, settings)
    return DetectionRequest(items, batch, raw.media)


def decode_request(raw, settings, target_size=None):
    """Every image of the request decoded (tools and tests); a bad one fails the request with its 4xx, named."""
    request = split_request(raw, settings)
    for item in request.items:
        try:
            item.decode(settings, target_size)
        except BadRequestError as err:
            raise item.named(err) if request.batch else err
    return request


def parse_request(body, content_type, custom_attributes=None, target_size=None, settings=None):
    """Both steps at once (tools and tests); `settings` defaults to every setting's default."""
    raw = read_request(body, content_type, custom_attributes)
    return decode_request(raw, settings or Environment.defaults(), target_size)
