"""The steps under AWS's stock SageMaker serving toolkit: its MMS Context, and errors answered without a traceback.

code/inference.py runs unchanged in AWS's images, whose toolkit (sagemaker_inference's Transformer) calls the steps.
Two of its versions' ways need this module:

- sagemaker-inference before 1.7 (the EI image's 1.1.0, the MXNet 1.7-era images' up to 1.6.1) passes the steps no
  Context: it is found on the call stack, the `context` argument of its Transformer.transform(data, context).
  From 1.7 on the toolkit passes it as the extra last argument of every step that takes one more parameter than it
  gives, as this project's handler passes its RequestContext; nothing is looked up then.
- sagemaker-inference 1.3.2 and later append a Python traceback to the body of every error they catch: so nothing
  is raised to them. The status goes onto the Context here and a Refusal, holding the JSON error body, travels on
  through predict_fn and output_fn as an ordinary result.
"""
from __future__ import absolute_import

import logging
import sys

from .errors import HTTPError, InferenceError
from .media import JSON

LOG = logging.getLogger(__name__)

# Frames between a step and the toolkit's Transformer.transform: inference.py, _default_transform_fn and,
# in 1.7+, _run_handler_function; with room to spare, but bounded.
_STACK_DEPTH = 16


class Refusal(object):
    """A request already answered with an error under the stock toolkit: its status is set on the
    toolkit's Context, and predict_fn and output_fn pass it on until output_fn returns its JSON body."""

    def __init__(self, error):
        self.error = error

    def body(self):
        return self.error.body().encode("utf-8")


def _is_mms_context(value):
    return hasattr(value, "request_processor") and hasattr(value, "set_response_status")


def _context_on_stack():
    """The Context argument of the stock toolkit's Transformer.transform up the stack (sagemaker-inference
    before 1.7 does not pass it on), or None: not the toolkit (it is never imported under handler.py)."""
    transformer = sys.modules.get("sagemaker_inference.transformer")
    if transformer is None:
        return None
    frame = sys._getframe(2)  # stock_context's caller, then up
    for _ in range(_STACK_DEPTH):
        if frame is None:
            return None
        if frame.f_code.co_name == "transform":
            local = frame.f_locals
            if isinstance(local.get("self"), transformer.Transformer) and _is_mms_context(local.get("context")):
                return local["context"]
        frame = frame.f_back
    return None


def stock_context(argument):
    """The stock toolkit's MMS Context for this request, or None when it is not the toolkit that calls.

    `argument` is the step's extra last argument: the Context (sagemaker-inference >= 1.7), or None (a direct call,
    or a toolkit before 1.7: then found on the stack, from the caller of this function up).
    """
    if argument is not None:
        return argument if _is_mms_context(argument) else None
    return _context_on_stack()


def refuse(context, error):
    """Answer the toolkit's request with `error` (an HTTPError keeps its status, anything else is a
    500) without raising: the toolkit would append a traceback to the body."""
    if not isinstance(error, HTTPError):
        LOG.exception("request failed")
        error = InferenceError("internal error: %s" % (error,))
    else:
        LOG.info("request refused with %d: %s", error.status_code, error)
    context.set_response_status(error.status_code, error.phrase, 0)
    context.set_response_content_type(0, JSON)
    return Refusal(error)
