"""The real Multi Model Server over HTTP: formats, detections where the objects are, and error answers."""
import base64
import io
import json
import os
import shutil
import socket

import pytest
import requests
from PIL import Image

from helpers import (RunningServer, assert_scene_found_over_http, demo_meta, emf_lines_of, encode, read_answer,
                     synthetic_scene)


def test_ping(server):
    assert requests.get(server.url + "/ping", timeout=2).status_code == 200


def check_document(document, size):
    assert document["model"]["name"] == demo_meta()["model_name"] and document["model"]["demo"] is True
    assert document["model"]["weights_source"] == "demo-trained"
    assert document["image_size"] == list(size)
    for detection in document["detections"]:
        assert set(detection) == {"class_id", "label", "score", "box"}
        xmin, ymin, xmax, ymax = detection["box"]
        assert 0 <= xmin <= xmax <= size[0] and 0 <= ymin <= ymax <= size[1]


@pytest.mark.parametrize("name", ["grace_hopper", "astronaut", "chelsea", "coffee"])
def test_real_photos_as_raw_bytes(server, photos, name):
    with open(photos[name], "rb") as stream:
        body = stream.read()
    content_type = "image/png" if photos[name].endswith(".png") else "image/jpeg"
    reply = server.post(body, content_type)
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("application/json")
    check_document(reply.json(), Image.open(photos[name]).size)


def test_real_photo_as_base64_and_json(server, photo_jpeg):
    size = Image.open(io.BytesIO(photo_jpeg)).size
    encoded = base64.b64encode(photo_jpeg)
    as_text = server.post(encoded, "text/plain")
    as_json = server.post(json.dumps({"image": encoded.decode(), "threshold": 0.05}), "application/json")
    for reply in (as_text, as_json):
        assert reply.status_code == 200, reply.text
        check_document(reply.json(), size)


@pytest.mark.parametrize("size", [(640, 480), (333, 500), (900, 300), (256, 256)])
def test_every_object_is_found_over_http(server, size):
    assert_scene_found_over_http(server, 4242 + size[1], size)


def test_parameters_in_custom_attributes(server):
    rgb, _, _ = synthetic_scene(11, 640, 480)
    body = encode(rgb)
    everything = server.post(body, headers={"X-Amzn-SageMaker-Custom-Attributes": "threshold=0.01"}).json()
    top = server.post(body, headers={"X-Amzn-SageMaker-Custom-Attributes": "threshold=0.01;top_k=2"}).json()
    assert len(everything["detections"]) > 2 and top["detections"] == everything["detections"][:2]


def test_several_images_in_one_request(server):
    scenes = [encode(synthetic_scene(seed, 400, 300)[0]) for seed in (1, 2, 3)]
    body = json.dumps({"images": [base64.b64encode(s).decode() for s in scenes]})
    reply = server.post(body, "application/json")
    assert reply.status_code == 200 and len(reply.json()) == 3


def test_picture_with_boxes(server):
    rgb, _, _ = synthetic_scene(12, 400, 300)
    reply = server.post(encode(rgb), headers={"Accept": "image/png"})
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/png"
    assert Image.open(io.BytesIO(reply.content)).size == (400, 300)


def test_a_list_of_objects_is_answered_in_order_each_with_its_parameters(server):
    scenes = [encode(synthetic_scene(seed, width, 300)[0]) for seed, width in ((1, 400), (2, 500))]
    body = json.dumps([{"image": base64.b64encode(scenes[0]).decode(), "threshold": 0.01, "top_k": 1},
                       {"image": base64.b64encode(scenes[1]).decode(), "threshold": 0.01}])
    first, second = server.post(body, "application/json").json()
    assert first["image_size"] == [400, 300] and len(first["detections"]) == 1
    assert second["image_size"] == [500, 300] and len(second["detections"]) > 1


def test_the_picture_of_a_photo_decoded_reduced_comes_back_at_its_resolution(server, photo_jpeg):
    # grace_hopper.jpg is 512x600: a JPEG twice the demo model's 256x256 input, so it is decoded at half scale
    reply = server.post(photo_jpeg, headers={"Accept": "image/jpeg"})
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(reply.content)).size == (512, 600)


# Bad and hostile requests, each followed by a valid one: tests/test_hostile_inputs.py


def test_model_that_cannot_load_does_not_start(demo_model_dir, tmp_path):
    broken = str(tmp_path / "broken")
    shutil.copytree(demo_model_dir, broken)
    with open(os.path.join(broken, "model-0000.params"), "ab") as stream:
        stream.write(b"tampered")
    running = RunningServer(broken)
    try:
        assert running.process.wait(120) != 0
        assert "not starting" in running.output() and "sha256" in running.output()
    finally:
        running.stop()


@pytest.mark.parametrize("name, value, accepts", [
    ("SSD_MAX_IMAGES_PER_REQUEST", "abc", "a whole number >= 1"),
    ("SSD_DEFAULT_SCORE_THRESHOLD", "high", "a number from 0 to 1"),
])
def test_a_malformed_setting_stops_the_server_at_start_naming_it(demo_model_dir, name, value, accepts):
    running = RunningServer(demo_model_dir, extra_env={name: value})
    try:
        assert running.process.wait(120) == 2
        output = running.output()
        assert "not starting: %s=%r is not valid: it accepts %s" % (name, value, accepts) in output, output[-2000:]
        assert "starting multi-model-server" not in output and "starting mxnet-model-server" not in output
    finally:
        running.stop()


def test_each_request_is_timed_by_stage_in_a_cloudwatch_emf_line_under_its_id(server, photo_jpeg):
    reply = server.post(photo_jpeg)
    assert reply.status_code == 200
    request_id = reply.headers["X-Ssd-Request-Id"]
    document, = emf_lines_of(server, [request_id])
    metrics = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
    assert metrics == ["QueueWait", "Decode", "Preprocess", "Forward", "Postprocess", "Encode", "Total"]
    assert document["Status"] == 200 and document["Model"] == demo_meta()["model_name"]
    assert all(document[name] >= 0 for name in metrics) and document["Forward"] > 0
    # MMS's own per-request metric lines give way to this one
    assert "PredictionTime.Milliseconds" not in server.output()


def test_a_refused_request_names_the_callers_inference_id_in_its_body_header_and_log_line(server):
    reply = server.post(b"not an image", headers={"X-Amzn-SageMaker-Inference-Id": "caller-42"})
    assert reply.status_code == 400
    assert reply.json()["request_id"] == "caller-42" and reply.headers["X-Ssd-Request-Id"] == "caller-42"
    document, = emf_lines_of(server, ["caller-42"])
    assert document["Status"] == 400 and "Forward" not in document
    # the front door's own refusals carry an id too
    too_large = server.post(b"x" * (7 * 1024 * 1024))
    assert too_large.status_code == 413 and too_large.json()["request_id"] == too_large.headers["X-Ssd-Request-Id"]


def test_hop_by_hop_headers_stop_at_the_front_door_in_front_of_the_real_model_server(server):
    """A chunked request with every kind of hop-by-hop header (RFC 7230 6.1) reaches the real MMS as a plain
    request: it is answered as the same image sent plainly, and the answer carries one Content-Length of its
    own body and none of MMS's connection headers (tests/test_front_unit.py checks the same against a stub)."""
    rgb, _, _ = synthetic_scene(12, 640, 480)
    png = encode(rgb, "PNG")
    plain = server.post(png, "image/png", headers={"X-Amzn-SageMaker-Custom-Attributes": "threshold=0.2"})
    assert plain.status_code == 200, plain.text
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(png[i:i + 4096]), png[i:i + 4096]) for i in range(0, len(png), 4096))
    head = ("POST /invocations HTTP/1.1\r\nHost: localhost\r\nContent-Type: image/png\r\n"
            "X-Amzn-SageMaker-Custom-Attributes: threshold=0.2\r\nConnection: keep-alive, Upgrade\r\n"
            "Upgrade: websocket\r\nKeep-Alive: timeout=300\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\n"
            "Transfer-Encoding: chunked\r\n\r\n").encode("ascii")
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head + chunked + b"0\r\n\r\n")
        answer = read_answer(sock)
    headers, payload = answer.header_list, answer.content
    assert answer.status_code == 200, answer.text[:500]
    names = [name.lower() for name, _ in headers]
    assert names.count("content-length") == 1 and int(answer.headers["Content-Length"]) == len(payload), headers
    assert not {"transfer-encoding", "keep-alive", "upgrade", "te", "trailer"} & set(names), headers
    assert len(names) == len(set(names)), headers  # nothing of MMS's doubled with the front door's own
    document = json.loads(payload.decode("utf-8"))
    assert document["detections"] == plain.json()["detections"] and document["detections"]
