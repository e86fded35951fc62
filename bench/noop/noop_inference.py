"""A no-op entry point for make bench: it reads nothing and answers a constant at once, so that the serving path's own
cost (client, front door, Multi Model Server, the worker's socket and handler) is measured apart from any model.
Served by our server with SAGEMAKER_PROGRAM=noop_inference.py and this folder first on the import path."""
import json

ANSWER = json.dumps({"detections": [], "noop": True})


def model_fn(model_dir):
    return None


def input_fn(request_body, content_type, context=None):
    return None


def predict_fn(data, model, context=None):
    return None


def output_fn(prediction, accept, context=None):
    return ANSWER, "application/json"
