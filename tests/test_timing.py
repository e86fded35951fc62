"""A request's metrics (its stage timings) and their CloudWatch embedded-metric-format (EMF) line."""
import json

from ssd_serving import timing


def test_a_stage_met_twice_adds_up_and_stages_come_in_request_order():
    times = timing.RequestMetrics()
    times.add("forward", 5.0)
    times.add("decode", 1.0)
    times.add("forward", 7.0)
    with times.stage("encode"):
        pass
    names = [name for name, _ in times.ordered()]
    assert names == ["decode", "forward", "encode"]
    assert dict(times.ordered())["forward"] == 12.0 and dict(times.ordered())["encode"] >= 0.0


def test_the_emf_document_declares_each_metric_it_carries():
    times = timing.RequestMetrics()
    for stage, ms in (("queue_wait", 2.0), ("decode", 3.5), ("preprocess", 1.25), ("forward", 20.0),
                      ("postprocess", 0.5), ("encode", 0.25)):
        times.add(stage, ms)
    line = timing.emf_line(times, "SSDServing", "ssd_256_demo_shapes", "req-1", 200, 1, 26.0, now=1700000000.5)
    # CloudWatch extracts metrics only from a log event that is the JSON document itself; the model server's
    # log configuration recognises the line by its start
    assert line.startswith(timing.EMF_PREFIX) and "\n" not in line
    document = json.loads(line)
    directive = document["_aws"]["CloudWatchMetrics"][0]
    assert document["_aws"]["Timestamp"] == 1700000000500
    assert directive["Namespace"] == "SSDServing" and directive["Dimensions"] == [["Model"]]
    names = [metric["Name"] for metric in directive["Metrics"]]
    assert names == ["QueueWait", "Decode", "Preprocess", "Forward", "Postprocess", "Encode", "Total"]
    assert all(metric["Unit"] == "Milliseconds" for metric in directive["Metrics"])
    for name in names:  # every declared metric has its value at the top level, a number
        assert isinstance(document[name], float)
    assert document["Forward"] == 20.0 and document["Total"] == 26.0
    assert document["Model"] == "ssd_256_demo_shapes" and document["RequestId"] == "req-1"
    assert document["Status"] == 200 and document["Images"] == 1
    assert "Batch" not in document and "TargetModel" not in document  # said only where they say something


def test_requests_handed_over_together_and_a_multi_model_endpoints_model_are_named_last():
    document = json.loads(timing.emf_line(timing.RequestMetrics(), "NS", "m", "r", 200, 1, 3.0, batch=4,
                                          target_model="kitchen.tar.gz"))
    assert list(document)[-2:] == ["Batch", "TargetModel"]
    assert document["Batch"] == 4 and document["TargetModel"] == "kitchen.tar.gz"


def test_a_refused_request_reports_only_what_it_went_through():
    document = json.loads(timing.emf_line(timing.RequestMetrics(), "NS", "m", "r", 400, 0, 0.4))
    assert [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]] == ["Total"]
    assert document["Status"] == 400 and "Forward" not in document


def test_the_queue_wait_is_read_from_the_front_doors_stamp_only_when_it_makes_sense():
    assert timing.queue_wait_ms("100.000", now=100.25) == 250.0
    for stamp in (None, "", "soon", "nan", "200.0", "1e300"):  # missing, garbage, in the future, absurd
        assert timing.queue_wait_ms(stamp, now=100.0) is None

