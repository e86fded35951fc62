"""The exported model's on-disk layout and metadata: what an export writes and serving reads."""
from __future__ import absolute_import

import hashlib
import json
import os

from .errors import ModelLoadError

FORMAT_VERSION = 1
PREFIX = "model"
SYMBOL_FILE = PREFIX + "-symbol.json"
PARAMS_FILE = PREFIX + "-0000.params"
META_FILE = PREFIX + "-meta.json"

_REQUIRED_KEYS = ("model_name", "classes", "input_width", "input_height", "mean", "std", "weights")
# Beside the model, a model.tar.gz may carry user code for the entry point (SageMaker's layout): not a model.
CODE_SUBDIR = "code"
# The archive itself: the SDK's local mode leaves it beside what it unpacked from it (SageMaker does not)
ARCHIVE_FILE = "model.tar.gz"


def file_sha256(path):
    """The hex sha256 of a file, read in 1 MiB pieces (a params file is about 100 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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


def given_model_dir(path):
    """The model in SageMaker's model folder (`path`, /opt/ml/model): the folder itself or its single subfolder.

    None when it holds no model to serve: absent, empty, or only code/. A model.tar.gz beside other entries is
    the archive they were unpacked from, and is passed over. Anything else that is not a model, or a folder
    this process cannot read, is a ModelLoadError saying what was found, so a model.tar.gz that was packed
    wrongly stops the server instead of being passed over for the model baked into the image.
    """
    if not os.path.lexists(path):
        return None
    require_readable(path)
    entries = sorted(name for name in os.listdir(path) if name != CODE_SUBDIR and not name.startswith("."))
    if not entries:
        return None
    if has_model(path):
        return path
    unpacked = [name for name in entries if name != ARCHIVE_FILE] if len(entries) > 1 else entries
    inner = os.path.join(path, unpacked[0])
    if len(unpacked) == 1 and os.path.isdir(inner):
        require_readable(inner)
        if has_model(inner):
            return inner
        entries = ["%s/%s" % (unpacked[0], name) for name in sorted(os.listdir(inner))]
    shown = ", ".join(entries[:20]) + (" and %d more" % (len(entries) - 20) if len(entries) > 20 else "")
    raise ModelLoadError("%s holds %s, but no exported model (%s, %s and %s at its top or in one folder); "
                         "pack those three files at the top of model.tar.gz (python -m ssd_tools.export "
                         "writes them)" % (path, shown or "nothing", SYMBOL_FILE, PARAMS_FILE, META_FILE))


def require_readable(folder):
    """Refuse a model folder this process cannot list, naming the permissions, rather than skip what it holds."""
    if os.access(folder, os.R_OK | os.X_OK):
        return
    try:
        mode = oct(os.stat(folder).st_mode & 0o777)
    except OSError:
        mode = "unknown"
    raise ModelLoadError("%s cannot be read by this server's user (uid %d; the folder's mode is %s): make the "
                         "model readable, e.g. chmod -R a+rX before packing model.tar.gz" % (folder, os.getuid(), mode))
