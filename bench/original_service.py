"""The original write-up's serving path, for comparison only: GluonCV's model not hybridized, load_test at a variable image size, base64 JSON in, full result lists out."""
import base64
import json
import logging
import os
import sys
import tempfile

import mxnet as mx

from ssd_serving.environment import Environment

LOG = logging.getLogger("bench.original")
# BENCH_ORIGINAL_MODEL: "zoo-random:NAME@BIAS" (the zoo architecture with random weights, timing only, its background
# bias raised by BIAS as bench/models.py makes the served stand-in trained-like) or "demo:DIR" (the demo detector's
# architecture with its exported weights).
MODEL_ENV = "BENCH_ORIGINAL_MODEL"

_state = {"net": None, "ctx": None, "short": 512}


def _context():
    try:
        if mx.context.num_gpus() > 0:
            return mx.gpu(0)
    except Exception:
        pass
    return mx.cpu()


def _load_demo(model_dir, ctx):
    from ssd_serving.artifact import read_metadata
    from ssd_tools.demo import train
    meta = read_metadata(model_dir)
    size = int(meta["input_width"])
    # load_test keeps the aspect ratio (short side = input size, long side up to 1024 here): the
    # anchor grid must cover the largest feature map that gives
    net = train.build_net(meta["classes"], size, anchor_grid=1024 // train.STEPS[0])
    saved = mx.nd.load(os.path.join(model_dir, meta.get("params_file", "model-0000.params")))
    saved = dict((k.split(":", 1)[-1], v) for k, v in saved.items())
    loaded = 0
    for name, param in net.collect_params().items():
        if name in saved and saved[name].shape == param.shape:  # anchors differ: grid size
            param.set_data(saved[name])
            loaded += 1
    LOG.info("demo net: %d of %d parameters from %s", loaded, len(list(net.collect_params().keys())), model_dir)
    net.collect_params().reset_ctx(ctx)
    return net, size


def _load():
    spec = os.environ.get(MODEL_ENV, "")
    kind, _, value = spec.partition(":")
    ctx = _context()
    if kind == "zoo-random":
        from gluoncv import model_zoo
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from models import raise_background
        name, _, bias = value.partition("@")
        mx.random.seed(0)
        net = model_zoo.get_model(name, pretrained=False, pretrained_base=False)
        net.initialize(ctx=ctx)  # random weights: timing only (the zoo cannot be reached here)
        raise_background(net, float(bias or 0))  # the same trained-like scores as the served stand-in
        short = int(name.split("_")[1])
    elif kind == "demo":
        net, short = _load_demo(value, ctx)
    else:
        raise ValueError("%s must be zoo-random:NAME@BIAS or demo:DIR, not %r" % (MODEL_ENV, spec))
    # deliberately not hybridized: that is the original write-up's model
    LOG.info("original approach: %s on %s, not hybridized, load_test(short=%d)", spec, ctx, short)
    _state.update(net=net, ctx=ctx, short=short)
    Environment().mark_model_loaded()


def _answer(body):
    from gluoncv.data.transforms.presets.ssd import load_test
    if isinstance(body, (bytes, bytearray)):
        body = body.decode("utf-8")
    image = base64.b64decode(json.loads(body)["image"])
    with tempfile.NamedTemporaryFile(suffix=".jpg") as stream:  # load_test reads files
        stream.write(image)
        stream.flush()
        x, _ = load_test(stream.name, short=_state["short"], max_size=1024)
    class_ids, scores, boxes = _state["net"](x.as_in_context(_state["ctx"]))
    return json.dumps({"class_IDs": class_ids.asnumpy().tolist(), "scores": scores.asnumpy().tolist(),
                       "bounding_boxes": boxes.asnumpy().tolist()})


def handle(data, context):
    if _state["net"] is None:
        logging.basicConfig(level=logging.INFO, stream=sys.stdout)
        _load()
    if data is None:
        return None
    return [_answer(request.get("body") or request.get("data")) for request in data]
