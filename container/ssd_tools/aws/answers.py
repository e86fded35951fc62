"""The server's JSON answer: checked against the documented shape, and printed as a table."""
from __future__ import absolute_import

import json

from .report import DeployError

DETECTION_KEYS = ("class_id", "label", "score", "box")


def parse(body, where, expected_size=None):
    """The answer document from a response body; a DeployError naming what is off."""
    try:
        document = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except ValueError:
        raise DeployError("%s did not answer JSON: %r" % (where, body[:200]),
                          "look at the server's log: the image must answer POST /invocations with JSON")
    problems = []
    if not isinstance(document, dict):
        problems.append("the answer is not a JSON object")
        document = {}
    for key in ("model", "image_size", "detections"):
        if key not in document:
            problems.append("no %r" % key)
    size = document.get("image_size")
    if expected_size and size is not None and list(size) != list(expected_size):
        problems.append("image_size %s, but the photo is %dx%d" % (size, expected_size[0], expected_size[1]))
    for index, detection in enumerate(document.get("detections") or []):
        missing = [key for key in DETECTION_KEYS if key not in detection]
        if missing:
            problems.append("detection %d lacks %s" % (index, ", ".join(missing)))
        elif len(detection["box"]) != 4 or not 0.0 <= float(detection["score"]) <= 1.0:
            problems.append("detection %d is malformed: %s" % (index, detection))
    if problems:
        raise DeployError("%s answered, but not as documented: %s (answer: %s)" %
                          (where, "; ".join(problems), json.dumps(document)[:300]),
                          "the answer must be {\"model\": ..., \"image_size\": [w, h], \"detections\": "
                          "[{class_id, label, score, box}]}: check the image's code and model")
    return document


def table(document):
    """Lines describing the model and each detection."""
    model = document.get("model") or {}
    lines = ["model %s%s on %s, image %sx%s: %d detection(s)" % (
        model.get("name", "?"), " (DEMO model)" if model.get("demo") else "", model.get("device", "?"),
        document["image_size"][0], document["image_size"][1], len(document["detections"]))]
    for detection in document["detections"]:
        lines.append("  %-16s %.3f  box [%s]" % (detection["label"], float(detection["score"]),
                                                 ", ".join("%.1f" % float(v) for v in detection["box"])))
    return lines
