"""The model server configuration the server writes."""
import pytest

from ssd_serving.environment import Environment
from ssd_serving.model_server import internal_port, write_config


@pytest.mark.parametrize("model_server, setting", [
    ("/usr/local/bin/mxnet-model-server", "default_response_timeout=120"),  # 1.0.5: seconds
    ("/usr/local/bin/multi-model-server", "default_response_timeout=2"),    # 1.1.8 and 1.1.11: minutes, rounded up
])
def test_response_timeout_is_120_seconds_on_every_model_server(tmp_path, model_server, setting):
    # mxnet-model-server 1.0.5 reads default_response_timeout in seconds; multi-model-server 1.1.8 (AWS's
    # 1.9.0 images) in minutes and has no other key; 1.1.11 in minutes unless default_response_timeout_seconds
    # is set (found in their WorkerThread/ConfigManager). A 2 on 1.0.5 meant a 2-second limit, which a
    # worker loading its model misses, and a 120 on 1.1.8 two hours.
    config = write_config(str(tmp_path), "/store", 8080, 8081, Environment.defaults(), model_server=model_server)
    with open(config) as stream:
        lines = stream.read().splitlines()
    assert setting in lines
    assert "default_response_timeout_seconds=120" in lines


def test_limits_and_an_out_of_memory_jvm_exits(tmp_path):
    settings = Environment({"SSD_MAX_REQUEST_BYTES": "1000000"})
    config = write_config(str(tmp_path), "/store", 8080, 8081, settings, host="127.0.0.1")
    with open(config) as stream:
        lines = stream.read().splitlines()
    assert "inference_address=http://127.0.0.1:8080" in lines       # behind the front door
    assert "max_request_size=1000000" in lines
    assert "max_response_size=%d" % (6 * 1024 * 1024 + (1 << 20)) in lines
    assert "vmargs=-XX:+ExitOnOutOfMemoryError" in lines
    assert "load_models=ALL" in lines


def test_a_batching_server_loads_no_model_at_start_it_registers_it_with_its_batch_size(tmp_path):
    """MMS gives the models it loads at start a batch size of one (register_batched_model does the rest; its
    behaviour is tests/test_server_batching.py's)."""
    settings = Environment({"SSD_SERVER_BATCH_SIZE": "4"})
    with open(write_config(str(tmp_path), "/store", 8080, 8081, settings, host="127.0.0.1")) as stream:
        assert "load_models=" in stream.read().splitlines()


@pytest.mark.parametrize("model_server, minutes_or_seconds", [("mxnet-model-server", 3600), ("multi-model-server", 60)])
def test_an_asynchronous_endpoints_hour_reaches_the_model_server(tmp_path, model_server, minutes_or_seconds):
    settings = Environment({"SSD_RESPONSE_TIMEOUT": "3600", "SSD_MAX_REQUEST_BYTES": str(200 << 20)})
    config = write_config(str(tmp_path), "/store", 8080, 8081, settings, model_server=model_server)
    with open(config) as stream:
        lines = stream.read().splitlines()
    assert "default_response_timeout=%d" % minutes_or_seconds in lines
    assert "default_response_timeout_seconds=3600" in lines and "max_request_size=%d" % (200 << 20) in lines


def test_the_model_servers_port_is_one_it_accepts():
    # MMS's Connector refuses a port >= 32767 ("Invalid port number") and the server then exits at start:
    # a CI run drew 32767 from the internal range once. Every port it may get stays at or below the limit.
    from ssd_serving.ports import INTERNAL_PORTS, MMS_PORT_LIMIT
    assert MMS_PORT_LIMIT == 32766 and INTERNAL_PORTS[1] <= MMS_PORT_LIMIT
    assert internal_port(safe_range=(32766, 40000)) == 32766
    # past the limit the safe range gives nothing MMS accepts, so the port comes from the internal range
    assert INTERNAL_PORTS[0] <= internal_port(safe_range=(32767, 40000)) <= MMS_PORT_LIMIT


def test_the_model_servers_heap_is_capped(tmp_path):
    config = write_config(str(tmp_path), "/store", 8080, 8081, Environment.defaults(), jvm_args="-Xmx336m")
    with open(config) as stream:
        assert "vmargs=-XX:+ExitOnOutOfMemoryError -Xmx336m" in stream.read().splitlines()


@pytest.mark.parametrize("answer", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\ncut short",  # the connection closes inside the body
    b"not an HTTP answer\r\n\r\n",
])
def test_a_registration_answered_with_something_that_is_not_http_fails_saying_so(answer):
    """wait_ready gives up on a batching server whose registration raises OSError or RuntimeError, with its message
    in the log; an answer that is not HTTP must be one of those, not an http.client exception out of serve()."""
    import socket
    import threading

    from ssd_serving.layout import choose_layout
    from ssd_serving.management import Management
    from ssd_serving.model_server import register_batched_model

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)

    def answer_once():
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(answer)

    stand_in = threading.Thread(target=answer_once, daemon=True)  # never outlives the test, even if nothing connects
    stand_in.start()
    settings = Environment({"SSD_SERVER_BATCH_SIZE": "4"})
    try:
        with pytest.raises(RuntimeError, match="registering the model with batch size 4 was not HTTP"):
            register_batched_model(Management(listener.getsockname()[1]), settings, choose_layout(settings))
    finally:
        stand_in.join(10)
        listener.close()
