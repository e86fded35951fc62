"""VOC07 mAP of an exported demo detector on held-out synthetic scenes, through the serving code.

    python -m ssd_tools.demo.evaluate --model-dir container/models/demo [--seed 1234 --count 300]
    python -m ssd_tools.demo.evaluate --model-dir build/models/demo-int8 --compare-to container/models/demo \
        --max-drop 1.0      # int8 against fp32 on the same scenes: the mAP drop in points

Detections come from ssd_serving.model.load_detector(...).detect(rgb), exactly as served; the metric is
GluonCV's VOC07MApMetric at IoU 0.5 (so this needs GluonCV). The scenes must come from a different
seed than the training scenes; the model metadata records the training seed and this refuses to
evaluate on it.
"""
from __future__ import absolute_import, division, print_function

import argparse
import logging
import sys
import time

import numpy as np

from ssd_tools.demo import scenes

DEFAULT_SEED = 1234
DEFAULT_COUNT = 300


def evaluate(detector, seed=DEFAULT_SEED, count=DEFAULT_COUNT, min_score=0.01):
    """Returns (names, values) from VOC07MApMetric: per-class AP then "mAP" last."""
    from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
    metric = VOC07MApMetric(iou_thresh=0.5, class_names=list(scenes.CLASSES))
    for rgb, gt_boxes, gt_ids in scenes.make_dataset(seed, count):
        detections = detector.detect(rgb, threshold=min_score)
        boxes = np.array([d["box"] for d in detections], dtype=np.float32).reshape(-1, 4)
        labels = np.array([d["class_id"] for d in detections], dtype=np.float32)
        scores = np.array([d["score"] for d in detections], dtype=np.float32)
        metric.update(boxes[None], labels[None], scores[None], gt_boxes[None],
                      gt_ids.astype(np.float32)[None])
    return metric.get()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", required=True, help="an exported demo model (python -m ssd_tools.demo.train)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="held-out scene seed (not the training seed)")
    parser.add_argument("--count", type=int, default=DEFAULT_COUNT, help="number of held-out scenes")
    parser.add_argument("--min-score", type=float, default=0.01, help="drop detections scoring below this")
    parser.add_argument("--context", choices=("auto", "eia", "gpu", "cpu"), help="device (default: serving's choice)")
    parser.add_argument("--require", type=float, help="exit non-zero when mAP is below this")
    parser.add_argument("--compare-to", metavar="DIR",
                        help="another export of the same detector (e.g. fp32 for an int8 --model-dir): evaluate it "
                             "on the same scenes and report the mAP drop in points")
    parser.add_argument("--max-drop", type=float,
                        help="with --compare-to: exit non-zero when mAP drops by more than this many points")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from ssd_serving import artifact
    from ssd_serving.model import load_detector
    from ssd_serving.precision import graph_precision
    results = []
    for model_dir in [args.model_dir] + ([args.compare_to] if args.compare_to else []):
        # the graph at the top of the folder, never its int8/ variant: comparisons must measure what they name
        top = graph_precision(artifact.read_metadata(model_dir))
        detector = load_detector(model_dir, context=args.context, wanted_precision=top)
        train_seed = detector.meta.get("weights", {}).get("train_seed")
        if train_seed is not None and int(train_seed) == args.seed:
            parser.error("--seed %d is the seed this model was trained on; pick another one" % args.seed)
        if list(detector.classes) != list(scenes.CLASSES):
            parser.error("model classes %s are not the demo classes %s" % (detector.classes, list(scenes.CLASSES)))

        start = time.time()
        names, values = evaluate(detector, args.seed, args.count, args.min_score)
        elapsed = time.time() - start
        print("model %s %s (%s) in %s, %d held-out scenes from seed %d, min score %g, %.1f ms/image on %s" % (
            detector.meta.get("model_name"), detector.info["precision"],
            detector.meta.get("weights", {}).get("location"), model_dir, args.count, args.seed, args.min_score,
            1000.0 * elapsed / max(1, args.count), detector.device_name))
        for name, value in zip(names[:-1], values[:-1]):
            print("AP[%s]=%.4f" % (name, value))
        mean_ap = float(values[-1])
        print("mAP=%.3f" % mean_ap)
        results.append((detector.info["precision"], mean_ap))
    mean_ap = results[0][1]
    status = 0
    if args.require is not None and mean_ap < args.require:
        print("mAP %.4f is below the required %.4f" % (mean_ap, args.require), file=sys.stderr)
        status = 1
    if args.compare_to:
        drop = 100.0 * (results[1][1] - mean_ap)
        print("compare: mAP=%.4f, reference_mAP=%.4f, drop_points=%.2f (%s %s against %s %s)" % (
            mean_ap, results[1][1], drop, results[0][0], args.model_dir, results[1][0], args.compare_to))
        if args.max_drop is not None and drop > args.max_drop:
            print("mAP drops by %.2f points, more than the allowed %.2f" % (drop, args.max_drop), file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    sys.exit(main())
