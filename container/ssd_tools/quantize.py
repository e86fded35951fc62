"""int8 quantization of an exported SSD for the CPU target (MXNet >= 1.9 with oneDNN), calibrated on real images."""
from __future__ import absolute_import

import glob
import json
import logging
import os
import shutil
import tempfile

import mxnet as mx
import numpy as np

from ssd_serving import artifact
from ssd_serving.errors import ModelLoadError
from ssd_serving.precision import MIN_MXNET, int8_support_problem
from ssd_serving.artifact import file_sha256
from ssd_serving.transforms import ssd_val_transform

LOG = logging.getLogger(__name__)

BUILTIN = "builtin"
# Synthetic scenes for calibration come from their own seed: neither the demo model's training seed
# (7) nor its held-out evaluation seed (1234), so the accuracy check stays honest.
CALIBRATION_SCENE_SEED = 4321
DEFAULT_SCENES = 24
DEFAULT_CALIB_MODE = "naive"
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm")


# Real photos that ship inside the matplotlib and scikit-image wheels: (name, package, path in the package).
BUILTIN_PHOTOS = [("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg")] + [
    (os.path.splitext(name)[0], "skimage", "data/" + name)
    for name in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                 "motorcycle_right.png", "horse.png")]


def builtin_photos():
    """(name, path) of the BUILTIN_PHOTOS whose package is installed here."""
    found = []
    for name, package, inner in BUILTIN_PHOTOS:
        try:
            module = __import__(package)
        except ImportError:
            continue
        path = os.path.join(os.path.dirname(module.__file__), *inner.split("/"))
        if os.path.isfile(path):
            found.append((name, path))
    return found


def extract_builtin_photos(wheel_dir, out_dir):
    """Copy the BUILTIN_PHOTOS out of downloaded matplotlib/scikit-image wheels into `out_dir`; returns their paths.

    The image build calibrates this way on any base: those wheels need a newer Python than some of AWS's
    images have (3.8), but their photos are plain files.
    """
    import zipfile
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
    written = []
    for wheel in sorted(glob.glob(os.path.join(wheel_dir, "*.whl"))):
        with zipfile.ZipFile(wheel) as archive:
            members = set(archive.namelist())
            for name, package, inner in BUILTIN_PHOTOS:
                member = "%s/%s" % (package, inner)
                if member in members:
                    target = os.path.join(out_dir, name + os.path.splitext(inner)[1])
                    with open(target, "wb") as stream:
                        stream.write(archive.read(member))
                    written.append(target)
    return written


def _read_rgb(path):
    from PIL import Image
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def calibration_images(source=BUILTIN, scenes=DEFAULT_SCENES, max_photos=None):
    """(images, description): RGB arrays to calibrate on and what they were, for the metadata.

    `source` is "builtin" (the wheels' real photos plus synthetic scenes of the demo kind) or a
    directory of images (your own, from the domain the model will see; scenes are then added only
    when `scenes` is set explicitly).
    """
    images, photos = [], []
    if source == BUILTIN:
        paths = builtin_photos()
    else:
        if not os.path.isdir(source):
            raise ValueError("calibration images: %s is not a directory (or pass %r)" % (source, BUILTIN))
        paths = [(os.path.basename(p), p) for p in sorted(glob.glob(os.path.join(source, "*")))
                 if p.lower().endswith(IMAGE_EXTENSIONS)]
        if not paths:
            raise ValueError("calibration images: no images (%s) in %s" % (", ".join(IMAGE_EXTENSIONS), source))
    if max_photos is not None:
        paths = paths[:max_photos]
    for name, path in paths:
        images.append(_read_rgb(path))
        photos.append(name)
    scene_count = int(scenes or 0)
    if scene_count:
        from .demo import scenes as scene_module
        for index in range(scene_count):
            rgb, _, _ = scene_module.scene_at(CALIBRATION_SCENE_SEED, index)
            images.append(rgb)
    if not images:
        raise ValueError("no calibration images: install matplotlib or scikit-image for the builtin photos, "
                         "pass a directory, or add synthetic scenes")
    description = {"source": source if source == BUILTIN else os.path.abspath(source), "photos": photos,
                   "synthetic_scenes": {"count": scene_count, "seed": CALIBRATION_SCENE_SEED} if scene_count else None,
                   "count": len(images)}
    return images, description


def _excluded_layers(symbol):
    """Layers that stay fp32: the concats over the last axis (anchors, box corners) that assemble
    the detection head's outputs; oneDNN's int8 concat only joins channels, and these carry
    coordinates, where int8 steps would move boxes."""
    excluded = []
    for node in json.loads(symbol.tojson())["nodes"]:
        attrs = node.get("attrs", node.get("param", {})) or {}
        if node["op"] == "Concat" and str(attrs.get("dim", "1")) == "-1":
            excluded.append(node["name"])
    return excluded


def quantize_exported(model_dir, out_dir, calibration=BUILTIN, scenes=DEFAULT_SCENES,
                      calib_mode=DEFAULT_CALIB_MODE, max_photos=None):
    """Quantize the fp32 model exported in `model_dir` to int8 in `out_dir`; returns the new metadata."""
    problem = int8_support_problem()
    if problem:
        raise ModelLoadError(problem)
    from mxnet.contrib import quantization

    meta = artifact.read_metadata(model_dir)
    if meta.get("precision", "fp32") != "fp32":
        raise ValueError("%s is already %s; quantize an fp32 export" % (model_dir, meta.get("precision")))
    width, height = int(meta["input_width"]), int(meta["input_height"])
    symbol = mx.sym.load(os.path.join(model_dir, meta.get("symbol_file", artifact.SYMBOL_FILE)))
    saved = mx.nd.load(os.path.join(model_dir, meta.get("params_file", artifact.PARAMS_FILE)))
    args = dict((k[4:], v) for k, v in saved.items() if k.startswith("arg:"))
    auxs = dict((k[4:], v) for k, v in saved.items() if k.startswith("aux:"))
    if not args:  # a plain Gluon save (no arg:/aux: prefixes): split by the graph's own lists
        aux_names = set(symbol.list_auxiliary_states())
        args = dict((k, v) for k, v in saved.items() if k not in aux_names)
        auxs = dict((k, v) for k, v in saved.items() if k in aux_names)
    excluded = _excluded_layers(symbol)

    images, described = calibration_images(calibration, scenes, max_photos)
    batch = np.concatenate([ssd_val_transform(rgb, width, height, meta["mean"], meta["std"]).asnumpy()
                            for rgb in images])
    LOG.info("calibrating int8 (%s) on %d images: %s", calib_mode, len(images), described)
    fused = symbol.get_backend_symbol("MKLDNN_QUANTIZE")
    qsym, qargs, qauxs, collector = quantization.quantize_graph(
        sym=fused, arg_params=args, aux_params=auxs, ctx=mx.cpu(), excluded_sym_names=excluded,
        calib_mode=calib_mode, quantized_dtype="auto", quantize_mode="smart")
    module = mx.mod.Module(symbol=fused, context=mx.cpu(), data_names=[meta.get("input_name", "data")],
                           label_names=None)
    module.bind(for_training=False, data_shapes=[(meta.get("input_name", "data"), (1, 3, height, width))])
    module.set_params(args, auxs, allow_missing=False, force_init=True)
    data = mx.io.NDArrayIter(data={meta.get("input_name", "data"): batch}, batch_size=1)
    quantization._collect_layer_statistics(module, data, collector, len(images), None)
    qsym, qargs, qauxs = quantization.calib_graph(qsym=qsym, arg_params=args, aux_params=auxs,
                                                  collector=collector, calib_mode=calib_mode,
                                                  quantized_dtype="auto", logger=None)
    qsym = qsym.get_backend_symbol("MKLDNN_QUANTIZE")

    staging = tempfile.mkdtemp(prefix="ssd-int8-")
    try:
        mx.model.save_checkpoint(os.path.join(staging, artifact.PREFIX), 0, qsym, qargs, qauxs)
        int8_meta = dict(meta)
        int8_meta.update({
            "precision": "int8",
            "params_sha256": file_sha256(os.path.join(staging, artifact.PARAMS_FILE)),
            "quantization": {
                "tool": "mxnet.contrib.quantization (oneDNN, MKLDNN_QUANTIZE)",
                "mxnet": mx.__version__,
                "quantized_dtype": "auto",
                "quantize_mode": "smart",
                "calib_mode": calib_mode,
                "calibration": described,
                "fp32_excluded": excluded,
                "fp32_params_sha256": meta.get("params_sha256"),
                "requires": "MXNet >= %d.%d with oneDNN, CPU" % MIN_MXNET,
            },
        })
        with open(os.path.join(staging, artifact.META_FILE), "w") as stream:
            json.dump(int8_meta, stream, indent=2, sort_keys=True)
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        parent = os.path.dirname(os.path.abspath(out_dir))
        if not os.path.isdir(parent):
            os.makedirs(parent)
        # a new folder, not a copy of the staging one, whose mkdtemp mode (0700) would hide the graph from
        # a server running as another user (the image's model-server)
        os.makedirs(out_dir)
        for name in os.listdir(staging):
            shutil.copyfile(os.path.join(staging, name), os.path.join(out_dir, name))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    LOG.info("wrote the int8 model to %s (fp32 layers kept: %s)", out_dir, ", ".join(excluded) or "none")
    return int8_meta
