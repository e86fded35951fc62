"""int8 for the CPU target: export option, metadata, detections close to fp32, and refusal where it cannot run."""
import json
import os

import mxnet as mx
import numpy as np
import pytest

from helpers import RunningServer, assert_scene_detected, copy_model, encode, synthetic_scene
from ssd_serving import precision
from ssd_serving.environment import Environment
from ssd_serving.errors import ModelLoadError
from ssd_tools import quantize
from ssd_serving.model import load_detector

# Read from MXNet itself, not from ssd_serving.precision (the code under test): int8 runs on the cpu image's stack,
# MXNet 1.9.1 with oneDNN, and on no other; MXNet 1.4.1 (the ei image's) has no runtime features and no oneDNN.
MXNET_VERSION = tuple(int(p) for p in mx.__version__.split(".")[:2])
ON_MXNET_19 = MXNET_VERSION >= (1, 9)
ONEDNN = hasattr(mx, "runtime") and bool(mx.runtime.Features().is_enabled("MKLDNN"))
needs_mxnet_19 = pytest.mark.skipif(not ON_MXNET_19, reason="int8 runs on MXNet >= 1.9 (the cpu image's stack), "
                                                            "not on MXNet %s" % mx.__version__)


@needs_mxnet_19
def test_this_mxnet_can_run_int8():
    """On the cpu image's stack int8 must run: a regression in int8_support_problem() fails here, instead of
    quietly turning every int8 test below into a skip."""
    assert ONEDNN, "the pinned MXNet %s wheel is built with oneDNN (MKLDNN)" % mx.__version__
    assert precision.onednn_enabled() and precision.int8_support_problem() is None


def int8_copy_of(demo_model_dir, out):
    """A model directory that says int8 (the demo's fp32 files): what an old MXNet must refuse."""
    return copy_model(demo_model_dir, out, precision="int8")


@pytest.fixture(scope="module")
def int8_demo(demo_model_dir, tmp_path_factory):
    if not ON_MXNET_19:
        pytest.skip("int8 runs on MXNet >= 1.9 (the cpu image's stack), not on MXNet %s" % mx.__version__)
    from ssd_tools import export
    out = str(tmp_path_factory.mktemp("int8") / "demo-int8")
    # few calibration images keep the test short; the accuracy check uses the full builtin set
    export.main(["--quantize", "int8", "--from-export", demo_model_dir, "--out", out,
                 "--calibration-scenes", "6"])
    return out


@needs_mxnet_19
def test_int8_export_records_precision_and_calibration(int8_demo, demo_model_dir):
    with open(os.path.join(int8_demo, "model-meta.json")) as stream:
        meta = json.load(stream)
    with open(os.path.join(demo_model_dir, "model-meta.json")) as stream:
        fp32 = json.load(stream)
    assert meta["precision"] == "int8" and meta["classes"] == fp32["classes"]
    calibration = meta["quantization"]["calibration"]
    assert calibration["source"] == "builtin" and calibration["synthetic_scenes"]["count"] == 6
    assert len(calibration["photos"]) >= 3 and calibration["count"] == len(calibration["photos"]) + 6
    assert meta["quantization"]["fp32_params_sha256"] == fp32["params_sha256"]
    assert meta["quantization"]["fp32_excluded"]  # the last-axis concats stay fp32
    symbol = json.load(open(os.path.join(int8_demo, "model-symbol.json")))
    assert any("quantize" in node["op"] or node["op"] == "_sg_mkldnn_conv" and
               node.get("attrs", {}).get("quantized") == "true" for node in symbol["nodes"])


@needs_mxnet_19
def test_int8_detects_what_fp32_detects(int8_demo):
    detector = load_detector(int8_demo)
    assert detector.info["precision"] == "int8" and detector.device_name == "cpu"
    for size in ((640, 480), (300, 600)):
        rgb, boxes, class_ids = synthetic_scene(4100 + size[0], *size)
        assert_scene_detected(boxes, class_ids, detector.detect(rgb, threshold=0.2), detector.classes)


@needs_mxnet_19
def test_int8_refuses_gpu_and_ei(int8_demo, monkeypatch):
    monkeypatch.setenv("SSD_CONTEXT", "gpu")
    with pytest.raises(ModelLoadError, match="CPU only"):
        load_detector(int8_demo)


@needs_mxnet_19
def test_int8_compared_with_fp32_by_the_evaluation_command(int8_demo, demo_model_dir, capsys):
    from ssd_tools.demo import evaluate
    status = evaluate.main(["--model-dir", int8_demo, "--compare-to", demo_model_dir, "--count", "4",
                            "--max-drop", "1.0"])
    out = capsys.readouterr().out
    assert "compare: mAP=" in out and "int8" in out
    # the gate is on: it fails exactly when the drop it printed is over the limit (how much 4 scenes and 6
    # calibration scenes lose is the quantization's business; test_int8_detects_what_fp32_detects checks answers)
    assert status == (1 if _printed_drop(out) > 1.0 else 0), out
    # and it does fail: the same comparison with a limit below any drop
    assert evaluate.main(["--model-dir", int8_demo, "--compare-to", demo_model_dir, "--count", "4",
                          "--max-drop", "-1000"]) == 1
    assert "more than the allowed -1000.00" in capsys.readouterr().err


def _printed_drop(out):
    import re
    return float(re.search(r"drop_points=(-?[0-9.]+)", out).group(1))


def test_old_mxnet_refuses_int8_at_start_with_a_reason(demo_model_dir, tmp_path, monkeypatch):
    # What the EI image (MXNet 1.4.1) does with an int8 model: refuse at the preflight, say why.
    model = int8_copy_of(demo_model_dir, str(tmp_path / "int8"))
    monkeypatch.setattr(precision, "mxnet_version", lambda: (1, 4))
    from ssd_serving.startup import preflight
    settings = Environment({"SSD_MODEL_DIR": model, "SAGEMAKER_BASE_DIR": str(tmp_path / "no-opt-ml")})
    with pytest.raises(ModelLoadError, match="MXNet >= 1.9"):
        preflight(settings)


@pytest.mark.skipif(ON_MXNET_19, reason="this MXNet runs int8; the refusal is tested with a patched version")
def test_server_on_this_mxnet_refuses_int8(demo_model_dir, tmp_path):
    running = RunningServer(int8_copy_of(demo_model_dir, str(tmp_path / "int8")))
    try:
        assert running.process.wait(120) != 0
        assert "not starting" in running.output() and "int8" in running.output()
        assert "MXNet %s cannot run the int8 graph" % mx.__version__ in running.output()
    finally:
        running.stop()


def _assert_fused_on_cpu_exactly_with_onednn():
    from ssd_serving import model as model_module
    meta = {"precision": "fp32"}
    assert model_module.fuses_graph(meta, "cpu") == ONEDNN
    assert not model_module.fuses_graph(meta, "gpu") and not model_module.fuses_graph({"precision": "int8"}, "cpu")


@needs_mxnet_19
def test_the_fusion_check_fails_when_reading_mxnets_features_fails(monkeypatch):
    """precision.onednn_enabled() says False when MXNet's runtime features raise; compared with itself, as this
    check once was, that passed. Against what the test reads from MXNet, it fails."""
    def broken(*args, **kwargs):
        raise RuntimeError("no runtime features")
    monkeypatch.setattr(mx.runtime, "Features", broken)
    with pytest.raises(AssertionError):
        _assert_fused_on_cpu_exactly_with_onednn()


def test_fp32_graph_is_fused_only_on_cpu_with_onednn(demo_model_dir):
    from ssd_serving import model as model_module
    _assert_fused_on_cpu_exactly_with_onednn()
    meta = {"precision": "fp32"}
    assert not model_module.fuses_graph(meta, "cpu", fusion=False)
    rgb, _, _ = synthetic_scene(31, 640, 480)
    fused = load_detector(demo_model_dir, Environment({"SSD_GRAPH_FUSION": "1"}))
    unfused = load_detector(demo_model_dir, Environment({"SSD_GRAPH_FUSION": "0"}))
    np.testing.assert_allclose(unfused.raw_outputs(rgb)[1], fused.raw_outputs(rgb)[1], rtol=1e-3, atol=1e-4)


@pytest.fixture(scope="module")
def fp32_with_int8(int8_demo, demo_model_dir, tmp_path_factory):
    """What the cpu image bakes: the fp32 export with its int8 quantization in int8/."""
    root = copy_model(demo_model_dir, str(tmp_path_factory.mktemp("both") / "model"))
    copy_model(int8_demo, os.path.join(root, precision.INT8_SUBDIR))
    return root


@needs_mxnet_19
@pytest.mark.parametrize("flags, setting, expected", [
    ({"avx2", "avx512_vnni"}, "auto", "int8"),
    ({"avx2"}, "auto", "fp32"),
    ({"avx2", "avx512_vnni"}, "fp32", "fp32"),
    ({"avx2"}, "int8", "int8"),
])
def test_the_cpu_decides_which_graph_loads(fp32_with_int8, monkeypatch, flags, setting, expected):
    # The CPU's flags are patched: this machine's own are whatever CI runs on (no VNNI on some).
    monkeypatch.setattr(precision, "cpu_flags", lambda: set(flags))
    monkeypatch.setenv("SSD_PRECISION", setting)
    detector = load_detector(fp32_with_int8, warm_up=False)
    assert detector.info["precision"] == expected == precision.graph_precision(detector.meta)
    rgb, boxes, class_ids = synthetic_scene(4242, 640, 480)
    assert_scene_detected(boxes, class_ids, detector.detect(rgb, threshold=0.2), detector.classes)


@needs_mxnet_19
def test_server_says_which_graph_and_why_and_answers_with_it(fp32_with_int8):
    running = RunningServer(fp32_with_int8, extra_env={"SSD_PRECISION": "int8"})
    try:
        running.wait_ready()
        rgb, _, _ = synthetic_scene(77, 640, 480)
        reply = running.post(encode(rgb, "PNG"), content_type="image/png")
        assert reply.status_code == 200 and reply.json()["model"]["precision"] == "int8"
        assert "serving the int8 graph: SSD_PRECISION=int8" in running.output()
    finally:
        running.stop()


def test_builtin_photos_are_taken_out_of_the_wheels_as_the_image_build_does(tmp_path):
    # The build downloads the matplotlib and scikit-image wheels and unpacks only their photos (a Python 3.8
    # base cannot install those wheels); here the wheels are zipped from the installed packages' files.
    import zipfile
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    installed = dict(quantize.builtin_photos())
    assert {"grace_hopper", "astronaut"} <= set(installed)
    for package, names in (("matplotlib", ["grace_hopper"]), ("skimage", ["astronaut", "chelsea"])):
        with zipfile.ZipFile(str(wheels / ("%s-0-py3-none-any.whl" % package)), "w") as archive:
            for name, owner, inner in quantize.BUILTIN_PHOTOS:
                if name in names:
                    archive.write(installed[name], "%s/%s" % (owner, inner))
            archive.writestr("%s/__init__.py" % package, "")
    written = quantize.extract_builtin_photos(str(wheels), str(tmp_path / "photos"))
    assert sorted(os.path.basename(p) for p in written) == ["astronaut.png", "chelsea.png", "grace_hopper.jpg"]
    with open(installed["grace_hopper"], "rb") as stream:
        assert open(str(tmp_path / "photos" / "grace_hopper.jpg"), "rb").read() == stream.read()
    images, described = quantize.calibration_images(str(tmp_path / "photos"), scenes=2)
    assert described["count"] == 5 and described["photos"] == ["astronaut.png", "chelsea.png", "grace_hopper.jpg"]


@needs_mxnet_19
def test_the_accuracy_check_compares_against_fp32_even_on_a_vnni_cpu(fp32_with_int8, int8_demo, monkeypatch, capsys):
    # The image build runs this check; on a VNNI build host SSD_PRECISION=auto would pick the int8/ graph
    # of the reference folder, and int8 would be compared with itself.
    from ssd_tools.demo import evaluate
    monkeypatch.setattr(precision, "cpu_flags", lambda: {"avx2", "avx512_vnni"})
    status = evaluate.main(["--model-dir", int8_demo, "--compare-to", fp32_with_int8, "--count", "2",
                            "--max-drop", "1.0"])
    out = capsys.readouterr().out
    assert status == (1 if _printed_drop(out) > 1.0 else 0), out
    lines = [line for line in out.splitlines() if line.startswith("model ")]
    assert [line.split()[2] for line in lines] == ["int8", "fp32"], lines
