"""What make bench reports: the ratios and targets computed from the measured rows, the deploy targets side by side,
and the one table it prints."""
from measure import (BODIES, CONCURRENCY, DEPLOY_CONCURRENCY, SERVER_BATCH_DELAY_MS, SERVER_BATCH_SIZE, TIMELINE_PARTS,
                     WARM_UP_WINDOW)

# what each deploy target's row is: (key, section of a model's entry, label)
DEPLOY_TARGETS = (("ei", "ei_stack", "ei stack"), ("cpu_fp32", "served", "cpu fp32"), ("cpu_int8", "int8", "cpu int8"))
# the stages the worker logs for each request (ssd_serving.timing), in request order
STAGE_METRICS = ("QueueWait", "Decode", "Preprocess", "Forward", "Postprocess", "Encode")
# a limit is one number, or one per model (the demo model's 6-25 ms forward leaves decoding, resizing and HTTP a
# larger share of a request than the default model's 300-700 ms)
TARGETS = {
    "e2e_p50_over_floor": ("<=", {"default": 1.10, "demo": 2.0},
                           "end-to-end p50 (640x480 JPEG) / floor p50 (the forward in a clean process)"),
    "speedup_vs_original_p50": (">=", 3.0, "original approach p50 / ours p50 (640x480 base64 JSON, both)"),
    "first_over_steady": ("<=", 1.2, "first request after /ping healthy / steady p50 (640x480 JPEG)"),
    "jpeg_12mp_less_decode_floor_over_640": ("<=", 1.15, "(p50 of a 12 MP JPEG - its decode at reduced scale in a "
                                                        "clean process) / p50 of a 640x480 JPEG"),
    # issue 22: a small model's request should cost little more than its forward
    "noop_outside_worker_lean_p50_ms": ("<=", 2.0, "the no-op entry point's (bench/noop) time outside its worker's "
                                                   "stages, its queue included, p50 ms, 640x480 JPEG from a lean "
                                                   "client"),
    "noop_ei_outside_worker_lean_p50_ms": ("<=", 2.0, "the no-op entry point's time outside its worker's stages on "
                                                      "the ei image's stack (MXNet 1.4.1's Python, mxnet-model-server "
                                                      "1.0.5), its queue included, p50 ms, 640x480 JPEG from a lean "
                                                      "client"),
    "outside_worker_lean_p50_ms": ("<=", {"demo": 2.0},
                                   "the server's own time outside the worker's stages, its queue included (front "
                                   "door total - worker), p50 ms, 640x480 JPEG from a lean client"),
    "decode_preprocess_p50_ms": ("<=", {"demo": 3.0}, "decode + preprocess of a 640x480 JPEG in the worker, p50 ms"),
    "int8_e2e_p50_ms": ("<=", 80.0, "int8 end-to-end p50 (640x480 JPEG), default model, ms"),
    "int8_map_drop_points": ("<=", 1.0, "demo detector mAP, fp32 - int8, points (300 held-out scenes)"),
}


# --------------------------------------------------------------------------------------- ratios

def ratio(numerator, denominator):
    if numerator is None or denominator in (None, 0):
        return None
    return round(numerator / denominator, 3)


def p50(section, body):
    try:
        return section["latency_ms"][body]["p50"]
    except (KeyError, TypeError):
        return None


def _sum(values, names):
    try:
        return round(sum(values[name] for name in names), 2)
    except (KeyError, TypeError):
        return None


def batch_gain(stages):
    """Forward time per image at batch 1 over that at batch 4 (one process, one after the other): what
    server-side batching could gain at most on this device."""
    try:
        return ratio(stages["forward_batch_1"]["p50"], stages["forward_batch_4"]["p50"] / 4.0)
    except (KeyError, TypeError):
        return None


def noop_after_idle(entry, which):
    """The no-op's time outside its worker, lean client, sent back to back (`which` 0) or after the longest idle wait
    (-1) of measure.idle_gap_probe; None when not measured."""
    gaps = entry.get("noop", {}).get("idle_gaps") or []
    if not gaps or (which == -1 and not gaps[-1]["gap_ms"]):
        return None
    return gaps[which]["timeline_ms"].get("outside_worker")


def ratios_for(entry):
    served, original = entry.get("served", {}), entry.get("original", {})
    floor_p50 = entry["floor"]["forward_ms"]["p50"]
    ours_jpeg = p50(served, "jpeg_640x480")
    values = {
        "e2e_p50_over_floor": ratio(ours_jpeg, floor_p50),
        "e2e_p50_minus_floor_ms": round(ours_jpeg - floor_p50, 1) if ours_jpeg is not None else None,
        "speedup_vs_original_p50": ratio(p50(original, "base64_json_640x480"), p50(served, "base64_json_640x480")),
        "speedup_vs_original_p50_jpeg_in": ratio(p50(original, "base64_json_640x480"), ours_jpeg),
        "first_over_steady": ratio(entry.get("start", {}).get("first_request_after_ping_ms"), ours_jpeg),
        "first_after_ready_over_steady": ratio(entry.get("start", {}).get("first_request_after_ready_ms"), ours_jpeg),
        "jpeg_12mp_over_640": ratio(p50(served, "jpeg_12mp"), ours_jpeg),
        "jpeg_12mp_less_decode_floor_over_640": ratio(
            p50(served, "jpeg_12mp") - entry["floor"]["stages_ms"]["decode_12mp_reduced"]["p50"]
            if p50(served, "jpeg_12mp") is not None and "decode_12mp_reduced" in entry["floor"].get("stages_ms", {})
            else None, ours_jpeg),
        # the client's own cost apart: the same request from a bare-socket client (measure.LeanClient)
        "e2e_lean_p50_over_floor": ratio(p50(served, "jpeg_640x480_lean"), floor_p50),
        "e2e_lean_p50_over_floor_at_worker_threads": ratio(
            p50(served, "jpeg_640x480_lean"),
            entry["floor"].get("forward_at_worker_threads_ms", entry["floor"]["forward_ms"])["p50"]),
        "outside_worker_p50_ms": served.get("timeline_ms", {}).get("outside_worker"),
        "outside_worker_lean_p50_ms": served.get("timeline_lean_client_ms", {}).get("outside_worker"),
        "noop_outside_worker_lean_p50_ms": entry.get("noop", {}).get("timeline_lean_client_ms", {}).get(
            "outside_worker"),
        # the same requests one after the other with no wait, and each after an idle wait as long as the served
        # model's worker (measure.ModelMeasurement.measure_idle_gaps): the part of the hops that is the machine's
        # waking from idle, not the code's
        "noop_outside_worker_back_to_back_p50_ms": noop_after_idle(entry, 0),
        "noop_outside_worker_after_idle_p50_ms": noop_after_idle(entry, -1),
        "ei_outside_worker_lean_p50_ms": entry.get("ei_stack", {}).get("timeline_lean_client_ms", {}).get(
            "outside_worker"),
        "noop_ei_outside_worker_lean_p50_ms": entry.get("noop_ei", {}).get("timeline_lean_client_ms", {}).get(
            "outside_worker"),
        "decode_preprocess_p50_ms": _sum(served.get("worker_stages_ms", {}), ("Decode", "Preprocess")),
        # the same stages back to back in a clean process (floor.py --stages): no idle wait before each request
        "decode_preprocess_clean_p50_ms": _sum(dict((k, v["p50"]) for k, v in entry["floor"].get(
            "stages_ms", {}).items()), ("decode_640x480", "preprocess_640x480")),
        "worker_forward_over_floor": ratio(served.get("worker_stages_ms", {}).get("Forward"), floor_p50),
        # the same with the floor at the worker's threads (the floor itself where the worker has every core)
        "worker_forward_over_floor_at_its_threads": ratio(
            served.get("worker_stages_ms", {}).get("Forward"),
            entry["floor"].get("forward_at_worker_threads_ms", entry["floor"]["forward_ms"])["p50"]),
        "batch4_forward_per_image_gain": batch_gain(entry["floor"].get("stages_ms", {})),
        "base64_12mp_over_640": ratio(p50(served, "base64_json_12mp"), p50(served, "base64_json_640x480")),
    }
    original_mxnet14 = p50(entry.get("original_mxnet14"), "base64_json_640x480")
    if original_mxnet14:  # the write-up's own stack: what its 0.8 s per image was measured on
        values["speedup_vs_original_mxnet14_p50"] = ratio(original_mxnet14, p50(served, "base64_json_640x480"))
        values["int8_speedup_vs_original_mxnet14_p50"] = ratio(original_mxnet14, p50(entry.get("int8"), "jpeg_640x480"))
    if entry.get("original_all_cores", {}).get("latency_ms"):
        values["speedup_vs_original_all_cores_p50"] = ratio(p50(entry["original_all_cores"], "base64_json_640x480"),
                                                            p50(served, "base64_json_640x480"))
    unfused = entry["floor"].get("forward_unfused_ms")
    if unfused:
        values["fusion_speedup"] = ratio(unfused["p50"], floor_p50)
    int8 = entry.get("int8") or {}
    if int8.get("floor"):
        values["int8_floor_speedup"] = ratio(floor_p50, int8["floor"]["forward_ms"]["p50"])
        values["int8_e2e_p50_ms"] = p50(int8, "jpeg_640x480")
        values["int8_e2e_speedup"] = ratio(ours_jpeg, p50(int8, "jpeg_640x480"))
    if int8.get("accuracy"):
        values["int8_map_drop_points"] = int8["accuracy"].get("drop_points")
    batched = entry.get("batched") or {}
    at_deploy = lambda section: section.get("throughput", {}).get(str(DEPLOY_CONCURRENCY), {}).get("rps")  # noqa
    if batched.get("latency_ms"):  # MMS's server-side batching against the same layout without it
        values["batched_p50_over_default"] = ratio(p50(batched, "jpeg_640x480"), ours_jpeg)
        values["batched_rps_over_default_c%d" % DEPLOY_CONCURRENCY] = ratio(at_deploy(batched), at_deploy(served))
    alternative = entry.get("alternative_config")
    if alternative and "throughput" in alternative:
        values["alternative_p50_over_default"] = ratio(p50(alternative, "jpeg_640x480"), ours_jpeg)
        best = lambda section: max(v["rps"] for v in section["throughput"].values())  # noqa: E731
        values["alternative_peak_rps_over_default"] = ratio(best(alternative), best(served))
    return values


def deploy_targets_for(entry):
    """What each deploy target costs per image on this machine, from rows measured in the same rounds:
    the ei image's stack (its CPU path: no EI accelerator here), the cpu image fp32 and int8."""
    rows = {}
    for target, section_name, label in DEPLOY_TARGETS:
        section = entry.get(section_name) or {}
        if not section.get("latency_ms"):
            rows[target] = {"label": label, "skipped": section.get("skipped", "not measured")}
            continue
        stack = section["stack"]
        rows[target] = {"label": label, "mxnet": stack["mxnet"],
                        "precision": "int8" if target == "cpu_int8" else "fp32",
                        "model_server": "%s %s" % (stack["model_server"], stack["model_server_version"]),
                        "config": section.get("config"), "model_dir": section.get("model_dir", entry.get("model_dir")),
                        "p50_ms_jpeg_640x480": p50(section, "jpeg_640x480"),
                        "rps_at_concurrency_%d" % DEPLOY_CONCURRENCY:
                            section.get("throughput", {}).get(str(DEPLOY_CONCURRENCY), {}).get("rps")}
    rps_key = "rps_at_concurrency_%d" % DEPLOY_CONCURRENCY
    ei = rows["ei"]
    ratios = {}
    for target in ("cpu_fp32", "cpu_int8"):
        # below 1 for p50 and above 1 for req/s: that cpu target is the cheaper one per image
        ratios["%s_over_ei_p50" % target] = ratio(rows[target].get("p50_ms_jpeg_640x480"),
                                                  ei.get("p50_ms_jpeg_640x480"))
        ratios["%s_over_ei_rps" % target] = ratio(rows[target].get(rps_key), ei.get(rps_key))
    return {"targets": rows, "ratios": ratios, "concurrency": DEPLOY_CONCURRENCY, "body": "jpeg_640x480",
            "note": "ei stack: our server on MXNet 1.4.1 (upstream mxnet 1.4.1 standing in for amazonei_mxnet) and "
                    "mxnet-model-server 1.0.5, as the ei image serves; no EI accelerator can be attached here, so it "
                    "runs the ei image's CPU path. The default model's EI-stack export is made by MXNet 1.4.1 "
                    "(GluonCV 0.5) with its own random weights: MXNet 1.4.1 cannot read GluonCV 0.10's export."}


def targets_for(key, values):
    checked = {}
    for name, (op, limit, meaning) in TARGETS.items():
        if name == "int8_e2e_p50_ms" and key != "default":
            continue
        if name == "int8_map_drop_points" and key != "demo":
            continue
        if isinstance(limit, dict):
            if key not in limit:
                continue
            limit = limit[key]
        value = values.get(name)
        met = None if value is None else (value <= limit if op == "<=" else value >= limit)
        checked[name] = {"value": value, "target": "%s %g" % (op, limit), "met": met, "meaning": meaning}
    return checked


# ---------------------------------------------------------------------------------------- table

def fmt(value, unit=""):
    if value is None:
        return "-"
    if isinstance(value, float):
        return ("%.2f" % value if abs(value) < 10 else "%.1f" % value) + unit
    return str(value) + unit


def idle_gap_text(gap):
    timeline = gap["timeline_ms"]
    return "%s: %s / %s / %s; %s" % (fmt(gap["gap_ms"]), fmt(timeline["outside_worker"]), fmt(timeline["to_worker"]),
                                     fmt(timeline["back_from_worker"]), fmt(gap["wake_round_trip_us"]))


def lean_timeline_text(section, timeline_parts):
    timeline = section["timeline_lean_client_ms"]
    return "%s / %s / %s" % (fmt(p50(section, "jpeg_640x480_lean")), fmt(timeline["outside_worker"]),
                             " / ".join(fmt(timeline[p]) for p in timeline_parts))


def lat(section, body):
    try:
        entry = section["latency_ms"][body]
        return "%s / %s / %s" % (fmt(entry["p50"]), fmt(entry["p90"]), fmt(entry["p99"]))
    except (KeyError, TypeError):
        return "-"


def warm_up_text(entry):
    """The served server's warm-up, and the no-op's where there is one: 'served 1000: 12.1 / 10.3 ms; ...'."""
    return "; ".join("%s %d: %s / %s" % (label, entry["warm_up"][name]["requests"],
                                         fmt(entry["warm_up"][name]["first_p50_ms"]),
                                         fmt(entry["warm_up"][name]["last_p50_ms"]))
                     for name, label in (("served", "served"), ("noop", "no-op")) if name in entry["warm_up"])


def table(report):
    keys = [k for k in ("default", "demo") if k in report["models"]]
    entries = [report["models"][k] for k in keys]
    rows = [("", [e["name"] + (" (random weights, trained-like scores)" if e.get("trained_like") else
                               " (random weights)" if e.get("random_weights") else "") for e in entries])]

    def add(label, getter):
        values = []
        for entry in entries:
            try:
                values.append(getter(entry))
            except (KeyError, TypeError, ValueError):
                values.append("-")
        rows.append((label, values))

    add("floor: graph forward, batch 1, p50 ms", lambda e: "%s (%s, %s)" % (
        fmt(e["floor"]["forward_ms"]["p50"]), e["floor"]["device"], e["floor"]["precision"]))
    add("  exported graph unfused, p50 ms", lambda e: fmt(e["floor"]["forward_unfused_ms"]["p50"]))
    add("  at the served workers' threads, p50 ms", lambda e: "%s (%d thread(s))" % (
        fmt(e["floor"]["forward_at_worker_threads_ms"]["p50"]), e["floor"]["forward_at_worker_threads_ms"]["threads"])
        if "forward_at_worker_threads_ms" in e["floor"] else "the floor (all cores)")
    add("  decode 640x480 / 12 MP reduced / 12 MP full, ms", lambda e: "%s / %s / %s" % tuple(
        fmt(e["floor"]["stages_ms"][k]["p50"]) for k in ("decode_640x480", "decode_12mp_reduced", "decode_12mp_full")))
    add("  forward at batch 1 / batch 4 per image (one process, for server-side batching), ms",
        lambda e: "%s / %s" % (fmt(e["floor"]["stages_ms"]["forward_batch_1"]["p50"]),
                               fmt(e["floor"]["stages_ms"]["forward_batch_4"]["p50"] / 4.0)))
    add("served config", lambda e: e["served"]["config"])
    add("  in the worker, p50 ms (640x480 JPEG): queue / decode / preprocess / forward / postprocess / encode",
        lambda e: " / ".join(fmt(e["served"]["worker_stages_ms"][k]) for k in STAGE_METRICS))
    for body in BODIES:
        add("/invocations %s p50/p90/p99 ms" % body, lambda e, b=body: lat(e["served"], b))
    timeline_parts = [p for p, _ in TIMELINE_PARTS]
    add("  one request's timeline, p50 ms (640x480): " + " / ".join(timeline_parts),
        lambda e: " / ".join(fmt(e["served"]["timeline_ms"][p]) for p in timeline_parts))
    add("  from a lean client (bench/measure.py LeanClient): p50 ms / outside the worker / timeline",
        lambda e: lean_timeline_text(e["served"], timeline_parts))
    add("no-op entry point (same server, answers at once): /invocations p50/p90/p99 ms",
        lambda e: lat(e["noop"], "jpeg_640x480"))
    add("  its timeline, p50 ms: " + " / ".join(timeline_parts),
        lambda e: " / ".join(fmt(e["noop"]["timeline_ms"][p]) for p in timeline_parts))
    add("  from a lean client (bench/measure.py LeanClient): p50 ms / outside the worker / timeline",
        lambda e: lean_timeline_text(e["noop"], timeline_parts))
    add("  after an idle wait, lean client: wait ms: outside the worker / to the worker / back ms; a wake-up us",
        lambda e: "; ".join(idle_gap_text(gap) for gap in e["noop"]["idle_gaps"]))
    for section, label in (("ei_stack", "ei stack (MXNet 1.4.1, mxnet-model-server 1.0.5), lean client"),
                           ("noop_ei", "  its no-op entry point, lean client")):
        add(label + ": p50 ms / outside the worker / timeline",
            lambda e, s=section: lean_timeline_text(e[s], timeline_parts) if "timeline_lean_client_ms" in e.get(s, {})
            else e.get(s, {}).get("skipped", "-"))
    add("start: /ping healthy / model loaded, s after launch", lambda e: "%s / %s" % (
        fmt(e["start"]["ping_healthy_s"]), fmt(e["start"]["model_ready_s"])))
    add("first request sent when /ping turns healthy, ms", lambda e: fmt(e["start"]["first_request_after_ping_ms"]))
    add("first request once the model is loaded (fresh server), ms", lambda e: fmt(e["start"]["first_request_after_ready_ms"]))
    add("warm-up before the measured requests (unmeasured, lean client): requests, p50 of the first / last %d, ms"
        % WARM_UP_WINDOW, warm_up_text)
    add("throughput req/s at concurrency 1/2/4/8", lambda e: " / ".join(
        fmt(e["served"]["throughput"][str(c)]["rps"]) for c in CONCURRENCY))
    add("RSS per worker, MB", lambda e: ", ".join(fmt(v) for v in e["served"]["rss_mb_per_worker"]))
    add("other config", lambda e: e["alternative_config"]["config"])
    add("  /invocations jpeg_640x480 p50/p90/p99 ms", lambda e: lat(e["alternative_config"], "jpeg_640x480"))
    add("  throughput req/s at concurrency 1/2/4/8", lambda e: " / ".join(
        fmt(e["alternative_config"]["throughput"][str(c)]["rps"]) for c in CONCURRENCY))
    add("  RSS per worker, MB", lambda e: ", ".join(fmt(v) for v in e["alternative_config"]["rss_mb_per_worker"]))
    add("server-side batching (MMS batch_size %d, max_batch_delay %d ms), default layout" % (
        SERVER_BATCH_SIZE, SERVER_BATCH_DELAY_MS), lambda e: e["batched"]["config"])
    add("  /invocations jpeg_640x480 p50/p90/p99 ms", lambda e: lat(e["batched"], "jpeg_640x480"))
    add("  throughput req/s at concurrency %d; requests per worker call, mean / max" % DEPLOY_CONCURRENCY,
        lambda e: "%s; %s / %s" % (fmt(e["batched"]["throughput"][str(DEPLOY_CONCURRENCY)]["rps"]),
                                   fmt(e["batched"]["requests_per_worker_call"]["mean"]),
                                   e["batched"]["requests_per_worker_call"]["max"]))
    add("int8: floor p50 ms", lambda e: fmt(e["int8"]["floor"]["forward_ms"]["p50"]) if e["int8"].get("floor")
        else e["int8"].get("skipped", "-"))
    add("int8: /invocations jpeg_640x480 p50/p90/p99 ms", lambda e: lat(e["int8"], "jpeg_640x480"))
    add("  in the worker, p50 ms: queue / decode / preprocess / forward / postprocess / encode",
        lambda e: " / ".join(fmt(e["int8"]["worker_stages_ms"][k]) for k in STAGE_METRICS))
    add("int8: mAP fp32 -> int8 (held-out scenes)", lambda e: "%.3f -> %.3f" % (
        e["int8"]["accuracy"]["map_fp32"], e["int8"]["accuracy"]["map_int8"]))
    add("cold start: docker run -> /ping healthy / first answer, s", lambda e: "%s / %s" % (
        fmt(e["cold_start"]["docker_run_to_ping_s"]), fmt(e["cold_start"]["docker_run_to_first_answer_s"]))
        if "docker_run_to_ping_s" in e["cold_start"] else e["cold_start"].get("skipped", "-"))
    add("original (%s) base64_json_640x480 p50/p90/p99 ms" % (entries[0].get("original", {}).get("config") or ""),
        lambda e: lat(e["original"], "base64_json_640x480"))
    add("  original base64_json_12mp p50/p90/p99 ms", lambda e: lat(e["original"], "base64_json_12mp"))
    add("  original with 1 worker x all cores, 640 p50 ms", lambda e: fmt(p50(e["original_all_cores"], "base64_json_640x480")))
    add("  original RSS per worker, MB", lambda e: ", ".join(fmt(v) for v in e["original"]["rss_mb_per_worker"]))
    add("  original on MXNet 1.4.1 (GluonCV 0.5, mxnet-model-server 1.0.5), base64_json_640x480 p50/p90/p99 ms",
        lambda e: lat(e["original_mxnet14"], "base64_json_640x480") if "latency_ms" in e.get("original_mxnet14", {})
        else e.get("original_mxnet14", {}).get("skipped", "-"))
    deploy_rows(add)
    rows.append(("ratios", ["" for _ in entries]))
    names = ["e2e_p50_over_floor", "e2e_p50_minus_floor_ms", "worker_forward_over_floor",
             "worker_forward_over_floor_at_its_threads", "speedup_vs_original_p50",
             "speedup_vs_original_p50_jpeg_in", "speedup_vs_original_all_cores_p50", "speedup_vs_original_mxnet14_p50",
             "int8_speedup_vs_original_mxnet14_p50", "first_over_steady", "first_after_ready_over_steady",
             "e2e_lean_p50_over_floor", "e2e_lean_p50_over_floor_at_worker_threads", "outside_worker_p50_ms",
             "outside_worker_lean_p50_ms", "decode_preprocess_p50_ms", "decode_preprocess_clean_p50_ms",
             "noop_outside_worker_lean_p50_ms", "noop_outside_worker_back_to_back_p50_ms",
             "noop_outside_worker_after_idle_p50_ms", "ei_outside_worker_lean_p50_ms",
             "noop_ei_outside_worker_lean_p50_ms",
             "jpeg_12mp_over_640", "jpeg_12mp_less_decode_floor_over_640", "base64_12mp_over_640", "fusion_speedup", "batch4_forward_per_image_gain",
             "alternative_p50_over_default", "alternative_peak_rps_over_default", "batched_p50_over_default",
             "batched_rps_over_default_c%d" % DEPLOY_CONCURRENCY, "int8_floor_speedup",
             "int8_e2e_speedup", "int8_e2e_p50_ms", "int8_map_drop_points"]
    for name in names:
        values = []
        for entry in entries:
            value = entry["ratios"].get(name)
            target = entry["targets"].get(name)
            text = fmt(value)
            if target and target["met"] is not None:
                text += " [%s %s: %s]" % ("target", target["target"], "met" if target["met"] else "MISSED")
            values.append(text)
        if any(v != "-" for v in values):
            rows.append(("  " + name, values))
    width = max(len(label) for label, _ in rows)
    columns = [max(len(str(row[1][i])) for row in rows) for i in range(len(entries))]
    lines = []
    for label, values in rows:
        lines.append("| %s | %s |" % (label.ljust(width), " | ".join(str(v).ljust(columns[i]) for i, v in enumerate(values))))
        if label == "":
            lines.append("|%s|%s|" % ("-" * (width + 2), "|".join("-" * (c + 2) for c in columns)))
    return "\n".join(lines)


def deploy_rows(add):
    """The deploy targets side by side, each value "ei stack / cpu fp32 / cpu int8"."""
    def each(e, getter):
        targets = e["deploy_targets"]["targets"]
        return " / ".join(getter(targets[target]) if "skipped" not in targets[target] else "-"
                          for target, _, _ in DEPLOY_TARGETS)

    def ratios(e, target):
        values = e["deploy_targets"]["ratios"]
        return "%s, %s" % (fmt(values["%s_over_ei_p50" % target]), fmt(values["%s_over_ei_rps" % target]))

    add("deploy targets: ei stack (CPU path, no EI here) / cpu fp32 / cpu int8", lambda e: "MXNet " + each(
        e, lambda t: t["mxnet"]))
    add("  per image p50 (640x480 JPEG), ms", lambda e: each(e, lambda t: fmt(t["p50_ms_jpeg_640x480"])))
    add("  throughput at concurrency %d, req/s" % DEPLOY_CONCURRENCY, lambda e: each(
        e, lambda t: fmt(t["rps_at_concurrency_%d" % DEPLOY_CONCURRENCY])))
    add("  cpu fp32 / ei stack: p50, req/s", lambda e: ratios(e, "cpu_fp32"))
    add("  cpu int8 / ei stack: p50, req/s", lambda e: ratios(e, "cpu_int8"))
