"""The launcher's start-up: the checks that refuse a model that cannot load before anything starts, and the
warm-up requests through the front door once a worker has the model."""
from __future__ import absolute_import

import logging
import os
import time

from . import artifact
from .environment import Environment
from .layout import choose_layout
from .memory import memory_size, worker_estimate, workers_that_fit
from .model import candidate_contexts, check_model_folder, find_model_dir

# the launcher's lines keep the one name they had before it was split (docs/int8.md shows them)
LOG = logging.getLogger("ssd_serving.serving")


def preflight(settings=None):
    """Refuse to start (exit with a message) rather than serve a model that cannot load.

    Also picks the graph the workers will load (fp32 or int8, see precision.py) and the worker layout for it, and
    logs which and why. Returns the model folder found, that choice and the layout (layout.WorkerLayout).
    """
    settings = settings or Environment()
    found = find_model_dir(settings=settings)
    # an int8 graph on MXNet 1.4.1 (EI image) or on a GPU is refused here, saying why, before MXNet fails to read it
    choice = check_model_folder(found, settings)
    model_dir, meta = choice.model_dir, choice.meta
    weights = meta.get("weights", {})
    LOG.info("model %s%s in %s; weights from %s (%s), sha256 %s", meta["model_name"],
             " (DEMO model trained on synthetic shapes, not a pretrained detector)" if meta.get("demo") else "",
             model_dir, weights.get("source"), weights.get("location"), meta.get("params_sha256"))
    LOG.info("serving the %s graph: %s", choice.precision, choice.reason)
    if choice.warning:
        LOG.warning("%s", choice.warning)
    params_bytes = os.path.getsize(os.path.join(model_dir, meta.get("params_file", artifact.PARAMS_FILE)))
    device_name = candidate_contexts(settings.context)[0][0]
    memory, limited = memory_size()
    fit = workers_that_fit(memory, params_bytes)
    layout = choose_layout(settings, params_bytes, device_name, max_workers=fit)
    LOG.info("%d worker(s) x %d thread(s): %s", layout.workers, layout.threads, layout.reason)
    if layout.workers > fit:
        LOG.warning("%d worker(s) of about %d MB each may not fit in %s%d MB: the kernel would kill one for memory "
                    "(the model server then starts another, and /ping answers 503 meanwhile)", layout.workers,
                    worker_estimate(params_bytes) // (1024 * 1024), "the container's " if limited else "",
                    memory // (1024 * 1024))
    return found, choice, layout


WARM_UP_ROUNDS = 6
WARM_UP_BUDGET_S = 0.5


def warm_up_frontend(port, workers=1, timeout=60.0, rounds=WARM_UP_ROUNDS, budget_s=WARM_UP_BUDGET_S):
    """Photo-sized requests through the front door once the model is loaded, `workers` at a time so that every
    worker takes some, for `rounds` rounds or until `budget_s` is spent (one round at least). A fresh JVM and
    each worker's channel run MMS's request path cold: after one small request the first client still waited
    18 ms in the queue against 3.5 ms later, and the next dozen requests paid a few ms each (demo model)."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.request import Request, urlopen
    from .inference_steps import warm_up_photo
    body = warm_up_photo()

    def one(_):
        request = Request("http://127.0.0.1:%d/invocations" % port, data=body, headers={"Content-Type": "image/jpeg"})
        with urlopen(request, timeout=timeout) as reply:
            reply.read()

    started = time.time()
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in range(rounds):
                list(pool.map(one, range(workers)))
                if time.time() - started > budget_s:
                    break
    except Exception as err:  # a warm-up must never stop the server; the first client pays instead
        LOG.warning("warm-up request through port %d failed: %s", port, err)
