"""The container's memory (cgroup v2 or v1 limit and usage) and what is sized from it: heap, request slots, workers."""
from __future__ import absolute_import

import os

MB = 1024 * 1024
# the JVM's heap: its own needs, plus two copies (request and its framing) of each body it may hold at once
JVM_BASE_HEAP = 128 * MB
MIN_HEAP = 256 * MB
# the JVM's heap takes at most this share of the memory (its own default when it sees a container's limit)
HEAP_SHARE = 4
# A worker's RSS, measured by make bench on MXNet 1.9.1: 251 MB with 3 MB of weights (the demo model), 826 MB with
# 148 MB (ssd_512_resnet50_v1): about 240 MB of Python and MXNet, and 4x the weights (the graph, its fused copy,
# buffers). Beside the workers: the launcher with its front door (about 100 MB in the container soak) and the JVM
# (165 MB there; its heap grows as request bodies need it).
WORKER_BASE = 240 * MB
WORKER_PER_WEIGHT = 4
LAUNCHER = 110 * MB
JVM_BASE = 170 * MB


def worker_estimate(params_bytes):
    """About the RSS of one model server worker serving weights of `params_bytes`."""
    return WORKER_BASE + WORKER_PER_WEIGHT * params_bytes


def workers_that_fit(memory, params_bytes):
    """How many workers fit in `memory` beside the launcher and the JVM; 0 when not even one does."""
    return max(0, int((memory - LAUNCHER - JVM_BASE) // worker_estimate(params_bytes)))


def memory_size(cgroup_root="/sys/fs/cgroup"):
    """(bytes, limited): the memory the server sizes itself from, the container's limit, else the machine's."""
    limit = container_memory_limit(cgroup_root)
    return (limit, True) if limit else (physical_memory() or 4096 * MB, False)


def physical_memory():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def container_memory_limit(cgroup_root="/sys/fs/cgroup"):
    """The memory limit of this container in bytes (cgroup v2's memory.max, else v1's memory.limit_in_bytes), or
    None where there is none (v2 "max", v1's huge "unlimited" value, a limit above the machine's memory)."""
    physical = physical_memory()
    for path in (os.path.join(cgroup_root, "memory.max"),
                 os.path.join(cgroup_root, "memory", "memory.limit_in_bytes")):
        try:
            with open(path) as stream:
                text = stream.read().strip()
        except (OSError, IOError):
            continue
        if text == "max":
            return None
        try:
            limit = int(text)
        except ValueError:
            continue
        if physical and limit >= physical:
            return None
        return limit
    return None


def _cgroup_usage(cgroup_root):
    """Bytes the container uses, less its inactive page cache (what the kernel reclaims first), or None."""
    for current, stat, inactive in (("memory.current", "memory.stat", "inactive_file"),
                                    ("memory/memory.usage_in_bytes", "memory/memory.stat", "total_inactive_file")):
        try:
            with open(os.path.join(cgroup_root, current)) as stream:
                usage = int(stream.read().strip())
        except (OSError, IOError, ValueError):
            continue
        try:
            with open(os.path.join(cgroup_root, stat)) as stream:
                for line in stream:
                    key, _, value = line.partition(" ")
                    if key == inactive:
                        usage -= int(value)
                        break
        except (OSError, IOError, ValueError):
            pass
        return max(0, usage)
    return None


def free_memory(cgroup_root="/sys/fs/cgroup"):
    """Bytes one more model may use: the container's limit less its usage, else what the machine has available."""
    limit = container_memory_limit(cgroup_root)
    if limit:
        usage = _cgroup_usage(cgroup_root)
        if usage is not None:
            return max(0, limit - usage)
    import psutil  # a dependency of Multi Model Server, pinned in every image and environment
    return psutil.virtual_memory().available


class MemoryPlan(object):
    """The memory the server sizes itself from (the container's limit, else the machine's), the JVM's maximum
    heap, and how many requests the front door lets through at a time so that their bodies fit in that heap."""

    def __init__(self, memory, max_request_bytes, wanted_in_flight, workers, limited):
        self.memory = memory
        self.limited = limited
        per_request = 2 * max_request_bytes
        ceiling = max(MIN_HEAP, memory // HEAP_SHARE)
        # fewer requests in flight when their bodies would not fit in the heap the memory allows (never fewer than
        # the workers: each must be able to have one)
        fits = max(workers, (ceiling - JVM_BASE_HEAP) // per_request)
        self.in_flight = min(wanted_in_flight, fits)
        self.heap = min(ceiling, max(MIN_HEAP, JVM_BASE_HEAP + self.in_flight * per_request))

    def jvm_args(self):
        # a fixed maximum: without one the JVM's heap (and RSS) grows lazily toward a quarter of the memory,
        # measured +58% in a 10-minute soak on a 23 GB machine
        return "-Xmx%dm" % (self.heap // MB)

    def describe(self):
        return "%s %d MB: the model server's heap at most %d MB, %d request(s) in flight at a time" % (
            "container memory limit" if self.limited else "no container memory limit; machine memory",
            self.memory // MB, self.heap // MB, self.in_flight)


def plan_memory(settings, layout, cgroup_root="/sys/fs/cgroup"):
    """The MemoryPlan for these settings and this worker layout (layout.WorkerLayout) in this container."""
    memory, limited = memory_size(cgroup_root)
    return MemoryPlan(memory, settings.max_request_bytes, layout.max_concurrent_requests, layout.workers, limited)
