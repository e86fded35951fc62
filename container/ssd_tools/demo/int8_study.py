"""How the int8 check's defaults were chosen: good and deliberately worse int8 graphs of the demo model, measured.

    python -m ssd_tools.demo.int8_study --out build/int8-study.json --floor    # about 15 min on 2 vCPUs
    make docs-results          # takes build/int8-study.json into docs/results/int8_study.json, renders docs/int8.md

For each calibration mode (naive, entropy) and calibration set (builtin; fewer photos; uniform noise; all
black; flat white), for the builtin calibration with every range scaled down (clipping) and for fewer noise
images, it builds the int8 graph (ssd_tools.quantize.Calibrated) and compares it with fp32 on the demo's
labelled held-out scenes (ssd_tools.int8_check): the labelled mAP drop, and, labels ignored, the agreement
with fp32 and the share of fp32's boxes found. --floor then draws random subsets of the scenes and counts how
often each verdict holds.

The tables in docs/int8.md ("Measurements on the demo model", "How many images") are rendered from
docs/results/int8_study.json by ssd_tools.figures, never typed: `make docs-results` (python -m
ssd_tools.figures --take-int8-study build/int8-study.json) takes a run with --floor there, adding the commit,
date and host, and renders them; then commit the results and the docs together.
"""
from __future__ import absolute_import, division, print_function

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

import numpy as np

DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "models", "demo")


def _variants(rng, size):
    """(name, images, range scale) of the calibration sets measured in every mode."""
    from ..quantize import BUILTIN_CHECK_PHOTOS, calibration_images

    def builtin(**kwargs):
        return calibration_images("builtin", kwargs.pop("scenes", 24), held_out=BUILTIN_CHECK_PHOTOS,
                                  target_size=size, **kwargs)[0]

    def noise(count):
        return [rng.randint(0, 256, size=(512, 512, 3)).astype(np.uint8) for _ in range(count)]

    def flat(count, value):
        return [np.full((512, 512, 3), value, np.uint8) for _ in range(count)]
    return [
        ("builtin (5 photos + 24 scenes)", lambda: builtin(), 1.0),
        ("2 photos, no scenes", lambda: builtin(scenes=0, max_photos=2), 1.0),
        ("1 photo", lambda: builtin(scenes=0, max_photos=1), 1.0),
        ("20 uniform-noise images", lambda: noise(20), 1.0),
        ("40 all-black images", lambda: flat(40, 0), 1.0),
        ("20 flat white images", lambda: flat(20, 255), 1.0),
    ]


def _naive_variants(size):
    """The ones measured with naive calibration only: clipped ranges, and fewer noise images (the first 5 of
    the 20 above, from the same seed)."""
    plain = dict((name, make) for name, make, _ in _variants(np.random.RandomState(5), size))
    return [("builtin, every calibrated range x%.2f" % f, plain["builtin (5 photos + 24 scenes)"], f)
            for f in (0.9, 0.75, 0.6, 0.5, 0.4, 0.3)] + [
        ("5 uniform-noise images", lambda: plain["20 uniform-noise images"]()[:5], 1.0)]


def measure(count, modes, work):
    from ssd_serving.model import load_detector
    from .. import int8_check
    from ..quantize import Calibrated
    labelled = int8_check.demo_scene_set(count=count)
    blind = int8_check.CheckSet("unlabelled", [int8_check.CheckImage(i.name, i.load, i.digest)
                                               for i in labelled.images])
    blind._cache = labelled._cache
    reference = int8_check.Reference(DEMO, labelled)
    size = (256, 256)
    runs = [(mode, variant) for mode in modes for variant in _variants(np.random.RandomState(5), size)]
    if "naive" in modes:
        runs += [("naive", variant) for variant in _naive_variants(size)]
    rows, detections = [], {}
    for mode, (name, make, scale) in runs:
        started = time.time()
        calibrated = Calibrated(DEMO, make(), {"source": name}, mode)
        calibrated.thresholds = dict((k, (lo * scale, hi * scale)) for k, (lo, hi) in calibrated.thresholds.items())
        built = time.time() - started
        folder = os.path.join(work, "%s-%d" % (mode, len(rows)))
        calibrated.write(folder)
        detector = load_detector(folder, context="cpu", wanted_precision="int8", warm_up=False)
        int8 = int8_check.detections_on(detector, labelled)
        shutil.rmtree(folder, ignore_errors=True)
        lab = int8_check.compare(reference.detections, int8, labelled, reference.classes, 0.5)
        agr = int8_check.compare(reference.detections, int8, blind, reference.classes, 0.5)
        row = {"mode": mode, "variant": name, "drop": lab["value"], "fp32_map": lab["fp32_map"],
               "int8_map": lab["int8_map"], "worst_class": lab["per_class_worst"], "agreement": agr["value"],
               "recall": agr["fp32_box_recall"], "boxes": agr["boxes"], "calibration_s": built}
        print(json.dumps(row), file=sys.stderr)
        detections[len(rows)] = int8
        rows.append(row)
    return rows, reference, labelled, detections


def floor(rows, reference, labelled, detections, sizes, reps, max_drop, min_agreement):
    """For each subset size: how often each graph's labelled and unlabelled verdicts come out as on all scenes."""
    from .. import int8_check
    truth = [(i.boxes, i.class_ids) for i in labelled.images]
    fp32 = reference.detections
    classes = len(reference.classes)
    rng = np.random.RandomState(0)
    result = []
    for n in sizes:
        entry = {"images": n, "graphs": {}}
        for index, int8 in detections.items():
            passes, boxes = [0, 0], 0
            for _ in range(reps):
                idx = rng.choice(len(truth), n, replace=False)
                sub_truth = [truth[i] for i in idx]
                ap32 = int8_check._mean(int8_check.voc07_ap([fp32[i] for i in idx], sub_truth, classes))
                ap8 = int8_check._mean(int8_check.voc07_ap([int8[i] for i in idx], sub_truth, classes))
                pseudo = [(fp32[i][2][fp32[i][1] >= 0.5], fp32[i][0][fp32[i][1] >= 0.5]) for i in idx]
                boxes += sum(len(found) for _, found in pseudo)
                agreement = 100 * int8_check._mean(int8_check.voc07_ap([int8[i] for i in idx], pseudo, classes))
                passes[0] += 100 * (ap32 - ap8) <= max_drop
                passes[1] += agreement >= min_agreement
            entry["graphs"]["%s: %s" % (rows[index]["mode"], rows[index]["variant"])] = {
                "drop_all": rows[index]["drop"], "labelled_passes": passes[0] / reps,
                "agreement_passes": passes[1] / reps, "fp32_boxes": boxes / reps}
        print(json.dumps(entry), file=sys.stderr)
        result.append(entry)
    return result


def main(argv=None):
    from .. import int8_check
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="JSON file for the rows (and the floor): build/int8-study.json, "
                        "which make docs-results takes into docs/results/int8_study.json for docs/int8.md")
    parser.add_argument("--count", type=int, default=300, help="labelled held-out scenes (seed 1234)")
    parser.add_argument("--modes", default="naive,entropy")
    parser.add_argument("--floor", action="store_true", help="also the subset study (slow: minutes per size)")
    parser.add_argument("--sizes", default="10,20,30,50,75,100,150")
    parser.add_argument("--reps", type=int, default=100)
    args = parser.parse_args(argv)
    import logging
    logging.getLogger("ssd_serving.model").setLevel(logging.ERROR)  # the graphs studied are unchecked on purpose
    work = tempfile.mkdtemp(prefix="int8-study-")
    try:
        rows, reference, labelled, detections = measure(args.count, args.modes.split(","), work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {"scenes": args.count, "rows": rows}
    if args.floor:
        report["floor_limits"] = {"max_drop": int8_check.DEFAULT_MAX_DROP,
                                  "min_agreement": int8_check.DEFAULT_MIN_AGREEMENT, "draws": args.reps}
        report["floor"] = floor(rows, reference, labelled, detections, [int(s) for s in args.sizes.split(",")],
                                args.reps, int8_check.DEFAULT_MAX_DROP, int8_check.DEFAULT_MIN_AGREEMENT)
    with open(args.out, "w") as stream:
        json.dump(report, stream, indent=2, sort_keys=True)
    print("wrote %s" % args.out)


if __name__ == "__main__":
    main()
