"""A multi-model endpoint (SAGEMAKER_MULTI_MODEL=true) on the real server: SageMaker's /models API, two models with
different classes, load and unload (unloading stops the model's workers, which gives their memory back), bad models and
concurrent invokes."""
import base64
import io
import json
import os
import threading
import time

import psutil
import pytest
import requests
from PIL import Image

from helpers import (DEMO_MODEL, RECALL_SCORE, RunningServer, all_at_once, copy_model, demo_meta, emf_lines_of, encode,
                     left_running, rewrite_meta, synthetic_scene)

RENAMED = ["disc", "block", "wedge", "spark"]


def _server(tmp_path_factory, **env):
    """A server in multi-model mode with no model anywhere: no baked model, an empty /opt/ml."""
    base = tmp_path_factory.mktemp("opt-ml")
    empty = str(tmp_path_factory.mktemp("no-baked-model"))
    extra = {"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_BASE_DIR": str(base)}
    extra.update(env)
    return RunningServer(empty, extra).wait_ready(120)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """SageMaker's layout: /opt/ml/models/{name}/model, one folder per model. `demo` is the demo model; `renamed`
    the same weights under other class names (a fine-tuned model stands in for: same graph, its own classes)."""
    root = tmp_path_factory.mktemp("models")
    demo = copy_model(DEMO_MODEL, str(root / "demo" / "model"))
    renamed = copy_model(DEMO_MODEL, str(root / "renamed" / "model"), classes=RENAMED,
                         model_name="ssd_256_demo_renamed")
    return {"demo": demo, "renamed": renamed, "root": root}


@pytest.fixture(scope="module")
def mme(tmp_path_factory):
    server = _server(tmp_path_factory, SSD_MODELS_PAGE_SIZE="1")
    yield server
    server.stop()


def load(server, name, url, timeout=180):
    return requests.post(server.url + "/models", json={"model_name": name, "url": url}, timeout=timeout)


def invoke(server, name, body, content_type="image/png", **kwargs):
    headers = kwargs.pop("headers", {})
    headers.setdefault("Content-Type", content_type)
    headers.setdefault("X-Amzn-SageMaker-Target-Model", name)
    return requests.post(server.url + "/models/%s/invoke" % name, data=body, headers=headers, timeout=60, **kwargs)


def unload(server, name):
    return requests.delete(server.url + "/models/%s" % name, timeout=60)


def _scene():
    rgb, boxes, class_ids = synthetic_scene(4711, 640, 480)
    return encode(rgb, "PNG"), boxes, class_ids


def server_rss(server):
    """Resident memory of the server: the launcher, MMS's JVM and every worker."""
    launcher = psutil.Process(server.process.pid)
    total = 0
    for process in [launcher] + launcher.children(recursive=True):
        try:
            total += process.memory_info().rss
        except psutil.Error:
            pass
    return total


def _is_error(reply, status, *words):
    assert reply.status_code == status, (reply.status_code, reply.text)
    document = reply.json()
    assert document["status"] == status and all(word in document["error"] for word in words), document


def test_healthy_with_no_model_and_nothing_to_invoke(mme):
    assert requests.get(mme.url + "/ping", timeout=5).status_code == 200
    assert requests.get(mme.url + "/models", timeout=5).json() == {"models": []}
    _is_error(invoke(mme, "nothing", _scene()[0]), 404, "nothing", "not loaded")
    _is_error(requests.get(mme.url + "/models/nothing", timeout=5), 404, "nothing")
    _is_error(unload(mme, "nothing"), 404, "nothing")
    # /invocations is the single-model contract: here it is refused naming the paths that serve
    reply = requests.post(mme.url + "/invocations", data=_scene()[0], headers={"Content-Type": "image/png"},
                          timeout=10)
    _is_error(reply, 404, "/models/{name}/invoke")


def test_two_models_each_answer_with_their_own_classes(mme, models):
    for name in ("demo", "renamed"):
        reply = load(mme, name, models[name])
        assert reply.status_code == 200, reply.text
        assert reply.json()["modelName"] == name
    body, boxes, class_ids = _scene()
    answers = {}
    for name in ("demo", "renamed"):
        reply = invoke(mme, name, body, headers={"X-Amzn-SageMaker-Custom-Attributes": "threshold=%s" % RECALL_SCORE})
        assert reply.status_code == 200, reply.text
        answers[name] = reply.json()
        assert answers[name]["model"]["target_model"] == name
    assert answers["demo"]["model"]["name"] == demo_meta()["model_name"]
    assert answers["renamed"]["model"]["name"] == "ssd_256_demo_renamed"
    demo_labels = [d["label"] for d in answers["demo"]["detections"]]
    renamed_labels = [d["label"] for d in answers["renamed"]["detections"]]
    assert demo_labels and set(demo_labels) <= set(demo_meta()["classes"])
    # the same weights: the same boxes, named by each model's own classes
    assert renamed_labels == [RENAMED[demo_meta()["classes"].index(label)] for label in demo_labels]
    assert [d["box"] for d in answers["demo"]["detections"]] == [d["box"] for d in answers["renamed"]["detections"]]
    described = requests.get(mme.url + "/models/renamed", timeout=5).json()
    assert described["modelName"] == "renamed" and described["modelUrl"] == models["renamed"]
    assert described["classes"] == RENAMED and described["state"] == "loaded"
    assert described["params_sha256"] == demo_meta()["params_sha256"]
    _is_error(load(mme, "demo", models["demo"]), 409, "demo", "already")


def test_every_request_format_and_parameter_of_invocations(mme, models):
    if load(mme, "demo", models["demo"]).status_code not in (200, 409):
        pytest.fail("demo did not load")
    body, _, _ = _scene()
    encoded = base64.b64encode(body).decode()
    as_json = invoke(mme, "demo", json.dumps({"image": encoded, "threshold": 0.01, "top_k": 2}), "application/json")
    assert as_json.status_code == 200 and len(as_json.json()["detections"]) == 2, as_json.text
    lines = invoke(mme, "demo", "\n".join([encoded, "not base64!"]), "application/jsonlines")
    assert lines.status_code == 400 and lines.json()["status"] == 400  # a bad line: the real-time contract
    many = invoke(mme, "demo", json.dumps({"images": [encoded, encoded]}), "application/json")
    assert many.status_code == 200 and len(many.json()) == 2
    drawn = invoke(mme, "demo", body, headers={"Accept": "image/jpeg"})
    assert drawn.status_code == 200 and drawn.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(drawn.content)).size == (640, 480)
    as_text = invoke(mme, "demo", encoded, "text/plain")
    assert as_text.status_code == 200 and as_text.json()["image_size"] == [640, 480]
    _is_error(invoke(mme, "demo", b"not an image", "image/jpeg"), 400)
    _is_error(invoke(mme, "demo", body, headers={"Accept": "text/csv"}), 406)


def test_listing_is_paged(mme, models):
    for name in ("demo", "renamed"):
        assert load(mme, name, models[name]).status_code in (200, 409)
    seen, token = [], None
    for _ in range(10):
        params = {"next_page_token": token} if token else {}
        page = requests.get(mme.url + "/models", params=params, timeout=5).json()
        assert len(page["models"]) <= 1  # SSD_MODELS_PAGE_SIZE=1
        seen += [(model["modelName"], model["modelUrl"]) for model in page["models"]]
        token = page.get("nextPageToken")
        if not token:
            break
    assert ("demo", models["demo"]) in seen and ("renamed", models["renamed"]) in seen
    assert len(seen) == len(set(seen))
    _is_error(requests.get(mme.url + "/models", params={"next_page_token": "x"}, timeout=5), 400)


def test_bad_models_are_refused_naming_the_problem_and_the_others_keep_serving(mme, models):
    root = models["root"]
    corrupt = copy_model(DEMO_MODEL, str(root / "corrupt" / "model"))
    params = os.path.join(corrupt, "model-0000.params")
    with open(params, "r+b") as stream:
        stream.seek(os.path.getsize(params) // 2)
        stream.write(b"\x00" * 64)
    _is_error(load(mme, "corrupt", corrupt), 422, "sha256")
    empty = str(root / "empty" / "model")
    os.makedirs(empty)
    _is_error(load(mme, "empty", empty), 422, "no exported model")
    no_graph = copy_model(DEMO_MODEL, str(root / "no-graph" / "model"))
    with open(os.path.join(no_graph, "model-symbol.json"), "w") as stream:
        stream.write("{not json")
    _is_error(load(mme, "no-graph", no_graph), 422, "graph")
    _is_error(load(mme, "missing", str(root / "missing")), 404, "missing")
    # weights that match their recorded sha256 but not the graph: only the worker finds out, and says why
    mismatched = copy_model(DEMO_MODEL, str(root / "mismatched" / "model"))
    params = os.path.join(mismatched, "model-0000.params")
    import mxnet as mx
    mx.nd.save(params, {"arg:nothing": mx.nd.zeros((1,))})
    from ssd_serving.artifact import file_sha256
    rewrite_meta(mismatched, params_sha256=file_sha256(params))
    _is_error(load(mme, "mismatched", mismatched), 422, "mismatched", "did not load", "is missing")
    _is_error(requests.post(mme.url + "/models", data="{", headers={"Content-Type": "application/json"},
                            timeout=5), 400)
    _is_error(requests.post(mme.url + "/models", json={"url": models["demo"]}, timeout=5), 400, "model_name")
    listed = [m["modelName"] for m in requests.get(mme.url + "/models", timeout=5).json()["models"]]
    assert not set(listed) & {"corrupt", "empty", "no-graph", "missing", "mismatched"}
    assert load(mme, "demo", models["demo"]).status_code in (200, 409)
    assert invoke(mme, "demo", _scene()[0]).status_code == 200
    assert "sha256" in mme.output()


def _workers(server):
    """{pid: process} of the model server's Python workers under `server`."""
    found = {}
    for process in psutil.Process(server.process.pid).children(recursive=True):
        try:
            if "model_service_worker" in " ".join(process.cmdline()):
                found[process.pid] = process
        except psutil.Error:
            pass
    return found


def _jvm(server):
    return [p for p in psutil.Process(server.process.pid).children(recursive=True) if "java" in p.name()][0]


def test_unloading_stops_the_workers_loading_started(mme, models):
    """A loaded model has workers of its own, and unloading it stops them, which gives back all the memory they
    held. The server's memory is printed, not asserted: what the allocator keeps and when the kernel counts it
    differs between machines (the soak follows memory over time)."""
    earlier = _workers(mme)
    for name in ("demo", "renamed"):
        if requests.get(mme.url + "/models/%s" % name, timeout=5).status_code == 200:
            assert unload(mme, name).status_code == 200
    # an unloaded model's workers exit after MMS has answered the unload (a 1.4.1 run once counted one that was still
    # exiting among the others): with no model left loaded, wait for every earlier worker to be gone first
    if not requests.get(mme.url + "/models", timeout=5).json()["models"]:
        assert not left_running(list(earlier.values()), timeout=60), "the unloaded models' workers are still running"
    before, rss_before = _workers(mme), server_rss(mme)
    reply = load(mme, "measured", models["renamed"])
    assert reply.status_code == 200, reply.text
    assert invoke(mme, "measured", _scene()[0]).status_code == 200
    started = [process for pid, process in _workers(mme).items() if pid not in before]
    assert started, "loading a model started no worker of its own"
    rss_loaded = server_rss(mme)
    assert unload(mme, "measured").status_code == 200
    assert not left_running(started, timeout=60), "the unloaded model's workers are still running"
    assert set(before) <= set(_workers(mme))  # the other models' workers were left alone
    print("MME demo-derived model: %d worker(s) of its own, stopped on unload; server RSS %.0f MB before, %.0f MB "
          "loaded, %.0f MB after" % (len(started), rss_before / 1e6, rss_loaded / 1e6, server_rss(mme) / 1e6))
    _is_error(invoke(mme, "measured", _scene()[0]), 404, "measured")
    _is_error(requests.get(mme.url + "/models/measured", timeout=5), 404)
    # and loads again
    assert load(mme, "measured", models["renamed"]).status_code == 200
    assert invoke(mme, "measured", _scene()[0]).status_code == 200
    assert unload(mme, "measured").status_code == 200


def test_invokes_of_a_model_being_loaded_get_503_never_500(mme, models):
    """The load is held in progress on purpose, however fast the machine: MMS's JVM is stopped (SIGSTOP), so the
    model cannot be registered with it until the test resumes it."""
    body = _scene()[0]
    result = {}
    java = _jvm(mme)
    java.suspend()
    try:
        thread = threading.Thread(target=lambda: result.update(reply=load(mme, "late", models["demo"])))
        thread.start()
        deadline = time.time() + 60
        while requests.get(mme.url + "/models/late", timeout=5).status_code != 200:
            assert time.time() < deadline and thread.is_alive(), result
            time.sleep(0.05)
        assert requests.get(mme.url + "/models/late", timeout=5).json()["state"] == "loading"
        during = [invoke(mme, "late", body) for _ in range(3)]
    finally:
        java.resume()
    thread.join(240)
    for reply in during:
        _is_error(reply, 503, "late", "loading")
    assert result["reply"].status_code == 200, result["reply"].text
    replies = []
    threads = [threading.Thread(target=lambda: replies.append(invoke(mme, "late", body))) for _ in range(6)]
    for each in threads:
        each.start()
    for each in threads:
        each.join()
    assert [r.status_code for r in replies] == [200] * 6
    assert all(r.json()["model"]["target_model"] == "late" for r in replies)
    assert '"TargetModel":"late"' in mme.output()  # each request's log line names the model it went to
    assert unload(mme, "late").status_code == 200


def test_not_enough_memory_is_507(tmp_path_factory, models):
    server = _server(tmp_path_factory, SSD_MODEL_MEMORY_MB="100000000")
    try:
        _is_error(load(server, "demo", models["demo"]), 507, "memory")
        assert requests.get(server.url + "/models", timeout=5).json() == {"models": []}
        assert requests.get(server.url + "/ping", timeout=5).status_code == 200
    finally:
        server.stop()


def test_server_side_batching_reaches_a_loaded_models_worker(tmp_path_factory, models):
    """SSD_SERVER_BATCH_SIZE on a multi-model endpoint: each model is registered with MMS's batch size, so invokes
    sent together reach its worker together, and each is answered with its own detections."""
    server = _server(tmp_path_factory, SSD_SERVER_BATCH_SIZE="4", SSD_SERVER_BATCH_DELAY_MS="400",
                     SAGEMAKER_MODEL_SERVER_WORKERS="1")
    try:
        assert load(server, "demo", models["demo"]).status_code == 200
        body, boxes, class_ids = _scene()
        replies = all_at_once(lambda index: invoke(server, "demo", body, headers={
            "X-Amzn-SageMaker-Custom-Attributes": "threshold=%s" % RECALL_SCORE}), 3)
        assert [reply.status_code for reply in replies] == [200] * 3, [reply.text[:400] for reply in replies]
        assert len(set(json.dumps(reply.json()["detections"]) for reply in replies)) == 1
        lines = emf_lines_of(server, [reply.headers["X-Ssd-Request-Id"] for reply in replies])
        batches = [line.get("Batch", 1) for line in lines]
        assert max(batches) >= 2, batches
    finally:
        server.stop()
