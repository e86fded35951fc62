"""The bench's timeline of one request (bench/measure.py timeline): the Server-Timing header and the client's time laid
out as consecutive parts that add up to the client's whole."""

from helpers import load_bench_module


def bench():
    return load_bench_module("measure")


HEADER = ("queue;dur=7.6, decode;dur=2.8, preprocess;dur=4.4, forward;dur=33.8, postprocess;dur=0.4, encode;dur=0.2, "
          "worker;dur=42.0, read;dur=0.1, upstream;dur=56.9, front;dur=57.0")


def test_a_request_is_laid_out_in_parts_that_add_up_to_the_clients_time():
    module = bench()
    parts = module.timeline(HEADER, 60.0)
    assert parts["to_worker"] == 7.5 and parts["worker"] == 42.0
    assert round(parts["back_from_worker"], 6) == 7.4 and round(parts["front_write"], 6) == 0.0
    assert round(parts["client_and_network"], 6) == 3.0
    ordered = [name for name, _ in module.TIMELINE_PARTS]
    assert round(sum(parts[name] for name in ordered), 6) == 60.0


def test_an_answer_without_the_front_doors_timings_has_no_timeline():
    module = bench()
    assert module.timeline(None, 10.0) == {}
    assert module.timeline("queue;dur=1.0, worker;dur=2.0", 10.0) == {}  # a server without the front door's parts
    summary = module.timeline_summary([{}, {}])
    assert "skipped" in summary
