"""A short load and soak run against the real server (tests/soak.py; `make soak` runs a long one).

SOAK_SECONDS (default 45) and SOAK_CONCURRENCY (default 8) set its length and load. Latencies are
reported, not asserted; what must hold is in tests/soak.py: valid requests answered 200, invalid ones
their 4xx, no hang, /ping healthy throughout, worker RSS growth after warm-up at most 10%.
"""
import os

import pytest

from helpers import ready_server
from soak import Soak, format_report


@pytest.fixture(scope="module")
def soak_server(demo_model_dir):
    with ready_server(demo_model_dir) as running:  # its own: the soak samples its processes' memory
        yield running


def test_soak_under_mixed_load(soak_server):
    seconds = float(os.environ.get("SOAK_SECONDS", 45))
    soak = Soak(soak_server.url, seconds, int(os.environ.get("SOAK_CONCURRENCY", 8)),
                server_pid=soak_server.process.pid, warmup=min(15.0, seconds / 3))
    report = soak.run()
    print("\n" + format_report(report))
    assert not report["problems"], format_report(report)
