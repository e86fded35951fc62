"""The benchmark's models: the default architecture exported with RANDOM weights (timing only, never served to anyone) and int8 variants.

    python bench/models.py random-init --model ssd_512_resnet50_v1_voc --out DIR
    .venv/mx14/bin/python bench/models.py random-init --model ssd_512_resnet50_v1_voc --out DIR   (EI stack)
    python bench/models.py int8 --from DIR --out DIR

Zoo weights cannot be downloaded everywhere the benchmark runs; the forward cost of an SSD does not
depend on its weights (NMS keeps a fixed top 400), so the default model is timed with random ones.
"""
import argparse
import json
import logging
import os
import sys


RANDOM_WEIGHTS = {"source": "random-init",
                  "location": "timing only: RANDOM weights made by bench/models.py, detects nothing; never serve this"}


def _meta(model_dir):
    path = os.path.join(model_dir, "model-meta.json")
    if not os.path.isfile(path):
        return None
    with open(path) as stream:
        return json.load(stream)


def random_init(model_name, out_dir):
    """Export `model_name`'s architecture with seeded random weights into `out_dir` (reused if there).

    Run it with the MXNet that will serve the export: a graph exported by MXNet 1.9.1 (GluonCV 0.10)
    uses operators MXNet 1.4.1 cannot read (_contrib_box_decode), so the EI stack gets its own, and
    an export is reused only by the MXNet that made it.
    """
    import mxnet as mx
    meta = _meta(out_dir)
    if (meta and meta.get("weights", {}).get("source") == "random-init" and meta.get("model_name") == model_name
            and meta.get("exported_with", {}).get("mxnet") == mx.__version__):
        return out_dir
    from gluoncv import model_zoo
    from ssd_tools.export import export_detector, input_size_from_name
    mx.random.seed(0)
    net = model_zoo.get_model(model_name, pretrained=False, pretrained_base=False)
    net.initialize()
    export_detector(net, out_dir, model_name, net.classes, input_size_from_name(model_name), RANDOM_WEIGHTS)
    return out_dir


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
