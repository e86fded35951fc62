"""The try-it page (GET / with SSD_WEB_PAGE=1) in a real headless Chromium against the real server, and the
Server-Timing header on every answer.

The browser tests drive Debian's chromium through its chromedriver with Selenium (tests/ensure-browser.sh installs
them; `make test` runs it). They run in the MXNet 1.9.1 run, where Selenium is installed; where no browser could be
installed they skip and say why, and fail instead where SSD_REQUIRE_BROWSER=1 (CI). The Server-Timing tests need no
browser and run on both stacks. A screenshot of the page goes to build/page/try-it.png (docs/images/try-it.png is
one such, taken in by hand).
"""
import json
import os
import shutil

import pytest
import requests
from PIL import Image

from helpers import (DEMO_MODEL, ROOT, RunningServer, all_at_once, copy_model, emf_lines_of, encode, photo_paths,
                     ready_server, synthetic_scene)

STAGES = ["queue", "decode", "preprocess", "forward", "postprocess", "encode", "worker", "read", "upstream", "front"]
ASKED_THRESHOLD = "threshold=0.05"  # what the page asks with, once; its slider filters the answer
SCREENSHOTS = os.path.join(ROOT, "build", "page")


def timing_names(header):
    return [part.strip().split(";")[0] for part in (header or "").split(",") if part.strip()]


# --- Server-Timing: no browser needed

@pytest.fixture(scope="module")
def page_server():
    with ready_server(DEMO_MODEL, {"SSD_WEB_PAGE": "1"}) as running:
        yield running


def test_every_answer_carries_its_stage_timings(page_server):
    reply = page_server.post(encode(synthetic_scene(3, 640, 480)[0]))
    assert reply.status_code == 200, reply.text
    assert timing_names(reply.headers.get("Server-Timing")) == STAGES, reply.headers
    durations = dict((part.strip().split(";dur=")[0], float(part.split(";dur=")[1]))
                     for part in reply.headers["Server-Timing"].split(","))
    assert min(durations.values()) >= 0.0, durations
    # a timeline, not loose numbers: the front door's parts fit in its whole, and the worker's in the upstream
    # exchange that contains it (each figure is rounded to 0.1 ms)
    assert durations["front"] >= durations["read"] + durations["upstream"] - 0.2, durations
    assert durations["upstream"] >= durations["worker"] - 0.2, durations
    # an error answer too: it went through the worker's queue and handler, not through a forward
    refused = page_server.post(b"not an image at all", "image/jpeg")
    assert refused.status_code == 400
    assert timing_names(refused.headers.get("Server-Timing")) == ["queue", "worker", "read", "upstream", "front"], \
        refused.headers


def test_requests_answered_together_in_a_server_side_batch_keep_their_answers_and_the_front_doors_timings():
    # with server-side batching on, MMS 1.1.8's frontend takes a worker's answer with response headers for a
    # corrupted frame and restarts the worker (every request of the batch got 500): the worker then sets no
    # Server-Timing of its own, and the front door's timings remain
    env = {"SSD_SERVER_BATCH_SIZE": "4", "SSD_SERVER_BATCH_DELAY_MS": "400", "SAGEMAKER_MODEL_SERVER_WORKERS": "1"}
    with ready_server(DEMO_MODEL, env) as running:
        body = encode(synthetic_scene(5, 320, 240)[0])
        answered = []
        for _ in range(2):
            replies = all_at_once(lambda index: running.post(body), 3)
            assert [reply.status_code for reply in replies] == [200] * 3, [reply.text[:300] for reply in replies]
            for reply in replies:
                assert timing_names(reply.headers.get("Server-Timing"))[-3:] == ["read", "upstream", "front"]
            answered += [reply.headers["X-Ssd-Request-Id"] for reply in replies]
        batches = [line.get("Batch", 1) for line in emf_lines_of(running, answered)]
        assert max(batches) >= 2, batches  # they did reach the worker together


def test_request_metrics_off_means_no_server_timing():
    with ready_server(DEMO_MODEL, {"SSD_REQUEST_METRICS": "0"}) as running:
        reply = running.post(encode(synthetic_scene(3, 640, 480)[0]))
        assert reply.status_code == 200 and "Server-Timing" not in reply.headers, reply.headers
        # and without SSD_WEB_PAGE, GET / is forwarded to the model server as any path is (MMS 1.1 answers 405, 1.0.5
        # 404), its error rewritten to JSON: no page
        root = requests.get(running.url + "/", timeout=30)
        assert root.status_code in (404, 405) and root.headers["Content-Type"] == "application/json", root.text
        assert root.json()["status"] == root.status_code


def test_the_page_is_served_whole_and_offline(page_server):
    reply = requests.get(page_server.url + "/", timeout=30)
    assert reply.status_code == 200 and reply.headers["Content-Type"] == "text/html; charset=utf-8"
    page = reply.text
    assert "<script>" in page and "/invocations" in page
    for outside in ("http://", "https://", "//cdn", "src=\"http"):  # nothing fetched from elsewhere
        assert outside not in page.replace("http://www.w3.org/2000/svg", ""), outside
    assert requests.head(page_server.url + "/", timeout=30).status_code == 200


# --- the page in a real browser

def _browser_problem():
    import mxnet
    if tuple(int(p) for p in mxnet.__version__.split(".")[:2]) < (1, 9):
        return "the browser test runs in the MXNet 1.9.1 run, whose venv has Selenium (requirements/browser-test.txt)"
    missing = [tool for tool in ("chromium", "chromedriver") if shutil.which(tool) is None]
    if missing:
        return ("no %s on this machine: run tests/ensure-browser.sh as root (Debian's chromium and chromium-driver)"
                % " and ".join(missing))
    return None


@pytest.fixture(scope="module")
def browser():
    problem = _browser_problem()
    if problem:
        if os.environ.get("SSD_REQUIRE_BROWSER") == "1" and "MXNet 1.9.1 run" not in problem:
            pytest.fail("SSD_REQUIRE_BROWSER=1 and %s" % problem)
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(lambda d: condition(d))


def _upload(driver, path):
    """Choose `path` in the page's file input, as a person does, and wait for the answer to be shown."""
    driver.execute_script("document.getElementById('status').textContent = ''; "
                          "document.getElementById('boxes').removeAttribute('data-drawn');")
    driver.find_element("id", "file").send_keys(path)
    _wait(driver, lambda d: d.find_element("id", "error").is_displayed() or (
        "answered in" in d.find_element("id", "status").text
        and d.find_element("id", "boxes").get_attribute("data-drawn") is not None))


def _drawn(driver):
    return len(driver.find_elements("css selector", "#boxes rect.box"))


def _assert_boxes_lie_on_the_photo(driver):
    """The drawing's frame is exactly where the photo is on the screen (so each box lies on its object), and no part
    of the page that should be hidden takes room."""
    frames = driver.execute_script(
        "return ['photo', 'boxes'].map(id => { const r = document.getElementById(id).getBoundingClientRect(); "
        "return [r.left, r.top, r.width, r.height]; });")
    photo, boxes = frames
    assert photo[2] > 100 and photo[3] > 100, frames
    assert all(abs(a - b) <= 1.0 for a, b in zip(photo, boxes)), frames
    assert driver.execute_script("return document.getElementById('placeholder').getBoundingClientRect().height") == 0


def _set_threshold(driver, value):
    driver.execute_script("const slider = document.getElementById('threshold'); slider.value = arguments[0]; "
                          "slider.dispatchEvent(new Event('input'));", str(value))


def _answer(server, path, target=None):
    """The server's JSON for the file, asked as the page asks."""
    with open(path, "rb") as stream:
        body = stream.read()
    url = server.url + ("/models/%s/invoke" % target if target else "/invocations")
    reply = requests.post(url, data=body, timeout=60, headers={
        "Content-Type": "image/jpeg", "Accept": "application/json", "X-Amzn-SageMaker-Custom-Attributes": ASKED_THRESHOLD})
    assert reply.status_code == 200, reply.text
    return reply.json()


def _above(document, threshold, hidden=()):
    return [d for d in document["detections"] if d["score"] >= threshold and d["label"] not in hidden]


def test_a_scene_gets_its_boxes_drawn_and_the_slider_and_filter_redraw(browser, page_server, tmp_path):
    scene = str(tmp_path / "scene.jpg")
    Image.fromarray(synthetic_scene(21, 640, 480)[0]).save(scene, quality=92)
    expected = _answer(page_server, scene)
    browser.get(page_server.url + "/")
    _upload(browser, scene)
    assert not browser.find_element("id", "error").is_displayed()
    assert not browser.find_element("id", "model-choice").is_displayed()  # one model: nothing to choose
    shown = _above(expected, 0.5)
    assert shown, expected  # the demo model finds the shapes of its own kind of scene
    assert _drawn(browser) == len(shown)
    rows = browser.find_elements("css selector", "#detections tbody tr")
    assert [r.find_elements("tag name", "td")[0].text for r in rows] == [d["label"] for d in shown]
    # the picture the way the server saw it: the answer's image size is the photo's, and the boxes' frame
    assert browser.execute_script("const p = document.getElementById('photo'); "
                                  "return [p.naturalWidth, p.naturalHeight];") == expected["image_size"]
    assert browser.execute_script("return document.getElementById('boxes').getAttribute('viewBox')") == \
        "0 0 %d %d" % tuple(expected["image_size"])
    _assert_boxes_lie_on_the_photo(browser)
    for threshold in (0.05, 0.3, 0.9):
        _set_threshold(browser, threshold)
        assert _drawn(browser) == len(_above(expected, threshold)), threshold
    _set_threshold(browser, 0.05)
    label = expected["detections"][0]["label"]
    browser.find_element("css selector", "#classes input[value='%s']" % label).click()
    assert _drawn(browser) == len(_above(expected, 0.05, hidden=(label,)))
    # the model card and the server's stage timings, from the answer's Server-Timing header
    card = browser.find_element("id", "card").text
    assert expected["model"]["name"] in card and "fp32" in card
    timings = browser.find_element("id", "timings").text
    for stage in ("server: decode", "server: forward", "server: front", "round trip"):
        assert stage in timings, timings
    os.makedirs(SCREENSHOTS, exist_ok=True)
    _set_threshold(browser, 0.5)
    browser.find_element("css selector", "#classes input[value='%s']" % label).click()
    browser.save_screenshot(os.path.join(SCREENSHOTS, "try-it.png"))
    with Image.open(os.path.join(SCREENSHOTS, "try-it.png")) as picture:  # a picture, opened: not blank
        assert picture.size[0] >= 1000 and len(set(picture.convert("L").getdata())) > 50


def test_a_real_photo_rotated_by_exif_is_shown_as_the_server_saw_it(browser, page_server, tmp_path):
    with Image.open(photo_paths()["grace_hopper"]) as photo:
        exif = photo.getexif()
        exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to view
        rotated = str(tmp_path / "hopper-exif.jpg")
        photo.save(rotated, exif=exif, quality=92)
        stored = photo.size
    expected = _answer(page_server, rotated)
    assert expected["image_size"] == [stored[1], stored[0]]  # the server applied the rotation
    browser.get(page_server.url + "/")
    _upload(browser, rotated)
    assert browser.execute_script("const p = document.getElementById('photo'); "
                                  "return [p.naturalWidth, p.naturalHeight];") == expected["image_size"]
    assert _drawn(browser) == len(_above(expected, 0.5))
    _assert_boxes_lie_on_the_photo(browser)


def test_a_file_that_is_not_an_image_shows_the_servers_message(browser, page_server, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("these are not the pixels you are looking for\n" * 20)
    browser.get(page_server.url + "/")
    _upload(browser, str(notes))
    error = browser.find_element("id", "error")
    assert error.is_displayed()
    assert error.text.startswith("HTTP 400: ") and "not a decodable image" in error.text, error.text
    assert _drawn(browser) == 0


def test_on_a_multi_model_endpoint_the_page_lists_the_models_and_invokes_the_chosen_one(browser, tmp_path):
    base, empty = tmp_path / "opt-ml", tmp_path / "no-baked-model"
    base.mkdir()
    empty.mkdir()
    model = copy_model(DEMO_MODEL, str(tmp_path / "models" / "shapes" / "model"))
    server = RunningServer(str(empty), {"SAGEMAKER_MULTI_MODEL": "true", "SAGEMAKER_BASE_DIR": str(base),
                                           "SSD_WEB_PAGE": "1"}).wait_ready(120)
    try:
        loaded = requests.post(server.url + "/models", json={"model_name": "shapes", "url": model}, timeout=180)
        assert loaded.status_code == 200, loaded.text
        scene = str(tmp_path / "scene.jpg")
        Image.fromarray(synthetic_scene(22, 640, 480)[0]).save(scene, quality=92)
        expected = _answer(server, scene, target="shapes")
        browser.get(server.url + "/")
        _wait(browser, lambda d: d.find_element("id", "model-choice").is_displayed())
        options = [o.text for o in browser.find_elements("css selector", "#model option")]
        assert options == ["shapes"]
        _upload(browser, scene)
        assert not browser.find_element("id", "error").is_displayed(), browser.find_element("id", "error").text
        assert _drawn(browser) == len(_above(expected, 0.5)) > 0
        assert json.loads(browser.execute_script("return JSON.stringify(answer.doc.model.name)")) == \
            expected["model"]["name"]
    finally:
        server.stop()
