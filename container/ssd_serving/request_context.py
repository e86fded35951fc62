"""One request's Context as this project's handler passes it to the entry point's steps, and header lookup in any."""
from __future__ import absolute_import

from .media import header_value


class RequestContext(object):
    """Multi Model Server's Context for a batch, narrowed to one of its requests: index 0 here is that request,
    as in the Context of one request that sagemaker-inference >= 1.7 passes its steps; and the request's metrics
    (timing.RequestMetrics), into which the steps time their stages. A step given one raises its errors: the
    handler answers them under the request's id."""

    def __init__(self, context, index, request_metrics):
        self._context = context
        self._index = index
        self.request_metrics = request_metrics

    def _at(self, idx):
        if idx != 0:
            raise IndexError("a request's Context holds that request alone, at index 0, not %r" % (idx,))
        return self._index

    @property
    def system_properties(self):
        return self._context.system_properties

    @property
    def metrics(self):
        """MMS's own metrics store, as on its Context."""
        return self._context.metrics

    @property
    def request_processor(self):
        return [self._context.request_processor[self._index]]

    def get_request_id(self, idx=0):
        return self._context.get_request_id(self._at(idx))

    def get_request_header(self, idx, key):
        return self._context.get_request_header(self._at(idx), key)

    def get_all_request_header(self, idx):
        return self._context.get_all_request_header(self._at(idx))

    def set_response_status(self, code=200, phrase="", idx=0):
        self._context.set_response_status(code, phrase, self._at(idx))

    def get_response_status(self, idx):
        return self._context.get_response_status(self._at(idx))

    def set_response_content_type(self, idx, value):
        self._context.set_response_content_type(self._at(idx), value)

    def get_response_content_type(self, idx):
        return self._context.get_response_content_type(self._at(idx))

    def set_response_header(self, idx, key, value):
        self._context.set_response_header(self._at(idx), key, value)

    def get_response_headers(self, idx):
        return self._context.get_response_headers(self._at(idx))


def request_header(context, name):
    """A header of the request at index 0 of an MMS Context (the stock toolkit's, which serves one request per call,
    or a RequestContext), its name matched case-insensitively; None without a Context or without the header."""
    if context is None:
        return None
    try:
        headers = context.request_processor[0].get_request_properties()
    except (AttributeError, IndexError, KeyError, TypeError):
        return None
    return header_value(headers, name)
