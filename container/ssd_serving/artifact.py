"""The exported model's on-disk layout and metadata: what an export writes and serving reads."""
from __future__ import absolute_import

import json
import os

from .errors import ModelLoadError

FORMAT_VERSION = 1
PREFIX = "model"
SYMBOL_FILE = PREFIX + "-symbol.json"
PARAMS_FILE = PREFIX + "-0000.params"
META_FILE = PREFIX + "-meta.json"

_REQUIRED_KEYS = ("model_name", "classes", "input_width", "input_height", "mean", "std", "weights")


def has_model(model_dir):
    """True when `model_dir` holds an exported model (the metadata file is the marker)."""
    return bool(model_dir) and os.path.isfile(os.path.join(model_dir, META_FILE))


def read_metadata(model_dir):
    """Read and check `model_dir`'s metadata; raise ModelLoadError saying what is missing."""
    path = os.path.join(model_dir, META_FILE)
    try:
        with open(path) as stream:
            meta = json.load(stream)
    except (IOError, OSError, ValueError) as err:
        raise ModelLoadError("cannot read model metadata %s: %s" % (path, err))
    missing = [key for key in _REQUIRED_KEYS if key not in meta]
    if missing:
        raise ModelLoadError("model metadata %s lacks %s" % (path, ", ".join(missing)))
    for name in (meta.get("symbol_file", SYMBOL_FILE), meta.get("params_file", PARAMS_FILE)):
        if not os.path.isfile(os.path.join(model_dir, name)):
            raise ModelLoadError("model directory %s lacks %s" % (model_dir, name))
    return meta
