"""Request decoding: content types, base64 and JSON bodies, and per-request detection parameters."""
from __future__ import absolute_import

import binascii
import json
import re

from . import environment
from .decoder import decode_image
from .errors import BadRequestError, PayloadTooLargeError, UnsupportedMediaTypeError

JSON = "application/json"
RAW_IMAGE_TYPES = ("application/x-image", "application/octet-stream")
BASE64_TYPES = ("text/plain", "application/base64", "application/x-base64")
SUPPORTED_TYPES = "image/* (jpeg, png, ...), application/x-image, application/json, text/plain (base64)"

_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_BASE64_HEAD = re.compile(b"^[A-Za-z0-9+/=\\r\\n]+$")  # binary images always hold other bytes
_DATA_URI = re.compile(r"^data:[\w/+.-]*;base64,", re.IGNORECASE)
_PARAM_KEYS = ("threshold", "top_k", "classes")
_JSON_KEYS = ("image", "images") + _PARAM_KEYS


class DetectionParams(object):
    """Per-request knobs: minimum score, most detections per image, and which classes to keep."""

    def __init__(self, threshold=None, top_k=None, classes=None):
        self.threshold = environment.default_score_threshold() if threshold is None else threshold
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


class DetectionRequest(object):
    """Decoded images plus the parameters to detect with."""

    def __init__(self, images, params, batch):
        self.images = images
        self.params = params
        self.batch = batch  # True when the client sent a list: answer with a list


def media_type(content_type):
    """'Image/JPEG; charset=x' -> 'image/jpeg'."""
    return (content_type or "").split(";")[0].strip().lower()


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


def parse_params(raw):
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
    return DetectionParams(threshold, top_k, classes)


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


def _images_from_json(payload):
    """(list of image bytes, parameter dict, batch?) from a parsed JSON body."""
    if isinstance(payload, str):
        return [_b64decode(payload, "the JSON string")], {}, False
    if isinstance(payload, list):
        _check_count(len(payload))  # before decoding anything: a list of thousands is refused at once
        return [_b64decode(item, "images[%d]" % i) for i, item in enumerate(payload)], {}, True
    if not isinstance(payload, dict):
        raise BadRequestError("the JSON body must be an object like {\"image\": \"<base64>\"}")
    unknown = sorted(set(payload) - set(_JSON_KEYS))
    if unknown:
        raise BadRequestError("unknown JSON field(s) %s; expected image or images, and optionally %s" %
                              (", ".join(unknown), ", ".join(_PARAM_KEYS)))
    if ("image" in payload) == ("images" in payload):
        raise BadRequestError("the JSON body needs exactly one of \"image\" (base64) or \"images\" (a list)")
    params = dict((k, payload[k]) for k in _PARAM_KEYS if k in payload)
    if "image" in payload:
        return [_b64decode(payload["image"], "image")], params, False
    images = payload["images"]
    if not isinstance(images, list) or not images:
        raise BadRequestError("images must be a non-empty list of base64 strings")
    _check_count(len(images))
    return [_b64decode(item, "images[%d]" % i) for i, item in enumerate(images)], params, True


def _check_count(count):
    limit = environment.max_images_per_request()
    if count > limit:
        raise PayloadTooLargeError("the request holds %d images; the limit is %d per request" % (count, limit))
    if count == 0:
        raise BadRequestError("the request holds no image")


def _raw_or_base64(body):
    """A raw-image body; bodies that are base64 text are accepted too (the original write-up's format)."""
    head = body[:1024]
    if _DATA_URI.match(head.decode("latin-1")) or _BASE64_HEAD.match(head):
        try:
            return _b64decode(body, "the body")
        except BadRequestError:
            raise BadRequestError("the body is neither a decodable image nor base64 text of one")
    return body


def parse_request(body, content_type, custom_attributes=None, target_size=None):
    """Turn an /invocations body into a DetectionRequest, or raise a 4xx InferenceError."""
    kind = media_type(content_type)
    if isinstance(body, str):
        body = body.encode("utf-8")
    body = bytes(body or b"")
    header_params = parse_custom_attributes(custom_attributes)
    if kind == JSON:
        if not body:
            raise BadRequestError("the request body is empty; send {\"image\": \"<base64>\"}")
        payload = _loads(body, "the body")
        blobs, body_params, batch = _images_from_json(payload)
        header_params.update(body_params)
    elif kind.startswith("image/") or kind in RAW_IMAGE_TYPES:
        blobs, batch = [_raw_or_base64(body)], False
    elif kind in BASE64_TYPES:
        blobs, batch = [_b64decode(body, "the body")], False
    elif not kind:
        raise UnsupportedMediaTypeError("the request has no Content-Type; send one of: %s" % SUPPORTED_TYPES)
    else:
        raise UnsupportedMediaTypeError("Content-Type %s is not supported; send one of: %s" %
                                        (_shorten(kind), SUPPORTED_TYPES))
    _check_count(len(blobs))
    params = parse_params(header_params)
    images = []
    for index, blob in enumerate(blobs):
        try:
            images.append(decode_image(blob, target_size))
        except BadRequestError as err:
            if batch:
                raise BadRequestError("images[%d]: %s" % (index, err))
            raise
    return DetectionRequest(images, params, batch)
