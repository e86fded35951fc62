"""Export: a GluonCV SSD with a user's own weights and classes, and the offline fallback of `make serve`."""
import json
import os

import gluoncv  # pinned in both stacks (requirements): a venv without it is broken, not a reason to skip
import mxnet as mx
import numpy as np
import pytest
import requests

from ssd_serving.artifact import META_FILE, read_metadata
from ssd_serving.artifact import file_sha256
from ssd_tools.export import ensure_model, export_user_params, input_size_from_name
from ssd_serving.model import load_detector

SMALL_SSD = "ssd_512_mobilenet1.0_voc"  # in the zoo of GluonCV 0.5.0 and 0.10.5, with a _custom variant


def test_input_size_comes_from_the_name():
    assert input_size_from_name("ssd_512_resnet50_v1_voc") == 512
    assert input_size_from_name("ssd_300_vgg16_atrous_coco") == 300
    with pytest.raises(ValueError):
        input_size_from_name("yolo3_darknet53_voc")


def test_user_params_with_custom_classes(tmp_path):
    net = gluoncv.model_zoo.get_model("ssd_512_mobilenet1.0_custom", classes=["cat", "dog"], pretrained_base=False)
    net.initialize()
    net(mx.nd.zeros((1, 3, 512, 512)))
    params = str(tmp_path / "finetuned.params")
    net.save_parameters(params)
    out = str(tmp_path / "export")
    meta = export_user_params(SMALL_SSD, params, ["cat", "dog"], out)
    on_disk = read_metadata(out)
    assert on_disk == meta
    assert meta["classes"] == ["cat", "dog"] and meta["input_width"] == input_size_from_name(SMALL_SSD)
    assert meta["weights"] == {"source": "user-params", "location": os.path.abspath(params),
                               "sha256": file_sha256(params)}
    assert meta["params_sha256"] == file_sha256(os.path.join(out, "model-0000.params"))
    assert meta["exported_with"]["mxnet"] == mx.__version__
    symbol = json.load(open(os.path.join(out, "model-symbol.json")))
    assert any(node["name"] == "data" for node in symbol["nodes"])
    detector = load_detector(out)
    rgb = (np.random.RandomState(0).rand(200, 300, 3) * 255).astype(np.uint8)
    ids, scores, boxes = detector.raw_outputs(rgb)
    assert ids.shape == scores.shape == (boxes.shape[0],) and boxes.shape[1] == 4
    assert set(np.unique(ids[ids >= 0]).astype(int)) <= {0, 1}


def test_unreachable_zoo_falls_back_to_the_named_model(tmp_path, monkeypatch, demo_model_dir):
    # A real download attempt against a port nothing listens on: it fails like an offline machine.
    monkeypatch.setenv("MXNET_GLUON_REPO", "http://127.0.0.1:9/")
    out = str(tmp_path / "zoo")
    assert ensure_model("ssd_512_resnet50_v1_voc", out, demo_model_dir, root=str(tmp_path / "cache")) \
        == demo_model_dir
    assert not os.path.exists(os.path.join(out, META_FILE))
    # without a fallback the download's own error comes out, naming where it tried
    with pytest.raises(requests.ConnectionError, match="127.0.0.1.*9"):
        ensure_model("ssd_512_resnet50_v1_voc", out, None, root=str(tmp_path / "cache"))
