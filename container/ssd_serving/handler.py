"""The Multi Model Server custom service: load the entry point's model once, answer each request in a batch."""
from __future__ import absolute_import

import importlib
import logging
import sys

from .environment import Environment
from .errors import InferenceError, error_json
from .media import header_value

LOG = logging.getLogger(__name__)

CUSTOM_ATTRIBUTES = "X-Amzn-SageMaker-Custom-Attributes"


def _header(context, index, name):
    return header_value(context.get_all_request_header(index), name)


class DetectionService(object):
    """Calls the entry point's model_fn once, then input_fn, predict_fn and output_fn per request."""

    def __init__(self):
        self.entry = None
        self.model = None
        self.initialized = False

    def initialize(self, context, settings=None):
        """Import the entry point (SAGEMAKER_PROGRAM, default inference.py) and load its model once."""
        module_name = (settings or Environment()).entry_point
        if module_name.endswith(".py"):
            module_name = module_name[:-3]
        self.entry = importlib.import_module(module_name)
        model_dir = (context.system_properties or {}).get("model_dir")
        self.model = self.entry.model_fn(model_dir)
        self.initialized = True

    def _answer(self, context, index, request):
        body = request.get("body")
        if body is None:
            body = request.get("data")
        content_type = _header(context, index, "Content-Type")
        accept = _header(context, index, "Accept")
        attributes = _header(context, index, CUSTOM_ATTRIBUTES)
        try:
            data = self.entry.input_fn(body, content_type, attributes)
            prediction = self.entry.predict_fn(data, self.model)
            payload, media = self.entry.output_fn(prediction, accept)
            context.set_response_content_type(index, media)
            return payload
        except InferenceError as error:
            LOG.info("request %d refused with %d: %s", index, error.status_code, error)
            return self._fail(context, index, error.status_code, error.phrase, error.body())
        except Exception as error:  # keep the worker serving; the client learns it was our fault
            LOG.exception("request %d failed", index)
            body = error_json(500, "internal error: %s" % (error,))
            return self._fail(context, index, 500, "Internal Server Error", body)

    @staticmethod
    def _fail(context, index, status, phrase, body):
        context.set_response_status(status, phrase, index)
        context.set_response_content_type(index, "application/json")
        return body

    def handle(self, data, context):
        return [self._answer(context, index, request) for index, request in enumerate(data)]


_service = DetectionService()


def handle(data, context):
    """MMS entry: `data` is None when MMS only wants the model loaded."""
    if not _service.initialized:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout)
        _service.initialize(context)
    if data is None:
        return None
    return _service.handle(data, context)
