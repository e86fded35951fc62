"""make bench: the SSD server's latency, throughput, memory and start-up next to its floor and the original approach, all measured in one run on this machine.

    python bench/bench.py [--quick] [--models default,demo] [--docker auto|skip] [--out build/bench/latest.json]

Prints one table and writes it as JSON, so runs can be compared. Not a test: nothing here asserts a
time. On a GPU machine the same code runs on the GPU (the context is picked as serving picks it).

The deploy targets side by side: besides the cpu stack (this Python, MXNet 1.9.1, fp32 and int8) the
same server runs on the ei image's stack (MXNet 1.4.1, mxnet-model-server 1.0.5) from the MXNet 1.4.1
environment (BENCH_EI_PYTHON, else the mx14 venv beside this one: make venvs). No EI accelerator can
be attached here, so that row is the ei image's CPU path.

This is the command line; what is measured is bench/measure.py (its processes bench/servers.py), what is reported
bench/report.py.
"""
import argparse
import datetime
import json
import multiprocessing
import os
import sys
import tempfile
import time

from common import HERE, ROOT, ei_python, host_info, loadavg, log, run_text, stack_info
from measure import build_image, cold_start, docker_available, measure_model, measure_start, prepare_photos
from report import TARGETS, deploy_targets_for, ratios_for, table, targets_for
from ssd_tools.figures import BENCH_SCHEMA

DEMO_MODEL = os.path.join(ROOT, "container", "models", "demo")
DEFAULT_MODEL_NAME = "ssd_512_resnet50_v1_voc"

class Plan(object):
    """How much to measure: a full run (~10 min on 2 vCPUs) or a smoke run (--quick)."""

    def __init__(self, quick):
        self.quick = quick
        # every measured request and forward runs once per round (some every other round), interleaved
        self.rounds = 3 if quick else 30
        self.stage_runs = 3 if quick else 15
        self.idle_gap_requests = 20 if quick else 200  # the no-op's requests at each idle wait
        # each server's unmeasured requests before the rounds (measure.warm_up): a small model's reach its steady
        # state within them, a large model's get what the time allows
        self.warm_up_requests = 20 if quick else 1000
        self.warm_up_s = 5.0 if quick else 20.0
        self.throughput_s = 0.5 if quick else 8.0
        self.eval_scenes = 4 if quick else 300


def prepare_models(keys, models_dir, want_int8, ei):
    """The exports each model is served from; `ei` is (the MXNet 1.4.1 Python, its stack_info) or (None, why not)."""
    prepared = {}
    if "default" in keys:
        fp32 = run_text([os.path.join(HERE, "models.py"), "random-init", "--model", DEFAULT_MODEL_NAME,
                         "--out", os.path.join(models_dir, DEFAULT_MODEL_NAME + "-trained-like")]).strip()
        with open(os.path.join(fp32, "model-meta.json")) as stream:
            trained_like = json.load(stream)["weights"]["trained_like"]
        log("default model stand-in: random weights, background bias %+.2f: keeps %.3f%% of candidates (the trained "
            "demo keeps %.3f%%)" % (trained_like["background_bias"], 100 * trained_like["kept_share"],
                                    100 * trained_like["target_kept_share"]))
        prepared["default"] = {"name": DEFAULT_MODEL_NAME, "dir": fp32, "random_weights": True,
                               "trained_like": trained_like,
                               "original": "zoo-random:%s@%s" % (DEFAULT_MODEL_NAME, trained_like["background_bias"])}
    if "demo" in keys:
        prepared["demo"] = {"name": "ssd_256_demo_shapes", "dir": DEMO_MODEL, "random_weights": False,
                            "original": "demo:%s" % DEMO_MODEL}
    for key, entry in prepared.items():
        if want_int8:
            entry["int8_dir"] = run_text([os.path.join(HERE, "models.py"), "int8", "--from", entry["dir"],
                                          "--out", os.path.join(models_dir, "%s-int8" % key)]).strip()
        ei_python, ei_stack = ei
        if ei_python is None:
            entry["ei_skipped"] = ei_stack
        elif key == "demo":  # committed, and readable by MXNet 1.4.1: the ei image bakes this very folder
            entry["ei_python"], entry["ei_dir"] = ei_python, entry["dir"]
        else:  # exported by MXNet 1.4.1 itself, as the ei image's exporter stage does
            out = os.path.join(models_dir, "%s-trained-like-mxnet%s" % (entry["name"], ei_stack["mxnet"]))
            entry["ei_python"] = ei_python
            entry["ei_dir"] = run_text([os.path.join(HERE, "models.py"), "random-init", "--model", entry["name"],
                                        "--out", out], python=ei_python).strip()
    return prepared


def recompute(path, out):
    """The ratios, targets and table of the run in `path`, from its measured rows, by this report.py; the results
    say which commit recomputed them."""
    with open(path) as stream:
        results = json.load(stream)
    on_cpu = results["host"].get("gpus", 0) == 0
    for key, entry in results["models"].items():
        entry["ratios"] = ratios_for(entry)
        if on_cpu:
            entry["deploy_targets"] = deploy_targets_for(entry)
        entry["targets"] = targets_for(key, entry["ratios"])
    results["targets"] = TARGETS
    results["table"] = table(results)
    results["recomputed_by"] = host_info().get("git_commit")
    with open(out, "w") as stream:
        json.dump(results, stream, indent=2, sort_keys=True)
    print(results["table"])
    log("ratios, targets and table of %s recomputed into %s" % (path, out))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a smoke run: few requests, short throughput windows")
    parser.add_argument("--models", default="default,demo", help="comma-separated: default, demo")
    parser.add_argument("--docker", choices=("auto", "skip"), default="auto",
                        help="auto: build the cpu image (docker/build.sh) and time cold starts where an engine runs")
    parser.add_argument("--image", default=os.environ.get("BENCH_IMAGE", "ssd-serving:bench-cpu"),
                        help="tag of the image built and cold-started")
    parser.add_argument("--skip-original", action="store_true", help="leave out the original approach")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "bench", "latest.json"))
    parser.add_argument("--recompute", metavar="RESULTS",
                        help="measure nothing: compute the ratios, targets and table of a run's results file again "
                             "with this version's report.py (when a figure was added to it after the run), into --out")
    args = parser.parse_args(argv)
    if args.recompute:
        return recompute(args.recompute, args.out)
    plan = Plan(args.quick)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    work = os.path.join(ROOT, "build", "bench")
    log_dir = tempfile.mkdtemp(prefix="logs-", dir=os.makedirs(work, exist_ok=True) or work)
    models_dir = os.path.join(work, "models")
    started = time.time()
    host = host_info()
    on_cpu = host.get("gpus", 0) == 0 and os.environ.get("SSD_CONTEXT", "auto") in ("auto", "cpu")
    cores = multiprocessing.cpu_count()
    results = {"schema": BENCH_SCHEMA, "started": datetime.datetime.now().isoformat(timespec="seconds"),
               "quick": plan.quick, "host": host, "load_before": loadavg(), "logs": log_dir, "models": {},
               "targets": TARGETS}
    log("host: %s, %d CPUs %s, MXNet %s, GPUs %s; logs in %s" % (host.get("cpu_model"), cores, host.get("cpu_flags"),
                                                                  host["mxnet"], host.get("gpus"), log_dir))

    photos_dir = os.path.join(work, "photos")
    photos = prepare_photos(photos_dir)
    results["photos"] = dict((k, {"size": v["size"], "jpeg_bytes": v["bytes"], "base64_json_bytes": v["json_bytes"]})
                            for k, v in photos.items() if isinstance(v, dict))
    results["photos"]["source"] = photos["source"]
    stacks = {sys.executable: stack_info(sys.executable)}
    ei_path, ei_why_not = ei_python()
    if ei_path and not on_cpu:
        ei_path, ei_why_not = None, "the deploy targets compare CPU paths; this run serves on a GPU"
    if ei_path:
        stacks[ei_path] = stack_info(ei_path)
        log("ei stack: %s (MXNet %s)" % (ei_path, stacks[ei_path]["mxnet"]))
    else:
        log("ei stack skipped: %s" % ei_why_not)
    results["stacks"] = stacks
    log("preparing models (random-init exports and int8 variants are cached in %s)" % models_dir)
    prepared = prepare_models(keys, models_dir, want_int8=on_cpu,
                              ei=(ei_path, stacks[ei_path]) if ei_path else (None, ei_why_not))

    image_ready, docker_note = False, None
    if args.docker == "skip":
        docker_note = "skipped (--docker skip)"
    elif not docker_available():
        docker_note = "skipped: no Docker engine (docker/ensure-engine.sh starts one)"
    else:
        try:
            log("building %s with docker/build.sh cpu (cached steps are reused)" % args.image)
            results["image_build_s"] = build_image(args.image, log_dir)
            image_ready = True
        except Exception as err:  # the rest of the table is still worth having
            docker_note = "skipped: %s" % err

    for key in keys:
        spec = prepared[key]
        entry = {"name": spec["name"], "model_dir": spec["dir"], "random_weights": spec["random_weights"],
                 "trained_like": spec.get("trained_like"), "load_avg_at_start": loadavg()}
        results["models"][key] = entry
        log("%s: start-up: first request when /ping turns healthy, and once the model is loaded" % spec["name"])
        entry["start"] = measure_start("%s-start" % key, spec["dir"], photos, log_dir, after_ready=not plan.quick)
        measure_model(key, spec, entry, photos, photos_dir, plan, log_dir, cores, on_cpu, args.skip_original, stacks)
        if image_ready:
            log("%s: cold start of %s" % (spec["name"], args.image))
            try:
                entry["cold_start"] = cold_start(args.image, spec["dir"] if key != "demo" else None, photos, key,
                                                 log_dir)
            except Exception as err:
                entry["cold_start"] = {"skipped": "failed: %s" % err}
        else:
            entry["cold_start"] = {"skipped": docker_note}
        entry["load_avg_at_end"] = loadavg()
        entry["ratios"] = ratios_for(entry)
        entry["deploy_targets"] = deploy_targets_for(entry) if on_cpu else {
            "skipped": "the deploy targets compare CPU paths; this run serves on a GPU"}
        entry["targets"] = targets_for(key, entry["ratios"])

    results["load_after"] = loadavg()
    results["duration_s"] = round(time.time() - started, 1)
    results["table"] = table(results)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as stream:
        json.dump(results, stream, indent=2, sort_keys=True)
    print("SSD serving benchmark, %s, %s (%d CPUs%s), MXNet %s, %s, load average %s -> %s, %.0f s%s" % (
        results["started"], host.get("cpu_model"), cores, ", " + "/".join(host.get("cpu_flags") or []),
        host["mxnet"], "GPU" if not on_cpu else "CPU", results["load_before"], results["load_after"],
        results["duration_s"], ", QUICK (smoke run, not for comparison)" if plan.quick else ""))
    print(results["table"])
    print("written to %s" % os.path.relpath(args.out, os.getcwd()))
    return 0



if __name__ == "__main__":
    sys.exit(main())
