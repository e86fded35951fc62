"""Errors as types that carry the HTTP status and JSON body a client gets for them."""
from __future__ import absolute_import

import json

try:
    # The stock SageMaker toolkits turn this type into its status code instead of a 500.
    from sagemaker_inference.errors import BaseInferenceToolkitError as _ToolkitError
except ImportError:  # serving without the toolkit installed (unit tests, export-only use)
    _ToolkitError = Exception


def error_json(status, message, request_id=None):
    """The body of every error answer, from the worker or the front door: {"error": ..., "status": N}, and the
    request's id where it is known (the same id is in the worker's log line for the request)."""
    document = {"error": message, "status": status}
    if request_id:
        document["request_id"] = request_id
    return json.dumps(document)


class InferenceError(_ToolkitError):
    """An error with an HTTP status; its JSON body is {"error": message}."""

    status_code = 500
    phrase = "Internal Server Error"

    def __init__(self, message, status_code=None):
        Exception.__init__(self, message)
        if status_code is not None:
            self.status_code = status_code
        self.error = message
        # BaseInferenceToolkitError's fields: the toolkit sends `message` as the body.
        self.message = self.body()

    def body(self, request_id=None):
        return error_json(self.status_code, self.error, request_id)

    def __str__(self):
        return self.error


class BadRequestError(InferenceError):
    """The request's body or parameters cannot be used (400)."""
    status_code = 400
    phrase = "Bad Request"


class UnsupportedMediaTypeError(InferenceError):
    """The request's Content-Type is not one we decode (415)."""
    status_code = 415
    phrase = "Unsupported Media Type"


class NotAcceptableError(InferenceError):
    """The Accept header asks for a format we do not produce (406)."""
    status_code = 406
    phrase = "Not Acceptable"


class PayloadTooLargeError(InferenceError):
    """The image is too large to decode safely (413)."""
    status_code = 413
    phrase = "Payload Too Large"


class TooManyRecordsError(InferenceError):
    """A transform job's request holds more records than its worker can answer within the response timeout (413).
    It is the job's set-up, not one record, that is wrong: never answered in a record's place."""
    status_code = 413
    phrase = "Payload Too Large"


class ModelLoadError(InferenceError):
    """The model cannot be loaded: the server must not report healthy (503)."""
    status_code = 503
    phrase = "Service Unavailable"
