"""Media types and request headers: type names, header lookup, Content-Type parsing and Accept negotiation."""
from __future__ import absolute_import

from .errors import NotAcceptableError

JSON = "application/json"
JSON_LINES = "application/jsonlines"
JSON_LINES_TYPES = (JSON_LINES, "application/x-jsonlines")  # Batch Transform's SplitType=Line / AssembleWith=Line
JPEG = "image/jpeg"
PNG = "image/png"
PRODUCED = (JSON,) + JSON_LINES_TYPES + (JPEG, PNG)
# the request's parameters (threshold, top_k, classes), passed on by SageMaker from InvokeEndpoint's CustomAttributes
CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


def header_value(headers, name):
    """A header from a dict of request headers, its name matched case-insensitively; names and values may be
    bytes (as Multi Model Server hands them to workers). None when absent."""
    wanted = name.lower()
    for key, value in (headers or {}).items():
        if isinstance(key, (bytes, bytearray)):
            key = key.decode("latin-1")
        if isinstance(key, str) and key.lower() == wanted:
            return value.decode("utf-8", "replace") if isinstance(value, (bytes, bytearray)) else value
    return None


def media_type(content_type):
    """'Image/JPEG; charset=x' -> 'image/jpeg'."""
    return (content_type or "").split(";")[0].strip().lower()


def choose_accept(accept, default=JSON, produced=PRODUCED):
    """The media type to answer with, from an Accept header (q-values and wildcards honoured)."""
    if not accept or not accept.strip():
        return default
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
        if media in produced:
            return media
        if media in ("*/*", "application/*"):
            return default if media == "*/*" else JSON
        if media == "image/*":
            return JPEG
    raise NotAcceptableError("Accept %r is not produced here; ask for one of: %s" % (accept, ", ".join(produced)))
