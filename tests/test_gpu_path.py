"""The gpu image's device code, with the GPU MOCKED: no GPU exists on these machines or in CI, and no MXNet CUDA
build fits the occasional GPU machine, so these tests patch the GPU count and stand a second CPU context in
for the GPU's. They check our choices (context order, inputs moved to the device, fp32 on GPU, fallback
when the device refuses the graph), not CUDA itself; the gpu image has not been run on a GPU."""
import logging

import mxnet as mx
import numpy as np
import pytest

from ssd_serving import artifact, model as model_module
from ssd_serving.environment import Environment
from ssd_serving.model import Detector, candidate_contexts, choose_graph, load_detector


@pytest.fixture()
def one_gpu(monkeypatch):
    """MXNet reports one GPU (mocked)."""
    monkeypatch.setattr(model_module, "_num_gpus", lambda: 1)
    monkeypatch.delenv("SSD_CONTEXT", raising=False)


def test_auto_tries_the_gpu_before_the_cpu(one_gpu):
    contexts = candidate_contexts("auto")
    names = [name for name, _ in contexts]
    assert names[-2:] == ["gpu", "cpu"] and dict(contexts)["gpu"] == mx.gpu(0)


def test_the_input_is_moved_to_the_gpu_context(demo_model_dir):
    # mx.cpu(1) stands in for mx.gpu(0): a context other than the default one the input is made on
    seen = {}

    def fake_net(x):
        seen["context"] = x.context
        empty = mx.nd.full((1, 100, 1), -1)
        return empty, mx.nd.zeros((1, 100, 1)), mx.nd.zeros((1, 100, 4))

    meta = artifact.read_metadata(demo_model_dir)
    detector = Detector(fake_net, meta, "gpu", mx.cpu(1))
    assert detector.detect(np.zeros((48, 64, 3), dtype=np.uint8)) == []
    assert seen["context"] == mx.cpu(1)


def test_the_gpu_serves_fp32_even_where_an_int8_graph_and_vnni_are_there(one_gpu, stub_int8_pair):
    root, fp32 = stub_int8_pair
    choice = choose_graph(root, fp32, Environment.defaults(), flags={"avx512_vnni"})
    assert choice.precision == "fp32" and "gpu" in choice.reason


@pytest.mark.skipif(model_module._num_gpus() > 0,
                    reason="a real GPU is here: the fallback is for when it refuses the graph")
def test_a_gpu_that_refuses_the_graph_falls_back_to_the_cpu_and_says_so(one_gpu, demo_model_dir, caplog):
    # This MXNet has no CUDA, so loading on the mocked GPU fails for real, as a broken driver would.
    with caplog.at_level(logging.WARNING, logger="ssd_serving.model"):
        detector = load_detector(demo_model_dir)
    assert detector.device_name == "cpu" and detector.info["device"] == "cpu"
    assert any("could not load the model on gpu" in r.getMessage() for r in caplog.records)
