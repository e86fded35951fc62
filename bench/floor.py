"""The floor: the served graph's own forward time at batch 1, plus each per-request stage, in a process set up like a server worker.

    python bench/floor.py --model-dir DIR --photos DIR [--stage-runs N]

Loads the model as serving does, prints one JSON line (device, precision, stage timings), then
answers commands on stdin, one JSON line each: `forward N` (N forward times in seconds), `quit`.
bench.py keeps it running and interleaves its forwards with the servers' requests, so that the
floor and the end-to-end figures see the same load on a shared machine. Run it with the worker's
environment (OMP_NUM_THREADS, MXNET_CPU_WORKER_NTHREADS): bench.py does.
"""
import argparse
import json
import os
import sys
import time

import numpy as np


def summary(seconds):
    ms = np.asarray(seconds, dtype=np.float64) * 1000.0
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p90": round(float(np.percentile(ms, 90)), 2),
            "min": round(float(ms.min()), 2), "n": int(ms.size)}


def timed(function, runs):
    seconds = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--photos", required=True, help="directory with photo-640x480.jpg and photo-12mp.jpg")
    parser.add_argument("--stage-runs", type=int, default=10)
    args = parser.parse_args(argv)

    import mxnet as mx
    from ssd_serving import response
    from ssd_serving.decoder import decode_image
    from ssd_serving.model import fuses_graph, load_detector

    with open(os.path.join(args.photos, "photo-640x480.jpg"), "rb") as stream:
        small = stream.read()
    with open(os.path.join(args.photos, "photo-12mp.jpg"), "rb") as stream:
        large = stream.read()

    start = time.perf_counter()
    detector = load_detector(args.model_dir)
    load_s = time.perf_counter() - start
    target = (detector.input_width, detector.input_height)
    decoded = decode_image(small, target)
    x = detector.preprocess(decoded.rgb)
    if detector.device_name == "gpu":  # as Detector.raw_outputs does; EI takes CPU inputs
        x = x.as_in_context(detector.ctx)

    def forward():
        for output in detector.net(x):
            output.wait_to_read()

    for _ in range(3):  # as the server's warm-up does, and a little more
        forward()

    runs = args.stage_runs
    reduced = decode_image(large, target)
    detections = detector.detect(decoded.rgb, threshold=0.0, original_size=decoded.original_size)
    prediction = response.Prediction([response.ImageResult(detections, decoded)], detector.info, False,
                                     detector.settings)
    stages = {
        "decode_640x480": timed(lambda: decode_image(small, target), runs),
        "decode_12mp_reduced": timed(lambda: decode_image(large, target), runs),
        # what serving did before reduced-scale decoding: full decode (then the resize shrinks it)
        "decode_12mp_full": timed(lambda: decode_image(large, None), max(3, runs // 3)),
        "preprocess_640x480": timed(lambda: detector.preprocess(decoded.rgb).wait_to_read(), runs),
        "preprocess_12mp_reduced": timed(lambda: detector.preprocess(reduced.rgb).wait_to_read(), runs),
        "json_response_all_100": timed(lambda: response.encode_prediction(prediction, "application/json"), runs),
    }
    print(json.dumps({
        "model_dir": args.model_dir, "device": detector.device_name, "precision": detector.info["precision"],
        "fused": fuses_graph(detector.meta, detector.device_name, detector.settings.graph_fusion), "load_s": round(load_s, 2),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "mxnet": mx.__version__,
        "stages_ms": dict((name, summary(values)) for name, values in stages.items()),
        "decoded_12mp_size": list(reduced.rgb.shape[1::-1]),
    }), flush=True)
    for line in sys.stdin:
        command = line.split()
        if not command or command[0] == "quit":
            break
        if command[0] == "forward":
            print(json.dumps(timed(forward, int(command[1]))), flush=True)


if __name__ == "__main__":
    main()
