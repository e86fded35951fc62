"""The container's memory limit as cgroup v2 and v1 report it, and the heap and request slots sized from it."""
import pytest

from ssd_serving import memory
from ssd_serving.environment import Environment

MB = memory.MB


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
    plan = memory.MemoryPlan(2048 * MB, settings.max_request_bytes, settings.max_concurrent_requests, 1, True)
    assert plan.in_flight == settings.max_concurrent_requests  # 16 bodies of 6.5 MB fit in a 2 GB container
    assert plan.heap == memory.JVM_BASE_HEAP + 16 * 2 * settings.max_request_bytes
    assert plan.jvm_args() == "-Xmx%dm" % (plan.heap // MB) and plan.heap <= 2048 * MB // 4
    assert "container memory limit 2048 MB" in plan.describe()


def test_large_payloads_in_a_small_container_get_fewer_slots_not_an_out_of_memory_jvm():
    # SAGEMAKER_MAX_PAYLOAD_IN_MB=100 (a transform job) in a 2 GB container: 16 bodies of 100 MB cannot be held
    settings = Environment({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "100"})
    plan = memory.MemoryPlan(2048 * MB, settings.max_request_bytes, settings.max_concurrent_requests, 1, True)
    assert plan.in_flight == 1  # within the heap's quarter of the memory, one body at a time
    assert plan.heap == memory.JVM_BASE_HEAP + 2 * settings.max_request_bytes <= 2048 * MB // 4
    # never fewer slots than workers
    assert memory.MemoryPlan(2048 * MB, settings.max_request_bytes, 16, 2, True).in_flight == 2


def test_plan_memory_uses_the_machine_without_a_limit(tmp_path):
    plan = memory.plan_memory(Environment({}), cgroup_root=str(tmp_path))
    assert not plan.limited and plan.memory == memory.physical_memory()
    assert "no container memory limit" in plan.describe()


def test_workers_are_counted_against_the_memory():
    demo, resnet = 3 * 1000 * 1000, 148 * 1000 * 1000  # the weights of the demo model and ssd_512_resnet50_v1
    assert memory.worker_estimate(demo) // MB == 251  # make bench measured 251 MB
    assert 800 <= memory.worker_estimate(resnet) // MB <= 830  # and 826 MB
    assert memory.workers_that_fit(2048 * MB, demo) >= 2
    assert memory.workers_that_fit(2048 * MB, resnet) == 2 and memory.workers_that_fit(1536 * MB, resnet) == 1
    assert memory.workers_that_fit(512 * MB, resnet) == 0


def test_the_layout_never_asks_for_more_workers_than_fit():
    settings = Environment({"SSD_WORKER_LAYOUT": "throughput"})
    settings.choose_layout(148 * 1000 * 1000, "cpu", max_workers=1)
    assert settings.workers == 1 and "1 worker(s) fit in the memory" in settings.layout_reason
    given = Environment({"SAGEMAKER_MODEL_SERVER_WORKERS": "4"})
    given.choose_layout(148 * 1000 * 1000, "cpu", max_workers=1)
    assert given.workers == 4  # told: the launcher warns instead
