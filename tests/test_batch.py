"""Batch Transform's contract: GET /execution-parameters, SAGEMAKER_* batch settings, JSON Lines records, and a
bad record answered in its place instead of failing a job (a setting restores strict 4xx answers)."""
import base64
import io
import json
import re
import textwrap
import time

import numpy as np
import pytest
import requests
from PIL import Image

from helpers import encode, ready_server, synthetic_scene
from ssd_serving import inference_steps
from ssd_serving.environment import Environment, SettingError
from ssd_serving.errors import BadRequestError, TooManyRecordsError, UnsupportedMediaTypeError
from ssd_serving.layout import choose_layout
from ssd_serving.request import parse_request
from ssd_serving.model_server import write_config

BATCH = {"SAGEMAKER_BATCH": "true"}


def b64(rgb, fmt="JPEG"):
    return base64.b64encode(encode(rgb, fmt)).decode()


def scene(seed, width=320, height=240):
    return synthetic_scene(seed, width, height)[0]


# --- settings and /execution-parameters -------------------------------------------------------------------

@pytest.mark.parametrize("environ, expected", [
    ({}, {"MaxConcurrentTransforms": 1, "BatchStrategy": "SingleRecord", "MaxPayloadInMB": 6}),
    (BATCH, {"MaxConcurrentTransforms": 1, "BatchStrategy": "SingleRecord", "MaxPayloadInMB": 6}),
    ({"SAGEMAKER_BATCH_STRATEGY": "SINGLE_RECORD", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "50",
      "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "3"},
     {"MaxConcurrentTransforms": 3, "BatchStrategy": "SingleRecord", "MaxPayloadInMB": 50}),
    ({"SAGEMAKER_MODEL_SERVER_WORKERS": "2", "SAGEMAKER_BATCH_STRATEGY": "multirecord"},
     {"MaxConcurrentTransforms": 2, "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 6}),
])
def test_execution_parameters_use_the_api_spelling(environ, expected):
    settings = Environment(environ)
    assert settings.execution_parameters(choose_layout(settings)) == expected


def test_the_payload_setting_raises_the_request_and_answer_limits_and_the_model_servers(tmp_path):
    settings = Environment(dict(BATCH, SAGEMAKER_MAX_PAYLOAD_IN_MB="20"))
    assert settings.max_request_bytes == settings.max_response_bytes == 20 * 1024 * 1024
    assert settings.max_images_per_request == 1000  # a MultiRecord mini-batch of lines; real-time keeps 16
    with open(write_config(str(tmp_path), "/store", 8080, 8081, settings, model_server="multi-model-server")) as f:
        lines = f.read().splitlines()
    assert "max_request_size=%d" % (20 << 20) in lines and "max_response_size=%d" % ((20 << 20) + (1 << 20)) in lines
    assert Environment({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "2"}).max_request_bytes == 6553500  # never below the default


@pytest.mark.parametrize("name, value", [("SAGEMAKER_MAX_PAYLOAD_IN_MB", "101"), ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "0"),
                                         ("SAGEMAKER_BATCH_STRATEGY", "Line"), ("SAGEMAKER_BATCH", "sometimes"),
                                         ("SAGEMAKER_MAX_CONCURRENT_TRANSFORMS", "0")])
def test_bad_batch_settings_stop_the_server(name, value):
    with pytest.raises(SettingError, match="%s=" % name):
        Environment({name: value})


@pytest.mark.parametrize("environ, record_seconds, expected", [
    (BATCH, 0.7, 85),  # ssd_512_resnet50_v1 on 2 vCPUs: 60 s of the 120 s timeout
    (dict(BATCH, SSD_RESPONSE_TIMEOUT="10"), 1.0, 5),
    (dict(BATCH, SSD_RESPONSE_TIMEOUT="10", SSD_SERVER_BATCH_SIZE="4"), 1.0, 1),  # four requests, one after another
    (BATCH, 0.005, 1000),  # never above SSD_MAX_IMAGES_PER_REQUEST
    (dict(BATCH, SSD_MAX_IMAGES_PER_REQUEST="50"), 0.005, 50),
    (dict(BATCH, SSD_RESPONSE_TIMEOUT="1"), 30.0, 1),  # always one record at least
])
def test_the_records_a_request_may_hold_are_what_half_the_response_timeout_answers(environ, record_seconds, expected):
    assert Environment(environ).records_within_timeout(record_seconds) == expected


# --- JSON Lines and records answered in place, through the SageMaker steps ----------------------------------

def test_json_lines_are_one_image_per_line_in_order_with_their_own_parameters():
    body = "\n".join([b64(scene(1)), "", json.dumps({"image": b64(scene(2), "PNG"), "top_k": 2}),
                      json.dumps({"image": b64(scene(3)), "threshold": 0.9})]) + "\n"
    request = parse_request(body, "application/jsonlines", "threshold=0.3")
    assert request.batch and [item.where for item in request.items] == ["line 1", "line 3", "line 4"]
    assert [(item.params.threshold, item.params.top_k) for item in request.items] == [(0.3, None), (0.3, 2),
                                                                                      (0.9, None)]


@pytest.fixture()
def batch_detector(detector, monkeypatch):
    """The demo detector serving as a transform job's container does."""
    monkeypatch.setattr(detector, "settings", Environment(BATCH))
    return detector


def answer(detector, body, content_type, accept=None):
    raw = inference_steps.input_fn(body, content_type, None)
    return inference_steps.output_fn(inference_steps.predict_fn(raw, detector), accept)


def test_a_bad_line_is_answered_in_its_place_and_the_others_detected(batch_detector):
    body = "\n".join([b64(scene(4)), "{not json", json.dumps({"image": "@@@"}), json.dumps(b64(scene(5)))])
    payload, media = answer(batch_detector, body, "application/jsonlines")
    assert media == "application/jsonlines"
    lines = [json.loads(line) for line in payload.decode().splitlines()]
    assert len(lines) == 4 and lines[0]["detections"] and lines[3]["detections"]
    assert lines[1]["status"] == 400 and lines[1]["error"].startswith("line 2: the line is not valid JSON")
    assert lines[2] == {"error": "line 3: image is not valid base64 (characters outside the base64 alphabet)",
                        "status": 400}
    as_list, media = answer(batch_detector, body, "application/x-jsonlines", accept="application/json")
    assert media == "application/json" and [("error" in d) for d in json.loads(as_list)] == [False, True, True, False]


def test_a_corrupt_file_is_its_own_error_document(batch_detector):
    payload, media = answer(batch_detector, b"\xff\xd8 truncated jpeg", "image/jpeg", accept="image/jpeg")
    document = json.loads(payload)
    assert media == "application/json" and document["status"] == 400 and "not a decodable image" in document["error"]


def test_strict_records_and_real_time_endpoints_keep_their_4xx(detector, monkeypatch):
    body = "\n".join([b64(scene(4)), "{not json"])
    for settings in (Environment(dict(BATCH, SSD_STRICT_RECORDS="1")), Environment({})):
        monkeypatch.setattr(detector, "settings", settings)
        with pytest.raises(BadRequestError, match="line 2: the line is not valid JSON"):
            answer(detector, body, "application/jsonlines")


def test_more_records_than_the_timeout_allows_fail_the_request_naming_the_settings(batch_detector, monkeypatch):
    monkeypatch.setattr(batch_detector, "record_seconds", 0.5)
    monkeypatch.setattr(batch_detector, "max_records", 2)
    lines = [b64(scene(seed)) for seed in (8, 9, 10)]
    with pytest.raises(TooManyRecordsError) as refused:  # never answered in a record's place: the job is set up wrong
        answer(batch_detector, "\n".join(lines), "application/jsonlines")
    assert refused.value.status_code == 413
    for words in ("holds 3 records", "500 ms a record", "at most 2", "SSD_RESPONSE_TIMEOUT=120 s", "MaxPayloadInMB",
                  "SingleRecord", "InvocationsTimeoutInSeconds"):
        assert words in str(refused.value), words
    payload, _ = answer(batch_detector, "\n".join(lines[:2]), "application/jsonlines")
    assert len(payload.decode().splitlines()) == 2
    payload, _ = answer(batch_detector, encode(scene(11)), "image/jpeg")  # a single image is never refused
    assert "detections" in json.loads(payload)
    monkeypatch.setattr(batch_detector, "settings", Environment({}))  # nor a real-time endpoint's list
    assert len(json.loads(answer(batch_detector, json.dumps(lines), "application/json")[0])) == 3


def test_a_content_type_the_server_does_not_read_still_fails_the_job(batch_detector):
    with pytest.raises(UnsupportedMediaTypeError):
        answer(batch_detector, b"a,b,c", "text/csv")


# --- the real server as a transform job runs it -------------------------------------------------------------

def big_jpeg(min_bytes):
    """A noisy JPEG over `min_bytes` (noise does not compress), under the pixel limit."""
    noise = np.random.RandomState(0).randint(0, 256, (1800, 2400, 3)).astype(np.uint8)
    stream = io.BytesIO()
    Image.fromarray(noise).save(stream, format="JPEG", quality=100, subsampling=0)
    assert stream.tell() > min_bytes
    return stream.getvalue()


def test_a_transform_jobs_container(demo_model_dir):
    env = dict(BATCH, SAGEMAKER_MAX_PAYLOAD_IN_MB="20", SAGEMAKER_BATCH_STRATEGY="MULTI_RECORD",
               SAGEMAKER_MAX_CONCURRENT_TRANSFORMS="2")
    with ready_server(demo_model_dir, env) as server:
        parameters = requests.get(server.url + "/execution-parameters", timeout=10)
        assert parameters.status_code == 200
        assert parameters.json() == {"MaxConcurrentTransforms": 2, "BatchStrategy": "MultiRecord", "MaxPayloadInMB": 20}
        photo = big_jpeg(9 * 1000 * 1000)  # over the 6 MB real-time limit, under the job's 20
        reply = server.post(photo, "image/jpeg")
        assert reply.status_code == 200 and reply.json()["image_size"] == [2400, 1800]
        lines = "\n".join([b64(scene(6)), "garbage", b64(scene(7))]).encode()
        reply = server.post(lines, "application/jsonlines")
        assert reply.status_code == 200 and reply.headers["Content-Type"] == "application/jsonlines"
        documents = [json.loads(line) for line in reply.text.splitlines()]
        assert [d.get("status") for d in documents] == [None, 400, None]
        assert server.post(b"\x00corrupt", "image/jpeg").json()["status"] == 400


# A deliberately slow model: the demo model behind an entry point whose forward sleeps SLOW_SECONDS per image, so that
# the warm-up measures it and a request of a few records takes seconds, without mocking the code under test.
SLOW_SECONDS = 1.0
SLOW_ENTRY_POINT = textwrap.dedent("""
    import time

    from ssd_serving import model
    from ssd_serving.inference_steps import input_fn, model_fn, output_fn, predict_fn  # noqa: F401

    _forward = model.Detector.run_graph


    def _slow(self, inputs):
        time.sleep(%r * len(inputs))
        return _forward(self, inputs)


    model.Detector.run_graph = _slow
""" % SLOW_SECONDS)


def test_a_slow_model_answers_what_fits_in_its_response_timeout_and_refuses_more(demo_model_dir, tmp_path):
    (tmp_path / "slow_inference.py").write_text(SLOW_ENTRY_POINT)
    # one worker: each worker bounds the records by its own warm-up, and on a busy machine two workers' warm-ups
    # can give two bounds (3 and 4), while the test reads one
    env = dict(BATCH, SAGEMAKER_BATCH_STRATEGY="MultiRecord", SSD_RESPONSE_TIMEOUT="10", SSD_CODE_DIR=str(tmp_path),
               SAGEMAKER_PROGRAM="slow_inference.py", SAGEMAKER_MODEL_SERVER_WORKERS="1")
    with ready_server(demo_model_dir, env) as server:
        parameters = requests.get(server.url + "/execution-parameters", timeout=10).json()
        assert parameters["BatchStrategy"] == "MultiRecord"
        found = re.search(r"a record took (\d+) ms at warm-up \(forward (\d+) ms\): a transform job's request may "
                          r"hold up to (\d+) records, answered within 50% of SSD_RESPONSE_TIMEOUT=10 s",
                          server.output())
        assert found, server.output()
        record_ms, forward_ms, bound = (int(value) for value in found.groups())
        assert forward_ms >= SLOW_SECONDS * 1000 and record_ms >= forward_ms
        assert bound == int(5.0 / (record_ms / 1000.0)) and 1 <= bound <= 4, found.group(0)
        lines = [b64(scene(12 + i)) for i in range(bound + 1)]
        started = time.time()
        reply = server.post("\n".join(lines[:bound]).encode(), "application/jsonlines")
        elapsed = time.time() - started
        assert reply.status_code == 200 and len(reply.text.splitlines()) == bound
        assert bound * SLOW_SECONDS <= elapsed < 10, elapsed  # answered, within the timeout
        started = time.time()
        reply = server.post("\n".join(lines).encode(), "application/jsonlines")
        assert reply.status_code == 413 and reply.headers["Content-Type"].startswith("application/json")
        assert time.time() - started < SLOW_SECONDS  # refused before any forward
        document = reply.json()
        assert document["status"] == 413
        assert "holds %d records" % (bound + 1) in document["error"] and "at most %d" % bound in document["error"]
        assert "SSD_RESPONSE_TIMEOUT=10 s" in document["error"] and "MaxPayloadInMB" in document["error"]
        # one record per request (SingleRecord) is always answered
        assert server.post(encode(scene(20)), "image/jpeg").status_code == 200


def test_a_real_time_endpoint_answers_execution_parameters_and_keeps_its_limits(server):
    assert requests.get(server.url + "/execution-parameters", timeout=10).json()["MaxPayloadInMB"] == 6
    assert server.post(big_jpeg(7 * 1000 * 1000), "image/jpeg").status_code == 413
    reply = server.post(b"\x00corrupt", "image/jpeg")
    assert reply.status_code == 400
