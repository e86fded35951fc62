"""The server entry point (`python -m ssd_serving.serving serve`): check the model, configure and start Multi Model
Server, watch it, drain and stop it.

Layout: the front door (front.py) owns the public port (SAGEMAKER_BIND_TO_PORT, default 8080) and answers
`/ping` from what the workers report; Multi Model Server (model_server.py) listens on loopback ports only
(inference and management) and runs the workers. startup.py checks the model before anything starts;
supervision.py watches what started, drains on SIGTERM and owns the exit statuses, listed below from its table.

"""
from __future__ import absolute_import

import argparse
import logging
import os
import sys
import threading

from . import page
from .environment import MODEL_DIR_ENV, PORT_ENV, Environment, SettingError
from .errors import ModelLoadError
from .front import FrontDoor
from .layout import choose_layout
from .memory import plan_memory
from .model_server import ModelServer, internal_port
from .multimodel import Models
from .startup import preflight
from .supervision import (EXIT_NOT_STARTED, EXIT_PUBLIC_PORT_UNAVAILABLE, exit_statuses_text, serve_until_stopped,
                          shut_down, stop_on_signals)

__doc__ = (__doc__ or "") + exit_statuses_text()  # None under python -OO

LOG = logging.getLogger("ssd_serving.serving")

# the front door waits this much longer than MMS gives a worker, so that MMS's own timeout answers first
UPSTREAM_GRACE_SECONDS = 30


def serve(port=None):
    """Run the server until it stops or SIGTERM arrives; return the exit status."""
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = Environment()
        # a multi-model endpoint starts with no model: each is checked when SageMaker loads it (multimodel.py)
        if settings.multi_model:
            model_dir, layout = settings.sagemaker_model_dir, choose_layout(settings)
        else:
            model_dir, _, layout = preflight(settings)
    except (SettingError, ModelLoadError) as err:  # a bad setting stops here too, naming it
        LOG.error("not starting: %s", err)
        return EXIT_NOT_STARTED
    worker_env = {}
    if model_dir != settings.sagemaker_model_dir:
        # workers run in another directory: give them the absolute path
        worker_env[MODEL_DIR_ENV] = os.path.abspath(model_dir)
    public_port = port or settings.http_port
    # MMS on loopback only; the front door owns the public port and answers /ping honestly
    plan = plan_memory(settings, layout)
    if plan.in_flight < layout.max_concurrent_requests:
        LOG.warning("%d requests in flight (SSD_MAX_CONCURRENT_REQUESTS) would not fit in the model server's heap "
                    "with %d MB of memory; letting %d through at a time", layout.max_concurrent_requests,
                    plan.memory // (1024 * 1024), plan.in_flight)
        layout = layout.limited_to(plan.in_flight)
    LOG.info(plan.describe())
    server = ModelServer(internal_port(taken=(public_port,), safe_range=settings.safe_port_range), settings,
                         host="127.0.0.1", worker_env=worker_env, jvm_args=plan.jvm_args(), layout=layout)
    warmed_up = threading.Event()

    def public_health():
        """/ping stays 503 until the launcher's warm-up request has been through the front door too:
        a client sent in the moment /ping turned 200 otherwise queued behind it (measured: the first
        request cost 1.23x a steady one for ssd_512_resnet50, 2.2x for the demo model)."""
        ready, reason = server.health()
        if ready and not warmed_up.is_set():
            return False, "the model is loaded; warming up the request path"
        return ready, reason

    try:
        front = FrontDoor(public_port, server.port, public_health, settings.max_request_bytes,
                          upstream_timeout=settings.response_timeout + UPSTREAM_GRACE_SECONDS,
                          max_in_flight=layout.max_concurrent_requests, queue_timeout=settings.queue_timeout,
                          execution_parameters=settings.execution_parameters(layout),
                          models=Models(server.mgmt_port, server.store, settings, layout) if settings.multi_model
                          else None,
                          invocations_path=server.invocations_path,
                          web_page=page.html() if settings.web_page else None,
                          server_timing=settings.request_metrics)
    except OSError as err:
        LOG.error("not starting: cannot listen on port %d: %s", public_port, err)
        server.cleanup()
        return EXIT_PUBLIC_PORT_UNAVAILABLE

    stop = stop_on_signals(front, server)
    status = None
    try:
        front.start()
        server.start()
        status = serve_until_stopped(front, server, settings, stop, warmed_up, public_port)
        return status
    finally:
        shut_down(front, server, stop, settings.drain_timeout, status)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", nargs="?", default="serve", choices=["serve"])
    parser.add_argument("--port", type=int, help="port to serve on (default: %s or 8080)" % PORT_ENV)
    args = parser.parse_args(argv)
    sys.exit(serve(args.port))


if __name__ == "__main__":
    main()
