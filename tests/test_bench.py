"""`make bench` in its smoke mode, on the demo model only: it runs and writes every field (no timing is checked),
the deploy targets side by side included (the ei stack runs from the MXNet 1.4.1 venv that make test sets up)."""
import json
import os
import subprocess
import sys

import pytest

from helpers import ROOT

pytestmark = pytest.mark.skipif(
    tuple(int(p) for p in __import__("mxnet").__version__.split(".")[:2]) < (1, 9),
    reason="the benchmark runs on the MXNet 1.9.1 environment (make bench)")


def test_quick_bench_writes_the_table_and_json(tmp_path):
    out = str(tmp_path / "bench.json")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "bench.py"), "--quick", "--models", "demo",
                           "--docker", "skip", "--out", out], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
    assert "e2e_p50_over_floor" in done.stdout and "first request sent when /ping turns healthy" in done.stdout
    report = json.load(open(out))
    assert report["quick"] is True and report["host"]["cpus"] >= 1 and report["table"] in done.stdout
    demo = report["models"]["demo"]
    assert demo["floor"]["forward_ms"]["p50"] > 0 and demo["floor"]["stages_ms"]["decode_12mp_reduced"]["p50"] > 0
    # what server-side batching could gain: the forward at batch 4 against batch 1, per image (measured, so only
    # that both were measured and the ratio is theirs: which is faster is the machine's business)
    batch_1, batch_4 = (demo["floor"]["stages_ms"]["forward_batch_%d" % n]["p50"] for n in (1, 4))
    assert batch_1 > 0 and batch_4 > 0 and "forward at batch 1 / batch 4" in done.stdout
    assert demo["ratios"]["batch4_forward_per_image_gain"] > 0
    for body in ("jpeg_640x480", "base64_json_640x480", "jpeg_12mp", "base64_json_12mp"):
        assert demo["served"]["latency_ms"][body]["p99"] >= demo["served"]["latency_ms"][body]["p50"] > 0
    assert set(demo["served"]["throughput"]) == {"1", "2", "4", "8"}
    assert demo["served"]["rss_mb_per_worker"] and demo["start"]["first_request_after_ping_ms"] > 0
    assert "skipped" in demo["alternative_config"] and "skipped" in demo["original_all_cores"]  # full runs only
    assert demo["original"]["latency_ms"]["base64_json_640x480"]["p50"] > 0
    assert "skipped" in demo["cold_start"]
    # every server got its unmeasured warm-up before the measured requests, each answered 200 (warm_up raises
    # otherwise), and the table shows the served and the no-op server's
    assert set(demo["warm_up"]) >= {"served", "noop", "batched", "original"}, demo["warm_up"]
    for name, warmed in demo["warm_up"].items():
        assert 0 < warmed["requests"] <= 20 and warmed["first_p50_ms"] > 0 and warmed["last_p50_ms"] > 0, name
    assert "warm-up before the measured requests" in done.stdout and "no-op %d: " % demo["warm_up"]["noop"]["requests"] \
        in done.stdout
    if demo["served"]["config"].endswith("x 1 thread(s)") and report["host"]["cpus"] > 1:
        # the floor at the workers' own thread count too, and the worker's forward against it
        assert demo["floor"]["forward_at_worker_threads_ms"]["threads"] == 1
        assert demo["ratios"]["worker_forward_over_floor_at_its_threads"] > 0
    # one request's timeline from its Server-Timing, for the demo model and for a no-op entry point (the serving
    # path's own cost): the parts add up to what the client measured, and the no-op's worker did no forward
    for section in ("served", "noop"):
        for client in ("timeline_ms", "timeline_lean_client_ms"):  # from `requests` and from a bare socket
            timeline = demo[section][client]
            parts = ("client_and_network", "front_read", "to_worker", "worker", "back_from_worker", "front_write")
            assert timeline["requests"] > 0 and sum(timeline[p] for p in parts) > 0, timeline
            assert 0 < timeline["outside_worker"] < timeline["client"], timeline
        assert demo[section]["latency_ms"]["jpeg_640x480_lean"]["p50"] > 0
        assert "one request's timeline" in done.stdout and "no-op entry point" in done.stdout
        assert "from a lean client" in done.stdout
    assert demo["noop"]["latency_ms"]["jpeg_640x480"]["p50"] > 0
    # the no-op's requests back to back, then each after as long a wait as the served model's worker took, with a
    # bare process wake-up after the same waits: the idle machine's part of the hops, measured apart
    gaps = demo["noop"]["idle_gaps"]
    assert [gap["gap_ms"] for gap in gaps] == [0.0, round(demo["served"]["timeline_lean_client_ms"]["worker"], 1)]
    for gap in gaps:
        assert gap["timeline_ms"]["requests"] == 20 and 0 < gap["timeline_ms"]["outside_worker"], gap
        assert gap["wake_round_trip_us"] > 0
    assert "after an idle wait, lean client" in done.stdout
    # MMS's server-side batching, end to end: the requests at concurrency 8 reached the workers together
    batched = demo["batched"]
    assert batched["server_batch_size"] == 4 and batched["latency_ms"]["jpeg_640x480"]["p50"] > 0
    # how many requests a worker call got depends on how fast they arrive; tests/test_server_batching.py shows
    # requests sent together reach the worker together
    assert batched["throughput"]["8"]["rps"] > 0 and batched["requests_per_worker_call"]["max"] >= 1
    assert demo["ratios"]["batched_rps_over_default_c8"] > 0 and "server-side batching (MMS batch_size 4" in done.stdout
    if demo["floor"]["device"] == "cpu":
        assert demo["int8"]["floor"]["precision"] == "int8" and demo["int8"]["accuracy"]["drop_points"] is not None
    assert demo["ratios"]["noop_outside_worker_back_to_back_p50_ms"] == gaps[0]["timeline_ms"]["outside_worker"]
    assert demo["ratios"]["noop_outside_worker_after_idle_p50_ms"] == gaps[1]["timeline_ms"]["outside_worker"]
    for name in ("e2e_p50_over_floor", "speedup_vs_original_p50", "first_over_steady",
                 "jpeg_12mp_less_decode_floor_over_640", "outside_worker_lean_p50_ms", "noop_outside_worker_lean_p50_ms",
                 "decode_preprocess_p50_ms"):
        # whether a target is met is this machine's; that the report says so truly is the bench's
        target = demo["targets"][name]
        op, limit = target["target"].split()
        assert demo["ratios"][name] > 0 and target["value"] == demo["ratios"][name]
        assert target["met"] is (target["value"] <= float(limit) if op == "<=" else target["value"] >= float(limit))
    for section in ("served", "int8", "original"):  # every row says which MXNet it ran on
        assert demo[section]["stack"]["mxnet"].startswith("1.9")
    if demo["floor"]["device"] == "cpu":
        assert_deploy_targets(demo, done.stdout)


def assert_deploy_targets(demo, stdout):
    """The deploy targets side by side: the ei stack (MXNet 1.4.1, mxnet-model-server 1.0.5), cpu fp32 and int8."""
    if "skipped" in demo["ei_stack"]:  # only where there is no MXNet 1.4.1 environment (make test makes both)
        assert not os.path.isfile(os.path.join(ROOT, ".venv", "mx14", "bin", "python")), demo["ei_stack"]
        return
    assert "deploy targets: ei stack" in stdout and "throughput at concurrency 8, req/s" in stdout
    ei = demo["ei_stack"]
    assert ei["stack"]["mxnet"] == "1.4.1" and ei["stack"]["model_server"] == "mxnet-model-server"
    assert os.path.dirname(ei["stack"]["worker_python"]) == os.path.dirname(ei["stack"]["python"])
    assert ei["rss_mb_per_worker"]
    # one request laid out on the ei stack too, for the demo model and for the no-op entry point on that stack
    noop_ei = demo["noop_ei"]
    assert noop_ei["stack"]["mxnet"] == "1.4.1" and noop_ei["stack"]["model_server"] == "mxnet-model-server"
    for timeline in (ei["timeline_ms"], ei["timeline_lean_client_ms"], noop_ei["timeline_lean_client_ms"]):
        assert timeline["requests"] > 0 and 0 < timeline["outside_worker"] < timeline["client"], timeline
    assert demo["ratios"]["ei_outside_worker_lean_p50_ms"] == ei["timeline_lean_client_ms"]["outside_worker"]
    target = demo["targets"]["noop_ei_outside_worker_lean_p50_ms"]
    assert target["value"] == noop_ei["timeline_lean_client_ms"]["outside_worker"]
    assert target["met"] is (target["value"] <= 2.0)
    assert "ei stack (MXNet 1.4.1, mxnet-model-server 1.0.5), lean client" in stdout
    targets = demo["deploy_targets"]["targets"]
    assert [targets[t]["mxnet"][:3] for t in ("ei", "cpu_fp32", "cpu_int8")] == ["1.4", "1.9", "1.9"]
    for target in targets.values():
        assert target["p50_ms_jpeg_640x480"] > 0 and target["rps_at_concurrency_8"] > 0
    assert all(value > 0 for value in demo["deploy_targets"]["ratios"].values())
    assert len(demo["deploy_targets"]["ratios"]) == 4
    # the original approach also on the write-up's own stack, beside ours
    original = demo["original_mxnet14"]
    assert original["stack"]["mxnet"] == "1.4.1" and original["stack"]["model_server"] == "mxnet-model-server"
    assert original["latency_ms"]["base64_json_640x480"]["p50"] > 0 and original["rss_mb_per_worker"]
    assert demo["ratios"]["speedup_vs_original_mxnet14_p50"] > 0 and "original on MXNet 1.4.1" in stdout


def test_bench_compare_serves_the_base_commit_beside_this_tree_and_prints_the_ratio(tmp_path):
    """`make bench-compare`, short: HEAD's exported code against this working tree, on the demo model."""
    out = str(tmp_path / "compare.json")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "compare.py"), "--base", "HEAD",
                           "--requests", "4", "--warm-up", "2", "--gap-ms", "0", "--out", out],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]
    report = json.load(open(out))
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], stdout=subprocess.PIPE,
                          universal_newlines=True, check=True).stdout.strip()
    assert report["code"]["base"] == head[:12]
    for side in ("base", "working tree"):
        assert report["latency"][side]["n"] == 4 and report["latency"][side]["p50"] > 0
    # the base side served from its export, a scratch folder the run removed; the other from this checkout
    base_package = os.path.dirname(report["imports"]["base"])
    assert not base_package.startswith(ROOT) and not os.path.exists(base_package)
    assert report["imports"]["working tree"].startswith(os.path.join(ROOT, "container"))
    assert "working tree / base p50: " in done.stdout
    # each side's server log says it served the demo model, and both stopped
    for side in ("base", "working-tree"):
        log = open(str(tmp_path / ("compare-%s.log" % side))).read()
        assert "ssd_256_demo_shapes" in log and "stopped" in log
