"""Export a GluonCV SSD as a hybridized fixed-shape graph plus the metadata serving needs (needs GluonCV)."""
from __future__ import absolute_import

import argparse
import contextlib
import json
import logging
import os
import re
import socket
import sys

import mxnet as mx

from ssd_serving.artifact import META_FILE, PARAMS_FILE, PREFIX, SYMBOL_FILE, FORMAT_VERSION, file_sha256
from ssd_serving.transforms import IMAGENET_MEAN, IMAGENET_STD

LOG = logging.getLogger(__name__)

DEFAULT_MODEL_NAME = "ssd_512_resnet50_v1_voc"


def input_size_from_name(model_name):
    """GluonCV names its SSDs ssd_<size>_<base>_<dataset>; the size is the fixed input side."""
    match = re.match(r"ssd_(\d+)_", model_name)
    if not match:
        raise ValueError("cannot read the input size from model name %r; pass --input-size" % model_name)
    return int(match.group(1))


def export_detector(net, out_dir, model_name, classes, input_size, weights, mean=IMAGENET_MEAN,
                    std=IMAGENET_STD, demo=False):
    """Hybridize `net` at a fixed (1, 3, size, size) input, export it to `out_dir`, write metadata.

    `weights` says where the weights came from: {"source": ..., "location": ...}.
    Returns the metadata dict that was written.
    """
    if not os.path.isdir(out_dir):
        os.makedirs(out_dir)
    width = height = int(input_size)
    net.collect_params().reset_ctx(mx.cpu())
    net.hybridize(static_alloc=True, static_shape=True)
    net(mx.nd.zeros((1, 3, height, width)))
    prefix = os.path.join(out_dir, PREFIX)
    net.export(prefix, epoch=0)
    params_path = os.path.join(out_dir, PARAMS_FILE)
    meta = {
        "format_version": FORMAT_VERSION,
        "model_name": model_name,
        "demo": bool(demo),
        "classes": [str(c) for c in classes],
        "input_name": "data",
        "input_width": width,
        "input_height": height,
        "mean": [float(m) for m in mean],
        "std": [float(s) for s in std],
        "symbol_file": SYMBOL_FILE,
        "params_file": PARAMS_FILE,
        "params_sha256": file_sha256(params_path),
        "precision": "fp32",
        "weights": dict(weights),
        "exported_with": {"mxnet": mx.__version__, "gluoncv": _gluoncv_version()},
    }
    with open(os.path.join(out_dir, META_FILE), "w") as stream:
        json.dump(meta, stream, indent=2, sort_keys=True)
    LOG.info("exported %s (%s weights from %s) to %s", model_name, weights.get("source"),
             weights.get("location"), out_dir)
    return meta


def _gluoncv_version():
    try:
        import gluoncv
        return gluoncv.__version__
    except ImportError:
        return None


def zoo_weights_location(model_name):
    """The URL GluonCV's model store downloads `model_name`'s weights from (checked by its sha1)."""
    from gluoncv.model_zoo import model_store
    file_name = "{name}-{short_hash}".format(name=model_name, short_hash=model_store.short_hash(model_name))
    repo_url = os.environ.get("MXNET_GLUON_REPO", model_store.apache_repo_url)
    if not repo_url.endswith("/"):
        repo_url += "/"
    return model_store._url_format.format(repo_url=repo_url, file_name=file_name)


def export_zoo_model(model_name, out_dir, root=None):
    """Download `model_name`'s pretrained weights from the GluonCV model zoo and export it."""
    from gluoncv import model_zoo
    kwargs = {"pretrained": True}
    if root:
        kwargs["root"] = root
    net = model_zoo.get_model(model_name, **kwargs)
    weights = {"source": "gluoncv-model-zoo", "location": zoo_weights_location(model_name)}
    return export_detector(net, out_dir, model_name, net.classes, input_size_from_name(model_name), weights)


def export_user_params(model_name, params_path, classes, out_dir, input_size=None):
    """Export the `model_name` architecture with a user's own `.params` (e.g. fine-tuned on `classes`)."""
    from gluoncv import model_zoo
    if classes:
        # GluonCV names the any-classes variant of ssd_512_resnet50_v1_voc ssd_512_resnet50_v1_custom
        custom_name = re.sub(r"_(voc|coco)$", "_custom", model_name)
        net = model_zoo.get_model(custom_name, classes=classes, pretrained_base=False)
    else:
        net = model_zoo.get_model(model_name, pretrained=False, pretrained_base=False)
    net.load_parameters(params_path, ctx=mx.cpu())
    weights = {"source": "user-params", "location": os.path.abspath(params_path),
               "sha256": file_sha256(params_path)}
    return export_detector(net, out_dir, model_name, net.classes,
                           input_size or input_size_from_name(model_name), weights)


def ensure_model(model_name, out_dir, fallback_dir=None, root=None):
    """The directory to serve: `out_dir` if already exported, else a fresh zoo export there.

    When the zoo cannot be reached (offline builds, air-gapped accounts) and `fallback_dir` holds
    an exported model, say so loudly and return it; random weights are never an option.
    """
    from ssd_serving.artifact import has_model
    if has_model(out_dir):
        LOG.info("using the model already exported in %s", out_dir)
        return out_dir
    socket.setdefaulttimeout(60)
    try:
        export_zoo_model(model_name, out_dir, root)
        return out_dir
    except Exception as err:
        if not (fallback_dir and has_model(fallback_dir)):
            raise
        LOG.warning("could not get %s's pretrained weights from the GluonCV model zoo (%s: %s); "
                    "serving the DEMO model in %s instead, which detects synthetic shapes only",
                    model_name, err.__class__.__name__, err, fallback_dir)
        return fallback_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL_NAME, help="GluonCV SSD model name")
    parser.add_argument("--out", required=True, help="directory to write the exported model to")
    parser.add_argument("--params", help="your own .params for this architecture instead of zoo weights")
    parser.add_argument("--classes", help="comma-separated class names that --params was trained on")
    parser.add_argument("--input-size", type=int, help="fixed input side (default: from the model name)")
    parser.add_argument("--root", help="where GluonCV caches downloaded weights")
    parser.add_argument("--ensure", action="store_true",
                        help="reuse --out if already exported; print only the directory to serve")
    parser.add_argument("--fallback", help="with --ensure: exported model to serve if the zoo is unreachable")
    parser.add_argument("--quantize", choices=("fp32", "int8"), default="fp32",
                        help="int8: quantize for the CPU target (MXNet >= 1.9 with oneDNN), calibrated on "
                             "--calibration-images; the graph then runs only there (default fp32)")
    parser.add_argument("--calibration-images", default="builtin",
                        help="with --quantize int8: a directory of images like those the model will see, or "
                             "'builtin' (real photos from the matplotlib/scikit-image wheels plus synthetic scenes)")
    parser.add_argument("--builtin-photos", metavar="DIR",
                        help="with --calibration-images builtin: take the builtin photos from DIR (where the image "
                             "build extracts them from the wheels) instead of the installed packages")
    parser.add_argument("--calibration-scenes", type=int,
                        help="with --quantize int8: synthetic scenes added to the calibration images "
                             "(default 24 for builtin, 0 for a directory)")
    parser.add_argument("--from-export", metavar="DIR",
                        help="with --quantize int8: quantize this existing fp32 export instead of exporting a GluonCV model")
    parser.add_argument("--calib-mode", choices=("naive", "entropy"),
                        help="with --quantize int8: min/max (naive) or KL-divergence (entropy) calibration "
                             "(default naive, chosen by measurement: docs/int8.md)")
    check = parser.add_argument_group("the int8 accuracy check (docs/int8.md): int8 against fp32 on held-out images")
    check.add_argument("--check-images", metavar="DIR",
                       help="images to check on, never calibrated on: VOC XML labels beside them (NAME.xml) or in "
                            "DIR/Annotations make it a labelled check (mAP drop), else int8's agreement with fp32 "
                            "(default: the held-out part of --calibration-images, split by file name; for builtin: "
                            "the demo's labelled scenes for the demo model, else held-out photos and scenes)")
    check.add_argument("--check-labels", metavar="COCO_JSON",
                       help="with --check-images: their labels as a COCO JSON (file_name relative to --check-images) "
                            "instead of VOC XML")
    check.add_argument("--max-drop", type=float,
                       help="labelled check: the most VOC07 mAP points int8 may lose against fp32 (default 1.0)")
    check.add_argument("--min-agreement", type=float,
                       help="unlabelled check: the least AP, in points, of int8's detections against fp32's at "
                            "the served threshold (default 99.0: measured, docs/int8.md)")
    check.add_argument("--min-check-images", type=int,
                       help="a check on fewer images does not count as passed (default 50: measured, docs/int8.md)")
    check.add_argument("--check-scenes", type=int,
                       help="the demo model's labelled held-out scenes to check on (default 200)")
    check.add_argument("--fallback-tries", type=int,
                       help="when the check fails: how many times to keep more layers in fp32 and check again "
                            "(default 5; 0: none)")
    check.add_argument("--fallback-minutes", type=float,
                       help="the time the check and its fallback may take in all (default 30)")
    check.add_argument("--skip-check", action="store_true",
                       help="write the int8 graph unchecked; it records that, and SSD_PRECISION=auto then serves "
                            "fp32 (SSD_PRECISION=int8 forces it, with a warning)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.quantize == "int8":
        if args.ensure:
            parser.error("--ensure serves what it finds; quantize with --from-export DIR instead")
        try:
            meta = _export_int8(args)
        except ValueError as err:  # bad images or labels: nothing was written
            parser.exit(2, "ERROR: %s\n" % err)
        print(json.dumps(meta, indent=2, sort_keys=True))
        record = meta.get("accuracy_check", {})
        if not record.get("passed") and not record.get("skipped"):
            sys.stderr.write("ERROR: the int8 graph in %s failed its accuracy check (%s): SSD_PRECISION=auto will "
                             "serve fp32, and SSD_PRECISION=int8 forces it with a warning. Calibrate on images like "
                             "those it will serve (--calibration-images), give labelled ones (--check-images), or "
                             "see docs/int8.md\n" % (args.out, record.get("reason")))
            sys.exit(3)
        return
    if args.from_export:
        parser.error("--from-export goes with --quantize int8")
    if args.ensure:
        # GluonCV prints download progress on stdout; keep stdout for the one line callers capture
        with contextlib.redirect_stdout(sys.stderr):
            model_dir = ensure_model(args.model, args.out, args.fallback, args.root)
        print(model_dir)
        return
    if args.params:
        classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
        meta = export_user_params(args.model, args.params, classes, args.out, args.input_size)
    else:
        meta = export_zoo_model(args.model, args.out, args.root)
    print(json.dumps(meta, indent=2, sort_keys=True))


def _export_int8(args):
    """Export fp32 first (or take --from-export), then quantize that graph into --out and check it."""
    import shutil
    import tempfile
    if args.from_export:
        return _quantize_and_check(args, args.from_export)
    staging = tempfile.mkdtemp(prefix="ssd-fp32-")
    try:
        if args.params:
            classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
            export_user_params(args.model, args.params, classes, staging, args.input_size)
        else:
            export_zoo_model(args.model, staging, args.root)
        return _quantize_and_check(args, staging)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


GENERIC_CALIBRATION_BANNER = """\
########################################################################################
#  int8 of %(model)s is CALIBRATED ON GENERIC PHOTOS (the builtin set: %(photos)d photos
#  from the matplotlib and scikit-image wheels and %(scenes)d synthetic shape scenes), not on
#  images like the ones it will serve, and it is checked on %(check)d held-out generic images.
#  Give your own images: --calibration-images DIR (the image build: CALIBRATION_IMAGES=
#  a folder under weights/), and labelled ones with --check-images DIR (VOC XML beside them).
########################################################################################
"""


def _quantize_and_check(args, fp32_dir):
    """Calibrate, quantize, run the accuracy check (and its fallback) and write --out; print the check's table."""
    from ssd_serving.artifact import read_metadata
    from . import int8_check
    from .demo import scenes as demo_scenes
    from .quantize import (BUILTIN, BUILTIN_CHECK_PHOTOS, DEFAULT_CALIB_MODE, DEFAULT_SCENES, CheckOptions,
                           builtin_photos, quantize_exported)
    meta = read_metadata(fp32_dir)
    target = (int(meta["input_width"]), int(meta["input_height"]))
    scenes = args.calibration_scenes
    if scenes is None:
        scenes = DEFAULT_SCENES if args.calibration_images == BUILTIN else 0
    is_demo = bool(meta.get("demo")) and list(meta["classes"]) == list(demo_scenes.CLASSES)
    held_out, calibration_paths, check_set = (), None, None
    if args.calibration_images == BUILTIN:
        held_out = BUILTIN_CHECK_PHOTOS
    else:
        calibration_paths = int8_check.image_files(args.calibration_images, "calibration images")
    if not args.skip_check:
        if args.check_labels and not args.check_images:
            raise ValueError("--check-labels %s needs --check-images (the folder its file_names are in)"
                             % args.check_labels)
        if args.check_images and args.check_labels:
            check_set = int8_check.coco_check_set(args.check_labels, args.check_images, meta["classes"], target)
            check_paths = [os.path.join(args.check_images, image.name) for image in check_set.images]
        elif args.check_images:
            check_paths = int8_check.image_files(args.check_images)
        if args.check_images:
            calibrating = set(int8_check.file_digest(p) for p in (calibration_paths or []))
            shared = [os.path.basename(p) for p in check_paths if int8_check.file_digest(p) in calibrating]
            if shared:
                raise ValueError("--check-images %s holds images that are also calibration images (%s): the check "
                                 "must be on held-out images; give two separate folders, or only "
                                 "--calibration-images (it is then split)" % (args.check_images, ", ".join(shared[:5])))
            if not args.check_labels:
                check_set = int8_check.folder_check_set(check_paths, meta["classes"], target, args.check_images,
                                                        "check images in %s" % args.check_images)
        elif args.calibration_images == BUILTIN and is_demo:
            check_set = int8_check.demo_scene_set(count=args.check_scenes or int8_check.DEMO_CHECK_SCENES)
        elif args.calibration_images == BUILTIN:
            photos = [path for name, path in builtin_photos(args.builtin_photos) if name in held_out]
            check_set = int8_check.builtin_check_set(photos, target)
        else:
            calibration_paths, check_paths = int8_check.split_folder(calibration_paths)
            if not check_paths or not calibration_paths:
                raise ValueError("calibration images: %s holds too few images to split into calibration and "
                                 "held-out check images; add images, or give --check-images" % args.calibration_images)
            check_set = int8_check.folder_check_set(check_paths, meta["classes"], target, args.calibration_images,
                                                    "%s (held-out part)" % args.calibration_images)
    if args.calibration_images == BUILTIN and not is_demo:
        sys.stderr.write(GENERIC_CALIBRATION_BANNER % {
            "model": meta["model_name"], "photos": len(builtin_photos(args.builtin_photos)) - len(held_out), "scenes": scenes,
            "check": len(check_set) if check_set is not None else 0})
    options = None
    if not args.skip_check:
        budget = None if args.fallback_minutes is None else 60.0 * args.fallback_minutes
        options = CheckOptions(args.max_drop, args.min_agreement, args.min_check_images, args.fallback_tries, budget)
    int8_meta = quantize_exported(fp32_dir, args.out, args.calibration_images, scenes,
                                  args.calib_mode or DEFAULT_CALIB_MODE, check_set=check_set, check=options,
                                  held_out=held_out, calibration_paths=calibration_paths,
                                  builtin_dir=args.builtin_photos)
    sys.stderr.write(int8_check.table(int8_meta["accuracy_check"]) + "\n")
    fallback = int8_meta["accuracy_check"].get("fallback") or {}
    kept = int8_meta["quantization"].get("fp32_kept_by_fallback") or []
    if len(fallback.get("tries") or []) > 1:
        sys.stderr.write("fallback: %d tries, stopped: %s; layers kept in fp32: %s (%.0f s in all)\n" % (
            len(fallback["tries"]), fallback.get("stopped"), ", ".join(k["layer"] for k in kept) or "none",
            fallback.get("seconds", 0)))
    return int8_meta


if __name__ == "__main__":
    main()
