"""The floor: the served graph's own forward time at batch 1, plus each per-request stage, in one process set up like a server worker.

    python bench/floor.py --model-dir DIR --photos DIR --runs N   (prints one JSON object)

Run it with the worker's environment (OMP_NUM_THREADS, MXNET_CPU_WORKER_NTHREADS): bench.py does.
"""
import argparse
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
for path in (os.path.join(ROOT, "container"), os.path.join(ROOT, "code")):
    if path not in sys.path:
        sys.path.insert(0, path)

import numpy as np  # noqa: E402


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


def forward_times(detector, x, runs):
    def forward():
        for output in detector.net(x):
            output.wait_to_read()
    for _ in range(3):  # as the server's warm-up does, and a little more
        forward()
    return timed(forward, runs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--photos", required=True, help="directory with photo-640x480.jpg and photo-12mp.jpg")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--stage-runs", type=int, default=10)
    parser.add_argument("--unfused", action="store_true", help="also time the exported graph without oneDNN fusion")
    args = parser.parse_args(argv)

    import mxnet as mx
    from ssd_serving import environment, response
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
    result = {
        "model_dir": args.model_dir, "device": detector.device_name, "precision": detector.info["precision"],
        "fused": fuses_graph(detector.meta, detector.device_name), "load_s": round(load_s, 2),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "mxnet": mx.__version__,
        "forward_ms": summary(forward_times(detector, x, args.runs)),
    }
    if args.unfused and result["fused"]:
        os.environ[environment.GRAPH_FUSION_ENV] = "0"
        plain = load_detector(args.model_dir)
        result["forward_unfused_ms"] = summary(forward_times(plain, x, max(5, args.runs // 2)))
        del plain

    runs = args.stage_runs
    full_size = None

    def decode_full():
        # what serving did before reduced-scale decoding: full decode (then the resize shrinks it)
        decode_image(large, None)

    stages = {
        "decode_640x480": timed(lambda: decode_image(small, target), runs),
        "decode_12mp_reduced": timed(lambda: decode_image(large, target), runs),
        "decode_12mp_full": timed(decode_full, max(3, runs // 3)),
        "preprocess_640x480": timed(lambda: detector.preprocess(decoded.rgb).wait_to_read(), runs),
    }
    reduced = decode_image(large, target)
    full_size = list(reduced.rgb.shape[1::-1])
    stages["preprocess_12mp_reduced"] = timed(lambda: detector.preprocess(reduced.rgb).wait_to_read(), runs)
    detections = detector.detect(decoded.rgb, threshold=0.0, original_size=decoded.original_size)
    prediction = response.Prediction([response.ImageResult(detections, decoded)], detector.info, False)
    stages["json_response_all_100"] = timed(lambda: response.encode_prediction(prediction, "application/json"), runs)
    result["stages_ms"] = dict((name, summary(values)) for name, values in stages.items())
    result["decoded_12mp_size"] = full_size
    print(json.dumps(result))


if __name__ == "__main__":
    main()
