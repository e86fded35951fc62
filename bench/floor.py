"""The floor: the served graph's forward time at batch 1 in a clean process; or, with --stages, each request stage.

    python bench/floor.py --model-dir DIR [--photos DIR --stages [--stage-runs N]]

Without --stages: loads the graph as serving does, prints one JSON line (device, precision), then answers
commands on stdin, one JSON line each: `forward N` (N forward times in seconds), `quit`. The process
runs nothing but the graph (its input is made by MXNet, no image decoding or OpenCV resize ever runs in
it), so the floor is the forward as fast as this machine runs it: a server whose forward is slower
inside its worker shows as a gap against it, not as a slower floor. bench.py keeps it running and
interleaves its forwards with the servers' requests, so that the floor and the end-to-end figures see
the same load on a shared machine. Run it with the worker's environment (OMP_NUM_THREADS,
MXNET_CPU_WORKER_NTHREADS): bench.py does.

With --stages: times decoding, preprocessing and encoding as serving runs them, and the forward at batch 1
and at batch BATCH_PROBE (what server-side batching could gain per image), prints one JSON line, exits.
"""
import argparse
import json
import os
import sys
import time

from common import summary

BATCH_PROBE = 4  # images per forward for the batching probe
STAGE_STATS = ("p50", "p90", "min")  # what each stage's timings are summed up to
STAGE_WARM_UP = 3  # unmeasured runs of each stage first
CHEAP_STAGE_RUNS_PER_RUN = 10  # the 640x480 stages (a few ms each) run this many times as often as --stage-runs


def timed(function, runs, warm_up=0):
    for _ in range(warm_up):
        function()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--photos", help="directory with photo-640x480.jpg and photo-12mp.jpg (--stages)")
    parser.add_argument("--stages", action="store_true", help="time the per-request stages, then exit")
    parser.add_argument("--stage-runs", type=int, default=10)
    args = parser.parse_args(argv)
    if args.stages:
        if not args.photos:
            parser.error("--stages needs --photos")
        return time_stages(args)
    return serve_forwards(args)


def serve_forwards(args):
    """The clean-process floor: the graph alone, its forwards timed on request."""
    import mxnet as mx
    from ssd_serving.model import fuses_graph, load_detector

    start = time.perf_counter()
    # no warm-up: Detector.warm_up runs the preprocessing (OpenCV's resize), which must not run here
    # the graph the folder holds, as its row is labelled: a bench int8 export is measured whether or not SSD_PRECISION
    # =auto would serve it (its accuracy is the bench's int8 accuracy row, not this process's business)
    from ssd_serving.artifact import read_metadata
    precision = "int8" if read_metadata(args.model_dir).get("precision") == "int8" else None
    detector = load_detector(args.model_dir, warm_up=False, wanted_precision=precision)
    load_s = time.perf_counter() - start
    mx.random.seed(7)
    x = mx.nd.random.uniform(shape=(1, 3, detector.input_height, detector.input_width), ctx=detector.ctx)

    def forward():
        for output in detector.net(x):
            output.wait_to_read()

    for _ in range(5):  # as the server's warm-up does, and a little more
        forward()
    print(json.dumps({
        "model_dir": args.model_dir, "device": detector.device_name, "precision": detector.info["precision"],
        "fused": fuses_graph(detector.meta, detector.device_name, detector.settings.graph_fusion),
        "load_s": round(load_s, 2), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "mxnet": mx.__version__,
        "clean_process": True,
    }), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        if command[0] == "forward":
            print(json.dumps(timed(forward, int(command[1]))), flush=True)


def time_stages(args):
    """Decode, preprocess and encode as serving runs them, each timed on its own."""
    from ssd_serving import response
    from ssd_serving.decoder import decode_image
    from ssd_serving.model import load_detector

    with open(os.path.join(args.photos, "photo-640x480.jpg"), "rb") as stream:
        small = stream.read()
    with open(os.path.join(args.photos, "photo-12mp.jpg"), "rb") as stream:
        large = stream.read()

    detector = load_detector(args.model_dir)
    target = (detector.input_width, detector.input_height)
    decoded = decode_image(small, target)
    runs = args.stage_runs
    # a 640x480 request's own stages take a few milliseconds: many more runs of them, after a few unmeasured ones,
    # so that their p50 is the back-to-back cost of the code and not that of its first calls (fresh buffers)
    cheap_runs = CHEAP_STAGE_RUNS_PER_RUN * runs
    reduced = decode_image(large, target)
    detections = detector.detect(decoded.rgb, threshold=0.0, original_size=decoded.original_size)
    prediction = response.Prediction([response.ImageResult(detections, decoded)], detector.info, False,
                                     detector.settings)
    stages = {
        "decode_640x480": timed(lambda: decode_image(small, target), cheap_runs, STAGE_WARM_UP),
        "decode_12mp_reduced": timed(lambda: decode_image(large, target), runs, STAGE_WARM_UP),
        # what serving did before reduced-scale decoding: full decode (then the resize shrinks it)
        "decode_12mp_full": timed(lambda: decode_image(large, None), max(3, runs // 3)),
        "preprocess_640x480": timed(lambda: detector.preprocess(decoded.rgb).wait_to_read(), cheap_runs, STAGE_WARM_UP),
        "preprocess_12mp_reduced": timed(lambda: detector.preprocess(reduced.rgb).wait_to_read(), runs, STAGE_WARM_UP),
        "json_response_all_100": timed(lambda: response.encode_prediction(prediction, "application/json"),
                                       cheap_runs, STAGE_WARM_UP),
    }
    stages.update(time_batches(detector, runs))
    print(json.dumps({
        "stages_ms": dict((name, summary(values, STAGE_STATS)) for name, values in stages.items()),
        "decoded_12mp_size": list(reduced.rgb.shape[1::-1]),
    }), flush=True)


def time_batches(detector, runs):
    """The graph's forward at batch 1, then at batch BATCH_PROBE (fewer runs: each is BATCH_PROBE forwards'
    work), one after the other: a static-shape graph re-plans when the batch changes, so they do not alternate."""
    import mxnet as mx

    def forward_at(batch):
        x = mx.nd.random.uniform(shape=(batch, 3, detector.input_height, detector.input_width), ctx=detector.ctx)

        def forward():
            for output in detector.net(x):
                output.wait_to_read()
        forward()
        forward()  # the new shape's plan, and its warm-up
        return forward

    return {"forward_batch_1": timed(forward_at(1), runs),
            "forward_batch_%d" % BATCH_PROBE: timed(forward_at(BATCH_PROBE), max(3, runs // 3))}


if __name__ == "__main__":
    main()
