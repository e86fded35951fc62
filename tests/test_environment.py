"""Settings read once: every variable parsed and checked by Environment, a bad one named with what it accepts."""
import json

import pytest

from ssd_serving.environment import Environment, SettingError
from ssd_serving.errors import ModelLoadError
from ssd_serving.layout import choose_layout


def test_defaults_ignore_the_process_environment(monkeypatch):
    monkeypatch.setenv("SSD_MAX_IMAGES_PER_REQUEST", "3")
    assert Environment.defaults().max_images_per_request == 16
    assert Environment().max_images_per_request == 3


@pytest.mark.parametrize("name, value, attribute, expected", [
    ("SSD_PRECISION", " INT8 ", "precision", "int8"),
    ("SSD_PRECISION", "", "precision", "auto"),
    ("SSD_CONTEXT", "CPU", "context", "cpu"),
    ("SSD_GRAPH_FUSION", "off", "graph_fusion", False),
    ("SSD_MAX_IMAGE_PIXELS", "1000", "max_image_pixels", 1000),
    ("SSD_DEFAULT_SCORE_THRESHOLD", "0", "default_threshold", 0.0),
    ("SSD_QUEUE_TIMEOUT", "2.5", "queue_timeout", 2.5),
    ("SSD_DRAIN_TIMEOUT", "0", "drain_timeout", 0.0),
    ("SSD_DRAIN_TIMEOUT", "", "drain_timeout", 20.0),
    ("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "image/png", "default_accept", "image/png"),
    ("SAGEMAKER_BIND_TO_PORT", "9090", "http_port", 9090),
    ("SAGEMAKER_SAFE_PORT_RANGE", "20000-20999", "safe_port_range", (20000, 20999)),
    ("SAGEMAKER_MODEL_SERVER_WORKERS", "2", "given_workers", 2),
    ("SAGEMAKER_MODEL_SERVER_WORKERS", "", "given_workers", None),
    ("SAGEMAKER_BASE_DIR", "/tmp/ml", "sagemaker_model_dir", "/tmp/ml/model"),
    ("SAGEMAKER_MULTI_MODEL", "true", "multi_model", True),
    ("SAGEMAKER_MULTI_MODEL", "", "multi_model", False),
    ("SSD_MODEL_MEMORY_MB", "512", "model_memory_mb", 512),
    ("SSD_MODELS_PAGE_SIZE", "10", "models_page_size", 10),
    ("SSD_SERVER_BATCH_SIZE", "", "server_batch_size", 1),
    ("SSD_SERVER_BATCH_SIZE", "8", "server_batch_size", 8),
    ("SSD_SERVER_BATCH_DELAY_MS", "", "server_batch_delay_ms", 10),
    ("SSD_SERVER_BATCH_DELAY_MS", "50", "server_batch_delay_ms", 50),
])
def test_each_setting_is_parsed(name, value, attribute, expected):
    assert getattr(Environment({name: value}), attribute) == expected


def test_the_in_flight_limit_follows_the_workers():
    assert choose_layout(Environment({"SAGEMAKER_MODEL_SERVER_WORKERS": "8"})).max_concurrent_requests == 32
    # with server-side batching, enough requests in flight to fill every worker's batch twice
    batching = Environment({"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SSD_SERVER_BATCH_SIZE": "16"})
    assert choose_layout(batching).max_concurrent_requests == 64
    # and a transform job is asked to send a full batch per worker
    assert batching.execution_parameters(choose_layout(batching))["MaxConcurrentTransforms"] == 32
    assert choose_layout(Environment({"SAGEMAKER_MODEL_SERVER_WORKERS": "8", "OMP_NUM_THREADS": "1"})).threads == 1
    # what the memory holds lowers the front door's limit, in a new layout
    layout = choose_layout(Environment({}))
    assert layout.limited_to(3).max_concurrent_requests == 3 and layout.max_concurrent_requests == 16
    assert layout.limited_to(100) == layout


@pytest.mark.parametrize("name, value, accepts", [
    ("SSD_MAX_IMAGES_PER_REQUEST", "abc", "a whole number >= 1"),
    ("SSD_MAX_IMAGES_PER_REQUEST", "0", "a whole number >= 1"),
    ("SSD_MAX_REQUEST_BYTES", "6.5e6", "a whole number >= 1"),
    ("SSD_DEFAULT_SCORE_THRESHOLD", "1.5", "a number from 0 to 1"),
    ("SSD_QUEUE_TIMEOUT", "nan", "a number > 0"),
    ("SSD_STARTUP_TIMEOUT", "-1", "a number > 0"),
    ("SSD_DRAIN_TIMEOUT", "-1", "a number from 0 to 3600"),
    ("SSD_DRAIN_TIMEOUT", "soon", "a number from 0 to 3600"),
    ("SSD_PRECISION", "fast", "one of auto, fp32, int8"),
    ("SSD_CONTEXT", "tpu", "one of auto, eia, gpu, cpu"),
    ("SSD_GRAPH_FUSION", "maybe", "1/true/yes/on or 0/false/no/off"),
    ("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/csv", "one of application/json, application/jsonlines, application/x-jsonlines, image/jpeg, image/png"),
    ("SAGEMAKER_BIND_TO_PORT", "80a", "a whole number from 1 to 65535"),
    ("SAGEMAKER_SAFE_PORT_RANGE", "9000", "a port range LOW-HIGH"),
    ("OMP_NUM_THREADS", "all", "a whole number >= 1"),
    ("SSD_WORKER_LAYOUT", "fast", "one of auto, latency, throughput"),
    ("SAGEMAKER_MULTI_MODEL", "sometimes", "1/true/yes/on or 0/false/no/off"),
    ("SSD_MODEL_MEMORY_MB", "lots", "a whole number >= 1"),
    ("SSD_MODELS_PAGE_SIZE", "0", "a whole number from 1 to 10000"),
    ("SSD_SERVER_BATCH_SIZE", "0", "a whole number from 1 to 64"),
    ("SSD_SERVER_BATCH_SIZE", "four", "a whole number from 1 to 64"),
    ("SSD_SERVER_BATCH_DELAY_MS", "0.5", "a whole number from 1 to 10000"),
])
def test_a_bad_value_is_refused_naming_the_variable_and_what_it_accepts(name, value, accepts):
    with pytest.raises(SettingError) as caught:
        Environment({name: value})
    message = str(caught.value)
    assert message.startswith("%s=%r is not valid" % (name, value)) and accepts in message, message
    # its own kind: a bad setting is not a model that cannot load (the launcher stops on either, exit status 2)
    assert not isinstance(caught.value, ModelLoadError)
    # under the stock toolkit, a worker that reads it answers 503 with the {"error", "status"} body
    assert caught.value.status_code == 503 and json.loads(caught.value.message)["error"] == message


def test_the_worker_layout_follows_the_models_size_unless_told():
    import multiprocessing
    from ssd_serving.layout import SMALL_MODEL_BYTES
    cores = multiprocessing.cpu_count()
    small, large = SMALL_MODEL_BYTES // 10, SMALL_MODEL_BYTES * 4
    settings = Environment({})
    unknown = choose_layout(settings)
    assert (unknown.workers, unknown.threads) == (1, cores)  # before the model is known: one worker on all cores
    layout = choose_layout(settings, small, "cpu")
    assert (layout.workers, layout.threads) == (cores, 1)
    assert layout.max_concurrent_requests == max(16, 4 * cores) and layout.max_concurrent_transforms == cores
    assert "under" in layout.reason
    layout = choose_layout(settings, large, "cpu")
    assert (layout.workers, layout.threads) == (1, cores) and layout.max_concurrent_transforms == 1
    assert choose_layout(settings, small, "gpu").workers == 1  # each worker would hold its own copy on the one GPU
    assert choose_layout(Environment({"SSD_WORKER_LAYOUT": "throughput"})).workers == cores
    assert choose_layout(Environment({"SSD_WORKER_LAYOUT": "latency"}), small, "cpu").workers == 1
    given = choose_layout(Environment({"SAGEMAKER_MODEL_SERVER_WORKERS": "3", "SSD_MAX_CONCURRENT_REQUESTS": "5"}),
                          small, "cpu")
    assert given.workers == 3 and given.max_concurrent_requests == 5 and "SAGEMAKER_MODEL_SERVER_WORKERS=3" in \
        given.reason


def test_the_settings_are_a_snapshot_nothing_changes():
    settings = Environment({"SSD_MAX_CONCURRENT_REQUESTS": "5"})
    with pytest.raises(AttributeError, match="snapshot"):
        settings.given_max_concurrent_requests = 3
    with pytest.raises(AttributeError, match="snapshot"):
        settings.workers = 2
    assert settings.given_max_concurrent_requests == 5 and not hasattr(settings, "workers")
