"""code/inference.py unchanged inside the stock SageMaker MXNet serving toolkit, as in AWS's prebuilt images.

The model.tar.gz layout is unpacked into a temporary SAGEMAKER_BASE_DIR: the exported model at its
top, code/inference.py and the ssd_serving package under code/. MMS runs the toolkit's own handler.
"""
import base64
import os
import shutil

import pytest
import requests

from conftest import CODE, CONTAINER, demo_meta, encode, synthetic_scene
from ssd_serving.serving import ModelServer, free_port

pytest.importorskip("sagemaker_mxnet_serving_container")


@pytest.fixture(scope="module")
def stock_server(demo_model_dir, tmp_path_factory):
    base = str(tmp_path_factory.mktemp("opt_ml"))
    model_dir = os.path.join(base, "model")
    shutil.copytree(demo_model_dir, model_dir)
    code_dir = os.path.join(model_dir, "code")
    os.makedirs(code_dir)
    shutil.copy(os.path.join(CODE, "inference.py"), code_dir)
    shutil.copytree(os.path.join(CONTAINER, "ssd_serving"), os.path.join(code_dir, "ssd_serving"),
                    ignore=shutil.ignore_patterns("__pycache__", "models"))
    saved = dict(os.environ)
    os.environ.update({"SAGEMAKER_BASE_DIR": base, "SAGEMAKER_PROGRAM": "inference.py"})
    os.environ.pop("SSD_MODEL_DIR", None)
    server = ModelServer(free_port(), handler="sagemaker_mxnet_serving_container.handler_service",
                         python_path=code_dir, model_path=model_dir)
    try:
        server.start()
        assert server.wait_ready(180), "the stock toolkit's worker never became ready"
        yield "http://127.0.0.1:%d" % server.port
    finally:
        server.stop()
        server.cleanup()
        os.environ.clear()
        os.environ.update(saved)


def test_stock_toolkit_serves_the_entry_point(stock_server):
    rgb, _, _ = synthetic_scene(21, 640, 480)
    reply = requests.post(stock_server + "/invocations", data=base64.b64encode(encode(rgb)),
                          headers={"Content-Type": "application/x-image"}, timeout=60)
    assert reply.status_code == 200, reply.text
    document = reply.json()
    assert document["model"]["name"] == demo_meta()["model_name"] and document["detections"]


def test_stock_toolkit_returns_our_4xx_errors(stock_server):
    reply = requests.post(stock_server + "/invocations", data=b"\x00garbage",
                          headers={"Content-Type": "image/jpeg"}, timeout=60)
    assert reply.status_code == 400
    assert "error" in reply.json()
