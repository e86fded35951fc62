"""Errors as types that carry the HTTP status and JSON body a client gets for them: one family, based on HTTPError."""
from __future__ import absolute_import

import json
from http import HTTPStatus

try:
    # The stock SageMaker toolkits turn this type into its status code instead of a 500.
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # serving without the toolkit installed (unit tests, export-only use)
    _ToolkitError = Exception

# The phrase this server has always sent for 413 (RFC 7231's): http.HTTPStatus says "Request Entity Too Large" before
# Python 3.13 and "Content Too Large" from it, and the phrase is also the body of an empty-bodied 413 from MMS.
_PINNED_PHRASES = {413: "Payload Too Large"}


def reason_phrase(status):
    """The reason phrase of HTTP status `status` (http.HTTPStatus's), or "error N" for a status it does not know."""
    if status in _PINNED_PHRASES:
        return _PINNED_PHRASES[status]
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error %d" % status


def error_json(status, message, request_id=None):
    """The body of every error answer, from the worker or the front door: {"error": ..., "status": N}, and the
    request's id where it is known (the same id is in the worker's log line for the request)."""
    document = {"error": message, "status": status}
    if request_id:
        document["request_id"] = request_id
    return json.dumps(document)


class HTTPError(_ToolkitError):
    """An error answered with an HTTP status and the JSON body {"error": message, "status": N}: the base of every
    error this server answers with, from the worker, the front door and the /models API alike.

    It keeps the fields of the toolkit's BaseInferenceToolkitError (status_code, phrase, and message: the body),
    so that the stock toolkits answer it with its own status and body too.
    """

    status_code = 500

    def __init__(self, message, status_code=None):
        Exception.__init__(self, message)
        if status_code is not None:
            self.status_code = status_code
        self.error = message
        # BaseInferenceToolkitError's fields: the toolkit sends `message` as the body.
        self.message = self.body()

    @property
    def phrase(self):
        return reason_phrase(self.status_code)

    def body(self, request_id=None):
        return error_json(self.status_code, self.error, request_id)

    def __str__(self):
        return self.error


class InferenceError(HTTPError):
    """A request the worker cannot answer as asked (500 unless a subclass says otherwise)."""


class BadRequestError(InferenceError):
    """The request's body or parameters cannot be used (400)."""
    status_code = 400


class UnsupportedMediaTypeError(InferenceError):
    """The request's Content-Type is not one we decode (415)."""
    status_code = 415


class NotAcceptableError(InferenceError):
    """The Accept header asks for a format we do not produce (406)."""
    status_code = 406


class PayloadTooLargeError(InferenceError):
    """The image is too large to decode safely (413)."""
    status_code = 413


class TooManyRecordsError(InferenceError):
    """A transform job's request holds more records than its worker can answer within the response timeout (413).
    It is the job's set-up, not one record, that is wrong: never answered in a record's place."""
    status_code = 413


class ModelLoadError(InferenceError):
    """The model cannot be loaded: the server must not report healthy (503)."""
    status_code = 503
