"""Multi-model endpoints (SAGEMAKER_MULTI_MODEL=true): SageMaker's /models API over MMS's management API.

SageMaker downloads and unpacks each model.tar.gz into a folder of its own and asks the container to load it
(`POST /models {"model_name", "url"}`), lists, describes and unloads models (`GET /models`, `GET` and `DELETE
/models/{name}`) and sends requests to one (`POST /models/{name}/invoke`). This module owns which models are
loaded and in which state, checks a folder before anything is loaded from it (its files, the weights' sha256,
the graph MXNet must read), checks there is memory for one more, and registers each model with Multi Model
Server on its loopback management port; the front door (front.py) answers the HTTP side.

Each model is one MMS model with its own worker(s): a model that fails to load is unregistered and cannot
disturb the others, and unloading one stops its workers, which frees their memory. MMS knows a model by an
internal name (`mms_name`), never by SageMaker's opaque `model_name`, so that any name SageMaker sends is safe.
"""
from __future__ import absolute_import

import hashlib
import http.client
import json
import logging
import os
import shutil
import threading
import time
from collections import OrderedDict

from . import artifact
from .errors import HTTPError, ModelLoadError
from .management import Management
from .memory import MB, free_memory, worker_estimate
from .model_server import HANDLER

LOG = logging.getLogger(__name__)

# written into each model's MMS folder: which user folder the worker loads and under which name (handler.py)
POINTER_FILE = "ssd-target-model.json"
# written there by a worker that could not load the model (handler.py): the reason the load's answer gives, since
# MMS itself only says "Failed to start workers"
LOAD_ERROR_FILE = "ssd-load-error.txt"
LOADING, LOADED, UNLOADING = "loading", "loaded", "unloading"
# MMS's management API answers a synchronous registration once the worker has loaded (or failed to load) the model
REGISTER_GRACE_SECONDS = 30


class ModelsError(HTTPError):
    """A /models request that cannot be done: its HTTP status and a message for the {"error", "status"} body."""

    def __init__(self, status, message):
        HTTPError.__init__(self, message, status)


def mms_name(name):
    """The name MMS knows a model by: SageMaker's model_name is opaque (any characters), MMS's must be plain."""
    return "mme-" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:24]


def read_pointer(folder):
    """{"model_name", "url"} of the MMS model folder `folder` written by this module, or None (a plain model)."""
    path = os.path.join(folder or "", POINTER_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as stream:
        return json.load(stream)


def record_load_error(folder, error):
    """Keep why a worker could not load the model, for the POST /models answer (best effort)."""
    try:
        with open(os.path.join(folder, LOAD_ERROR_FILE), "w") as stream:
            stream.write(str(error)[:2000])
    except (OSError, IOError):
        pass


def _load_error(folder):
    try:
        with open(os.path.join(folder, LOAD_ERROR_FILE)) as stream:
            return stream.read().strip() or None
    except (OSError, IOError):
        return None


def check_folder(url, settings):
    """(model folder, metadata of the graph to serve: fp32 or int8) for SageMaker's `url`, or a ModelsError naming what is wrong:
    404 when there is no such folder, 422 when it holds no usable model (files, metadata, sha256, graph)."""
    from .model import check_model_folder  # MXNet: only once a model is asked for
    if not isinstance(url, str) or not os.path.isabs(url):
        raise ModelsError(400, "url must be the absolute path of the model's folder, not %r" % (url,))
    if not os.path.isdir(url):
        raise ModelsError(404, "url %s is not a folder on this instance" % url)
    try:
        found = artifact.given_model_dir(url)
        if found is None:
            raise ModelLoadError("%s holds no exported model (%s, %s and %s)" % (
                url, artifact.SYMBOL_FILE, artifact.PARAMS_FILE, artifact.META_FILE))
        choice = check_model_folder(found, settings)
    except ModelLoadError as err:
        raise ModelsError(422, str(err))
    return found, choice.meta


class Model(object):
    """One model SageMaker asked for: its names, folder, state and what it is."""

    def __init__(self, name, url):
        self.name = name
        self.url = url
        self.mms_name = mms_name(name)
        self.state = LOADING
        self.meta = None
        self.model_dir = None
        self.load_seconds = None

    def describe(self):
        document = {"modelName": self.name, "modelUrl": self.url, "state": self.state}
        if self.meta is not None:
            weights = self.meta.get("weights", {})
            document.update({
                "model": self.meta.get("model_name"), "classes": list(self.meta.get("classes", [])),
                "input_size": [self.meta.get("input_width"), self.meta.get("input_height")],
                "precision": self.meta.get("precision", "fp32"), "params_sha256": self.meta.get("params_sha256"),
                "weights_source": weights.get("source"), "weights_location": weights.get("location"),
                "model_dir": self.model_dir})
        if self.load_seconds is not None:
            document["load_seconds"] = round(self.load_seconds, 3)
        return document


class Models(object):
    """The models of a multi-model endpoint, loaded into the MMS listening for management on `mgmt_port`, whose
    model store is `store`, each with the worker layout `layout` (layout.WorkerLayout). Thread-safe: the front door
    calls it from one thread per connection."""

    def __init__(self, mgmt_port, store, settings, layout, cgroup_root="/sys/fs/cgroup"):
        self.management = Management(mgmt_port)
        self.store = store
        self.settings = settings
        self.layout = layout
        self.cgroup_root = cgroup_root
        self._models = OrderedDict()
        self._lock = threading.Lock()
        # one load at a time: the memory check of the next must see what the last one took
        self._loading = threading.Lock()

    # --- MMS's management API

    def _register(self, model):
        timeout = self.settings.response_timeout + REGISTER_GRACE_SECONDS
        try:
            status, body = self.management.register(model.mms_name, self.settings, self.layout, synchronous=True,
                                                    timeout=timeout)
        except (OSError, http.client.HTTPException) as err:
            status, body = None, "%s: %s" % (err.__class__.__name__, err)
        if status == 200:
            return
        self._unregister(model)
        reason = _load_error(os.path.join(self.store, model.mms_name))
        if reason:  # the worker said why: something in the folder the checks before loading could not see
            raise ModelsError(422, "model %s from %s did not load: %s" % (model.name, model.url, reason))
        raise ModelsError(500 if status is None or status < 500 else status,
                          "model %s from %s did not load: %s" % (model.name, model.url, _mms_message(body)))

    def _unregister(self, model):
        try:
            status, body = self.management.unregister(model.mms_name, self.settings.response_timeout)
        except (OSError, http.client.HTTPException) as err:
            LOG.warning("unregistering model %s (%s) from the model server: %s", model.name, model.mms_name, err)
            return False
        if status != 200 and status != 404:
            LOG.warning("unregistering model %s (%s): the model server answered %d %s", model.name, model.mms_name,
                        status, body)
        return status == 200

    # --- the MMS model folder

    def _write_folder(self, model):
        folder = os.path.join(self.store, model.mms_name)
        shutil.rmtree(folder, ignore_errors=True)
        os.makedirs(os.path.join(folder, "MAR-INF"))
        manifest = {"runtime": "python", "model": {"modelName": model.mms_name, "handler": HANDLER},
                    "modelServerVersion": "1.0", "implementationVersion": "1.0", "specificationVersion": "1.0"}
        with open(os.path.join(folder, "MAR-INF", "MANIFEST.json"), "w") as stream:
            json.dump(manifest, stream)
        with open(os.path.join(folder, POINTER_FILE), "w") as stream:
            json.dump({"model_name": model.name, "url": model.model_dir}, stream)

    def _remove_folder(self, model):
        shutil.rmtree(os.path.join(self.store, model.mms_name), ignore_errors=True)

    # --- memory

    def needed_bytes(self, model_dir, meta):
        if self.settings.model_memory_mb:
            return self.settings.model_memory_mb * MB
        # what one more model costs before it is loaded, when SSD_MODEL_MEMORY_MB does not say: its workers, by
        # memory.worker_estimate of the folder's fp32 weights (an int8 graph beside them is smaller)
        params = os.path.getsize(os.path.join(model_dir, artifact.PARAMS_FILE))
        return self.layout.workers * worker_estimate(params)

    def _check_memory(self, model):
        needed = self.needed_bytes(model.model_dir, model.meta)
        available = free_memory(self.cgroup_root)
        if needed > available:
            raise ModelsError(507, "not enough memory to load model %s: it needs about %d MB (%s), %d MB are "
                                   "available; unload a model first" % (
                                       model.name, needed // MB,
                                       "SSD_MODEL_MEMORY_MB" if self.settings.model_memory_mb else "estimated",
                                       available // MB))

    # --- SageMaker's API

    def load(self, body):
        """POST /models: (status, document). Raises ModelsError."""
        try:
            request = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
        except ValueError:
            raise ModelsError(400, "POST /models takes a JSON object {\"model_name\": ..., \"url\": ...}")
        if not isinstance(request, dict):
            raise ModelsError(400, "POST /models takes a JSON object {\"model_name\": ..., \"url\": ...}")
        name, url = request.get("model_name"), request.get("url")
        if not isinstance(name, str) or not name.strip():
            raise ModelsError(400, "POST /models needs a model_name (a non-empty string)")
        with self._lock:
            found = self._models.get(name)
            if found is not None:
                raise ModelsError(409, "model %s is already %s (from %s)" % (name, found.state, found.url))
            model = self._models[name] = Model(name, url)
        started = time.time()
        try:
            model.model_dir, model.meta = check_folder(url, self.settings)
            with self._loading:
                self._check_memory(model)
                self._write_folder(model)
                LOG.info("loading model %s from %s (MMS model %s)", name, model.model_dir, model.mms_name)
                self._register(model)
        except BaseException as err:
            with self._lock:
                self._models.pop(name, None)
            self._remove_folder(model)
            LOG.warning("model %s from %s was not loaded: %s", name, url, err)
            raise
        model.load_seconds = time.time() - started
        model.state = LOADED
        weights = model.meta.get("weights", {})
        LOG.info("model %s loaded in %.2f s: %s from %s, %s graph, weights from %s (%s), sha256 %s", name,
                 model.load_seconds, model.meta.get("model_name"), model.model_dir,
                 model.meta.get("precision", "fp32"), weights.get("source"), weights.get("location"),
                 model.meta.get("params_sha256"))
        return 200, {"modelName": name, "modelUrl": url, "load_seconds": round(model.load_seconds, 3),
                     "message": "model %s loaded" % name}

    def listing(self, page_token=None):
        """GET /models: one page of the loaded models, and nextPageToken when there are more."""
        try:
            start = int(page_token) if page_token not in (None, "") else 0
        except ValueError:
            start = -1
        if start < 0:
            raise ModelsError(400, "next_page_token %r is not one this server gave" % (page_token,))
        with self._lock:
            loaded = [model for model in self._models.values() if model.state == LOADED]
        size = self.settings.models_page_size
        page = loaded[start:start + size]
        document = {"models": [{"modelName": model.name, "modelUrl": model.url} for model in page]}
        if start + size < len(loaded):
            document["nextPageToken"] = str(start + size)
        return 200, document

    def _find(self, name):
        """The model SageMaker calls `name` (the caller holds the lock); 404 when there is none."""
        model = self._models.get(name)
        if model is None:
            raise ModelsError(404, "model %s is not loaded" % name)
        return model

    def describe(self, name):
        """GET /models/{name}."""
        with self._lock:
            model = self._find(name)
        return 200, model.describe()

    def unload(self, name):
        """DELETE /models/{name}: its workers stop, which frees their memory."""
        with self._lock:
            model = self._find(name)
            if model.state != LOADED:
                raise ModelsError(409, "model %s is %s; unload it once it is loaded" % (name, model.state))
            model.state = UNLOADING
        unloaded = self._unregister(model)
        with self._lock:
            if unloaded:
                self._models.pop(name, None)
            else:
                model.state = LOADED
        if not unloaded:
            raise ModelsError(500, "the model server did not unload model %s; it is still loaded" % name)
        self._remove_folder(model)
        LOG.info("model %s (from %s) unloaded", name, model.url)
        return 200, {"modelName": name, "message": "model %s unloaded" % name}

    def target(self, name):
        """The MMS name to send `name`'s invocations to; 404 when it is not loaded, 503 while it loads or unloads
        (SageMaker retries), so a request never reaches another model."""
        with self._lock:
            model = self._find(name)
        if model.state != LOADED:
            raise ModelsError(503, "model %s is %s; retry" % (name, model.state))
        return model.mms_name

    def loaded_count(self):
        with self._lock:
            return sum(1 for model in self._models.values() if model.state == LOADED)


def _mms_message(body):
    try:
        document = json.loads(body)
    except ValueError:
        return body.strip()[:500] or "no message"
    if isinstance(document, dict):
        return str(document.get("message") or document)[:500]
    return str(document)[:500]
