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
    parser.add_argument("--calibration-scenes", type=int,
                        help="with --quantize int8: synthetic scenes added to the calibration images "
                             "(default 24 for builtin, 0 for a directory)")
    parser.add_argument("--from-export", metavar="DIR",
                        help="with --quantize int8: quantize this existing fp32 export instead of exporting a GluonCV model")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    if args.quantize == "int8":
        if args.ensure:
            parser.error("--ensure serves what it finds; quantize with --from-export DIR instead")
        print(json.dumps(_export_int8(args), indent=2, sort_keys=True))
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
    """Export fp32 first (or take --from-export), then quantize that graph into --out."""
    import shutil
    import tempfile
    from .quantize import BUILTIN, DEFAULT_SCENES, quantize_exported
    scenes = args.calibration_scenes
    if scenes is None:
        scenes = DEFAULT_SCENES if args.calibration_images == BUILTIN else 0
    if args.from_export:
        return quantize_exported(args.from_export, args.out, args.calibration_images, scenes)
    staging = tempfile.mkdtemp(prefix="ssd-fp32-")
    try:
        if args.params:
            classes = [c.strip() for c in args.classes.split(",")] if args.classes else None
            export_user_params(args.model, args.params, classes, staging, args.input_size)
        else:
            export_zoo_model(args.model, staging, args.root)
        return quantize_exported(staging, args.out, args.calibration_images, scenes)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":
    main()
