"""A short load and soak run against the real server (ssd_tools.soak; `make soak` runs a long one), and the same run
against a deliberately leaking entry point, which its memory check must catch.

SOAK_SECONDS (default 45) and SOAK_CONCURRENCY (default 8) set the first run's length and load. Latencies are
reported, not asserted; what must hold is in ssd_tools/soak.py: valid requests answered 200, invalid ones their 4xx,
no hang, /ping healthy throughout, and memory as judge_memory judges it (the JVM within its heap cap plus its
native allowance, no other process still rising in the last third of the run, every process seen).
"""
import os
import textwrap

import pytest

from helpers import ready_server
from ssd_tools.soak import Soak, format_report


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
    assert report["rss"]["jvm"]["check"] == "bound" and report["rss"]["workers"]["check"] == "trend"


# An entry point that keeps every request body it is given, and half a megabyte of its own with each (as a
# handler that caches what it decodes would): what a leak in a handler looks like from outside. The half megabyte
# keeps the growth clear of the criterion's tolerance however few requests a busy machine gets through: the bodies
# alone grew each worker by only 3 MB in 30 s when the machine was shared with other test runs.
LEAKING_ENTRY_POINT = textwrap.dedent('''
    """The project's entry point, except that input_fn keeps every request body, and half a megabyte with it, for ever
    (a deliberate leak)."""
    import functools

    import inference
    from inference import model_fn, output_fn, predict_fn  # noqa: F401

    KEPT = []


    @functools.wraps(inference.input_fn)  # the same parameters, so the handler calls it as it calls the real one
    def input_fn(request_body, *args, **kwargs):
        KEPT.append((bytes(request_body), b"\\x01" * (1 << 19)))  # written bytes: resident, not a lazy zero page
        return inference.input_fn(request_body, *args, **kwargs)
''')


def test_the_soak_catches_a_handler_that_keeps_every_request(demo_model_dir, tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "leaking.py").write_text(LEAKING_ENTRY_POINT)
    repo_code = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "code")
    env = {"SAGEMAKER_PROGRAM": "leaking.py", "PYTHONPATH": os.pathsep.join([str(code), repo_code])}
    with ready_server(demo_model_dir, env) as running:
        soak = Soak(running.url, 30, 4, server_pid=running.process.pid, warmup=10)
        report = soak.run()
    print("\n" + format_report(report))
    # every request was still answered as it should be: only the memory check can tell
    assert not [p for p in report["problems"] if "RSS" not in p], format_report(report)
    assert any(p.startswith("workers RSS still rising at the end") for p in report["problems"]), format_report(report)
    assert report["rss"]["workers"]["held"] is False
