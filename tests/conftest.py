"""Shared fixtures: real photos, the demo model, and a real Multi Model Server on a free port."""
import json
import os

import pytest

from helpers import DEMO_MODEL, copy_model, photo_paths, ready_server
from tiers import runs_the_same_on_any_stack, tier_of


def pytest_collection_modifyitems(config, items):
    """Every test gets its tier's marker (tests/tiers.py), so that `-m unit` and the like select a tier, and the
    `any_stack` marker where its module runs the same on both MXNet stacks (the MXNet 1.4.1 run leaves those out)."""
    for item in items:
        item.add_marker(getattr(pytest.mark, tier_of(str(item.fspath), item.fixturenames)))
        if runs_the_same_on_any_stack(str(item.fspath)):
            item.add_marker(pytest.mark.any_stack)


@pytest.fixture(scope="session")
def photos():
    paths = photo_paths()
    assert len(paths) >= 3, "expected real photos in matplotlib's and scikit-image's wheels: %s" % paths
    return paths


@pytest.fixture(scope="session")
def photo_jpeg(photos):
    with open(photos["grace_hopper"], "rb") as stream:
        return stream.read()


@pytest.fixture(scope="session")
def demo_model_dir():
    assert os.path.isfile(os.path.join(DEMO_MODEL, "model-meta.json")), \
        "the committed demo model is missing from %s (make demo-model rebuilds it)" % DEMO_MODEL
    return DEMO_MODEL


def passed_check(fp32_meta, int8_params_sha256, **changes):
    """An accuracy_check record as ssd_tools.int8_check writes it for an int8 graph that passed."""
    record = {"passed": True, "metric": "voc07_map_drop", "value": 0.05, "limit": 1.0, "direction": "at most",
              "unit": "points", "reason": "mAP drop 0.05 points <= 1.00",
              "images": {"count": 200, "sha256": "0" * 64, "source": "stub", "labelled": True},
              "fp32_params_sha256": fp32_meta["params_sha256"], "int8_params_sha256": int8_params_sha256}
    record.update(changes)
    return record


@pytest.fixture()
def stub_int8_pair(demo_model_dir, tmp_path):
    """(folder, fp32 metadata): the demo model with an int8/ folder beside it that says it was quantized from
    it and passed its accuracy check (the files are the fp32 ones: for choosing a graph only, never for loading
    int8)."""
    from ssd_serving.precision import INT8_SUBDIR
    root = copy_model(demo_model_dir, str(tmp_path / "model"))
    with open(os.path.join(root, "model-meta.json")) as stream:
        fp32 = json.load(stream)
    copy_model(demo_model_dir, os.path.join(root, INT8_SUBDIR), precision="int8",
               quantization={"fp32_params_sha256": fp32["params_sha256"]},
               accuracy_check=passed_check(fp32, fp32["params_sha256"]))
    return root, fp32


@pytest.fixture(scope="session")
def server(demo_model_dir):
    with ready_server(demo_model_dir) as running:
        yield running


@pytest.fixture(scope="session")
def detector(demo_model_dir):
    from ssd_serving.model import load_detector
    return load_detector(demo_model_dir)
