"""The benchmark's models: the default architecture exported with RANDOM weights made to score like a trained detector
(timing only, never served to anyone), and int8 variants.

    python bench/models.py random-init --model ssd_512_resnet50_v1_voc --out DIR
    .venv/mx14/bin/python bench/models.py random-init --model ssd_512_resnet50_v1_voc --out DIR   (EI stack)
    python bench/models.py int8 --from DIR --out DIR

Zoo weights cannot be downloaded everywhere the benchmark runs, so the default model is timed with random ones.
The convolutions cost the same whatever the weights, but the post-processing does not: GluonCV's per-class decoder
keeps every (anchor, class) score above 0.01 and box_nms sorts them all. With random weights every class scores
about 1/21, so all of ssd_512's ~490,000 candidates are kept (measured: box_nms 173 ms against 27 ms with 1% of
them), where a trained detector keeps few. So the stand-in is made trained-like: its class predictors' background
bias is raised until the share of candidates above 0.01 on real photos equals what the trained demo detector keeps
on its own held-out scenes (trained_like_bias; both shares are recorded in the export's model-meta.json).
"""
import argparse
import json
import logging
import os
import sys


RANDOM_WEIGHTS = {"source": "random-init-trained-like",
                  "location": "timing only: RANDOM weights made by bench/models.py, detects nothing; never serve this"}
# GluonCV's MultiPerClassDecoder keeps (anchor, class) scores above this; box_nms sorts what it keeps
DECODER_THRESHOLD = 0.01
# the demo detector's held-out scenes (ssd_tools.demo.evaluate's seed) on which its kept share is measured
DEMO_SCENES_SEED, DEMO_SCENES = 1234, 16


def _meta(model_dir):
    path = os.path.join(model_dir, "model-meta.json")
    if not os.path.isfile(path):
        return None
    with open(path) as stream:
        return json.load(stream)


def _inputs(images, width, height):
    import mxnet as mx
    from ssd_serving.transforms import ssd_val_transform
    return mx.nd.concat(*[ssd_val_transform(rgb, width, height) for rgb in images], dim=0)


def kept_share(probabilities):
    """The share of (anchor, class) candidates the decoder keeps: object classes scoring above DECODER_THRESHOLD."""
    return float((probabilities[:, :, 1:] > DECODER_THRESHOLD).mean())


def demo_kept_share():
    """What the trained demo detector keeps on its held-out scenes: the softmax inside its exported graph."""
    import mxnet as mx
    from ssd_serving.artifact import read_metadata
    from ssd_tools.demo.scenes import scene_at
    demo_dir = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "container", "models", "demo")
    meta = read_metadata(demo_dir)
    symbol = mx.sym.load(os.path.join(demo_dir, meta["symbol_file"]))
    softmax = symbol.get_internals()["ssd0_softmax0_output"]
    block = mx.gluon.SymbolBlock(softmax, mx.sym.var(meta.get("input_name", "data")))
    block.collect_params().load(os.path.join(demo_dir, meta["params_file"]), ctx=mx.cpu(), ignore_extra=True)
    images = [scene_at(DEMO_SCENES_SEED, index)[0] for index in range(DEMO_SCENES)]
    return kept_share(block(_inputs(images, meta["input_width"], meta["input_height"])).asnumpy())


def class_logits(net, batch):
    """The SSD head's class logits (batch, anchors, classes + 1), computed as GluonCV's SSD.hybrid_forward does."""
    import mxnet as mx
    predictions = [mx.nd.flatten(mx.nd.transpose(predictor(feature), (0, 2, 3, 1)))
                   for feature, predictor in zip(net.features(batch), net.class_predictors)]
    return mx.nd.concat(*predictions, dim=1).reshape((0, -1, len(net.classes) + 1)).asnumpy()


def trained_like_bias(logits, target_share):
    """The background bias at which the share of kept candidates is target_share (bisection: it falls as it rises)."""
    def share_at(bias):
        shifted = logits.copy()
        shifted[:, :, 0] += bias
        return kept_share(_softmax(shifted))
    low, high = 0.0, 1.0
    while share_at(high) > target_share:  # random features can spread the logits far: widen until it is passed
        low, high = high, 2 * high
    for _ in range(40):
        bias = (low + high) / 2
        low, high = (bias, high) if share_at(bias) > target_share else (low, bias)
    return (low + high) / 2


def raise_background(net, bias):
    """Add `bias` to the background channel of every anchor in each class predictor (anchor-major, class-minor)."""
    step = len(net.classes) + 1
    for predictor in net.class_predictors:
        param = predictor.predictor.bias
        data = param.data()
        data[::step] += bias
        param.set_data(data)


def random_init(model_name, out_dir):
    """Export `model_name`'s architecture with seeded random weights into `out_dir` (reused if there), its background
    bias raised so that it keeps as many candidates as a trained detector does.

    Run it with the MXNet that will serve the export: a graph exported by MXNet 1.9.1 (GluonCV 0.10)
    uses operators MXNet 1.4.1 cannot read (_contrib_box_decode), so the EI stack gets its own, and
    an export is reused only by the MXNet that made it.
    """
    import mxnet as mx
    meta = _meta(out_dir)
    if (meta and meta.get("weights", {}).get("source") == RANDOM_WEIGHTS["source"]
            and meta.get("model_name") == model_name and meta.get("exported_with", {}).get("mxnet") == mx.__version__):
        return out_dir
    from gluoncv import model_zoo
    from ssd_tools.export import export_detector, input_size_from_name
    from ssd_tools.quantize import builtin_photos, _read_rgb
    mx.random.seed(0)
    net = model_zoo.get_model(model_name, pretrained=False, pretrained_base=False)
    net.initialize()
    width = height = input_size_from_name(model_name)
    photos = [_read_rgb(path) for _, path in builtin_photos()]
    if not photos:
        raise SystemExit("bench/models.py: no builtin photos (matplotlib, scikit-image) to make the stand-in trained-like")
    logits = class_logits(net, _inputs(photos, width, height))
    target = demo_kept_share()
    bias = trained_like_bias(logits, target)
    raise_background(net, bias)
    made = kept_share(_softmax(class_logits(net, _inputs(photos, width, height))))
    weights = dict(RANDOM_WEIGHTS, trained_like={
        "decoder_threshold": DECODER_THRESHOLD, "background_bias": round(bias, 4),
        "target_kept_share": target, "target": "the trained demo detector on %d held-out scenes (seed %d)" % (
            DEMO_SCENES, DEMO_SCENES_SEED),
        "kept_share_before": kept_share(_softmax(logits)), "kept_share": made,
        "measured_on": "%d builtin photos" % len(photos)})
    print("bench/models.py: %s stand-in: background bias %+.2f keeps %.3f%% of candidates on %d photos (random "
          "weights kept %.1f%%; the trained demo keeps %.3f%% on its scenes)" % (
              model_name, bias, 100 * made, len(photos), 100 * weights["trained_like"]["kept_share_before"],
              100 * target), file=sys.stderr)
    export_detector(net, out_dir, model_name, net.classes, width, weights)
    return out_dir


def _softmax(logits):
    import numpy as np
    exp = np.exp(logits - logits.max(axis=2, keepdims=True))
    return exp / exp.sum(axis=2, keepdims=True)


def int8(from_dir, out_dir):
    """Quantize the fp32 export `from_dir` into `out_dir` (reused while it was made from the same weights)."""
    source, meta = _meta(from_dir), _meta(out_dir)
    if meta and meta.get("quantization", {}).get("fp32_params_sha256") == source.get("params_sha256"):
        return out_dir
    from ssd_tools.quantize import quantize_exported
    quantize_exported(from_dir, out_dir)
    return out_dir


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    random_parser = sub.add_parser("random-init")
    random_parser.add_argument("--model", required=True)
    random_parser.add_argument("--out", required=True)
    int8_parser = sub.add_parser("int8")
    int8_parser.add_argument("--from", dest="source", required=True)
    int8_parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.command == "random-init":
        print(random_init(args.model, args.out))
    else:
        print(int8(args.source, args.out))


if __name__ == "__main__":
    main()
