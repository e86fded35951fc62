"""The docs' measured figures: bench and soak results taken into docs/results, rendered into marked blocks, checked."""
from __future__ import absolute_import, division, print_function

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys

from ssd_serving.precision import CPUINFO, INT8_DOT_PRODUCT_FLAGS, cpu_flags, int8_instructions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join("docs", "results")
SOURCES = {"bench": "bench.json", "soak": "soak.json", "hosting": "hosting.json", "multimodel": "multimodel.json",
           "hops": "hops.json"}
TAKE_HINT = {
    "bench": "make bench, then make docs-results (or python -m ssd_tools.figures --take-bench build/bench/latest.json)",
    "soak": "make soak-container (or make soak), then make docs-results (or python -m ssd_tools.figures --take-soak "
            "build/soak-container-report.json)",
    "hosting": "make bench-hosting, then make docs-results (or python -m ssd_tools.figures --take-hosting "
               "build/bench/hosting.json)",
    "multimodel": "make bench-multimodel, then make docs-results (or python -m ssd_tools.figures --take-multimodel "
                  "build/bench/multimodel.json)",
    "hops": "make bench-hops, then make docs-results (or python -m ssd_tools.figures --take-hops "
            "build/bench/hops.json)",
}
# The version of make bench's results this renderer reads: make bench writes it (bench/report.py), and results of
# another are refused rather than rendered into the wrong places.
BENCH_SCHEMA = 2  # 2: the ei stack's timelines and the no-op's idle waits (make bench since issue 22)
# The instructions that decide whether int8 pays on a CPU, as a run records its host (host_facts, make bench).
CPU_FLAGS = ("avx2", "avx512f") + INT8_DOT_PRODUCT_FLAGS

# A generated region: <!-- figures:NAME -->...<!-- /figures:NAME -->, a whole block or a few words in a sentence.
MARKER = re.compile(r"<!-- figures:(?P<name>[a-z0-9-]+) -->(?P<body>.*?)<!-- /figures:(?P=name) -->", re.S)
OPENING = re.compile(r"<!-- figures:([a-z0-9-]+) -->")


class FiguresError(Exception):
    """Results or markers that cannot be rendered; the message says which and what to do."""


# --- results

def check_bench_schema(data, path):
    """FiguresError unless `data`, make bench's results read from `path`, are of the schema this renderer reads."""
    found = data.get("schema") if isinstance(data, dict) else None
    if found != BENCH_SCHEMA:
        raise FiguresError("%s holds make bench results of schema %s, and this version reads schema %d: run this "
                           "version's %s" % (path, "(none)" if found is None else found, BENCH_SCHEMA,
                                             TAKE_HINT["bench"]))


class Results(object):
    """docs/results/*.json, read when a block first needs them."""

    def __init__(self, root):
        self.root = root
        self._loaded = {}

    def source(self, name):
        if name not in self._loaded:
            path = os.path.join(self.root, RESULTS, SOURCES[name])
            if not os.path.isfile(path):
                raise FiguresError("%s is missing: %s" % (os.path.relpath(path, self.root), TAKE_HINT[name]))
            with open(path) as stream:
                data = json.load(stream)
            if name == "bench":
                check_bench_schema(data, os.path.relpath(path, self.root))
            self._loaded[name] = data
        return self._loaded[name]

    def get(self, name, dotted):
        value = self.source(name)
        for key in dotted.split("."):
            if not isinstance(value, dict) or key not in value:
                raise FiguresError("%s has no %s" % (os.path.join(RESULTS, SOURCES[name]), dotted))
            value = value[key]
        return value

    def bench(self, dotted):
        return self.get("bench", dotted)

    def soak(self, dotted):
        return self.get("soak", dotted)


# --- number formats, one per kind of figure, so a figure reads the same wherever it appears

def ms(value):
    return "%.0f" % value if value >= 100 else "%.1f" % value


def times(value):
    return "%.2fx" % value


def rate(value):
    return "%.1f" % value if value >= 10 else "%.2f" % value


def seconds(value):
    return "%.2f s" % value if value >= 1 else "%.3f s" % value


def points(value):
    return "%.2f point%s" % (value, "" if value == 1 else "s")


def mean_ap(value):
    return "%.3f" % value


def percent(value):
    return "%+.1f%%" % (100 * value)


def minutes(secs):
    return "%d min" % round(secs / 60.0)


def _host_words(host):
    flags = host.get("cpu_flags") or []
    words = "%s, %s vCPUs, %s" % (host.get("cpu_model") or "an unknown CPU", host.get("cpus", "?"),
                                  ", ".join(flags) or "no AVX2")
    if not int8_instructions(flags):
        words += ", without VNNI or AMX"
    if "gpus" in host:
        words += ", %s" % ("no GPU" if not host["gpus"] else "%s GPU(s)" % host["gpus"])
    return words


def _commit_words(source):
    commit = source.get("git_commit") or (source.get("host") or {}).get("git_commit") or "an unknown commit"
    dirty = source.get("git_dirty", (source.get("host") or {}).get("git_dirty"))
    return "commit %s%s" % (commit, " with uncommitted changes" if dirty else "")


# --- the blocks: name -> (whole block?, function of the results)

def bench_run(r):
    d = r.source("bench")
    host = d.get("host", {})
    served = host.get("mxnet", "?") + (" with oneDNN" if host.get("onednn") else "")
    others = sorted(set(s.get("mxnet") for s in d.get("stacks", {}).values()) - set([host.get("mxnet"), None]))
    started = d.get("started", "?").replace("T", " ")[:16]
    return ("`make bench` on %s, started %s, %s%s: %s; MXNet %s; load average %.2f at the start, %.2f at the end"
            % (_commit_words(host), started, minutes(r.bench("duration_s")),
               " (QUICK: a smoke run, not for comparison)" if d.get("quick") else "", _host_words(host),
               " and ".join([served] + others), r.bench("load_before")[0], r.bench("load_after")[0])
            + _machine_state_words(d)
            + ("; its ratios, targets and table computed again by commit %s from the same measurements "
               "(bench.py --recompute)" % d["recomputed_by"] if d.get("recomputed_by") else ""))


def _machine_state_words(d):
    """The slowest process wake-up the run measured (after its longest idle wait): how warm the host kept this
    machine, which moves the small model's figures between runs by as much as 2x (docs/performance.md)."""
    gaps = d.get("models", {}).get("demo", {}).get("noop", {}).get("idle_gaps") or []
    if not gaps:
        return ""
    return "; a process wake-up after a %s ms wait took %s us (the machine's state)" % (
        ms(gaps[-1]["gap_ms"]), ms(gaps[-1]["wake_round_trip_us"]))


def bench_duration(r):
    return minutes(r.bench("duration_s"))


def bench_table(r):
    return "```\n%s\n```" % r.bench("table").rstrip("\n")


def deploy_targets(r):
    default, demo = r.bench("models.default.name"), r.bench("models.demo.name")
    rows = ["| target (stack) | %s: p50 ms / req/s at concurrency %s | %s: p50 ms / req/s |"
            % (default, r.bench("models.default.deploy_targets.concurrency"), demo),
            "| --- | --- | --- |"]
    d_targets = r.bench("models.default.deploy_targets.targets")
    m_targets = r.bench("models.demo.deploy_targets.targets")
    for key in ("ei", "cpu_fp32", "cpu_int8"):
        t, m = d_targets[key], m_targets[key]
        cell = "%s / %s" % (ms(t["p50_ms_jpeg_640x480"]), rate(t["rps_at_concurrency_8"]))
        if key != "ei":
            ei = d_targets["ei"]
            cell += " (%s faster, %s the throughput)" % (
                times(ei["p50_ms_jpeg_640x480"] / t["p50_ms_jpeg_640x480"]),
                times(t["rps_at_concurrency_8"] / ei["rps_at_concurrency_8"]))
        rows.append("| %s (MXNet %s, %s) | %s | %s / %s |" % (
            t["label"], t["mxnet"], t["precision"], cell, ms(m["p50_ms_jpeg_640x480"]),
            rate(m["rps_at_concurrency_8"])))
    return "\n".join(rows)


def int8_speed(r):
    ratios = r.bench("models.default.ratios")
    return "%s in the forward pass and %s end to end" % (times(ratios["int8_floor_speedup"]),
                                                         times(ratios["int8_e2e_speedup"]))


def int8_host(r):
    return _host_words(r.bench("host"))


def _target_detail(r, name, model):
    prefix = "models.%s." % model
    if name == "e2e_p50_over_floor":
        detail = "%s ms against a %s ms forward" % (ms(r.bench(prefix + "served.latency_ms.jpeg_640x480.p50")),
                                                    ms(r.bench(prefix + "floor.forward_ms.p50")))
        lean = r.source("bench")["models"][model]["ratios"].get("e2e_lean_p50_over_floor")
        if lean is not None:
            detail += "; from a lean client %s, and %s against the floor at the worker's threads" % (
                times(lean), times(r.bench(prefix + "ratios.e2e_lean_p50_over_floor_at_worker_threads")))
        return detail
    if name == "jpeg_12mp_less_decode_floor_over_640":
        stages = r.bench(prefix + "floor.stages_ms")
        return "12 MP %s ms, of which decoding it at reduced scale %s ms (in full: %s ms); 640x480 %s ms" % (
            ms(r.bench(prefix + "served.latency_ms.jpeg_12mp.p50")), ms(stages["decode_12mp_reduced"]["p50"]),
            ms(stages["decode_12mp_full"]["p50"]), ms(r.bench(prefix + "served.latency_ms.jpeg_640x480.p50")))
    if name == "decode_preprocess_p50_ms":
        stages = r.bench(prefix + "served.worker_stages_ms")
        return "decode %s + preprocess %s ms in the worker; %s ms in a clean process" % (
            ms(stages["Decode"]), ms(stages["Preprocess"]), ms(r.bench(prefix + "ratios.decode_preprocess_clean_p50_ms")))
    if name == "outside_worker_lean_p50_ms":
        return "from requests' client: %s ms" % ms(r.bench(prefix + "ratios.outside_worker_p50_ms"))
    if name == "noop_outside_worker_lean_p50_ms":
        text = "end to end from the lean client %s ms" % ms(r.bench(prefix + "noop.latency_ms.jpeg_640x480_lean.p50"))
        ratios = r.bench(prefix + "ratios")
        alone = (ratios.get("noop_outside_worker_back_to_back_p50_ms"),
                 ratios.get("noop_outside_worker_after_idle_p50_ms"))
        if None in alone:  # a run without the idle-gap probe
            return text
        return text + "; alone, not interleaved: %s ms back to back, %s ms after an idle wait" % tuple(map(ms, alone))
    if name == "speedup_vs_original_p50":
        return "against one single-threaded worker per core; %s against one worker on all cores; %s against it on " \
            "MXNet 1.4.1" % (times(r.bench(prefix + "ratios.speedup_vs_original_all_cores_p50")),
                             times(r.bench(prefix + "ratios.speedup_vs_original_mxnet14_p50")))
    if name == "int8_e2e_p50_ms":
        return "fp32: %s ms" % ms(r.bench(prefix + "served.latency_ms.jpeg_640x480.p50"))
    if name == "int8_map_drop_points":
        accuracy = r.bench(prefix + "int8.accuracy")
        return "mAP %s -> %s" % (mean_ap(accuracy["map_fp32"]), mean_ap(accuracy["map_int8"]))
    return ""


def targets(r):
    """One row per target and model it is checked on (a target may have a limit per model)."""
    rows = ["| target | model | measured | |", "| --- | --- | --- | --- |"]
    names = r.bench("targets")
    no_int8 = not int8_instructions(r.bench("host").get("cpu_flags") or [])
    for name in sorted(names):
        meaning = names[name][2]
        for model in ("default", "demo"):
            found = r.source("bench")["models"].get(model, {}).get("targets", {}).get(name)
            if not found or found["value"] is None:  # e.g. the no-op's figure, measured beside the demo model only
                continue
            value = found["value"]
            shown = ms(value) + " ms" if name.endswith("_ms") else (
                points(value) if name.endswith("_points") else times(value))
            detail = _target_detail(r, name, model)
            verdict = "met" if found["met"] else "not met"
            if not found["met"] and name.startswith("int8_") and no_int8:
                verdict += " (no VNNI on this CPU)"
            rows.append("| %s %s | %s | %s%s | %s |" % (meaning, found["target"], r.bench("models.%s.name" % model),
                                                        shown, " (%s)" % detail if detail else "", verdict))
    return "\n".join(rows)


def forward_share(r):
    share = (r.bench("models.default.floor.forward_ms.p50")
             / r.bench("models.default.served.latency_ms.jpeg_640x480.p50"))
    return "%.0f%%" % (100 * min(share, 1.0))


def fusion_speedup(r):
    return times(r.bench("models.default.ratios.fusion_speedup"))


def original_all_cores(r):
    return times(r.bench("models.default.ratios.speedup_vs_original_all_cores_p50"))


def original_mxnet14(r):
    """The original approach on the write-up's own stack (MXNet 1.4.1) against ours, per model."""
    parts = []
    for model in ("default", "demo"):
        m = r.bench("models." + model)
        parts.append("%s: %s ms, against which ours answers %s faster (fp32) and %s (int8)" % (
            m["name"], ms(m["original_mxnet14"]["latency_ms"]["base64_json_640x480"]["p50"]),
            times(m["ratios"]["speedup_vs_original_mxnet14_p50"]),
            times(m["ratios"]["int8_speedup_vs_original_mxnet14_p50"])))
    return "; ".join(parts)


def batching(r):
    """The forward at batch 4 against batch 1, per image: what server-side batching could gain at most."""
    parts = []
    for model in ("default", "demo"):
        m = r.bench("models." + model)
        stages = m["floor"]["stages_ms"]
        parts.append("%s %s ms per image at batch 4 against %s ms at batch 1 (%s)" % (
            m["name"], ms(stages["forward_batch_4"]["p50"] / 4.0), ms(stages["forward_batch_1"]["p50"]),
            times(m["ratios"]["batch4_forward_per_image_gain"])))
    return "; ".join(parts)


def server_batching(r):
    """Each model's default layout with MMS's server-side batching against the same layout without it."""
    rows = ["| model | layout | p50 at concurrency 1, without / with | req/s at concurrency 8, without / with "
            "| requests per worker call at concurrency 8 and above, mean |", "| --- | --- | --- | --- | --- |"]
    for model in ("default", "demo"):
        m = r.bench("models." + model)
        served, batched = m["served"], m["batched"]
        concurrency = str(max(int(c) for c in batched["throughput"]))
        rows.append("| %s | %s, batch %d, %d ms | %s / %s ms (%s) | %s / %s (%s) | %s |" % (
            m["name"], served["config"], batched["server_batch_size"], batched["server_batch_delay_ms"],
            ms(served["latency_ms"]["jpeg_640x480"]["p50"]), ms(batched["latency_ms"]["jpeg_640x480"]["p50"]),
            times(m["ratios"]["batched_p50_over_default"]), rate(served["throughput"][concurrency]["rps"]),
            rate(batched["throughput"][concurrency]["rps"]),
            times(m["ratios"]["batched_rps_over_default_c%s" % concurrency]),
            batched["requests_per_worker_call"]["mean"]))
    return "\n".join(rows)


def worker_forward(r):
    """The demo model's forward inside its serving worker against a clean process's at the same thread count."""
    m = r.bench("models.demo")
    at_threads = m["floor"]["forward_at_worker_threads_ms"]
    return "%s ms inside the worker against %s ms in a clean process with the same %d thread%s (%s)" % (
        ms(m["served"]["worker_stages_ms"]["Forward"]), ms(at_threads["p50"]), at_threads["threads"],
        "" if at_threads["threads"] == 1 else "s", times(m["ratios"]["worker_forward_over_floor_at_its_threads"]))


def demo_costs(r):
    return "a %s ms forward, and %s ms more end to end" % (ms(r.bench("models.demo.floor.forward_ms.p50")),
                                                            ms(r.bench("models.demo.ratios.e2e_p50_minus_floor_ms")))


# one request laid out end to end (bench/measure.py TIMELINE_PARTS), with the labels docs/performance.md explains
_TIMELINE_COLUMNS = (("client_and_network", "client"), ("front_read", "front door read"),
                     ("to_worker", "to the worker"), ("worker", "worker"), ("back_from_worker", "back"),
                     ("front_write", "front door write"), ("outside_worker", "outside the worker"),
                     ("client", "end to end"))


_EI_STACK_WORDS = "on the ei stack (MXNet 1.4.1, MMS 1.0.5)"


def request_timeline(r):
    """The demo model's and the no-op entry point's requests laid out end to end, from each client, p50 ms, on the
    cpu image's stack and then on the ei image's."""
    rows = ["| %s | %s |" % ("request", " | ".join(label for _, label in _TIMELINE_COLUMNS)),
            "| --- |%s" % (" --- |" * len(_TIMELINE_COLUMNS))]
    for section, what, keys in (
            ("served", "demo model", ("timeline_lean_client_ms", "timeline_ms")),
            ("noop", "no-op entry point", ("timeline_lean_client_ms", "timeline_ms")),
            ("ei_stack", "demo model " + _EI_STACK_WORDS, ("timeline_lean_client_ms",)),
            ("noop_ei", "no-op entry point " + _EI_STACK_WORDS, ("timeline_lean_client_ms",))):
        for key in keys:
            timeline = r.bench("models.demo.%s.%s" % (section, key))
            client = "lean client" if key == "timeline_lean_client_ms" else "requests"
            rows.append("| %s, %s | %s |" % (what, client, " | ".join(ms(timeline[part])
                                                                      for part, _ in _TIMELINE_COLUMNS)))
    return "\n".join(rows)


def idle_gaps(r):
    """The no-op's requests from a lean client back to back and after an idle wait, with a process wake-up beside."""
    rows = ["| wait before each request | outside the worker | to the worker | back | a process wake-up (round trip) |",
            "| --- | --- | --- | --- | --- |"]
    for gap in r.bench("models.demo.noop.idle_gaps"):
        timeline = gap["timeline_ms"]
        wait = ("%s ms (the served demo model's worker time)" % ms(gap["gap_ms"]) if gap["gap_ms"]
                else "none (back to back)")
        rows.append("| %s | %s ms | %s ms | %s ms | %s us |" % (
            wait, ms(timeline["outside_worker"]), ms(timeline["to_worker"]), ms(timeline["back_from_worker"]),
            ms(gap["wake_round_trip_us"])))
    return "\n".join(rows)


def noop_interleaved_vs_alone(r):
    """The no-op's time outside its worker in the interleaved rounds against alone (back to back, after idle waits)."""
    interleaved = r.bench("models.demo.noop.timeline_lean_client_ms")["outside_worker"]
    alone = ["%s ms %s" % (ms(gap["timeline_ms"]["outside_worker"]),
                           "after a %s ms wait" % ms(gap["gap_ms"]) if gap["gap_ms"] else "back to back")
             for gap in r.bench("models.demo.noop.idle_gaps")]
    return "%s ms outside its worker in the interleaved rounds, and %s alone" % (
        ms(interleaved), " and ".join(alone))


def decode_preprocess(r):
    """The demo model's decode and preprocess of a 640x480 JPEG in its worker and back to back in a clean process."""
    stages, clean = r.bench("models.demo.served.worker_stages_ms"), r.bench("models.demo.floor.stages_ms")
    return "decode %s + preprocess %s ms in the worker, and %s + %s ms back to back in a clean process" % (
        ms(stages["Decode"]), ms(stages["Preprocess"]), ms(clean["decode_640x480"]["p50"]),
        ms(clean["preprocess_640x480"]["p50"]))


def workers_threads(r):
    """Each model's default layout (the served row) against the other one, each labelled with its workers x threads."""
    parts = []
    for model in ("default", "demo"):
        m = r.bench("models." + model)
        served, other = m["served"], m["alternative_config"]
        peak = max(v["rps"] for v in served["throughput"].values())
        other_peak = max(v["rps"] for v in other["throughput"].values())
        parts.append("| %s | %s | %s | %s / %s ms | %s / %s req/s | %s / %s MB |" % (
            m["name"], served["config"], other["config"],
            ms(served["latency_ms"]["jpeg_640x480"]["p50"]), ms(other["latency_ms"]["jpeg_640x480"]["p50"]),
            rate(peak), rate(other_peak), ", ".join("%.0f" % v for v in served["rss_mb_per_worker"]),
            ", ".join("%.0f" % v for v in other["rss_mb_per_worker"])))
    return "\n".join(["| model | default layout | other layout | p50, default / other | peak throughput, same order "
                      "| RSS per worker, same order |", "| --- | --- | --- | --- | --- | --- |"] + parts)


def first_over_steady(r):
    return " and ".join("%s for %s" % (times(r.bench("models.%s.ratios.first_over_steady" % model)),
                                       r.bench("models.%s.name" % model)) for model in ("default", "demo"))


def rss_default(r):
    return "%.0f MB" % r.bench("models.default.served.rss_mb_per_worker")[0]


def int8_accuracy(r):
    accuracy = r.bench("models.demo.int8.accuracy")
    _, limit, _ = r.bench("targets.int8_map_drop_points")
    return "mAP %s fp32 -> %s int8 on %d held-out scenes, a drop of %s (limit: %g point%s)" % (
        mean_ap(accuracy["map_fp32"]), mean_ap(accuracy["map_int8"]), accuracy["scenes"],
        points(accuracy["drop_points"]), limit, "" if limit == 1 else "s")


def int8_drop(r):
    return points(r.bench("models.demo.int8.accuracy.drop_points"))


def demo_map(r):
    accuracy = r.bench("models.demo.int8.accuracy")
    return "%s on %d held-out scenes" % (mean_ap(accuracy["map_fp32"]), accuracy["scenes"])


def soak_run(r):
    d = r.source("soak")
    container = d.get("container")
    return "%s, %s, %s: %s s at concurrency %s%s" % (
        _commit_words(d), d.get("date", "an unknown date").replace("T", " ")[:16], _host_words(d.get("host", {})),
        ("%.0f" % d["seconds"]) if "seconds" in d else "?", d.get("concurrency", "?"),
        ", in a container of `%s` under `--memory %s`" % (container["image"], container["memory"]) if container
        else "")


def memory_line(group, verdict):
    """One process group's memory in a soak report, with the check it was judged by (ssd_tools.soak judge_memory)."""
    head = "RSS %-12s start %7.1f MB, peak %7.1f MB, end %7.1f MB: " % (
        group, verdict["start MB"], verdict["peak MB"], verdict["end MB"])
    if verdict["check"] == "bound":
        return head + "%s its bound %.1f MB (heap cap %.1f MB + %.0f MB outside the heap)" % (
            "within" if verdict["held"] else "OVER", verdict["bound MB"], verdict["heap cap MB"],
            verdict["bound MB"] - verdict["heap cap MB"])
    if verdict["held"] is None:
        return head + "seen too briefly to judge"
    return head + "last third's median %.1f MB vs the middle third's peak %.1f MB (%+.1f MB, tolerance %.1f MB): %s" % (
        verdict["last third median MB"], verdict["middle third peak MB"], verdict["rise MB"],
        verdict["tolerance MB"], "flat" if verdict["held"] else "STILL RISING")


def soak_lines(report):
    """The lines of a soak report (python -m ssd_tools.soak --json), as the soak prints them and docs/reliability.md
    shows them."""
    lines = ["soak: %ss at concurrency %s (warm-up %.0f s): %d requests (%d valid, %d invalid), %s/s" % (
        report["seconds"], report["concurrency"], report.get("warm-up seconds") or 0, report["requests"],
        report["valid"], report["invalid"], report["throughput per s"])]
    latency = report["valid latency s"]
    lines.append("valid requests answered 200: p50 %.3f s, p90 %.3f s, p99 %.3f s, max %.3f s" % (
        latency["p50"], latency["p90"], latency["p99"], latency["max"] or float("nan")))
    pings = report["pings"]
    lines.append("/ping: %d checks, %d failed, slowest %.3f s" % (pings["count"], pings["failed"], pings["max s"]))
    for group, verdict in sorted((report.get("rss") or {}).items()):
        lines.append(memory_line(group, verdict))
    if report.get("disk"):
        lines.append("disk (writable layer) after warm-up %.1f MB, end %.1f MB, peak %.1f MB" % (
            report["disk"]["after warm-up MB"], report["disk"]["end MB"], report["disk"]["peak MB"]))
    lines += ["| request | expected | answers | p50 s | p99 s |", "| --- | --- | --- | --- | --- |"]
    for name, entry in sorted(report["by kind"].items()):
        answers = ", ".join("%s x%d" % item for item in sorted(entry["answers"].items()))
        lines.append("| %s | %s | %s | %.3f | %.3f |" % (name, entry["expected"], answers, entry["p50 s"],
                                                         entry["p99 s"]))
    lines.append("problems: %s" % ("; ".join(report["problems"]) or "none"))
    return lines


def soak_report(r):
    d = r.source("soak")
    try:
        return "```\n%s\n```" % "\n".join(soak_lines(d))
    except (KeyError, TypeError) as error:
        raise FiguresError("%s is not a soak report of this version (%s): %s" % (
            os.path.join(RESULTS, SOURCES["soak"]), error, TAKE_HINT["soak"]))


def soak_summary(r):
    d = r.source("soak")
    problems = r.soak("problems")
    words = ["No valid request failed, every invalid one got its documented 4xx JSON, and no request hung."
             if not problems else "The run failed: %s." % "; ".join(problems)]
    rss = d.get("rss") or {}
    if rss.get("jvm") and rss.get("workers"):
        jvm, workers = rss["jvm"], rss["workers"]
        words.append("The JVM's RSS peaked at %.0f MB, %s its bound of %.0f MB (its heap cap, %.0f MB, plus %.0f MB for "
                     "what it holds outside the heap): a heap filling toward its cap is not a leak. The workers' RSS "
                     "in the last third of the run was %+.1f MB against the middle third's peak (a leak shows as a "
                     "rise over %.0f MB)%s." % (
                         jvm["peak MB"], "within" if jvm["held"] else "over", jvm["bound MB"], jvm["heap cap MB"],
                         jvm["bound MB"] - jvm["heap cap MB"], workers["rise MB"], workers["tolerance MB"],
                         "; the front door's %+.1f MB" % rss["front door"]["rise MB"] if rss.get("front door") else ""))
    if d.get("disk"):
        words.append("The writable layer grew %.1f MB after the %.0f s warm-up." % (
            d["disk"]["end MB"] - d["disk"]["after warm-up MB"], d.get("warm-up seconds") or 0))
    latency = r.soak("valid latency s")
    words.append("Valid requests took p50 %s, p99 %s (reported, not asserted: at concurrency %s they are mostly "
                 "queueing); the slowest `/ping` took %s (SageMaker allows 2 s)." % (
                     seconds(latency["p50"]), seconds(latency["p99"]), r.soak("concurrency"),
                     seconds(r.soak("pings.max s"))))
    return " ".join(words)


def soak_ping_max(r):
    return seconds(r.soak("pings.max s"))


def _hosting_model_words(key, model):
    return "the demo model" if key == "demo" else "%s (random weights, timing only)" % key


def hosting_run(r):
    d = r.source("hosting")
    return "`make bench-hosting` on %s, started %s, %s: %s; the image %s" % (
        _commit_words(d.get("host", {})), d.get("started", "?"), minutes(d.get("duration_s", 0)),
        _host_words(d.get("host", {})), d.get("image", "?"))


def hosting_transform(r):
    lines = ["| model | MaxConcurrentTransforms | SingleRecord, images/s | MultiRecord (JSON Lines), images/s |",
             "| --- | --- | --- | --- |"]
    for key, model in sorted(r.get("hosting", "models").items()):
        job = model["transform"]
        lines.append("| %s | %s | %s | %s (%d request(s) for %d images) |" % (
            _hosting_model_words(key, model), job["execution_parameters"]["MaxConcurrentTransforms"],
            rate(job["single_record_images_per_s"]), rate(job["multi_record_images_per_s"]),
            job["requests_multi_record"], job["images"]))
    return "\n".join(lines)


def hosting_serverless(r):
    lines = ["| model | memory | serves | `docker run` to /ping 200 | to the first answer | steady p50 | peak memory "
             "| RSS after a burst: launcher, JVM, workers |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for key, model in sorted(r.get("hosting", "models").items()):
        for row in model["serverless"]:
            rss = row.get("rss_mb") or {}
            lines.append("| %s | %d MB | %s | %s | %s | %s | %s | %s |" % (
                _hosting_model_words(key, model), row["memory_mb"],
                "yes" if row["serves"] else ("no: killed for memory" if row.get("oom_killed") else "no"),
                seconds(row["ping_s"]) if row.get("ping_s") else "-",
                seconds(row["first_answer_s"]) if row.get("first_answer_s") else "-",
                "%s ms" % ms(row["steady_p50_ms"]) if row.get("steady_p50_ms") else "-",
                "%.0f MB" % row["peak_mb"] if row.get("peak_mb") else "-",
                ", ".join("%.0f MB" % rss[k] for k in ("launcher", "jvm", "workers") if k in rss) or "-"))
    return "\n".join(lines)


def hosting_summary(r):
    models = r.get("hosting", "models")
    default = next((key for key in models if key != "demo"), "demo")
    job = models[default]["transform"]
    fitting = sorted((row for row in models[default]["serverless"] if row["serves"]), key=lambda row: row["memory_mb"])
    words = "%s: a transform job at %s images/s per instance (%s); " % (
        _hosting_model_words(default, models[default]), rate(job["multi_record_images_per_s"]),
        _host_words(r.get("hosting", "host")))
    if fitting:
        row = fitting[0]
        words += "serverless from %d MB (peak %.0f MB), /ping 200 %s after `docker run`" % (
            row["memory_mb"], row["peak_mb"], seconds(row["ping_s"]))
    else:
        words += "no serverless size measured serves it"
    return words


def hosting_smallest(r):
    words = []
    for key, model in sorted(r.get("hosting", "models").items()):
        fits = [row["memory_mb"] for row in model["serverless"] if row["serves"]]
        words.append("%s: %s" % (_hosting_model_words(key, model), "%d MB" % min(fits) if fits else
                                 "none of the sizes measured"))
    return "; ".join(words)


def _mb(value):
    return "%.0f MB" % (value / 1e6)


def _median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2.0


def multimodel_run(r):
    d = r.source("multimodel")
    return "`make bench-multimodel` on commit %s: %s; %s" % (
        d["host"].get("git_commit", "?"), _host_words(d["host"]),
        ", ".join("%s on %s" % (s["model_server"], s["date"].replace("T", " ")[:16])
                  for _, s in sorted(d["stacks"].items())))


def multimodel_table(r):
    """Per stack: the load time and the server's RSS before, loaded and after unload (medians of the rounds), and
    what a second model at once adds."""
    rows = ["| stack | `POST /models` to 200 (median of %s) | RSS before | loaded | after unload | a second model adds |"
            % "/".join(str(len(s["rounds"])) for _, s in sorted(r.get("multimodel", "stacks").items())),
            "| --- | --- | --- | --- | --- | --- |"]
    for _, stack in sorted(r.get("multimodel", "stacks").items(), reverse=True):
        rounds = stack["rounds"]
        before = _median([x["rss_before"] for x in rounds])
        loaded = _median([x["rss_loaded"] for x in rounds])
        two = stack["two_models_rss"]
        rows.append("| MXNet %s, %s | %s | %s | %s (+%s) | %s | %s |" % (
            stack["mxnet"], stack["model_server"], seconds(_median([x["load_s"] for x in rounds])), _mb(before),
            _mb(loaded), _mb(loaded - before), _mb(_median([x["rss_after_unload"] for x in rounds])),
            _mb(two[2] - two[1])))
    return "\n".join(rows)


BLOCKS = {
    "bench-run": (False, bench_run),
    "bench-duration": (False, bench_duration),
    "bench-table": (True, bench_table),
    "deploy-targets": (True, deploy_targets),
    "targets": (True, targets),
    "int8-speed": (False, int8_speed),
    "int8-host": (False, int8_host),
    "int8-accuracy": (False, int8_accuracy),
    "int8-drop": (False, int8_drop),
    "forward-share": (False, forward_share),
    "fusion-speedup": (False, fusion_speedup),
    "original-all-cores": (False, original_all_cores),
    "demo-costs": (False, demo_costs),
    "request-timeline": (True, request_timeline),
    "idle-gaps": (True, idle_gaps),
    "noop-interleaved-vs-alone": (False, noop_interleaved_vs_alone),
    "decode-preprocess": (False, decode_preprocess),
    "original-mxnet14": (False, original_mxnet14),
    "batching": (False, batching),
    "server-batching": (True, server_batching),
    "worker-forward": (False, worker_forward),
    "demo-map": (False, demo_map),
    "workers-threads": (True, workers_threads),
    "first-over-steady": (False, first_over_steady),
    "rss-default": (False, rss_default),
    "soak-run": (False, soak_run),
    "soak-report": (True, soak_report),
    "soak-summary": (False, soak_summary),
    "soak-ping-max": (False, soak_ping_max),
    "hosting-run": (False, hosting_run),
    "hosting-transform": (True, hosting_transform),
    "hosting-serverless": (True, hosting_serverless),
    "hosting-smallest": (False, hosting_smallest),
    "hosting-summary": (False, hosting_summary),
    "multimodel-run": (False, multimodel_run),
    "multimodel-table": (True, multimodel_table),
}


# --- the int8 study's tables in docs/int8.md (python -m ssd_tools.demo.int8_study; --take-int8-study)

SOURCES["int8_study"] = "int8_study.json"
TAKE_HINT["int8_study"] = ("python -m ssd_tools.demo.int8_study --floor --out build/int8-study.json, then make "
                           "docs-results (or python -m ssd_tools.figures --take-int8-study build/int8-study.json)")
# The floor table's columns: two int8 graphs within the 1-point limit and two beyond it, as the study names them.
INT8_FLOOR_GRAPHS = (("naive: builtin (5 photos + 24 scenes)", "builtin"), ("naive: 40 all-black images", "all-black"),
                     ("naive: builtin, every calibrated range x0.60", "ranges x0.60"),
                     ("naive: 20 uniform-noise images", "noise"))


def whole_seconds(value):
    """Seconds to the unit, halves up: the fallback records keep tenths, and 44.5 s reads as 45."""
    return "%d" % int(value + 0.5)


def int8_study_table(r):
    """Each int8 graph of the study: its labelled drop, worst class, agreement with fp32, boxes found, calibration."""
    rows = ["| calibration | calibration images (the int8 graph) | mAP drop, labelled, points | worst class, drop "
            "| agreement with fp32 (AP), points | fp32 boxes found, % | calibration, s |",
            "| --- | --- | ---: | --- | ---: | ---: | ---: |"]
    for row in r.get("int8_study", "rows"):
        worst = row["worst_class"]
        calibration = row.get("calibration_s")
        rows.append("| %s | %s | %.2f | %s %.2f | %.2f | %.2f | %s |" % (
            row["mode"], row["variant"], row["drop"], worst["class"], worst["value"], row["agreement"],
            row["recall"], "-" if calibration is None else whole_seconds(calibration)))
    return "\n".join(rows)


def int8_floor_table(r):
    """Per subset size: how often each chosen graph passes the labelled and the agreement check."""
    floor = r.get("int8_study", "floor")
    for name, _ in INT8_FLOOR_GRAPHS:
        if any(name not in entry["graphs"] for entry in floor):
            raise FiguresError("%s: the floor has no graph %r: %s" % (
                os.path.join(RESULTS, SOURCES["int8_study"]), name, TAKE_HINT["int8_study"]))
    rows = ["| images (fp32 boxes) | %s |" % " | ".join(
        "%s (%.2f)" % (label, floor[0]["graphs"][name]["drop_all"]) for name, label in INT8_FLOOR_GRAPHS),
        "| --- |%s" % (" ---: |" * len(INT8_FLOOR_GRAPHS))]
    for entry in floor:
        graphs = [entry["graphs"][name] for name, _ in INT8_FLOOR_GRAPHS]
        boxes = sum(g["fp32_boxes"] for g in graphs) / len(graphs)
        rows.append("| %d (%.0f) | %s |" % (entry["images"], boxes, " | ".join(
            "%.0f%% / %.0f%%" % (100 * g["labelled_passes"], 100 * g["agreement_passes"]) for g in graphs)))
    return "\n".join(rows)


def int8_fallback_table(r):
    """Each export's check and fallback: the tries, the verdict and how long it took."""
    rows = ["| export | check images | tries (layers kept in fp32: drop, points) | result | seconds to the verdict "
            "| whole export, s |", "| --- | --- | --- | --- | ---: | ---: |"]
    for row in r.get("int8_study", "fallback.rows"):
        tries = row["fallback"]["tries"]
        kept = len(row["fp32_kept_by_fallback"])
        result = "passed" if row["passed"] else "not passed"
        if kept:
            result += ", %d of %d layers in fp32" % (kept, row["quantizable_layers"])
        verdict = whole_seconds(row["fallback"]["seconds"])
        if len(tries) == 1:
            verdict += " (of which int8 on the scenes: %s)" % whole_seconds(tries[0]["seconds"])
        rows.append("| %s | %s | %s | %s | %s | %s%s |" % (
            row["export"], row["check_images"], ", ".join("%d: %.2f" % (t["fp32_kept"], t["value"]) for t in tries),
            result, verdict, whole_seconds(row["export_s"]),
            " with start-up" if row.get("export_s_includes_start_up") else ""))
    return "\n".join(rows)


# --- the hop profile (make bench-hops, bench/hops.py)

# the parts of a request's path the profile tells apart, in the order a request crosses them on its way in
HOP_PARTS = ("client", "front door", "MMS Netty", "MMS worker thread", "MMS output reader", "MMS other JVM threads",
             "Python worker")


def hop_profile_table(data):
    """A hop profile (bench/hops.py's results) as a markdown table: one column per server and idle wait."""
    columns = [(name, gap) for name, by_gap in sorted(data["servers"].items(), key=lambda item: item[0] != "no-op")
               for gap in sorted(by_gap, key=float)]
    head = ["p50 per request"] + ["%s, %s" % (name, "back to back" if float(gap) == 0 else "after %s ms" % gap)
                                  for name, gap in columns]
    rows = [("end to end (the client's clock)", "end_to_end", "%.2f ms"),
            ("outside the worker's stages (Server-Timing)", "outside_worker", "%.1f ms"),
            ("the worker's stages (Server-Timing)", "worker_stages", "%.1f ms")]
    rows += [("on a CPU: %s" % part, part, "%.2f ms") for part in HOP_PARTS]
    rows += [("no thread of the path on a CPU", "none_on_cpu", "%.2f ms"),
             ("thread wake-ups", "wake_ups", "%.0f"), ("of which onto an idle CPU", "wake_ups_onto_idle_cpu", "%.0f"),
             ("a wake-up seen whole, from waking to running", "wake_up_p50_us", "%.0f us"),
             ("switches onto a CPU missing from the trace (the whole trace)", "switches_not_in_trace", "%d")]
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join(["---"] * len(head)) + " |"]
    for label, key, shape in rows:
        cells = []
        for name, gap in columns:
            value = data["servers"][name][gap].get(key)
            cells.append("-" if value is None else shape % value)
        lines.append("| " + " | ".join([label] + cells) + " |")
    return "\n".join(lines)


def hop_profile(r):
    return hop_profile_table(r.source("hops"))


def hop_run(r):
    d = r.source("hops")
    return "`make bench-hops` on %s, %s: %s; %d requests traced per column, after %d unmeasured ones" % (
        _commit_words(d), d.get("date", "?").replace("T", " ")[:16], _host_words(d.get("host", {})), d["requests"],
        d["warm_up"])


BLOCKS.update({
    "hop-run": (False, hop_run),
    "hop-profile": (True, hop_profile),
})
BLOCKS.update({
    "int8-study": (True, int8_study_table),
    "int8-floor": (True, int8_floor_table),
    "int8-fallback": (True, int8_fallback_table),
})


# --- rendering

def render_text(text, results, where="text"):
    """The text with every marked region regenerated; FiguresError on an unknown, unclosed or unrenderable one."""
    closed = set(m.start() for m in MARKER.finditer(text))
    for opening in OPENING.finditer(text):
        if opening.start() not in closed:
            raise FiguresError("%s: <!-- figures:%s --> has no matching <!-- /figures:%s -->"
                               % (where, opening.group(1), opening.group(1)))

    def replace(match):
        name = match.group("name")
        if name not in BLOCKS:
            raise FiguresError("%s: no figures block is called %r (known: %s)"
                               % (where, name, ", ".join(sorted(BLOCKS))))
        block, make = BLOCKS[name]
        try:
            body = make(results)
        except FiguresError as err:
            raise FiguresError("%s: %s: %s" % (where, name, err))
        except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as err:
            raise FiguresError("%s: %s cannot be rendered from docs/results: %s: %s"
                               % (where, name, err.__class__.__name__, err))
        body = "\n%s\n" % body if block else body
        return "<!-- figures:%s -->%s<!-- /figures:%s -->" % (name, body, name)

    return MARKER.sub(replace, text)


def documents(root):
    """README.md and docs/*.md: the files that may carry figures."""
    paths = [os.path.join(root, "README.md")]
    docs = os.path.join(root, "docs")
    if os.path.isdir(docs):
        paths += [os.path.join(docs, n) for n in sorted(os.listdir(docs)) if n.endswith(".md")]
    return [p for p in paths if os.path.isfile(p)]


def stale(root):
    """[(path, new text, [names of blocks that would change])] for every document rendering would change."""
    results = Results(root)
    changes = []
    for path in documents(root):
        with open(path) as stream:
            text = stream.read()
        new = render_text(text, results, os.path.relpath(path, root))
        if new != text:
            old_blocks = dict((m.group("name"), m.group("body")) for m in MARKER.finditer(text))
            names = sorted(set(m.group("name") for m in MARKER.finditer(new)
                               if old_blocks.get(m.group("name")) != m.group("body")))
            changes.append((path, new, names or ["(markers)"]))
    return changes


# --- taking results

def _git(root, *args):
    try:
        return subprocess.check_output(("git", "-C", root) + args, stderr=subprocess.DEVNULL,
                                       universal_newlines=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def host_facts():
    """This machine as a run records it (model, CPUs, the flags int8 depends on); make bench adds its stack."""
    facts = {"cpus": os.cpu_count(), "platform": platform.platform()}
    try:
        with open(CPUINFO) as stream:
            lines = stream.read().splitlines()
    except (IOError, OSError):
        lines = []
    facts["cpu_model"] = next((l.split(":", 1)[1].strip() for l in lines if l.startswith("model name")), None)
    flags = cpu_flags()
    facts["cpu_flags"] = [f for f in CPU_FLAGS if f in flags]
    return facts


def _write_json(path, data):
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path))
    with open(path, "w") as stream:
        json.dump(data, stream, indent=1, sort_keys=True)
        stream.write("\n")


def take_bench(root, path):
    with open(path) as stream:
        data = json.load(stream)
    for key in ("models", "targets", "table", "host"):
        if key not in data:
            raise FiguresError("%s is not a make bench result: it has no %r" % (path, key))
    check_bench_schema(data, path)
    if data.get("quick"):
        # --quick measures too few requests to quote.
        raise FiguresError("%s is a --quick smoke run; the docs quote a full make bench" % path)
    target = os.path.join(root, RESULTS, SOURCES["bench"])
    _write_json(target, data)
    return target


def take_soak(root, path, commit=None, date=None, seconds=None, concurrency=None):
    with open(path) as stream:
        data = json.load(stream)
    for key in ("requests", "by kind", "pings", "problems"):
        if key not in data:
            raise FiguresError("%s is not a python -m ssd_tools.soak --json report: it has no %r" % (path, key))
    # The soak writes only its measurements; where and when it ran is added here, once.
    if commit:
        data.setdefault("git_commit", commit)
    elif "git_commit" not in data:
        data["git_commit"] = _git(root, "rev-parse", "--short", "HEAD")
        data["git_dirty"] = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    data.setdefault("date", date or datetime.datetime.fromtimestamp(os.path.getmtime(path)).isoformat(
        timespec="seconds"))
    data.setdefault("host", host_facts())
    if seconds is not None:
        data.setdefault("seconds", seconds)
    if concurrency is not None:
        data.setdefault("concurrency", concurrency)
    for key in ("seconds", "concurrency"):
        if key not in data:
            raise FiguresError("%s does not say its %s: pass --%s" % (path, key, key))
    target = os.path.join(root, RESULTS, SOURCES["soak"])
    _write_json(target, data)
    return target


def take_hosting(root, path):
    with open(path) as stream:
        data = json.load(stream)
    if "models" not in data or not all("serverless" in m and "transform" in m for m in data["models"].values()):
        raise FiguresError("%s is not a bench/hosting.py result" % path)
    target = os.path.join(root, RESULTS, SOURCES["hosting"])
    _write_json(target, data)
    return target


def take_multimodel(root, path):
    with open(path) as stream:
        data = json.load(stream)
    if not data.get("stacks") or not all("rounds" in s and "two_models_rss" in s for s in data["stacks"].values()):
        raise FiguresError("%s is not a bench/multimodel.py result" % path)
    target = os.path.join(root, RESULTS, SOURCES["multimodel"])
    _write_json(target, data)
    return target


def take_hops(root, path):
    with open(path) as stream:
        data = json.load(stream)
    if not data.get("servers") or not all(isinstance(g, dict) for g in data["servers"].values()) \
            or "requests" not in data or "warm_up" not in data:
        raise FiguresError("%s is not a bench/hops.py result" % path)
    target = os.path.join(root, RESULTS, SOURCES["hops"])
    _write_json(target, data)
    return target


def take_int8_study(root, path):
    """A python -m ssd_tools.demo.int8_study --floor result, with the commit, date and host it lacks; the fallback
    rows of the results it replaces are kept (the study does not measure them)."""
    with open(path) as stream:
        data = json.load(stream)
    for key in ("rows", "floor"):
        if key not in data:
            raise FiguresError("%s is not a python -m ssd_tools.demo.int8_study --floor result: it has no %r"
                               % (path, key))
    if "git_commit" not in data:
        data["git_commit"] = _git(root, "rev-parse", "--short", "HEAD")
        data["git_dirty"] = bool(_git(root, "status", "--porcelain", "--untracked-files=no"))
    data.setdefault("date", datetime.datetime.fromtimestamp(os.path.getmtime(path)).isoformat(timespec="seconds"))
    data.setdefault("host", host_facts())
    data.setdefault("source", {"how": "python -m ssd_tools.demo.int8_study --floor (%s), taken by python -m "
                                      "ssd_tools.figures --take-int8-study" % os.path.basename(path)})
    target = os.path.join(root, RESULTS, SOURCES["int8_study"])
    if "fallback" not in data and os.path.isfile(target):
        with open(target) as stream:
            previous = json.load(stream)
        if "fallback" in previous:
            data["fallback"] = previous["fallback"]
    _write_json(target, data)
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--take-hosting", metavar="PATH", help="a bench/hosting.py result (build/bench/hosting.json)")
    parser.add_argument("--take-bench", metavar="PATH", help="a make bench result (build/bench/latest.json)")
    parser.add_argument("--take-multimodel", metavar="PATH", help="a bench/multimodel.py result "
                        "(build/bench/multimodel.json)")
    parser.add_argument("--take-hops", metavar="PATH", help="a bench/hops.py result (build/bench/hops.json)")
    parser.add_argument("--take-int8-study", metavar="PATH", help="a python -m ssd_tools.demo.int8_study --floor "
                        "result (build/int8-study.json)")
    parser.add_argument("--take-soak", metavar="PATH",
                        help="a python -m ssd_tools.soak --json report (build/soak-report.json)")
    parser.add_argument("--commit", help="with --take-soak: the commit the soak ran on (default: this tree's HEAD)")
    parser.add_argument("--date", help="with --take-soak: when it ran (default: the report file's time)")
    parser.add_argument("--seconds", type=float, help="with --take-soak: its length, if the report lacks it")
    parser.add_argument("--concurrency", type=int, help="with --take-soak: its concurrency, if the report lacks it")
    parser.add_argument("--render", action="store_true", help="rewrite the generated blocks (the default)")
    parser.add_argument("--check", action="store_true", help="exit 1 naming the blocks that rendering would change")
    parser.add_argument("--root", default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        if args.take_bench:
            print("took %s" % os.path.relpath(take_bench(args.root, args.take_bench), args.root))
        if args.take_hosting:
            print("took %s" % os.path.relpath(take_hosting(args.root, args.take_hosting), args.root))
        if args.take_multimodel:
            print("took %s" % os.path.relpath(take_multimodel(args.root, args.take_multimodel), args.root))
        if args.take_hops:
            print("took %s" % os.path.relpath(take_hops(args.root, args.take_hops), args.root))
        if args.take_int8_study:
            print("took %s" % os.path.relpath(take_int8_study(args.root, args.take_int8_study), args.root))
        if args.take_soak:
            print("took %s" % os.path.relpath(take_soak(args.root, args.take_soak, args.commit, args.date,
                                                        args.seconds, args.concurrency), args.root))
        changes = stale(args.root)
    except FiguresError as err:
        print("figures: %s" % err, file=sys.stderr)
        return 2
    if args.check:
        for path, _, names in changes:
            print("stale: %s: %s" % (os.path.relpath(path, args.root), ", ".join(names)), file=sys.stderr)
        if changes:
            print("figures: run python -m ssd_tools.figures (make docs) to regenerate them; "
                  "figures are never edited by hand", file=sys.stderr)
        return 1 if changes else 0
    for path, text, names in changes:
        with open(path, "w") as stream:
            stream.write(text)
        print("rendered %s: %s" % (os.path.relpath(path, args.root), ", ".join(names)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
