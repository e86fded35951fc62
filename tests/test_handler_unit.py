"""The Multi Model Server handler in process, with MMS's own Context: initialize once, answer each request of a
batch in order, errors as JSON on their own index, and the worker still serving after them.

The context is the installed MMS's Context and RequestProcessor, filled as its worker fills them (the model folder,
each request's headers and id; the status and headers set per request); the entry point is the real
code/inference.py with the demo model.
tests/test_server.py runs the same handler inside the real model server.
"""
import base64
import io
import json
import sys
import time

import mms
import numpy as np
import pytest
from mms.context import Context, RequestProcessor
from PIL import Image

from helpers import assert_same_detections, demo_meta, emf_lines, encode, load_entry_point, synthetic_scene
from ssd_serving.handler import DetectionService


def mms_context(model_dir, headers):
    """A real MMS Context, built as the worker builds one for a batch (mms.service.Service): the model folder, one
    RequestProcessor with each request's headers, and the id MMS gives each request of the batch."""
    context = Context("model", model_dir, None, max(1, len(headers)), None, mms.__version__)
    context.request_processor = [RequestProcessor(dict(each)) for each in headers]
    context.request_ids = dict((index, "mms-%d" % index) for index in range(len(headers)))  # MMS's are UUIDs
    return context


def statuses(context):
    """{index: (status, phrase)} of the requests the handler set a status for (MMS's default is 200, no phrase)."""
    found = {}
    for index in range(len(context.request_processor)):
        if context.get_response_status(index) != (200, None):
            found[index] = context.get_response_status(index)
    return found


def content_types(context):
    return dict((index, context.get_response_content_type(index)) for index in range(len(context.request_processor)))


@pytest.fixture(scope="module")
def service(demo_model_dir):
    """The handler's service, initialized once with code/inference.py as its entry point (SAGEMAKER_PROGRAM)."""
    patch = pytest.MonkeyPatch()
    patch.setitem(sys.modules, "inference", load_entry_point())  # MMS workers import it from code/
    patch.setenv("SSD_MODEL_DIR", demo_model_dir)  # the baked model, as the launcher's environment has it
    made = DetectionService()
    made.initialize(mms_context(demo_model_dir, []))
    yield made
    patch.undo()


def _requests(service, demo_model_dir, *requests):
    """Answer (body, headers) requests as one MMS batch; returns the answers and the context."""
    context = mms_context(demo_model_dir, [headers for _, headers in requests])
    answers = service.handle([{"body": body} for body, _ in requests], context)
    return answers, context


def test_initialize_loads_the_entry_points_model_once(service):
    assert service.initialized and service.model.info["name"] == demo_meta()["model_name"]
    assert service.model.info["demo"] is True and service.model.settings.max_images_per_request == 16


def test_a_batch_is_answered_in_order_and_a_bad_request_fails_alone(service, demo_model_dir):
    rgb, _, _ = synthetic_scene(3, 320, 240)
    answers, context = _requests(service, demo_model_dir,
                                 (encode(rgb), {"Content-Type": "image/jpeg"}),
                                 (b"\x00 not an image", {"content-type": "image/jpeg"}),
                                 (encode(rgb, "PNG"), {"Content-Type": "image/png", "Accept": "image/png"}))
    first, bad, picture = answers
    assert json.loads(first)["image_size"] == [320, 240] and content_types(context)[0] == "application/json"
    assert 0 not in statuses(context)
    assert statuses(context)[1] == (400, "Bad Request") and content_types(context)[1] == "application/json"
    assert set(json.loads(bad)) == {"error", "status", "request_id"} and json.loads(bad)["status"] == 400
    assert Image.open(io.BytesIO(picture)).size == (320, 240) and content_types(context)[2] == "image/png"


def test_headers_are_matched_whatever_their_case(service, demo_model_dir):
    rgb, _, _ = synthetic_scene(4, 320, 240)
    answers, context = _requests(service, demo_model_dir, (encode(rgb), {
        b"content-type": b"image/jpeg", "x-amzn-sagemaker-custom-attributes": b"threshold=0.01;top_k=2"}))
    assert len(json.loads(answers[0])["detections"]) == 2 and not statuses(context)


@pytest.mark.parametrize("headers, status", [
    ({"Content-Type": "video/mp4"}, 415),
    ({"Content-Type": "image/jpeg", "Accept": "text/csv"}, 406),
    ({"Content-Type": "image/jpeg", "X-Amzn-SageMaker-Custom-Attributes": "threshold=7"}, 400),
])
def test_errors_carry_their_status(service, demo_model_dir, headers, status):
    rgb = np.zeros((64, 64, 3), np.uint8)
    answers, context = _requests(service, demo_model_dir, (encode(rgb), headers))
    assert statuses(context)[0][0] == status and json.loads(answers[0])["status"] == status


def test_an_unexpected_failure_is_a_500_json_and_the_worker_keeps_serving(service, demo_model_dir, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the graph fell over")
    rgb = np.zeros((64, 64, 3), np.uint8)
    with monkeypatch.context() as patch:
        patch.setattr(service.model, "run_graph", broken)
        answers, context = _requests(service, demo_model_dir, (encode(rgb), {"Content-Type": "image/jpeg"}))
    assert statuses(context)[0] == (500, "Internal Server Error")
    assert json.loads(answers[0]) == {"error": "internal error: the graph fell over", "status": 500,
                                      "request_id": "mms-0"}
    answers, context = _requests(service, demo_model_dir, (encode(rgb), {"Content-Type": "image/jpeg"}))
    assert not statuses(context) and "detections" in json.loads(answers[0])


def test_a_load_only_call_answers_nothing(service, demo_model_dir):
    from ssd_serving import handler
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(handler, "_service", service)
    try:
        assert handler.handle(None, mms_context(demo_model_dir, [])) is None
    finally:
        monkeypatch.undo()


def test_each_request_logs_its_stages_as_one_emf_line_named_by_its_request_id(service, demo_model_dir, capsys):
    rgb, _, _ = synthetic_scene(5, 640, 480)
    capsys.readouterr()
    answers, context = _requests(service, demo_model_dir,
                                 (encode(rgb), {"Content-Type": "image/jpeg", "X-Ssd-Request-Id": "front-1",
                                                "X-Ssd-Received-At": "%.6f" % (time.time() - 0.05)}),
                                 (b"junk", {"Content-Type": "image/jpeg", "X-Amzn-SageMaker-Inference-Id": "caller-2"}),
                                 (b"junk", {"Content-Type": "image/jpeg"}))
    good, refused, anonymous = emf_lines(capsys.readouterr().out)
    assert good["RequestId"] == "front-1" and good["Status"] == 200 and good["Images"] == 1
    assert good["Model"] == demo_meta()["model_name"]
    for name in ("QueueWait", "Decode", "Preprocess", "Forward", "Postprocess", "Encode", "Total"):
        assert good[name] >= 0.0
    assert good["QueueWait"] >= 50.0  # from the front door's stamp to the handler
    # the worker's stages fit in its total
    assert sum(good[n] for n in ("Decode", "Preprocess", "Forward", "Postprocess", "Encode")) <= good["Total"]
    # a refused request: its status, its id in the log line and in the error body (the caller's InferenceId)
    assert refused["RequestId"] == "caller-2" and refused["Status"] == 400
    # its prediction failed (decoding the junk): none of the prediction's stages is reported
    assert not set(refused) & {"Decode", "Preprocess", "Forward", "Postprocess"} and refused["Total"] >= 0.0
    assert json.loads(answers[1])["request_id"] == "caller-2" and statuses(context)[1][0] == 400
    # without the front door's headers, MMS's own request id names it
    assert anonymous["RequestId"] == "mms-2" and json.loads(answers[2])["request_id"] == "mms-2"


def test_request_metrics_can_be_turned_off(service, demo_model_dir, capsys, monkeypatch):
    from ssd_serving.environment import Environment
    monkeypatch.setattr(service, "settings", Environment({"SSD_REQUEST_METRICS": "0"}))
    capsys.readouterr()
    answers, context = _requests(service, demo_model_dir, (encode(np.zeros((64, 64, 3), np.uint8)),
                                                           {"Content-Type": "image/jpeg"}))
    assert "detections" in json.loads(answers[0]) and not emf_lines(capsys.readouterr().out)


def test_a_request_the_front_door_forwarded_hands_its_emf_line_back_instead_of_printing_it(service, demo_model_dir,
                                                                                           capsys):
    """The front door asks for the line (X-Ssd-Emf: relay) and prints it after answering: the worker then prints
    nothing, which would wake Multi Model Server's reader of its output while the answer is on its way."""
    capsys.readouterr()
    answers, context = _requests(service, demo_model_dir,
                                 (encode(np.zeros((64, 64, 3), np.uint8)),
                                  {"Content-Type": "image/jpeg", "X-Ssd-Request-Id": "relayed-1", "X-Ssd-Emf": "relay"}),
                                 (b"junk", {"Content-Type": "image/jpeg", "X-Ssd-Request-Id": "printed-2"}))
    printed = emf_lines(capsys.readouterr().out)
    assert [line["RequestId"] for line in printed] == ["printed-2"]
    relayed = emf_lines(context.get_response_headers(0)["X-Ssd-Emf"])
    assert [line["RequestId"] for line in relayed] == ["relayed-1"] and relayed[0]["Status"] == 200
    assert "X-Ssd-Emf" not in context.get_response_headers(1)
    assert "detections" in json.loads(answers[0])


def test_the_model_servers_own_metric_lines_are_dropped_and_its_other_lines_kept(service, demo_model_dir, capsys,
                                                                                 monkeypatch):
    """mms.service logs `[METRICS]...` per request for its frontend, which our log configuration turns off there;
    the worker drops them (MODEL_SERVER_METRIC_LINES), and MMS's warnings and errors still get through."""
    import logging

    import mms.service
    from ssd_serving import handler
    monkeypatch.setattr(handler, "_service", DetectionService())  # the first call sets the worker's logging up
    monkeypatch.setattr(logging.getLogger("mms.service"), "filters", [])
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    monkeypatch.setenv("SSD_MODEL_DIR", demo_model_dir)
    handler.handle(None, mms_context(demo_model_dir, []))
    capsys.readouterr()
    mms.service.emit_metrics({"PredictionTime": "PredictionTime.Milliseconds:1.2|#ModelName:model"})
    mms.service.logger.warning("Invoking custom service failed.")
    out = capsys.readouterr().out
    assert "[METRICS]" not in out and "Invoking custom service failed." in out


def _pointing_at(folder, tmp_path, name):
    """An MMS model folder as multimodel.Models writes it, pointing at `folder`."""
    from ssd_serving.multimodel import POINTER_FILE
    mms_dir = tmp_path / "mms"
    mms_dir.mkdir()
    (mms_dir / POINTER_FILE).write_text(json.dumps({"model_name": name, "url": str(folder)}))
    return str(mms_dir)


def test_a_multi_model_worker_loads_exactly_the_folder_it_is_pointed_at(demo_model_dir, tmp_path):
    patch = pytest.MonkeyPatch()
    patch.setitem(sys.modules, "inference", load_entry_point())
    try:
        made = DetectionService()
        made.initialize(mms_context(_pointing_at(demo_model_dir, tmp_path, "kitchen.tar.gz"), []))
        assert made.model.info["target_model"] == "kitchen.tar.gz"
        assert made.model.info["name"] == demo_meta()["model_name"]
    finally:
        patch.undo()


def test_a_multi_model_worker_never_falls_back_to_another_model_and_says_why(tmp_path):
    """A folder without a model fails the load (find_model_dir would serve /opt/ml/model or the baked one), and
    the reason is left for POST /models's answer."""
    from ssd_serving.errors import ModelLoadError
    from ssd_serving.multimodel import LOAD_ERROR_FILE
    empty = tmp_path / "empty"
    empty.mkdir()
    mms_dir = _pointing_at(empty, tmp_path, "empty.tar.gz")
    patch = pytest.MonkeyPatch()
    patch.setitem(sys.modules, "inference", load_entry_point())
    try:
        with pytest.raises(ModelLoadError, match="holds no exported model"):
            DetectionService().initialize(mms_context(mms_dir, []))
    finally:
        patch.undo()
    with open("%s/%s" % (mms_dir, LOAD_ERROR_FILE)) as stream:
        assert "holds no exported model" in stream.read()


JPEG = {"Content-Type": "image/jpeg"}


def _count_forwards(service, monkeypatch):
    """The list that each forward of the worker's model appends its number of images to."""
    forwards = []
    original = service.model.run_graph

    def counted(inputs):
        forwards.append(len(inputs))
        return original(inputs)

    monkeypatch.setattr(service.model, "run_graph", counted)
    return forwards


def test_requests_handed_over_together_share_one_forward_and_answer_as_if_alone(service, demo_model_dir, monkeypatch,
                                                                                 capsys):
    """Server-side batching (SSD_SERVER_BATCH_SIZE): MMS hands the handler several requests; their single images go
    through the graph in one forward, a request of several images and a bad one are answered on their own."""
    scenes = [synthetic_scene(seed, 320, 240)[0] for seed in (11, 12, 13)]
    listed = json.dumps({"images": [base64.b64encode(encode(rgb)).decode("ascii") for rgb in scenes[:2]]}).encode()
    alone = [json.loads(_requests(service, demo_model_dir, (encode(rgb), JPEG))[0][0]) for rgb in scenes]
    forwards = _count_forwards(service, monkeypatch)
    capsys.readouterr()
    answers, context = _requests(service, demo_model_dir, *[(encode(rgb), JPEG) for rgb in scenes] + [
        (b"junk", JPEG), (listed, {"Content-Type": "application/json"})])
    # the list's two images one at a time as its request is read in turn, then the three single images together
    assert forwards == [1, 1, 3]
    for before, after in zip(alone, answers[:3]):
        assert json.loads(after)["image_size"] == [320, 240]
        assert_same_detections(before["detections"], json.loads(after)["detections"])
    assert statuses(context) == {3: (400, "Bad Request")} and json.loads(answers[3])["request_id"] == "mms-3"
    for before, result in zip(alone, json.loads(answers[4])):
        assert_same_detections(before["detections"], result["detections"])
    lines = emf_lines(capsys.readouterr().out)
    assert [line["Batch"] for line in lines] == [5] * 5 and [line["Status"] for line in lines] == [200] * 3 + [400, 200]
    # each image of the shared forward waited for all of it
    assert lines[0]["Forward"] == lines[1]["Forward"] == lines[2]["Forward"] > 0


def test_a_failed_shared_forward_fails_its_requests_only_and_the_worker_keeps_serving(service, demo_model_dir,
                                                                                      monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("the graph fell over")
    rgb, _, _ = synthetic_scene(14, 320, 240)
    with monkeypatch.context() as patch:
        patch.setattr(service.model, "run_graph", broken)
        answers, context = _requests(service, demo_model_dir, (encode(rgb), JPEG), (encode(rgb), JPEG),
                                     (b"junk", JPEG))
    assert statuses(context) == {0: (500, "Internal Server Error"), 1: (500, "Internal Server Error"),
                                2: (400, "Bad Request")}
    assert json.loads(answers[1]) == {"error": "internal error: the graph fell over", "status": 500,
                                      "request_id": "mms-1"}
    answers, context = _requests(service, demo_model_dir, (encode(rgb), JPEG), (encode(rgb), JPEG))
    assert not statuses(context) and all("detections" in json.loads(answer) for answer in answers)


def test_an_entry_point_without_predict_batch_fn_is_served_one_request_at_a_time(service, demo_model_dir,
                                                                                 monkeypatch):
    import types
    entry = service.entry
    own = types.SimpleNamespace(input_fn=entry.input_fn, predict_fn=entry.predict_fn, output_fn=entry.output_fn)
    monkeypatch.setattr(service, "entry", own)
    forwards = _count_forwards(service, monkeypatch)
    rgb, _, _ = synthetic_scene(15, 320, 240)
    answers, context = _requests(service, demo_model_dir, (encode(rgb), JPEG), (encode(rgb), JPEG))
    assert not statuses(context) and json.loads(answers[0]) == json.loads(answers[1])
    assert forwards == [1, 1]


def test_each_step_gets_its_requests_context_when_it_takes_one_more_parameter(service, demo_model_dir, monkeypatch):
    """As sagemaker-inference >= 1.7 calls an entry point: a step that takes one parameter more than the handler gives
    gets the request's Context last, one that does not gets none; index 0 of the Context is the step's own request."""
    import types
    seen = []

    def input_fn(request_body, content_type, context):
        seen.append(context.get_request_header(0, "X-Own"))
        return len(request_body)

    def predict_fn(data, model):
        return data

    def output_fn(prediction, accept, context):
        context.set_response_header(0, "X-Length", str(prediction))
        return json.dumps({"length": prediction}), "application/json"

    monkeypatch.setattr(service, "entry", types.SimpleNamespace(input_fn=input_fn, predict_fn=predict_fn,
                                                                output_fn=output_fn))
    answers, context = _requests(service, demo_model_dir, (b"abc", {"X-Own": "first"}),
                                 (b"abcdef", {"X-Own": "second"}))
    assert seen == ["first", "second"] and [json.loads(answer)["length"] for answer in answers] == [3, 6]
    assert [context.get_response_headers(index)["X-Length"] for index in (0, 1)] == ["3", "6"]
    assert not statuses(context)
