"""Serve the original write-up's path (bench/original_service.py) through the same Multi Model Server launcher, for comparison only.

    BENCH_ORIGINAL_MODEL=zoo-random:ssd_512_resnet50_v1_voc@0 python bench/original_server.py --port 8081
"""
import argparse
import logging
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

from ssd_serving.model_server import ModelServer
from ssd_serving.environment import Environment


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s: %(message)s")
    server = ModelServer(args.port, Environment(), handler="original_service:handle", python_path=HERE)
    signal.signal(signal.SIGTERM, lambda signum, frame: server.request_stop())
    signal.signal(signal.SIGINT, lambda signum, frame: server.request_stop())
    try:
        server.start()
        if not server.wait_ready(args.timeout):
            return 0 if server.stopping else 3
        print("ready: original approach on port %d" % args.port, flush=True)
        server.wait()
        return 0
    finally:
        server.stop()
        server.cleanup()


if __name__ == "__main__":
    sys.exit(main())
