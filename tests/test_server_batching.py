"""Server-side batching in the real Multi Model Server (SSD_SERVER_BATCH_SIZE): concurrent requests reach one worker
together, their images run in one forward, and each gets its own answer, as it would alone."""
import json
import threading
import time

import pytest
import requests

from helpers import RECALL_SCORE, assert_scene_detected, demo_meta, encode, ready_server, synthetic_scene

BATCH = 4


@pytest.fixture(scope="module")
def batching_server(demo_model_dir):
    # one worker and a long delay: requests sent together reliably land in one batch
    with ready_server(demo_model_dir, {"SSD_SERVER_BATCH_SIZE": str(BATCH), "SSD_SERVER_BATCH_DELAY_MS": "400",
                                       "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) as running:
        yield running


def _emf_lines(server, request_ids, timeout=10.0):
    deadline = time.time() + timeout
    while True:
        lines = dict((doc["RequestId"], doc) for doc in (json.loads(line) for line in server.output().splitlines()
                                                         if line.startswith('{"_aws":')))
        if all(rid in lines for rid in request_ids) or time.time() > deadline:
            return [lines.get(rid) for rid in request_ids]
        time.sleep(0.2)


def _post_together(server, bodies):
    """POST every (body, content type) at the same moment, each on its own connection; the replies in order."""
    replies = [None] * len(bodies)
    barrier = threading.Barrier(len(bodies))

    def send(index):
        body, content_type = bodies[index]
        barrier.wait()
        replies[index] = server.post(body, content_type, headers={
            "X-Amzn-SageMaker-Custom-Attributes": "threshold=%s" % RECALL_SCORE})

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(bodies))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return replies


def test_the_model_is_registered_with_the_batch_size(batching_server):
    assert "model registered with server-side batching: up to %d request(s)" % BATCH in batching_server.output()


def test_concurrent_requests_are_answered_together_each_with_its_own_detections(batching_server):
    scenes = [synthetic_scene(seed, 480, 360) for seed in (21, 22, 23)]
    replies = _post_together(batching_server, [(encode(rgb, "PNG"), "image/png") for rgb, _, _ in scenes] +
                             [(b"not an image", "image/jpeg")])
    for (rgb, boxes, class_ids), reply in zip(scenes, replies[:3]):
        assert reply.status_code == 200, reply.text
        assert reply.json()["image_size"] == [480, 360]
        assert_scene_detected(boxes, class_ids, reply.json()["detections"], demo_meta()["classes"])
    bad = replies[3]
    assert bad.status_code == 400 and bad.json()["status"] == 400
    lines = _emf_lines(batching_server, [reply.headers["X-Ssd-Request-Id"] for reply in replies])
    assert all(lines), "each request logs its EMF line"
    # MMS handed them to the worker together: each line counts the requests of its worker call
    assert max(line.get("Batch", 1) for line in lines) >= 2, lines
    assert [line["Status"] for line in lines] == [200, 200, 200, 400]


def test_a_lone_request_is_answered_after_the_batch_delay_the_same_as_in_a_batch(batching_server):
    rgb, boxes, class_ids = synthetic_scene(25, 480, 360)
    reply = batching_server.post(encode(rgb, "PNG"), "image/png",
                                 headers={"X-Amzn-SageMaker-Custom-Attributes": "threshold=%s" % RECALL_SCORE})
    assert reply.status_code == 200
    assert_scene_detected(boxes, class_ids, reply.json()["detections"], demo_meta()["classes"])
    together = _post_together(batching_server, [(encode(rgb, "PNG"), "image/png")] * 3)
    for other in together:
        assert other.status_code == 200
        one, two = reply.json()["detections"], other.json()["detections"]
        assert [d["label"] for d in one] == [d["label"] for d in two]
        for a, b in zip(one, two):
            assert abs(a["score"] - b["score"]) < 1e-3
            assert max(abs(x - y) for x, y in zip(a["box"], b["box"])) < 0.5


def test_the_server_keeps_serving_and_ping_stays_healthy(batching_server):
    assert requests.get(batching_server.url + "/ping", timeout=2).status_code == 200
