"""SageMaker entry point: the model_fn/input_fn/predict_fn/output_fn contract, delegated to ssd_serving.

Works in this project's own server and, shipped as code/inference.py in a model.tar.gz, unchanged in
the stock SageMaker MXNet serving toolkit of AWS's images, sagemaker-inference 1.1.0 to 1.10.1 with
sagemaker-mxnet-inference 1.2.6.post0 to 1.5.5 (model_fn returns an mx.gluon.Block).

The optional last parameter of input_fn, predict_fn and output_fn is there on purpose: it is the request's
Multi Model Server Context, which sagemaker-inference 1.7 and later and this project's handler pass to a
function that takes one more parameter than they give (custom attributes are read from its headers; under
the stock toolkit errors keep their status with a JSON body, no traceback). model_fn takes no Context.

predict_batch_fn is this project's own: with server-side batching (SSD_SERVER_BATCH_SIZE > 1) its handler passes it
the requests Multi Model Server handed over together, and their Contexts, to run their images in one forward. An
entry point without it is served one request at a time; the stock toolkits never call it.
"""
from ssd_serving import inference_steps


def model_fn(model_dir):
    return inference_steps.model_fn(model_dir)


def input_fn(request_body, content_type, context=None):
    return inference_steps.input_fn(request_body, content_type, context)


def predict_fn(data, model, context=None):
    return inference_steps.predict_fn(data, model, context)


def predict_batch_fn(data_list, model, contexts=None):
    return inference_steps.predict_batch_fn(data_list, model, contexts)


def output_fn(prediction, accept, context=None):
    return inference_steps.output_fn(prediction, accept, context)
