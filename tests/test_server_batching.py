"""Server-side batching in the real Multi Model Server (SSD_SERVER_BATCH_SIZE): concurrent requests reach one worker
together, their images run in one forward, and each gets its own answer, as it would alone."""
import pytest
import requests

from helpers import (RECALL_SCORE, all_at_once, assert_same_detections, assert_scene_detected, demo_meta,
                     emf_lines_of, encode, ready_server, synthetic_scene)

BATCH = 4


@pytest.fixture(scope="module")
def batching_server(demo_model_dir):
    # one worker and a long delay: requests sent together reliably land in one batch
    with ready_server(demo_model_dir, {"SSD_SERVER_BATCH_SIZE": str(BATCH), "SSD_SERVER_BATCH_DELAY_MS": "400",
                                       "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}) as running:
        yield running


def _post_together(server, bodies):
    """POST every (body, content type) at the same moment, each on its own connection; the replies in order."""
    return all_at_once(lambda index: server.post(*bodies[index], headers={
        "X-Amzn-SageMaker-Custom-Attributes": "threshold=%s" % RECALL_SCORE}), len(bodies))


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
    lines = emf_lines_of(batching_server, [reply.headers["X-Ssd-Request-Id"] for reply in replies])
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
        assert_same_detections(reply.json()["detections"], other.json()["detections"])


def test_the_server_keeps_serving_and_ping_stays_healthy(batching_server):
    assert requests.get(batching_server.url + "/ping", timeout=2).status_code == 200
