"""A request's metrics (the time of each of its stages), and how they are reported: the CloudWatch embedded metric
format (EMF) line in the log and the W3C Server-Timing header on the answer."""
from __future__ import absolute_import

import json
import sys
import threading
import time
from contextlib import contextmanager

# The stages of a request, in order. queue_wait runs from the front door's receipt of the request to the
# worker's handler (the front door's slot queue, the model server's queue and its hand-over to the worker).
# The prediction's stages (predict_fn's) are reported only for a prediction that was answered: a request whose
# prediction failed reports none of them.
PREDICTION_STAGES = ("decode", "preprocess", "forward", "postprocess")
STAGES = ("queue_wait",) + PREDICTION_STAGES + ("encode",)
# CloudWatch metric names, one per stage, plus the whole request as the worker saw it
METRIC_NAMES = {"queue_wait": "QueueWait", "decode": "Decode", "preprocess": "Preprocess", "forward": "Forward",
                "postprocess": "Postprocess", "encode": "Encode", "total": "Total"}
# Set by the front door on every request it forwards: the worker reads them, a client's own values are replaced.
REQUEST_ID_HEADER = "X-Ssd-Request-Id"
RECEIVED_AT_HEADER = "X-Ssd-Received-At"
# What a SageMaker caller sets with InvokeEndpoint's InferenceId; the front door uses it as the request id.
INFERENCE_ID_HEADER = "X-Amzn-SageMaker-Inference-Id"
EMF_PREFIX = '{"_aws":'
# Set to "relay" by the front door on every request it forwards: the worker then hands its EMF line back in this
# header of its answer instead of printing it, and the front door prints it once the client has its answer. Printed
# by the worker, the line crosses Multi Model Server's reader of the worker's output (a Java thread woken per line)
# while the answer is on its way, on the same cores (measured: docs/performance.md, "Where the hops go").
EMF_RELAY_HEADER = "X-Ssd-Emf"
EMF_RELAY = "relay"
# W3C Server-Timing: one metric name (a token) per stage; "worker" is the whole request as the worker saw it and
# the front door adds "front", the whole request as it saw it (its slot queue and the hop to the model server too)
SERVER_TIMING_HEADER = "Server-Timing"
SERVER_TIMING_NAMES = {"queue_wait": "queue", "decode": "decode", "preprocess": "preprocess", "forward": "forward",
                       "postprocess": "postprocess", "encode": "encode", "total": "worker"}


class RequestMetrics(object):
    """One request's metrics, created by the handler when the request reaches it: the milliseconds of each stage it
    went through (a stage met more than once, a batch of images, adds up) and the whole request as the worker saw it.
    The steps reach it through the request's Context (request_context.RequestContext) and time their stages into it."""

    def __init__(self):
        self.started = time.perf_counter()
        self.ms = {}

    def add(self, stage, milliseconds):
        self.ms[stage] = self.ms.get(stage, 0.0) + milliseconds

    @contextmanager
    def stage(self, name):
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, (time.perf_counter() - start) * 1000.0)

    def discard(self, *stages):
        self.ms = dict((stage, ms) for stage, ms in self.ms.items() if stage not in stages)

    def ordered(self):
        """(stage, ms) for the stages this request went through, in request order."""
        return [(name, self.ms[name]) for name in STAGES if name in self.ms]

    def total_ms(self):
        """Milliseconds since the handler received the request."""
        return (time.perf_counter() - self.started) * 1000.0


def queue_wait_ms(received_at, now=None):
    """Milliseconds since the front door's receipt stamp (epoch seconds as text), or None without a usable one."""
    try:
        received = float(received_at)
    except (TypeError, ValueError):
        return None
    waited = ((time.time() if now is None else now) - received) * 1000.0
    return waited if 0.0 <= waited < 24 * 3600 * 1000.0 else None


def emf_line(metrics, namespace, model_name, request_id, status, images, total_ms, batch=1, target_model=None,
             now=None):
    """One request's metrics as a CloudWatch EMF document on one line, the line the handler logs: one metric per stage
    (milliseconds) with the model as dimension; the request id, status and image count ride along as properties,
    searchable in Logs Insights, and so do `batch` (when MMS handed over several requests together: server-side
    batching) and `target_model` (a multi-model endpoint's name for the model) where they say something."""
    document = {"_aws": {"Timestamp": int((time.time() if now is None else now) * 1000),
                         "CloudWatchMetrics": [{"Namespace": namespace, "Dimensions": [["Model"]], "Metrics": []}]},
                "Model": model_name, "RequestId": request_id, "Status": status, "Images": images}
    declared = document["_aws"]["CloudWatchMetrics"][0]["Metrics"]
    for stage, milliseconds in metrics.ordered() + [("total", total_ms)]:
        name = METRIC_NAMES[stage]
        document[name] = round(milliseconds, 3)
        declared.append({"Name": name, "Unit": "Milliseconds"})
    if batch > 1:
        document["Batch"] = batch
    if target_model:
        document["TargetModel"] = target_model
    # CloudWatch Logs extracts the metrics when the log event is exactly this JSON; "_aws" first (dicts keep their
    # order from Python 3.6 on): the model server's log configuration prints a worker's line bare, without its own
    # prefix, when it starts with EMF_PREFIX
    return json.dumps(document, separators=(",", ":"))


_PRINTING = threading.Lock()  # the front door's threads print lines too: each stays whole among theirs


def print_line(line):
    """One EMF line on stdout (the container's log, where CloudWatch reads it), written whole and flushed."""
    with _PRINTING:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def server_timing(metrics, total_ms):
    """The Server-Timing header's value: `queue;dur=4.0, decode;dur=3.1, ..., worker;dur=19.4` (milliseconds)."""
    return ", ".join("%s;dur=%.1f" % (SERVER_TIMING_NAMES[stage], milliseconds)
                     for stage, milliseconds in metrics.ordered() + [("total", total_ms)])
