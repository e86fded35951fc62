"""The int8 accuracy check (ssd_tools/int8_check.py) and its fallback: damaged int8 graphs refused and then not
served by SSD_PRECISION=auto, a good one passing, bad check input refused with nothing written."""
import json
import os
import shutil

import numpy as np
import pytest

from helpers import RunningServer, copy_model, encode, synthetic_scene
from ssd_serving import precision

CAN_RUN_INT8 = precision.int8_support_problem() is None
needs_int8 = pytest.mark.skipif(not CAN_RUN_INT8, reason="int8 needs MXNet >= 1.9 with oneDNN")
VNNI = {"avx2", "avx512f", "avx512_vnni"}
# small enough for CI, large enough for the drops below to stand out; the floor is lowered to match
SCENES = 60
FLOOR = 50
# a head convolution: the class scores of the largest feature map; its consumers stay fp32
HEAD_CONV = "sg_mkldnn_conv_4"


@pytest.fixture(scope="module")
def calibrated(demo_model_dir):
    if not CAN_RUN_INT8:
        pytest.skip(precision.int8_support_problem())
    from ssd_tools import quantize
    images, described = quantize.calibration_images("builtin", 8, held_out=quantize.BUILTIN_CHECK_PHOTOS,
                                                    target_size=(256, 256))
    return quantize.Calibrated(demo_model_dir, images, described, "naive")


@pytest.fixture(scope="module")
def reference(demo_model_dir, calibrated):
    from ssd_tools import int8_check
    return int8_check.Reference(demo_model_dir, int8_check.demo_scene_set(count=SCENES))


def _check(reference, folder, **limits):
    from ssd_tools import int8_check
    limits.setdefault("min_images", FLOOR)
    return int8_check.run_check(reference, folder, **limits)


def _write_with(calibrated, folder, thresholds=None, weights=None):
    """An int8 graph of the demo model, optionally damaged: other calibration thresholds, or a change to its
    quantized weights (`weights(name, array) -> array`)."""
    import mxnet as mx
    from ssd_serving import artifact
    kept = calibrated.thresholds
    if thresholds is not None:
        calibrated.thresholds = thresholds
    try:
        meta = calibrated.write(folder)
    finally:
        calibrated.thresholds = kept
    if weights is not None:
        prefix = os.path.join(folder, artifact.PREFIX)
        symbol, args, auxs = mx.model.load_checkpoint(prefix, 0)
        nodes = json.loads(symbol.tojson())["nodes"]
        head = [n for n in nodes if n["name"] == "quantized_" + HEAD_CONV][0]
        head_params = set(nodes[i[0]]["name"] for i in head["inputs"])
        args = dict((name, weights(name, value) if name in head_params else value) for name, value in args.items())
        mx.model.save_checkpoint(prefix, 0, symbol, args, auxs)
        meta["params_sha256"] = artifact.file_sha256(os.path.join(folder, artifact.PARAMS_FILE))
        with open(os.path.join(folder, artifact.META_FILE), "w") as stream:
            json.dump(meta, stream)
    return folder


def _scaled(thresholds, factor, only=None):
    return dict((name, (low * factor, high * factor) if only is None or name == only else (low, high))
                for name, (low, high) in thresholds.items())


def _negated_head_weights(name, value):
    import mxnet as mx
    if name.endswith("weight"):
        return mx.nd.array(-value.asnumpy().astype(np.float32), dtype=value.dtype)
    return value


DAMAGE = {
    # every layer's calibrated range cut to a tenth: activations clip
    "ranges cut to a tenth": lambda c, folder: _write_with(c, folder, thresholds=_scaled(c.thresholds, 0.1)),
    # one head layer's range cut to 2%: its class scores clip
    "one head layer's range cut": lambda c, folder: _write_with(
        c, folder, thresholds=_scaled(c.thresholds, 0.02, only=HEAD_CONV + "_output")),
    # the quantized weights of a head layer negated
    "head weights negated": lambda c, folder: _write_with(c, folder, weights=_negated_head_weights),
}


@needs_int8
def test_a_good_int8_graph_passes_and_records_what_it_was_checked_on(calibrated, reference, tmp_path):
    record = _check(reference, _write_with(calibrated, str(tmp_path / "good")))
    assert record["passed"], record
    assert record["metric"] == "voc07_map_drop" and record["value"] <= 1.0 and record["limit"] == 1.0
    assert record["images"]["count"] == SCENES and len(record["images"]["sha256"]) == 64
    assert record["fp32_params_sha256"] == calibrated.meta["params_sha256"]
    assert set(record["per_class"]) == {"circle", "square", "triangle", "star"}
    assert record["per_class_worst"]["class"] in record["per_class"]
    assert "mxnet" in record["tools"]


@needs_int8
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_int8_graph_is_refused_and_then_not_served_by_auto(calibrated, reference, demo_model_dir,
                                                                      tmp_path, damage):
    from ssd_serving import artifact
    int8_dir = DAMAGE[damage](calibrated, str(tmp_path / "damaged"))
    record = _check(reference, int8_dir)
    assert not record["passed"] and record["value"] > 1.0, record
    assert "mAP drop" in record["reason"]
    # the model folder that carries it, with the failed check recorded as the export writes it
    root = copy_model(demo_model_dir, str(tmp_path / "model"))
    shutil.copytree(int8_dir, os.path.join(root, "int8"))
    meta = artifact.read_metadata(os.path.join(root, "int8"))
    meta["accuracy_check"] = record
    with open(os.path.join(root, "int8", artifact.META_FILE), "w") as stream:
        json.dump(meta, stream)
    choice = precision.choose(root, artifact.read_metadata(root), "auto", "cpu", VNNI)
    assert choice.precision == "fp32" and "failed its accuracy check" in choice.reason
    forced = precision.choose(root, artifact.read_metadata(root), "int8", "cpu", VNNI)
    assert forced.precision == "int8" and "failed its accuracy check" in forced.warning


@needs_int8
def test_an_agreement_check_without_labels_tells_good_from_damaged(calibrated, reference, tmp_path):
    from ssd_tools import int8_check
    unlabelled = int8_check.CheckSet("unlabelled", [int8_check.CheckImage(i.name, i.load, i.digest)
                                                    for i in reference.check_set.images])
    blind = int8_check.Reference.__new__(int8_check.Reference)
    blind.__dict__.update(reference.__dict__, check_set=unlabelled)
    good = _check(blind, _write_with(calibrated, str(tmp_path / "good")), min_boxes=50)
    bad = _check(blind, DAMAGE["ranges cut to a tenth"](calibrated, str(tmp_path / "bad")), min_boxes=50)
    assert good["metric"] == bad["metric"] == "fp32_agreement_ap"
    assert good["passed"] and not bad["passed"], (good, bad)
    assert good["value"] > bad["value"] and good["fp32_box_recall"] > bad["fp32_box_recall"]


@needs_int8
def test_a_check_on_too_few_images_does_not_count(calibrated, reference, tmp_path):
    record = _check(reference, _write_with(calibrated, str(tmp_path / "good")), min_images=SCENES + 1)
    assert not record["passed"] and "fewer than the %d" % (SCENES + 1) in record["reason"]


@needs_int8
def test_the_fallback_keeps_the_damaged_layer_in_fp32_until_the_check_passes(calibrated, reference, tmp_path):
    from ssd_tools import quantize
    damaged = _scaled(calibrated.thresholds, 0.02, only=HEAD_CONV + "_output")
    kept = calibrated.thresholds
    calibrated.thresholds = damaged
    try:
        work = str(tmp_path / "work")
        os.makedirs(work)
        first = os.path.join(work, "try-0")
        meta = calibrated.write(first)
        options = quantize.CheckOptions(min_images=FLOOR, tries=3, budget_seconds=600)
        folder, meta = quantize._check_and_fall_back(calibrated, reference.check_set, options, work, first, meta,
                                                     __import__("time").time())
    finally:
        calibrated.thresholds = kept
    record = meta["accuracy_check"]
    assert record["passed"], record
    tries = record["fallback"]["tries"]
    assert not tries[0]["passed"] and tries[-1]["passed"] and len(tries) <= 4
    kept_layers = [k["layer"] for k in meta["quantization"]["fp32_kept_by_fallback"]]
    assert HEAD_CONV in kept_layers and HEAD_CONV in meta["quantization"]["fp32_excluded"]
    assert all("NMSE" in k["why"] for k in meta["quantization"]["fp32_kept_by_fallback"])
    assert record["fallback"]["ranking"]["layers"][0][0] == HEAD_CONV


def test_calibration_preprocessing_is_the_serving_preprocessing(demo_model_dir, photos):
    # calibration decodes with the server's decoder and transforms with ssd_serving.transforms, as a request is
    from ssd_serving.decoder import decode_image
    from ssd_serving.model import load_detector
    from ssd_tools import quantize
    path = photos["grace_hopper"]
    images, _ = quantize.calibration_images(os.path.dirname(path), scenes=0, paths=[path], target_size=(256, 256))
    with open(path, "rb") as stream:
        served = decode_image(stream.read(), (256, 256)).rgb
    np.testing.assert_array_equal(images[0], served)
    detector = load_detector(demo_model_dir, warm_up=False)
    batch = quantize.calibration_batch(images, detector.meta)
    np.testing.assert_array_equal(batch[0], detector.preprocess(served.copy()).asnumpy()[0])


# --- the export command: check by default, table, skip flag, bad input --------------------------------------

def _scene_folder(folder, seed, count, labels=True, xml_for=None):
    """Synthetic scenes as PNG files, with VOC XML labels beside them."""
    from ssd_tools.demo import scenes
    os.makedirs(folder)
    for index in range(count):
        rgb, boxes, ids = scenes.scene_at(seed, index)
        name = "scene%03d" % index
        with open(os.path.join(folder, name + ".png"), "wb") as stream:
            stream.write(encode(rgb, "PNG"))
        if labels and (xml_for is None or index in xml_for):
            objects = "".join(
                "<object><name>%s</name><bndbox><xmin>%d</xmin><ymin>%d</ymin><xmax>%d</xmax><ymax>%d</ymax>"
                "</bndbox></object>" % (scenes.CLASSES[c], b[0] + 1, b[1] + 1, b[2], b[3]) for b, c in zip(boxes, ids))
            with open(os.path.join(folder, name + ".xml"), "w") as stream:
                stream.write("<annotation><filename>%s.png</filename>%s</annotation>" % (name, objects))
    return folder


def _coco_labels(folder, seed, count, path, drop=()):
    """COCO JSON labels for the scenes _scene_folder wrote (`drop`: indices of images to list but not have)."""
    from ssd_tools.demo import scenes
    images, annotations = [], []
    for index in range(count):
        _, boxes, ids = scenes.scene_at(seed, index)
        images.append({"id": index, "file_name": "scene%03d.png" % index})
        for box, cls in zip(boxes, ids):
            annotations.append({"id": len(annotations), "image_id": index, "category_id": int(cls) + 1, "iscrowd": 0,
                                "bbox": [float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])]})
    for index in drop:
        os.remove(os.path.join(folder, "scene%03d.png" % index))
    with open(path, "w") as stream:
        json.dump({"images": images, "annotations": annotations,
                   "categories": [{"id": i + 1, "name": name} for i, name in enumerate(scenes.CLASSES)]}, stream)
    return path


@needs_int8
def test_export_checks_on_coco_labels(demo_model_dir, tmp_path, capsys):
    check = _scene_folder(str(tmp_path / "check"), 778, 12, labels=False)
    labels = _coco_labels(check, 778, 12, str(tmp_path / "instances.json"))
    out = str(tmp_path / "int8")
    status, _, stderr = _export(["--from-export", demo_model_dir, "--out", out, "--calibration-scenes", "8",
                                 "--check-images", check, "--check-labels", labels, "--min-check-images", "10"], capsys)
    assert status == 0, stderr
    record = json.load(open(os.path.join(out, "model-meta.json")))["accuracy_check"]
    assert record["passed"] and record["metric"] == "voc07_map_drop" and record["images"]["count"] == 12
    assert record["fp32_map"] > 80 and "COCO labels" in record["images"]["source"]


def _export(args, capsys):
    from ssd_tools import export
    try:
        export.main(["--quantize", "int8"] + args)
        status = 0
    except SystemExit as exit:
        status = exit.code
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@needs_int8
def test_export_checks_on_labelled_images_by_default_and_prints_a_table(demo_model_dir, tmp_path, capsys):
    check = _scene_folder(str(tmp_path / "check"), 777, 12)
    out = str(tmp_path / "int8")
    status, stdout, stderr = _export(["--from-export", demo_model_dir, "--out", out, "--calibration-scenes", "8",
                                      "--check-images", check, "--min-check-images", "10"], capsys)
    assert status == 0, stderr
    meta = json.load(open(os.path.join(out, "model-meta.json")))
    record = meta["accuracy_check"]
    assert record["passed"] and record["metric"] == "voc07_map_drop" and record["images"]["count"] == 12
    assert record["images"]["labelled"] and record["int8_params_sha256"] == meta["params_sha256"]
    assert "int8 accuracy check on 12 images" in stderr and "drop[" in stderr and "PASSED" in stderr


@needs_int8
def test_export_with_skip_check_records_it_and_auto_does_not_serve_it(demo_model_dir, tmp_path, capsys):
    root = copy_model(demo_model_dir, str(tmp_path / "model"))
    status, _, stderr = _export(["--from-export", demo_model_dir, "--out", os.path.join(root, "int8"),
                                 "--calibration-scenes", "4", "--skip-check"], capsys)
    assert status == 0, stderr
    meta = json.load(open(os.path.join(root, "int8", "model-meta.json")))
    assert meta["accuracy_check"]["skipped"] and not meta["accuracy_check"]["passed"]
    from ssd_serving import artifact
    choice = precision.choose(root, artifact.read_metadata(root), "auto", "cpu", VNNI)
    assert choice.precision == "fp32" and "skipped" in choice.reason


@needs_int8
def test_a_users_folder_is_split_into_calibration_and_check_images_and_too_few_do_not_pass(
        demo_model_dir, tmp_path, capsys):
    from ssd_tools import int8_check
    folder = _scene_folder(str(tmp_path / "mine"), 555, 12, labels=False)
    paths = int8_check.image_files(folder)
    calibration, check = int8_check.split_folder(paths)
    assert calibration and check and not set(calibration) & set(check)
    # deterministic, and adding an image moves no other one
    assert int8_check.split_folder(list(reversed(paths)))[1] == list(reversed(check))
    assert set(check) <= set(int8_check.split_folder(paths + [os.path.join(folder, "zzz.png")])[1])
    out = str(tmp_path / "int8")
    status, _, stderr = _export(["--from-export", demo_model_dir, "--out", out, "--calibration-images", folder],
                                capsys)
    assert status == 3 and "failed its accuracy check" in stderr, stderr
    record = json.load(open(os.path.join(out, "model-meta.json")))["accuracy_check"]
    assert record["metric"] == "fp32_agreement_ap" and record["images"]["count"] == len(check)
    assert not record["passed"] and "fewer than the" in record["reason"]
    assert record["fallback"]["stopped"].startswith("not tried")
    calibrated_on = json.load(open(os.path.join(out, "model-meta.json")))["quantization"]["calibration"]["photos"]
    assert sorted(calibrated_on) == sorted(os.path.basename(p) for p in calibration)


@pytest.mark.parametrize("problem, message", [
    ("labels missing", "have VOC XML labels and 2 do not"),
    ("unknown class", "which the model does not have"),
    ("empty folder", "no images"),
    ("undecodable image", "cannot be decoded"),
    ("check images calibrated on", "also calibration images"),
    ("coco labels list a missing image", "the labels do not match the images"),
    ("unreadable folder", "cannot be read by this user"),
])
def test_bad_check_input_gets_a_clear_error_and_writes_nothing(demo_model_dir, tmp_path, capsys, monkeypatch,
                                                               problem, message):
    if not CAN_RUN_INT8:
        pytest.skip(precision.int8_support_problem())
    check = str(tmp_path / "check")
    calibration = "builtin"
    extra = []
    if problem == "labels missing":
        _scene_folder(check, 777, 4, xml_for={0, 1})
    elif problem == "unknown class":
        _scene_folder(check, 777, 2)
        xml = os.path.join(check, "scene000.xml")
        text = open(xml).read().replace("<name>", "<name>x", 1)
        open(xml, "w").write(text)
    elif problem == "empty folder":
        os.makedirs(check)
    elif problem == "undecodable image":
        _scene_folder(check, 777, 2, labels=False)
        with open(os.path.join(check, "broken.jpg"), "wb") as stream:
            stream.write(b"\xff\xd8\xff\xe0 not a jpeg")
    elif problem == "unreadable folder":
        # tests run as root, who reads any folder: os.access answers as another user would for a 0700 folder
        from ssd_tools import int8_check
        _scene_folder(check, 777, 2)
        real_access = os.access
        monkeypatch.setattr(int8_check.os, "access", lambda path, mode: path != check and real_access(path, mode))
    elif problem == "coco labels list a missing image":
        _scene_folder(check, 777, 3, labels=False)
        extra = ["--check-labels", _coco_labels(check, 777, 3, str(tmp_path / "coco.json"), drop=[1])]
    else:
        _scene_folder(check, 777, 3, labels=False)
        calibration = check
    out = str(tmp_path / "model" / "int8")
    status, _, stderr = _export(["--from-export", demo_model_dir, "--out", out, "--calibration-scenes", "2",
                                 "--calibration-images", calibration, "--check-images", check,
                                 "--min-check-images", "1"] + extra, capsys)
    assert status == 2 and message in stderr, stderr
    assert not os.path.exists(out)
    parent = os.path.dirname(out)
    assert not os.path.isdir(parent) or not os.listdir(parent), os.listdir(parent)


@needs_int8
def test_a_model_tar_gz_with_an_unchecked_int8_folder_on_a_vnni_cpu_is_answered_in_fp32_saying_why(
        demo_model_dir, tmp_path, capsys):
    # The real server and its workers, with CPU flags that say VNNI: a sitecustomize on PYTHONPATH patches
    # precision.cpu_flags in every Python process the server starts, as the in-process tests patch it. The
    # model comes as SageMaker gives it: a model.tar.gz unpacked into /opt/ml/model (SAGEMAKER_BASE_DIR here).
    import tarfile
    root = copy_model(demo_model_dir, str(tmp_path / "model"))
    status, _, stderr = _export(["--from-export", demo_model_dir, "--out", os.path.join(root, "int8"),
                                 "--calibration-scenes", "4", "--skip-check"], capsys)
    assert status == 0, stderr
    meta_path = os.path.join(root, "int8", "model-meta.json")
    meta = json.load(open(meta_path))
    del meta["accuracy_check"]  # made before checks existed, or by hand
    json.dump(meta, open(meta_path, "w"))
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "try:\n"
        "    from ssd_serving import precision\n"
        "    precision.cpu_flags = lambda path=None: {'avx2', 'avx512f', 'avx512_vnni'}\n"
        "except ImportError:\n"
        "    pass\n")
    archive = str(tmp_path / "model.tar.gz")
    with tarfile.open(archive, "w:gz") as tar:
        for name in sorted(os.listdir(root)):
            tar.add(os.path.join(root, name), arcname=name)
    opt_ml = tmp_path / "opt-ml"
    (opt_ml / "model").mkdir(parents=True)
    with tarfile.open(archive) as tar:
        tar.extractall(str(opt_ml / "model"))
    pythonpath = os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p)
    running = RunningServer(demo_model_dir, extra_env={"SSD_PRECISION": "auto", "PYTHONPATH": pythonpath,
                                                       "SAGEMAKER_BASE_DIR": str(opt_ml)})
    try:
        running.wait_ready()
        rgb, _, _ = synthetic_scene(77, 640, 480)
        reply = running.post(encode(rgb, "PNG"), content_type="image/png")
        assert reply.status_code == 200 and reply.json()["model"]["precision"] == "fp32"
        log = running.output()
        assert "serving the fp32 graph: SSD_PRECISION=auto and this CPU has int8 dot-product instructions " \
               "(avx512_vnni)" in log, log[-3000:]
        assert "the int8 graph in %s is not served: its model-meta.json records no accuracy check" % os.path.join(
            str(opt_ml), "model", "int8") in log, log[-3000:]
        assert "ssd_tools.export --quantize int8" in log
    finally:
        running.stop()


@needs_int8
def test_builtin_calibration_of_a_model_that_is_not_the_demo_says_so_loudly_and_is_too_few_to_pass(
        demo_model_dir, tmp_path, capsys):
    other = copy_model(demo_model_dir, str(tmp_path / "fp32"), demo=False, model_name="ssd_256_my_shapes")
    out = str(tmp_path / "int8")
    status, _, stderr = _export(["--from-export", other, "--out", out, "--calibration-scenes", "4"], capsys)
    assert "CALIBRATED ON GENERIC PHOTOS" in stderr and "CALIBRATION_IMAGES" in stderr, stderr
    record = json.load(open(os.path.join(out, "model-meta.json")))["accuracy_check"]
    assert record["metric"] == "fp32_agreement_ap" and "builtin held-out photos" in record["images"]["source"]
    assert status == 3 and not record["passed"] and "fewer than the" in record["reason"]
