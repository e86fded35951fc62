"""The container's memory limit as cgroup v2 and v1 report it, and the heap and request slots sized from it."""
import os

import pytest

from ssd_serving import memory
from ssd_serving.environment import Environment
from ssd_serving.layout import choose_layout

MB = memory.MB
# read here, not through memory.physical_memory() (the code under test)
PHYSICAL_MEMORY = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _cgroup(tmp_path, version, text):
    if version == 2:
        (tmp_path / "memory.max").write_text(text + "\n")
    else:
        (tmp_path / "memory").mkdir()
        (tmp_path / "memory" / "memory.limit_in_bytes").write_text(text + "\n")
    return str(tmp_path)


@pytest.mark.parametrize("version", [1, 2])
def test_the_limit_is_read_from_either_cgroup_version(tmp_path, version):
    assert memory.container_memory_limit(_cgroup(tmp_path, version, str(2048 * MB))) == 2048 * MB


@pytest.mark.parametrize("version, text", [(2, "max"), (1, "9223372036854771712"), (2, "garbage")])
def test_no_limit_is_none(tmp_path, version, text):
    # v2 says "max"; v1 says a number larger than any machine's memory
    assert memory.container_memory_limit(_cgroup(tmp_path, version, text)) is None


def test_no_cgroup_files_is_no_limit(tmp_path):
    assert memory.container_memory_limit(str(tmp_path)) is None


def test_the_heap_holds_the_bodies_in_flight_and_no_more():
    settings = Environment({})
    wanted = choose_layout(settings).max_concurrent_requests
    plan = memory.MemoryPlan(2048 * MB, settings.max_request_bytes, wanted, 1, True)
    assert plan.in_flight == wanted  # 16 bodies of 6.5 MB fit in a 2 GB container
    assert plan.heap == memory.JVM_BASE_HEAP + 16 * 2 * settings.max_request_bytes
    assert plan.jvm_args() == "-Xmx%dm" % (plan.heap // MB) and plan.heap <= 2048 * MB // 4
    assert "container memory limit 2048 MB" in plan.describe()


def test_large_payloads_in_a_small_container_get_fewer_slots_not_an_out_of_memory_jvm():
    # SAGEMAKER_MAX_PAYLOAD_IN_MB=100 (a transform job) in a 2 GB container: 16 bodies of 100 MB cannot be held
    settings = Environment({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "100"})
    plan = memory.MemoryPlan(2048 * MB, settings.max_request_bytes, choose_layout(settings).max_concurrent_requests,
                             1, True)
    assert plan.in_flight == 1  # within the heap's quarter of the memory, one body at a time
    assert plan.heap == memory.JVM_BASE_HEAP + 2 * settings.max_request_bytes <= 2048 * MB // 4
    # never fewer slots than workers
    assert memory.MemoryPlan(2048 * MB, settings.max_request_bytes, 16, 2, True).in_flight == 2


def _assert_plan_uses_the_machines_memory(cgroup_root):
    plan = memory.plan_memory(Environment({}), choose_layout(Environment({})), cgroup_root=cgroup_root)
    assert not plan.limited and plan.memory == PHYSICAL_MEMORY
    assert "no container memory limit" in plan.describe()


def test_plan_memory_uses_the_machine_without_a_limit(tmp_path):
    _assert_plan_uses_the_machines_memory(str(tmp_path))


def test_the_machine_check_fails_when_reading_the_machines_memory_fails(tmp_path, monkeypatch):
    """memory.physical_memory() is None where os.sysconf fails; compared with itself, as this check once was,
    that passed. Against what the test reads from the kernel, it fails."""
    def broken(name):
        raise ValueError("unknown configuration name %s" % name)
    monkeypatch.setattr(memory.os, "sysconf", broken)
    with pytest.raises(AssertionError):
        _assert_plan_uses_the_machines_memory(str(tmp_path))


def test_workers_are_counted_against_the_memory():
    demo, resnet = 3 * 1000 * 1000, 148 * 1000 * 1000  # the weights of the demo model and ssd_512_resnet50_v1
    # an estimate (what make bench measured on one machine, 251 and 826 MB, is in docs/reliability.md): a worker
    # holds more than its weights, more for larger weights, and workers_that_fit packs as many as fit beside the
    # launcher and the JVM, and no more
    for weights in (demo, resnet):
        assert memory.worker_estimate(weights) > weights
    assert memory.worker_estimate(resnet) - memory.worker_estimate(demo) >= resnet - demo
    for total in (512 * MB, 1536 * MB, 2048 * MB, 16384 * MB):
        for weights in (demo, resnet):
            fit = memory.workers_that_fit(total, weights)
            beside = memory.LAUNCHER + memory.JVM_BASE
            assert beside + fit * memory.worker_estimate(weights) <= total
            assert beside + (fit + 1) * memory.worker_estimate(weights) > total
    assert memory.workers_that_fit(2048 * MB, demo) >= 2
    assert memory.workers_that_fit(2048 * MB, resnet) == 2 and memory.workers_that_fit(1536 * MB, resnet) == 1
    assert memory.workers_that_fit(512 * MB, resnet) == 0


def test_the_layout_never_asks_for_more_workers_than_fit():
    layout = choose_layout(Environment({"SSD_WORKER_LAYOUT": "throughput"}), 148 * 1000 * 1000, "cpu", max_workers=1)
    assert layout.workers == 1 and "1 worker(s) fit in the memory" in layout.reason
    given = choose_layout(Environment({"SAGEMAKER_MODEL_SERVER_WORKERS": "4"}), 148 * 1000 * 1000, "cpu", max_workers=1)
    assert given.workers == 4  # told: the launcher warns instead
