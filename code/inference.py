"""SageMaker entry point: the model_fn/input_fn/predict_fn/output_fn contract, delegated to ssd_serving.

Works in this project's own server and, shipped as code/inference.py in a model.tar.gz, in the
stock SageMaker MXNet serving toolkit (model_fn returns an mx.gluon.Block).
"""
from ssd_serving import service


def model_fn(model_dir):
    return service.model_fn(model_dir)


def input_fn(request_body, content_type, custom_attributes=None):
    return service.input_fn(request_body, content_type, custom_attributes)


def predict_fn(data, model):
    return service.predict_fn(data, model)


def output_fn(prediction, accept):
    return service.output_fn(prediction, accept)
