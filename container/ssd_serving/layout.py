"""The worker layout: how many MMS workers, threads each, the request slots that follow, and what chose them."""
from __future__ import absolute_import

import multiprocessing
from collections import namedtuple

from .environment import LAYOUT_ENV, WORKERS_ENV

# below this size of weights `auto` picks one worker per core. Measured by make bench on 2 vCPUs: the demo model
# (3 MB) served 1.33x the requests per second that way at 1.05x the p50; ssd_512_resnet50_v1 (148 MB) 1.04x the
# requests at 1.88x the p50 (docs/performance.md, "Workers and threads")
SMALL_MODEL_BYTES = 32 * 1024 * 1024


class WorkerLayout(namedtuple("WorkerLayout", [
        "workers", "threads", "max_concurrent_requests", "max_concurrent_transforms", "reason"])):
    """Chosen once at start (choose_layout) and passed to whatever needs it; immutable.

    workers: MMS workers (per model on a multi-model endpoint); threads: OpenMP threads in each; max_concurrent_requests:
    requests the front door reads and hands to MMS at a time; max_concurrent_transforms: requests a transform job is
    asked to send at a time (GET /execution-parameters); reason: what chose the workers, for the start-up log.
    """
    __slots__ = ()

    def limited_to(self, in_flight):
        """This layout with at most `in_flight` requests through the front door at a time (what the memory holds)."""
        return self._replace(max_concurrent_requests=min(self.max_concurrent_requests, in_flight))


def choose_layout(settings, params_bytes=None, device_name="cpu", max_workers=None):
    """The WorkerLayout for `settings` (an Environment): SSD_WORKER_LAYOUT and, for `auto`, the model's weights
    (`params_bytes`, None: not known) and device; at most `max_workers` (what the memory holds).
    SAGEMAKER_MODEL_SERVER_WORKERS, OMP_NUM_THREADS, SSD_MAX_CONCURRENT_REQUESTS and
    SAGEMAKER_MAX_CONCURRENT_TRANSFORMS, when set, win."""
    cores = multiprocessing.cpu_count()
    layout, why = settings.layout, "%s=%s" % (LAYOUT_ENV, settings.layout)
    if layout == "auto":
        small = params_bytes is not None and params_bytes < SMALL_MODEL_BYTES
        layout = "throughput" if small and device_name == "cpu" else "latency"
        if params_bytes is not None:
            why += ": %.0f MB of weights on %s, %s %d MB" % (
                params_bytes / 1e6, device_name, "under" if small and device_name == "cpu" else "not under a CPU's",
                SMALL_MODEL_BYTES // (1024 * 1024))
    if settings.given_workers:
        workers, why = settings.given_workers, "%s=%d" % (WORKERS_ENV, settings.given_workers)
    else:
        workers = cores if layout == "throughput" else 1
        if max_workers is not None and workers > max_workers:
            workers = max(1, max_workers)
            why += ("; %d worker(s) fit in the memory" % max_workers if max_workers else
                    "; one worker, though its estimate is over the memory")
    threads = settings.given_threads or max(1, cores // workers)
    batch = settings.server_batch_size
    return WorkerLayout(
        workers=workers, threads=threads,
        # enough to keep every worker busy, and to fill each worker's batch twice over when batching
        max_concurrent_requests=settings.given_max_concurrent_requests or max(16, 4 * workers, 2 * batch * workers),
        # one per worker keeps each busy without queueing (a full batch per worker when batching)
        max_concurrent_transforms=settings.given_max_concurrent_transforms or workers * batch,
        reason=why)
