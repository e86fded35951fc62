"""The accuracy check an int8 graph must pass before SSD_PRECISION=auto serves it: int8 against fp32 on held-out images."""
from __future__ import absolute_import, division, print_function

import glob
import hashlib
import logging
import os
import platform
import time
import xml.etree.ElementTree as ElementTree

import numpy as np

LOG = logging.getLogger(__name__)

# With labels: the VOC07 mAP (IoU 0.5) of int8 may be at most this many points below fp32's (NNCF's and
# OpenVINO POT's default max_drop, 1% absolute).
DEFAULT_MAX_DROP = 1.0
# Without labels: fp32's detections at the served threshold are the truth, and int8's detections must reach
# this VOC07 AP against them, in points. Chosen by measurement on the demo model (docs/int8.md): every int8
# graph whose labelled drop stayed within 1 point agreed at 99.33 or more, every worse one at 98.91 or less.
DEFAULT_MIN_AGREEMENT = 99.0
# A check on fewer images, or (without labels) on fewer fp32 boxes than this, does not count as passed: below
# these, subsets of the demo's held-out scenes gave a good and a damaged int8 graph the same verdict too often
# (docs/int8.md, "How many images").
MIN_IMAGES = 50
MIN_REFERENCE_BOXES = 100
# The demo model is checked on labelled synthetic scenes of its evaluation seed (never calibrated on: the
# calibration scenes have their own seed); other models on held-out photos plus scenes of this seed.
DEMO_CHECK_SEED = 1234
DEMO_CHECK_SCENES = 200
UNLABELLED_SCENE_SEED = 2468
UNLABELLED_SCENES = 40
# detections down to this score are ranked for the AP; the served threshold decides fp32's "truth" boxes
RANKED_MIN_SCORE = 0.01
IOU = 0.5
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".gif", ".tif", ".tiff")
# images are kept decoded between the tries of a fallback up to this many bytes, else decoded again
CACHE_BYTES = 512 << 20


class CheckInputError(ValueError):
    """Check images or labels that cannot be used: the message says what is wrong and what to do."""


class CheckImage(object):
    """One check image: how to get its RGB pixels, its name, and its labels (None when unlabelled)."""

    def __init__(self, name, load, digest, boxes=None, class_ids=None):
        self.name = name
        self.load = load            # () -> (rgb uint8 HxWx3, (width, height) of the original image)
        self.digest = digest        # sha256 of the file, or of the pixels for a synthetic scene
        self.boxes = boxes          # (n, 4) float32 in the original image's pixels, or None
        self.class_ids = class_ids  # (n,) int, or None


class CheckSet(object):
    """The images a check runs on, where they came from, and whether they are labelled."""

    def __init__(self, source, images):
        self.source = source
        self.images = list(images)
        labelled = set(image.boxes is not None for image in self.images)
        if len(labelled) > 1:
            raise CheckInputError("%s: some images have labels and some do not" % source)
        self.labelled = labelled == {True}
        self._cache = {}
        self._cached_bytes = 0

    def __len__(self):
        return len(self.images)

    def digest(self):
        """sha256 over the images' names and digests, in order: which images a recorded check used."""
        total = hashlib.sha256()
        for image in self.images:
            total.update(("%s %s\n" % (image.name, image.digest)).encode("utf-8"))
        return total.hexdigest()

    def pixels(self, index):
        if index in self._cache:
            return self._cache[index]
        rgb, size = self.images[index].load()
        if self._cached_bytes + rgb.nbytes <= CACHE_BYTES:
            self._cache[index] = (rgb, size)
            self._cached_bytes += rgb.nbytes
        return rgb, size

    def subset(self, indices):
        return CheckSet(self.source, [self.images[i] for i in indices])


def file_digest(path):
    with open(path, "rb") as stream:
        return hashlib.sha256(stream.read()).hexdigest()


def _decoder_for(path, target_size):
    """The serving decoder on the file's bytes: what a request with this file would be served from."""
    def load():
        from ssd_serving.decoder import decode_image
        from ssd_serving.errors import InferenceError
        try:
            with open(path, "rb") as stream:
                data = stream.read()
        except (IOError, OSError) as err:
            raise CheckInputError("check image %s cannot be read: %s" % (path, err))
        try:
            decoded = decode_image(data, target_size)
        except InferenceError as err:
            raise CheckInputError("check image %s cannot be decoded (%s): remove it from the folder or replace "
                                  "it with a JPEG or PNG" % (path, err))
        return decoded.rgb, decoded.original_size
    return load


def image_files(folder, what="check images"):
    """The image files directly in `folder`, sorted; a clear error for a missing, unreadable or empty one."""
    if not os.path.isdir(folder):
        raise CheckInputError("%s: %s is not a folder" % (what, folder))
    if not os.access(folder, os.R_OK | os.X_OK):
        raise CheckInputError("%s: the folder %s cannot be read by this user (uid %d)" % (what, folder, os.getuid()))
    found = sorted(p for p in glob.glob(os.path.join(folder, "*"))
                   if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS))
    if not found and os.path.isdir(os.path.join(folder, "JPEGImages")):
        return image_files(os.path.join(folder, "JPEGImages"), what)
    if not found:
        raise CheckInputError("%s: no images (%s) in %s" % (what, ", ".join(IMAGE_EXTENSIONS), folder))
    return found


def split_folder(paths, check_share=3):
    """(calibration, check): a deterministic split of one folder's images, by the sha256 of each file's
    name, so that adding an image moves no other one; every `check_share`-th hash bucket is checked."""
    calibration, check = [], []
    for path in paths:
        bucket = int(hashlib.sha256(os.path.basename(path).encode("utf-8")).hexdigest()[:8], 16) % check_share
        (check if bucket == 0 else calibration).append(path)
    return calibration, check


def _voc_xml_for(image_path, root):
    stem = os.path.splitext(os.path.basename(image_path))[0]
    for folder in (os.path.dirname(image_path), os.path.join(root, "Annotations"),
                   os.path.join(os.path.dirname(os.path.dirname(image_path)), "Annotations")):
        candidate = os.path.join(folder, stem + ".xml")
        if os.path.isfile(candidate):
            return candidate
    return None


def read_voc_xml(path, classes):
    """(boxes, class ids) of a VOC annotation, boxes as [xmin, ymin, xmax, ymax] pixel edges."""
    try:
        root = ElementTree.parse(path).getroot()
    except (ElementTree.ParseError, IOError, OSError) as err:
        raise CheckInputError("labels %s cannot be read as VOC XML: %s" % (path, err))
    boxes, ids = [], []
    for obj in root.iter("object"):
        name = (obj.findtext("name") or "").strip()
        if name not in classes:
            raise CheckInputError("labels %s name the class %r, which the model does not have (its classes: %s)"
                                  % (path, name, ", ".join(classes)))
        box = obj.find("bndbox")
        try:
            # VOC's 1-based inclusive pixel indices to pixel edges
            xmin, ymin = float(box.findtext("xmin")) - 1, float(box.findtext("ymin")) - 1
            xmax, ymax = float(box.findtext("xmax")), float(box.findtext("ymax"))
        except (AttributeError, TypeError, ValueError):
            raise CheckInputError("labels %s: an object %r has no complete bndbox (xmin, ymin, xmax, ymax)"
                                  % (path, name))
        boxes.append([xmin, ymin, xmax, ymax])
        ids.append(classes.index(name))
    return np.array(boxes, dtype=np.float32).reshape(-1, 4), np.array(ids, dtype=np.int64)


def folder_check_set(paths, classes, target_size, root, source):
    """Images (labelled by VOC XML beside them or in an Annotations/ folder, or all unlabelled)."""
    xmls = [_voc_xml_for(path, root) for path in paths]
    labelled = [x for x in xmls if x]
    if labelled and len(labelled) != len(paths):
        missing = [os.path.basename(p) for p, x in zip(paths, xmls) if not x]
        raise CheckInputError("%s: %d of %d images have VOC XML labels and %d do not (%s%s): label every image "
                              "(NAME.xml beside NAME.jpg, or in Annotations/) or none" % (
                                  source, len(labelled), len(paths), len(missing), ", ".join(missing[:5]),
                                  " ..." if len(missing) > 5 else ""))
    if labelled:
        stems = set(os.path.splitext(os.path.basename(p))[0] for p in paths)
        annotations = os.path.join(root, "Annotations")
        if os.path.isdir(annotations):
            orphans = sorted(os.path.basename(x) for x in glob.glob(os.path.join(annotations, "*.xml"))
                             if os.path.splitext(os.path.basename(x))[0] not in stems)
            if orphans and not source.endswith("(held-out part)"):
                raise CheckInputError("%s: labels without an image: %s; the labels folder does not match the "
                                      "images" % (source, ", ".join(orphans[:5])))
    images = []
    for path, xml in zip(paths, xmls):
        boxes, ids = read_voc_xml(xml, list(classes)) if xml else (None, None)
        images.append(CheckImage(os.path.basename(path), _decoder_for(path, target_size), file_digest(path),
                                 boxes, ids))
    return CheckSet(source, images)


def coco_check_set(labels_path, image_root, classes, target_size):
    """Labelled check images from a COCO JSON (images, annotations with bbox [x, y, w, h], categories by name);
    crowd annotations are left out. Every image it lists must be in `image_root`."""
    import json
    try:
        with open(labels_path) as stream:
            coco = json.load(stream)
        categories = dict((c["id"], c["name"]) for c in coco["categories"])
        listed = coco["images"]
        annotations = coco.get("annotations", [])
    except (IOError, OSError, ValueError, KeyError, TypeError) as err:
        raise CheckInputError("labels %s cannot be read as COCO JSON (images, annotations, categories): %s"
                              % (labels_path, err))
    unknown = sorted(set(categories[a["category_id"]] for a in annotations if a.get("category_id") in categories)
                     - set(classes))
    if unknown:
        raise CheckInputError("labels %s name classes the model does not have: %s (its classes: %s)"
                              % (labels_path, ", ".join(unknown[:10]), ", ".join(classes)))
    orphans = [a for a in annotations if a.get("category_id") not in categories]
    if orphans:
        raise CheckInputError("labels %s: %d annotations have a category_id that is not in its categories"
                              % (labels_path, len(orphans)))
    missing = [image["file_name"] for image in listed
               if not os.path.isfile(os.path.join(image_root, image["file_name"]))]
    if missing:
        raise CheckInputError("labels %s list %d images that are not in %s (%s%s): the labels do not match the "
                              "images" % (labels_path, len(missing), image_root, ", ".join(missing[:5]),
                                          " ..." if len(missing) > 5 else ""))
    by_image = {}
    for a in annotations:
        if a.get("iscrowd"):
            continue
        x, y, w, h = [float(v) for v in a["bbox"]]
        by_image.setdefault(a["image_id"], []).append(([x, y, x + w, y + h],
                                                       list(classes).index(categories[a["category_id"]])))
    images = []
    for image in sorted(listed, key=lambda item: item["file_name"]):
        path = os.path.join(image_root, image["file_name"])
        objects = by_image.get(image["id"], [])
        boxes = np.array([o[0] for o in objects], dtype=np.float32).reshape(-1, 4)
        ids = np.array([o[1] for o in objects], dtype=np.int64)
        images.append(CheckImage(image["file_name"], _decoder_for(path, target_size), file_digest(path), boxes, ids))
    if not images:
        raise CheckInputError("labels %s list no images" % labels_path)
    return CheckSet("COCO labels %s, images in %s" % (labels_path, image_root), images)


def demo_scene_set(seed=DEMO_CHECK_SEED, count=DEMO_CHECK_SCENES, labelled=True):
    """The demo's labelled held-out scenes (or, unlabelled, scenes of another seed for any model)."""
    from .demo import scenes

    def scene(index):
        def load():
            rgb, _, _ = scenes.scene_at(seed, index)
            return rgb, (rgb.shape[1], rgb.shape[0])
        return load
    images = []
    for index in range(int(count)):
        name = "scene-%d-%d" % (seed, index)
        if labelled:
            rgb, boxes, ids = scenes.scene_at(seed, index)
            images.append(CheckImage(name, scene(index), hashlib.sha256(rgb.tobytes()).hexdigest(),
                                     boxes.astype(np.float32), ids.astype(np.int64)))
        else:
            rgb, _, _ = scenes.scene_at(seed, index)
            images.append(CheckImage(name, scene(index), hashlib.sha256(rgb.tobytes()).hexdigest()))
    what = "the demo's labelled held-out scenes" if labelled else "synthetic scenes"
    return CheckSet("%s (seed %d, %d)" % (what, seed, count), images)


def builtin_check_set(photo_paths, target_size, scenes=UNLABELLED_SCENES):
    """Unlabelled: the builtin photos held out from calibration plus synthetic scenes of their own seed."""
    images = [CheckImage(os.path.splitext(os.path.basename(p))[0], _decoder_for(p, target_size), file_digest(p))
              for p in photo_paths]
    images += demo_scene_set(UNLABELLED_SCENE_SEED, scenes, labelled=False).images
    return CheckSet("builtin held-out photos (%s) and %d synthetic scenes (seed %d)" % (
        ", ".join(i.name for i in images[:len(photo_paths)]), scenes, UNLABELLED_SCENE_SEED), images)


# --- the metric ------------------------------------------------------------------------------------------

def _iou(box, boxes):
    """IoU of one box with many (pixel-edge boxes, GluonCV's bbox_iou with offset 0)."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-12)


def voc07_ap(detections, truths, class_count, iou=IOU):
    """Per-class VOC07 11-point AP (NaN for a class without truth boxes), as GluonCV's VOC07MApMetric.

    `detections`: per image (ids, scores, boxes); `truths`: per image (boxes, ids).
    """
    aps = []
    for cls in range(class_count):
        ranked, positives = [], 0
        for image, ((ids, scores, boxes), (t_boxes, t_ids)) in enumerate(zip(detections, truths)):
            positives += int(np.sum(t_ids == cls))
            for k in np.flatnonzero(ids == cls):
                ranked.append((-float(scores[k]), image, k))
        if positives == 0:
            aps.append(float("nan"))
            continue
        ranked.sort(key=lambda item: (item[0], item[1], item[2]))
        taken = {}
        tp = np.zeros(len(ranked))
        for n, (_, image, k) in enumerate(ranked):
            t_boxes, t_ids = truths[image]
            candidates = np.flatnonzero(t_ids == cls)
            if not len(candidates):
                continue
            overlaps = _iou(detections[image][2][k], t_boxes[candidates])
            best = int(np.argmax(overlaps))
            if overlaps[best] >= iou and not taken.get((image, candidates[best])):
                taken[(image, candidates[best])] = True
                tp[n] = 1
        cum_tp = np.cumsum(tp)
        recall = cum_tp / positives
        precision = cum_tp / np.arange(1, len(ranked) + 1) if len(ranked) else np.zeros(0)
        ap = 0.0
        for t in np.arange(0.0, 1.1, 0.1):
            above = precision[recall >= t] if len(ranked) else np.zeros(0)
            ap += (float(np.max(above)) if len(above) else 0.0) / 11.0
        aps.append(ap)
    return aps


def _mean(values):
    present = [v for v in values if v == v]
    return float(np.mean(present)) if present else float("nan")


def _as_arrays(found):
    ids = np.array([d["class_id"] for d in found], dtype=np.int64)
    scores = np.array([d["score"] for d in found], dtype=np.float32)
    boxes = np.array([d["box"] for d in found], dtype=np.float32).reshape(-1, 4)
    return ids, scores, boxes


def detections_on(detector, check_set, min_score=RANKED_MIN_SCORE):
    """Per image (ids, scores, boxes) in original pixels, from the serving code's detect()."""
    results = []
    for index in range(len(check_set)):
        rgb, size = check_set.pixels(index)
        results.append(_as_arrays(detector.detect(rgb, threshold=min_score, original_size=size)))
    return results


def recall_of(reference, detections, threshold, iou=IOU):
    """Share of the reference boxes that a detection of the same class scoring >= threshold overlaps."""
    found = total = 0
    for (t_boxes, t_ids), (ids, scores, boxes) in zip(reference, detections):
        total += len(t_ids)
        keep = scores >= threshold
        for box, cls in zip(t_boxes, t_ids):
            same = keep & (ids == cls)
            if np.any(same) and np.max(_iou(box, boxes[same])) >= iou:
                found += 1
    return found / total if total else float("nan")


def compare(fp32, int8, check_set, classes, threshold):
    """The figures of int8 against fp32 on one check set (labelled: mAP drop; else: agreement)."""
    count = len(classes)
    if check_set.labelled:
        truths = [(i.boxes, i.class_ids) for i in check_set.images]
        ap32, ap8 = voc07_ap(fp32, truths, count), voc07_ap(int8, truths, count)
        drops = dict((classes[c], 100.0 * (ap32[c] - ap8[c])) for c in range(count) if ap32[c] == ap32[c])
        worst = max(drops, key=lambda name: drops[name]) if drops else None
        return {"metric": "voc07_map_drop", "unit": "points", "fp32_map": 100.0 * _mean(ap32),
                "int8_map": 100.0 * _mean(ap8), "value": 100.0 * (_mean(ap32) - _mean(ap8)),
                "per_class": drops, "per_class_worst": {"class": worst, "value": drops.get(worst)},
                "boxes": int(sum(len(t[1]) for t in truths))}
    truths = []
    for ids, scores, boxes in fp32:
        keep = scores >= threshold
        truths.append((boxes[keep], ids[keep]))
    aps = voc07_ap(int8, truths, count)
    per_class = dict((classes[c], 100.0 * aps[c]) for c in range(count) if aps[c] == aps[c])
    worst = min(per_class, key=lambda name: per_class[name]) if per_class else None
    return {"metric": "fp32_agreement_ap", "unit": "points", "value": 100.0 * _mean(aps),
            "fp32_box_recall": 100.0 * recall_of(truths, int8, threshold), "per_class": per_class,
            "per_class_worst": {"class": worst, "value": per_class.get(worst)},
            "boxes": int(sum(len(t[1]) for t in truths))}


def verdict(figures, count, max_drop=DEFAULT_MAX_DROP, min_agreement=DEFAULT_MIN_AGREEMENT, min_images=MIN_IMAGES,
            min_boxes=MIN_REFERENCE_BOXES):
    """(passed, limit, reason) for the figures of a check on `count` images."""
    labelled = figures["metric"] == "voc07_map_drop"
    limit = max_drop if labelled else min_agreement
    if count < min_images:
        return False, limit, ("only %d check images, fewer than the %d a check needs to count: give more "
                              "(CALIBRATION_IMAGES / --check-images)" % (count, min_images))
    if not labelled and figures["boxes"] < min_boxes:
        return False, limit, ("fp32 found only %d boxes at the served threshold on the %d check images, fewer than "
                              "the %d the agreement needs to count: give images like those the model will serve, "
                              "or labelled ones" % (figures["boxes"], count, min_boxes))
    value = figures["value"]
    if value != value:
        return False, limit, "no figure: nothing to compare on these images"
    if labelled:
        if value <= max_drop:
            return True, limit, "mAP drop %.2f points <= %.2f" % (value, max_drop)
        return False, limit, "mAP drop %.2f points > %.2f" % (value, max_drop)
    if value >= min_agreement:
        return True, limit, "agreement with fp32 %.2f points >= %.2f" % (value, min_agreement)
    return False, limit, "agreement with fp32 %.2f points < %.2f" % (value, min_agreement)


def tool_versions():
    versions = {"python": platform.python_version()}
    for name in ("mxnet", "gluoncv", "numpy", "PIL"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:
            pass
    return versions


class Reference(object):
    """fp32's detections on a check set, computed once for every try of a fallback."""

    def __init__(self, fp32_dir, check_set):
        from ssd_serving import artifact
        from ssd_serving.model import load_detector
        self.fp32_dir = fp32_dir
        self.meta = artifact.read_metadata(fp32_dir)
        self.check_set = check_set
        detector = load_detector(fp32_dir, context="cpu", wanted_precision="fp32", warm_up=False)
        self.classes = list(detector.classes)
        self.detections = detections_on(detector, check_set)


def run_check(reference, int8_dir, max_drop=DEFAULT_MAX_DROP, min_agreement=DEFAULT_MIN_AGREEMENT,
              min_images=MIN_IMAGES, min_boxes=MIN_REFERENCE_BOXES, threshold=None):
    """Check the int8 graph in `int8_dir` against `reference` (fp32 on the check set); the record for its
    model-meta.json."""
    from ssd_serving import artifact
    from ssd_serving.environment import DEFAULT_THRESHOLD
    from ssd_serving.model import load_detector
    started = time.time()
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    meta = artifact.read_metadata(int8_dir)
    quiet = logging.getLogger("ssd_serving.model")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # the graph under check has no check yet: loading it would warn so
    try:
        detector = load_detector(int8_dir, context="cpu", wanted_precision=meta.get("precision", "int8"),
                                 warm_up=False)
    finally:
        quiet.setLevel(level)
    int8 = detections_on(detector, reference.check_set)
    figures = compare(reference.detections, int8, reference.check_set, reference.classes, threshold)
    passed, limit, reason = verdict(figures, len(reference.check_set), max_drop, min_agreement, min_images,
                                    min_boxes)
    record = dict(figures)
    record.update({
        "passed": bool(passed), "limit": limit, "reason": reason,
        "direction": "at most" if figures["metric"] == "voc07_map_drop" else "at least",
        "served_threshold": threshold,
        "images": {"count": len(reference.check_set), "sha256": reference.check_set.digest(),
                   "source": reference.check_set.source, "labelled": reference.check_set.labelled},
        "min_images": min_images,
        "fp32_params_sha256": reference.meta.get("params_sha256"),
        "int8_params_sha256": meta.get("params_sha256"),
        "tools": tool_versions(),
        "seconds": round(time.time() - started, 1),
    })
    for key in ("value", "fp32_map", "int8_map", "fp32_box_recall"):
        if key in record and record[key] == record[key]:
            record[key] = round(record[key], 3)
    record["per_class"] = dict((k, round(v, 3)) for k, v in record["per_class"].items())
    if record["per_class_worst"]["value"] is not None:
        record["per_class_worst"]["value"] = round(record["per_class_worst"]["value"], 3)
    return record


def skipped_record(fp32_meta, int8_params_sha256, why="skipped with --skip-check"):
    """What an int8 graph records when its check was not run: SSD_PRECISION=auto will not serve it."""
    return {"passed": False, "skipped": True, "reason": why, "fp32_params_sha256": fp32_meta.get("params_sha256"),
            "int8_params_sha256": int8_params_sha256, "tools": tool_versions()}


def summary(record):
    """One line: what the check measured and its verdict (the start-up log and the build repeat it)."""
    if record.get("skipped"):
        return "int8 accuracy check skipped (%s)" % record.get("reason")
    name = "VOC07 mAP drop" if record.get("metric") == "voc07_map_drop" else "agreement with fp32 (AP)"
    return "int8 accuracy check %s: %s %.2f points (%s %.2f) on %d images" % (
        "passed" if record.get("passed") else "FAILED", name, record.get("value", float("nan")),
        record.get("direction", ""), record.get("limit", float("nan")), record.get("images", {}).get("count", 0))


def table(record):
    """A short table of the check for the export's output."""
    if record.get("skipped"):
        return summary(record)
    lines = ["int8 accuracy check on %d images: %s" % (record["images"]["count"], record["images"]["source"])]
    if record["metric"] == "voc07_map_drop":
        lines.append("  %-24s %9s" % ("", "points"))
        lines.append("  %-24s %9.2f" % ("fp32 mAP", record["fp32_map"]))
        lines.append("  %-24s %9.2f" % ("int8 mAP", record["int8_map"]))
        lines.append("  %-24s %9.2f   limit %.2f" % ("drop", record["value"], record["limit"]))
        for name, drop in sorted(record["per_class"].items(), key=lambda kv: -kv[1]):
            lines.append("  %-24s %9.2f" % ("drop[%s]" % name, drop))
    else:
        lines.append("  %-24s %9.2f   limit %.2f (at least)" % ("agreement AP", record["value"], record["limit"]))
        lines.append("  %-24s %9.2f" % ("fp32 boxes found", record["fp32_box_recall"]))
        lines.append("  %-24s %9d" % ("fp32 boxes (truth)", record["boxes"]))
        for name, value in sorted(record["per_class"].items(), key=lambda kv: kv[1])[:5]:
            lines.append("  %-24s %9.2f" % ("AP[%s]" % name, value))
    lines.append("  -> %s (%s)" % ("PASSED" if record["passed"] else "FAILED", record["reason"]))
    return "\n".join(lines)
