"""int8 quantization of an exported SSD for the CPU target (MXNet >= 1.9 with oneDNN), calibrated on real images."""
from __future__ import absolute_import

import glob
import json
import logging
import os
import shutil
import tempfile
import time

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
CALIB_MODES = ("naive", "entropy")
# chosen by measurement on the demo model (docs/int8.md)
DEFAULT_CALIB_MODE = "naive"
# the fallback (layers kept in fp32 until the accuracy check passes) tries at most this often, within this time
DEFAULT_FALLBACK_TRIES = 5
DEFAULT_FALLBACK_SECONDS = 1800
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm")


# Real photos that ship inside the matplotlib and scikit-image wheels: (name, package, path in the package).
BUILTIN_PHOTOS = [("grace_hopper", "matplotlib", "mpl-data/sample_data/grace_hopper.jpg")] + [
    (os.path.splitext(name)[0], "skimage", "data/" + name)
    for name in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                 "motorcycle_right.png", "horse.png", "camera.png")]
# Held out from calibration for the accuracy check of a model that is not the demo (int8_check): photos with
# people, a cat and a motorbike, which a VOC detector finds.
BUILTIN_CHECK_PHOTOS = ("grace_hopper", "chelsea", "motorcycle_right", "camera")


def builtin_photos(folder=None):
    """(name, path) of the BUILTIN_PHOTOS whose package is installed here, or that `folder` holds (where the image
    build extracts them from the wheels: extract_builtin_photos)."""
    found = []
    for name, package, inner in BUILTIN_PHOTOS:
        if folder:
            path = os.path.join(folder, name + os.path.splitext(inner)[1])
            if os.path.isfile(path):
                found.append((name, path))
            continue
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


def _read_rgb(path, target_size=None):
    """The image as the server decodes it (EXIF rotation, modes, reduced-scale JPEG decoding)."""
    from ssd_serving.decoder import decode_image
    with open(path, "rb") as stream:
        return decode_image(stream.read(), target_size).rgb


def calibration_images(source=BUILTIN, scenes=DEFAULT_SCENES, max_photos=None, held_out=(), paths=None,
                       target_size=None, builtin_dir=None):
    """(images, description): RGB arrays to calibrate on and what they were, for the metadata.

    `source` is "builtin" (the wheels' real photos plus synthetic scenes of the demo kind) or a
    directory of images (your own, from the domain the model will see; scenes are then added only
    when `scenes` is set explicitly). `held_out`: builtin photo names kept for the accuracy check;
    `paths`: the folder's images to use (the calibration part of its split), default all of them;
    `builtin_dir`: where the builtin photos are, when not in the installed packages.
    Images are decoded as the server decodes a request (`target_size`: the network input).
    """
    images, photos = [], []
    if source == BUILTIN:
        found = [(name, path) for name, path in builtin_photos(builtin_dir) if name not in held_out]
    else:
        from .int8_check import image_files
        if paths is None:
            paths = image_files(source, "calibration images")
        found = [(os.path.basename(p), p) for p in paths]
        if not found:
            raise ValueError("calibration images: none left in %s for calibration" % source)
    if max_photos is not None:
        found = found[:max_photos]
    for name, path in found:
        try:
            images.append(_read_rgb(path, target_size))
        except Exception as err:
            raise ValueError("calibration image %s cannot be decoded (%s): remove it or replace it with a JPEG or "
                             "PNG" % (path, err))
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
    if held_out:
        description["held_out_for_check"] = sorted(held_out)
    return images, description


def calibration_batch(images, meta):
    """The calibration images as the network's input: the serving preprocessing (ssd_serving.transforms), batched."""
    width, height = int(meta["input_width"]), int(meta["input_height"])
    return np.concatenate([ssd_val_transform(rgb, width, height, meta["mean"], meta["std"]).asnumpy()
                           for rgb in images])


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


def _head_names(symbol):
    """The detection head's outputs before NMS, in which int8 and fp32 are compared layer by layer: the class
    probabilities (softmax) and the decoded boxes (the box decoder's last-axis concat)."""
    names = []
    for node in json.loads(symbol.tojson())["nodes"]:
        attrs = node.get("attrs", node.get("param", {})) or {}
        if node["op"] == "softmax" or (node["op"] == "Concat" and str(attrs.get("dim", "1")) == "-1"
                                       and "decoder" in node["name"]):
            names.append(node["name"])
    return names


class _Thresholds(object):
    """A filled collector for calib_graph's 'customize' mode: the thresholds computed once per calibration."""

    def __init__(self, thresholds):
        self.min_max_dict = thresholds


def normalized_mse(reference, other):
    """NNCF's ranking score: MSE(reference, other) / MSE(reference, 0), averaged over the outputs."""
    scores = []
    for ref, got in zip(reference, other):
        scores.append(float(np.sum((ref - got) ** 2)) / max(float(np.sum(ref ** 2)), 1e-20))
    return float(np.mean(scores))


class Calibrated(object):
    """An fp32 export and its calibration statistics, collected once: int8 graphs with any set of layers kept in
    fp32 are then built from them without running the calibration images again."""

    def __init__(self, model_dir, images, described, calib_mode=DEFAULT_CALIB_MODE):
        from mxnet.contrib import quantization
        self.quantization = quantization
        self.model_dir = model_dir
        self.meta = artifact.read_metadata(model_dir)
        if self.meta.get("precision", "fp32") != "fp32":
            raise ValueError("%s is already %s; quantize an fp32 export" % (model_dir, self.meta.get("precision")))
        if calib_mode not in CALIB_MODES:
            raise ValueError("calibration mode %r: use one of %s" % (calib_mode, ", ".join(CALIB_MODES)))
        self.calib_mode = calib_mode
        self.described = described
        self.width, self.height = int(self.meta["input_width"]), int(self.meta["input_height"])
        self.input_name = self.meta.get("input_name", "data")
        symbol = mx.sym.load(os.path.join(model_dir, self.meta.get("symbol_file", artifact.SYMBOL_FILE)))
        saved = mx.nd.load(os.path.join(model_dir, self.meta.get("params_file", artifact.PARAMS_FILE)))
        args = dict((k[4:], v) for k, v in saved.items() if k.startswith("arg:"))
        auxs = dict((k[4:], v) for k, v in saved.items() if k.startswith("aux:"))
        if not args:  # a plain Gluon save (no arg:/aux: prefixes): split by the graph's own lists
            aux_names = set(symbol.list_auxiliary_states())
            args = dict((k, v) for k, v in saved.items() if k not in aux_names)
            auxs = dict((k, v) for k, v in saved.items() if k in aux_names)
        self.args, self.auxs = args, auxs
        self.excluded = _excluded_layers(symbol)
        self.head = _head_names(symbol)
        self.batch = calibration_batch(images, self.meta)
        LOG.info("calibrating int8 (%s) on %d images: %s", calib_mode, len(images), described)
        self.fused = symbol.get_backend_symbol("MKLDNN_QUANTIZE")
        _, _, _, collector = quantization.quantize_graph(
            sym=self.fused, arg_params=args, aux_params=auxs, ctx=mx.cpu(), excluded_sym_names=list(self.excluded),
            calib_mode=calib_mode, quantized_dtype="auto", quantize_mode="smart")
        module = self._module(self.fused, args, auxs)
        data = mx.io.NDArrayIter(data={self.input_name: self.batch}, batch_size=1)
        quantization._collect_layer_statistics(module, data, collector, len(images), None)
        if calib_mode == "entropy":
            self.thresholds = quantization._get_optimal_thresholds(collector.hist_dict, "auto", logger=None)
        else:
            self.thresholds = dict(collector.min_max_dict)
        # what can be kept in fp32 on top: every quantized layer, in graph order
        order = [node["name"] for node in json.loads(self.fused.tojson())["nodes"]]
        quantized = set(name[:-len("_output")] for name in collector.include_layer if name.endswith("_output"))
        self.candidates = [name for name in order if name in quantized]

    def _module(self, symbol, args, auxs, batch=1):
        module = mx.mod.Module(symbol=symbol, context=mx.cpu(), data_names=[self.input_name], label_names=None)
        module.bind(for_training=False, data_shapes=[(self.input_name, (batch, 3, self.height, self.width))])
        module.set_params(args, auxs, allow_missing=False, allow_extra=True, force_init=True)
        return module

    def build(self, keep_fp32=()):
        """(symbol, args, auxs) of the int8 graph with `keep_fp32` layers (of the fused graph) left in fp32."""
        q = self.quantization
        qsym, _, _, _ = q.quantize_graph(
            sym=self.fused, arg_params=self.args, aux_params=self.auxs, ctx=mx.cpu(),
            excluded_sym_names=list(self.excluded) + list(keep_fp32), calib_mode="none", quantized_dtype="auto",
            quantize_mode="smart")
        qsym, qargs, qauxs = q.calib_graph(qsym=qsym, arg_params=self.args, aux_params=self.auxs,
                                           collector=_Thresholds(self.thresholds), calib_mode="customize",
                                           quantized_dtype="auto", logger=None)
        return qsym.get_backend_symbol("MKLDNN_QUANTIZE"), qargs, qauxs

    def head_outputs(self, symbol, args, auxs, batch):
        """The head's outputs (class probabilities, decoded boxes) on `batch` (network inputs)."""
        internals = symbol.get_internals()
        group = mx.sym.Group([internals[name + "_output"] for name in self.head])
        module = self._module(group, args, auxs, batch=len(batch))
        module.forward(mx.io.DataBatch([mx.nd.array(batch)]), is_train=False)
        return [output.asnumpy() for output in module.get_outputs()]

    def rank(self, batch, deadline=None):
        """[(layer, nmse)]: each quantized layer kept alone in fp32, by the normalized MSE of the head's outputs
        against fp32 that remains on `batch` (lowest first: the layer whose int8 costs most), and the all-int8 NMSE.
        `batch`: images like the served ones (the check's, as NNCF ranks on its validation subset): on the
        calibration images themselves a bad calibration looks perfect."""
        reference = self.head_outputs(self.fused, self.args, self.auxs, batch)
        baseline = normalized_mse(reference, self.head_outputs(*self.build(), batch=batch))
        scores = []
        for layer in self.candidates:
            if deadline is not None and time.time() > deadline:
                LOG.warning("ranking stopped at its time limit after %d of %d layers", len(scores),
                            len(self.candidates))
                break
            scores.append((layer, normalized_mse(reference, self.head_outputs(*self.build([layer]), batch=batch))))
        scores.sort(key=lambda item: item[1])
        return scores, baseline

    def write(self, out_dir, keep_fp32=(), why=None):
        """Build the int8 graph and write it (graph, params, metadata) into the new folder `out_dir`."""
        qsym, qargs, qauxs = self.build(keep_fp32)
        os.makedirs(out_dir)
        mx.model.save_checkpoint(os.path.join(out_dir, artifact.PREFIX), 0, qsym, qargs, qauxs)
        meta = dict(self.meta)
        meta.update({
            "precision": "int8",
            "params_sha256": file_sha256(os.path.join(out_dir, artifact.PARAMS_FILE)),
            "quantization": {
                "tool": "mxnet.contrib.quantization (oneDNN, MKLDNN_QUANTIZE)",
                "mxnet": mx.__version__,
                "quantized_dtype": "auto",
                "quantize_mode": "smart",
                "calib_mode": self.calib_mode,
                "calibration": self.described,
                "fp32_excluded": list(self.excluded) + list(keep_fp32),
                "fp32_kept_by_fallback": list(why or []),
                "fp32_params_sha256": self.meta.get("params_sha256"),
                "requires": "MXNet >= %d.%d with oneDNN, CPU" % MIN_MXNET,
            },
        })
        _write_meta(out_dir, meta)
        return meta


def _write_meta(folder, meta):
    with open(os.path.join(folder, artifact.META_FILE), "w") as stream:
        json.dump(meta, stream, indent=2, sort_keys=True)


def _fallback_sizes(tries, candidates):
    """How many of the ranked layers each try keeps in fp32: 1, 2, 4, ... (cumulative, as NNCF reverts)."""
    sizes, size = [], 1
    while len(sizes) < tries and size <= candidates:
        sizes.append(size)
        size *= 2
    if len(sizes) < tries and (not sizes or sizes[-1] < candidates):
        sizes.append(candidates)
    return sizes


def _better(record, best):
    if best is None:
        return True
    if record["metric"] == "voc07_map_drop":
        return record["value"] < best["value"]
    return record["value"] > best["value"]


def _install(staging, out_dir):
    """Move the finished `staging` folder to `out_dir` (replacing it), so out_dir is never half-written."""
    out_dir = os.path.abspath(out_dir)
    old = None
    if os.path.exists(out_dir):
        old = out_dir + ".old-%d" % os.getpid()
        os.rename(out_dir, old)
    os.rename(staging, out_dir)
    if old:
        shutil.rmtree(old, ignore_errors=True)
    # readable by a server running as another user (the image's model-server), whatever the umask made it
    os.chmod(out_dir, 0o755)


def quantize_exported(model_dir, out_dir, calibration=BUILTIN, scenes=DEFAULT_SCENES,
                      calib_mode=DEFAULT_CALIB_MODE, max_photos=None, check_set=None, check=None, held_out=(),
                      calibration_paths=None, builtin_dir=None):
    """Quantize the fp32 model exported in `model_dir` to int8 in `out_dir`, check it against fp32 on `check_set`
    (ssd_tools.int8_check) and fall back layer by layer until it passes; returns the new metadata.

    `check`: a CheckOptions (limits, tries, time budget), or None to skip the check (recorded as skipped).
    """
    from . import int8_check
    problem = int8_support_problem()
    if problem:
        raise ModelLoadError(problem)
    started = time.time()
    meta = artifact.read_metadata(model_dir)
    target = (int(meta["input_width"]), int(meta["input_height"]))
    images, described = calibration_images(calibration, scenes, max_photos, held_out=held_out,
                                           paths=calibration_paths, target_size=target, builtin_dir=builtin_dir)
    calibrated = Calibrated(model_dir, images, described, calib_mode)
    del images
    parent = os.path.dirname(os.path.abspath(out_dir))
    if not os.path.isdir(parent):
        os.makedirs(parent)
    work = tempfile.mkdtemp(prefix=".ssd-int8-", dir=parent)
    try:
        first = os.path.join(work, "try-0")
        int8_meta = calibrated.write(first)
        if check is None or check_set is None:
            int8_meta["accuracy_check"] = int8_check.skipped_record(
                meta, int8_meta["params_sha256"], "skipped with --skip-check" if check is None else "no check images")
            _write_meta(first, int8_meta)
            chosen = first
        else:
            chosen, int8_meta = _check_and_fall_back(calibrated, check_set, check, work, first, int8_meta, started)
        _install(chosen, out_dir)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    LOG.info("wrote the int8 model to %s (fp32 layers kept: %s) in %.0f s", out_dir,
             ", ".join(int8_meta["quantization"]["fp32_excluded"]) or "none", time.time() - started)
    return int8_meta


class CheckOptions(object):
    """The accuracy check's limits and the fallback's bounds."""

    def __init__(self, max_drop=None, min_agreement=None, min_images=None, tries=None, budget_seconds=None,
                 rank_images=8):
        from . import int8_check
        self.max_drop = int8_check.DEFAULT_MAX_DROP if max_drop is None else max_drop
        self.min_agreement = int8_check.DEFAULT_MIN_AGREEMENT if min_agreement is None else min_agreement
        self.min_images = int8_check.MIN_IMAGES if min_images is None else min_images
        self.tries = DEFAULT_FALLBACK_TRIES if tries is None else tries
        self.budget_seconds = DEFAULT_FALLBACK_SECONDS if budget_seconds is None else budget_seconds
        self.rank_images = rank_images


def _check_and_fall_back(calibrated, check_set, options, work, first, int8_meta, started):
    from . import int8_check
    reference = int8_check.Reference(calibrated.model_dir, check_set)
    record = int8_check.run_check(reference, first, options.max_drop, options.min_agreement, options.min_images)
    LOG.info("%s", int8_check.summary(record))
    tries = [{"fp32_kept": 0, "value": record.get("value"), "passed": record["passed"], "seconds": record["seconds"]}]
    best = (first, int8_meta, record)
    fallback = {"tries": tries, "ranking": None, "stopped": "passed" if record["passed"] else None}
    too_few = len(check_set) < options.min_images or (not check_set.labelled and record.get("boxes", 0) <
                                                       int8_check.MIN_REFERENCE_BOXES)
    if not record["passed"] and too_few:
        fallback["stopped"] = "not tried: too few check images or boxes for any verdict"
    elif not record["passed"] and options.tries > 0:
        deadline = started + options.budget_seconds
        count = min(options.rank_images, len(check_set))
        batch = calibration_batch([check_set.pixels(i)[0] for i in range(count)], calibrated.meta)
        ranked, baseline = calibrated.rank(batch, deadline=started + options.budget_seconds / 2.0)
        fallback["ranking"] = {"score": "normalized MSE of the head's outputs (class probabilities, decoded boxes) "
                                        "against fp32 on the first %d check images, with the layer alone kept in "
                                        "fp32" % count,
                               "all_int8": baseline, "layers": [[name, score] for name, score in ranked]}
        order = [name for name, _ in ranked]
        scores = dict(ranked)
        for attempt, size in enumerate(_fallback_sizes(options.tries, len(order)), 1):
            if time.time() > deadline:
                fallback["stopped"] = "time budget (%d s) spent" % options.budget_seconds
                break
            keep = order[:size]
            why = [{"layer": name, "rank": i + 1,
                    "why": "fallback try %d: kept alone in fp32, the head's NMSE against fp32 is %.3g (all int8: %.3g)"
                           % (attempt, scores[name], baseline)} for i, name in enumerate(keep)]
            folder = os.path.join(work, "try-%d" % attempt)
            candidate_meta = calibrated.write(folder, keep, why)
            candidate = int8_check.run_check(reference, folder, options.max_drop, options.min_agreement,
                                             options.min_images)
            LOG.info("fallback try %d, %d layer(s) kept in fp32: %s", attempt, size, int8_check.summary(candidate))
            tries.append({"fp32_kept": size, "value": candidate.get("value"), "passed": candidate["passed"],
                          "seconds": candidate["seconds"]})
            if candidate["passed"] or _better(candidate, best[2]):
                best = (folder, candidate_meta, candidate)
            if candidate["passed"]:
                fallback["stopped"] = "passed"
                break
        else:
            fallback["stopped"] = fallback["stopped"] or "%d tries made" % options.tries
    elif not record["passed"]:
        fallback["stopped"] = "no fallback tries allowed (--fallback-tries 0)"
    folder, int8_meta, record = best
    fallback["seconds"] = round(time.time() - started, 1)
    record["fallback"] = fallback
    int8_meta["accuracy_check"] = record
    _write_meta(folder, int8_meta)
    return folder, int8_meta
