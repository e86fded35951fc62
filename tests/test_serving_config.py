"""The model server configuration the server writes."""
from ssd_serving import serving


def test_response_timeout_is_120_seconds_on_both_model_servers(tmp_path):
    # mxnet-model-server 1.0.5 reads default_response_timeout in seconds; multi-model-server 1.1 reads it
    # in minutes unless default_response_timeout_seconds is set (found in their WorkerThread/ConfigManager).
    # A 2 here meant a 2-second limit on 1.0.5, which a worker loading and warming up its model misses
    # on a busy machine, so MMS kept restarting it.
    config = serving.write_config(str(tmp_path), "/store", 8080, 8081, 1)
    with open(config) as stream:
        lines = stream.read().splitlines()
    assert "default_response_timeout=120" in lines
    assert "default_response_timeout_seconds=120" in lines


def test_limits_and_an_out_of_memory_jvm_exits(tmp_path, monkeypatch):
    monkeypatch.setenv("SSD_MAX_REQUEST_BYTES", "1000000")
    config = serving.write_config(str(tmp_path), "/store", 8080, 8081, 1, host="127.0.0.1")
    with open(config) as stream:
        lines = stream.read().splitlines()
    assert "inference_address=http://127.0.0.1:8080" in lines       # behind the front door
    assert "max_request_size=1000000" in lines
    assert "max_response_size=%d" % (6 * 1024 * 1024 + (1 << 20)) in lines
    assert "vmargs=-XX:+ExitOnOutOfMemoryError" in lines
