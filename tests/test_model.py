"""The served detector: loading, device choice, checksum refusal, detection quality and GluonCV parity."""
import os
import shutil

import mxnet as mx
import numpy as np
import pytest

from helpers import RECALL_SCORE, assert_scene_detected, copy_model, demo_meta, encode, synthetic_scene
from ssd_serving import artifact, model as model_module
from ssd_serving.decoder import decode_image
from ssd_serving.environment import Environment
from ssd_serving.errors import ModelLoadError
from ssd_serving.model import candidate_contexts, load_detector


def test_metadata_names_the_model_and_its_weights(detector):
    info = detector.info
    assert info["name"] == demo_meta()["model_name"] and info["demo"] is True
    assert info["weights_source"] == "demo-trained" and "ssd_tools.demo.train" in info["weights_location"]
    assert info["device"] == "cpu" and len(info["params_sha256"]) == 64


@pytest.mark.parametrize("size", [(320, 240), (640, 480), (300, 600), (900, 450), (512, 512)])
def test_detections_land_on_the_objects(detector, size):
    rgb, boxes, class_ids = synthetic_scene(9000 + size[0], *size)
    detections = detector.detect(rgb, threshold=RECALL_SCORE)
    assert_scene_detected(boxes, class_ids, detections, detector.classes)
    for detection in detections:
        xmin, ymin, xmax, ymax = detection["box"]
        assert 0 <= xmin <= xmax <= size[0] and 0 <= ymin <= ymax <= size[1]


def test_threshold_top_k_and_class_filter(detector):
    rgb, _, _ = synthetic_scene(77, 640, 480)
    everything = detector.detect(rgb, threshold=0.0)
    scores = [d["score"] for d in everything]
    assert scores == sorted(scores, reverse=True)
    assert [d["score"] for d in detector.detect(rgb, threshold=0.0, top_k=3)] == scores[:3]
    assert all(d["score"] >= 0.6 for d in detector.detect(rgb, threshold=0.6))
    assert all(d["class_id"] == 2 for d in detector.detect(rgb, threshold=0.0, class_ids={2}))


def gluoncv_detections(detector, image_bytes):
    """GluonCV's own pipeline: OpenCV decode, SSDDefaultValTransform, the network, boxes scaled back."""
    from gluoncv.data.transforms.presets.ssd import SSDDefaultValTransform
    src = mx.image.imdecode(image_bytes)
    height, width = src.shape[:2]
    transform = SSDDefaultValTransform(detector.input_width, detector.input_height,
                                       mean=detector.meta["mean"], std=detector.meta["std"])
    tensor, _ = transform(src, np.zeros((1, 5), dtype=np.float32))
    ids, scores, boxes = detector.net(tensor.expand_dims(0))
    ids, scores, boxes = ids[0].asnumpy()[:, 0], scores[0].asnumpy()[:, 0], boxes[0].asnumpy()
    keep = (ids >= 0) & (scores >= 0.3)
    scale = np.array([width / float(detector.input_width), height / float(detector.input_height)] * 2)
    boxes = boxes[keep] * scale
    return ids[keep], scores[keep], boxes


@pytest.mark.parametrize("name", ["grace_hopper", "astronaut", "chelsea", "coffee"])
def test_served_detections_equal_gluoncv_pipeline_on_real_photos(detector, photos, name):
    # PNG decodes to identical pixels in Pillow and OpenCV, so the two pipelines must agree exactly;
    # the photo is tiled with a synthetic scene so that there is something to detect.
    from PIL import Image
    photo = np.asarray(Image.open(photos[name]).convert("RGB"))
    scene, _, _ = synthetic_scene(5, photo.shape[1], photo.shape[0])
    mixed = photo.copy()
    mixed[:, photo.shape[1] // 2:] = scene[:, photo.shape[1] // 2:]
    png = encode(mixed, "PNG")
    ids, scores, boxes = gluoncv_detections(detector, png)
    decoded = decode_image(png, (detector.input_width, detector.input_height))
    served = detector.detect(decoded.rgb, threshold=0.3, original_size=decoded.original_size)
    order = np.argsort(-scores, kind="stable")
    assert len(served) == len(ids) > 0
    assert [d["class_id"] for d in served] == [int(i) for i in ids[order]]
    np.testing.assert_allclose([d["score"] for d in served], scores[order], rtol=1e-5, atol=1e-6)
    clipped = np.clip(boxes[order], 0, [mixed.shape[1], mixed.shape[0]] * 2)
    np.testing.assert_allclose([d["box"] for d in served], clipped, rtol=1e-4, atol=1e-3)


def test_jpeg_matches_gluoncv_within_decoder_differences(detector):
    scene, boxes, class_ids = synthetic_scene(31, 500, 400)
    jpeg = encode(scene, quality=92)
    ids, scores, _ = gluoncv_detections(detector, jpeg)
    decoded = decode_image(jpeg, (detector.input_width, detector.input_height))
    served = detector.detect(decoded.rgb, threshold=0.3, original_size=decoded.original_size)
    assert sorted(d["class_id"] for d in served if d["score"] > 0.5) == \
        sorted(int(i) for i, s in zip(ids, scores) if s > 0.5)


def test_context_choice():
    assert [name for name, _ in candidate_contexts("cpu")] == ["cpu"]
    names = [name for name, _ in candidate_contexts("auto")]
    assert names[-1] == "cpu" and ("eia" in names) == hasattr(mx, "eia")
    with pytest.raises(ModelLoadError):
        candidate_contexts("tpu")


@pytest.mark.skipif(hasattr(mx, "eia"), reason="this MXNet build has Elastic Inference")
def test_forcing_eia_without_an_ei_build_says_why():
    with pytest.raises(ModelLoadError) as caught:
        candidate_contexts("eia")
    assert "amazonei_mxnet" in str(caught.value)


def _tampered_copy(model_dir, tmp_path):
    """A copy of `model_dir` whose weights differ from those its metadata's sha256 records."""
    copy = str(tmp_path / "model")
    shutil.copytree(model_dir, copy)
    with open(os.path.join(copy, "model-0000.params"), "r+b") as stream:
        stream.seek(-16, 2)
        stream.write(b"\x00" * 16)
    return copy


def test_tampered_weights_are_refused(demo_model_dir, tmp_path):
    with pytest.raises(ModelLoadError) as caught:
        load_detector(_tampered_copy(demo_model_dir, tmp_path))
    assert "sha256" in str(caught.value)


def _check_of_each_caller(model_dir, tmp_path):
    """What the start-up checks, a multi-model endpoint's load and the worker's load each say of `model_dir`."""
    from ssd_serving.multimodel import ModelsError, check_folder
    from ssd_serving.startup import preflight
    settings = Environment({"SSD_MODEL_DIR": model_dir, "SAGEMAKER_BASE_DIR": str(tmp_path / "no-opt-ml")})
    said = {}
    for caller, check in (("start-up", lambda: preflight(settings)),
                          ("multi-model load", lambda: check_folder(model_dir, settings)),
                          ("worker", lambda: load_detector(model_dir, settings, warm_up=False))):
        with pytest.raises((ModelLoadError, ModelsError)) as caught:
            check()
        said[caller] = str(caught.value)
    return said


def test_one_check_of_a_model_folder_refuses_tampered_weights_alike_everywhere(demo_model_dir, tmp_path):
    said = _check_of_each_caller(_tampered_copy(demo_model_dir, tmp_path), tmp_path)
    assert len(set(said.values())) == 1 and "sha256" in said["worker"], said


def test_a_graph_this_mxnet_cannot_read_is_refused_before_any_worker_loads_it(demo_model_dir, tmp_path):
    copy = str(tmp_path / "model")
    shutil.copytree(demo_model_dir, copy)
    with open(os.path.join(copy, artifact.SYMBOL_FILE), "w") as stream:
        stream.write('{"nodes": [{"op": "an_operator_no_mxnet_has", "name": "x", "inputs": []}]}')
    said = _check_of_each_caller(copy, tmp_path)
    symbol = os.path.join(copy, artifact.SYMBOL_FILE)
    assert said["start-up"] == said["multi-model load"], said
    assert said["start-up"].startswith("the graph %s cannot be read by MXNet %s" % (symbol, mx.__version__)), said
    # the worker reads the graph as it loads it, on each device in turn
    assert "could not load the model from %s on any device" % copy in said["worker"], said


def test_sagemaker_model_dir_wins_over_the_baked_one(demo_model_dir, tmp_path):
    override = copy_model(demo_model_dir, str(tmp_path / "model"), model_name="my_finetuned_shapes")
    settings = Environment({"SSD_MODEL_DIR": demo_model_dir, "SAGEMAKER_BASE_DIR": str(tmp_path)})
    assert model_module.find_model_dir(settings=settings) == override
    assert load_detector(settings=settings, warm_up=False).info["name"] == "my_finetuned_shapes"


def _in_base_dir(folder):
    """Settings whose SageMaker model folder (SAGEMAKER_BASE_DIR/model) is `folder`."""
    return Environment({"SAGEMAKER_BASE_DIR": os.path.dirname(str(folder))})


# What SageMaker unpacked into /opt/ml/model is served or refused, never passed over for the baked model.

def _opt_ml_model(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("layout", ["absent", "empty", "only code/"])
def test_the_baked_model_is_served_only_when_opt_ml_model_holds_nothing(demo_model_dir, tmp_path, layout):
    folder = tmp_path / "model"  # SAGEMAKER_BASE_DIR/model: /opt/ml/model
    if layout != "absent":
        folder.mkdir()
    if layout == "only code/":
        (folder / "code").mkdir()
        (folder / "code" / "inference.py").write_text("# user code only")
    assert artifact.given_model_dir(str(folder)) is None
    settings = Environment({"SSD_MODEL_DIR": demo_model_dir, "SAGEMAKER_BASE_DIR": str(tmp_path)})
    assert settings.sagemaker_model_dir == str(folder)
    # what is loaded is the baked model (SSD_MODEL_DIR in the image): the demo's weights, by their sha256
    assert model_module.find_model_dir(settings=settings) == demo_model_dir
    detector = load_detector(settings=settings, warm_up=False)
    assert detector.meta["params_sha256"] == demo_meta()["params_sha256"]


def test_a_model_in_a_single_subfolder_is_served(demo_model_dir, tmp_path):
    folder = _opt_ml_model(tmp_path)
    inner = copy_model(demo_model_dir, str(folder / "mymodel"), model_name="packed_in_a_folder")
    (folder / "code").mkdir()
    assert artifact.given_model_dir(str(folder)) == inner
    assert model_module.find_model_dir(settings=_in_base_dir(folder)) == inner


def test_other_files_in_opt_ml_model_are_refused_and_listed(demo_model_dir, tmp_path):
    folder = _opt_ml_model(tmp_path)
    (folder / "weights.params").write_bytes(b"x")
    (folder / "notes.txt").write_text("x")
    with pytest.raises(ModelLoadError, match=r"holds notes.txt, weights.params, but no exported model"):
        artifact.given_model_dir(str(folder))
    # a single folder that holds no model: its files are listed
    (tmp_path / "second").mkdir()
    other = _opt_ml_model(tmp_path / "second")
    (other / "mymodel").mkdir()
    (other / "mymodel" / "model.params").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"holds mymodel/model.params, but no exported model"):
        model_module.find_model_dir(settings=_in_base_dir(other))


def test_the_archive_left_beside_what_was_unpacked_from_it_is_passed_over(demo_model_dir, tmp_path):
    # the SDK's local mode unpacks model.tar.gz into /opt/ml/model and leaves the archive there too
    folder = _opt_ml_model(tmp_path)
    inner = copy_model(demo_model_dir, str(folder / "mymodel"), model_name="packed_in_a_folder")
    (folder / "model.tar.gz").write_bytes(b"the archive")
    assert artifact.given_model_dir(str(folder)) == inner
    assert model_module.find_model_dir(settings=_in_base_dir(folder)) == inner
    top = tmp_path / "top" / "model"
    copy_model(demo_model_dir, str(top))
    (top / "model.tar.gz").write_bytes(b"the archive")
    assert artifact.given_model_dir(str(top)) == str(top)
    # and no exported model beside it is still refused, saying what is there
    for case, (junk, listed) in enumerate(((("notes.txt",), "model.tar.gz, notes.txt"), ((), "model.tar.gz"))):
        (tmp_path / str(case)).mkdir()
        other = _opt_ml_model(tmp_path / str(case))
        (other / "model.tar.gz").write_bytes(b"the archive")
        for name in junk:
            (other / name).write_text("x")
        with pytest.raises(ModelLoadError, match=r"holds %s, but no exported model" % listed):
            model_module.find_model_dir(settings=_in_base_dir(other))
    (tmp_path / "empty-inner").mkdir()
    other = _opt_ml_model(tmp_path / "empty-inner")
    (other / "model.tar.gz").write_bytes(b"the archive")
    (other / "mymodel").mkdir()
    (other / "mymodel" / "model.params").write_bytes(b"x")
    with pytest.raises(ModelLoadError, match=r"holds mymodel/model.params, but no exported model"):
        artifact.given_model_dir(str(other))


def test_an_unreadable_opt_ml_model_is_refused_naming_the_permissions(demo_model_dir, tmp_path, monkeypatch):
    # Tests run as root, who reads any folder: os.access is patched to answer as the image's non-root
    # server user would for a folder it may not read (the container test makes a real one).
    folder = _opt_ml_model(tmp_path)
    copy_model(demo_model_dir, str(folder / "mymodel"))
    real_access = os.access
    monkeypatch.setattr(artifact.os, "access", lambda path, mode: path != str(folder) and real_access(path, mode))
    with pytest.raises(ModelLoadError, match=r"cannot be read by this server's user \(uid \d+; the folder's mode"):
        model_module.find_model_dir(settings=_in_base_dir(folder))
