"""The docs' measured figures: the committed ones match docs/results, and the renderer puts the results' figures in."""
import json
import os
import re

import pytest

from ssd_tools import figures

BENCH = {
    "schema": figures.BENCH_SCHEMA,
    "models": {"demo": {"name": "demo", "int8": {"accuracy": {"map_fp32": 0.9, "map_int8": 0.895, "drop_points": 0.5,
                                                              "scenes": 12}}},
               "default": {"ratios": {"int8_floor_speedup": 3.1, "int8_e2e_speedup": 2.6}}},
    "targets": {"int8_map_drop_points": ["<=", 1.0, "demo detector mAP, fp32 - int8, points"]},
    "host": {"cpu_model": "Test CPU", "cpus": 4, "cpu_flags": ["avx2", "avx512_vnni"]},
    "table": "| made-up | table |",
}
SOAK = {"seconds": 60.0, "concurrency": 2, "requests": 10, "valid": 8, "invalid": 2, "problems": [],
        "pings": {"count": 60, "failed": 0, "max s": 1.234}, "by kind": {},
        "valid latency s": {"p50": 0.5, "p90": 0.6, "p99": 0.7, "max": 0.8}}
DOC = """# made up

The drop is <!-- figures:int8-drop -->typed by hand<!-- /figures:int8-drop --> here;
the slowest ping <!-- figures:soak-ping-max --><!-- /figures:soak-ping-max -->,
on <!-- figures:int8-host -->?<!-- /figures:int8-host -->.

<!-- figures:bench-table -->
<!-- /figures:bench-table -->
"""


@pytest.fixture
def tree(tmp_path):
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "bench.json").write_text(json.dumps(BENCH))
    (tmp_path / "docs" / "results" / "soak.json").write_text(json.dumps(SOAK))
    (tmp_path / "docs" / "made-up.md").write_text(DOC)
    (tmp_path / "README.md").write_text("# no figures here\n")
    return tmp_path


def test_readme_names_every_module_of_both_packages():
    root = os.path.dirname(os.path.dirname(os.path.abspath(figures.__file__)))
    with open(os.path.join(os.path.dirname(root), "README.md")) as stream:
        where = stream.read().split("## What is where", 1)[1]
    named = set(re.findall(r"^\| `([\w/]+\.py)` \|", where, re.M))
    for package in ("ssd_serving", "ssd_tools"):
        top = os.path.join(root, package)
        for folder, _, files in os.walk(top):
            for name in files:
                relative = os.path.relpath(os.path.join(folder, name), top).replace(os.sep, "/")
                if name.endswith(".py") and name != "__init__.py":
                    assert relative in named, "README's What is where does not name %s/%s" % (package, relative)


def test_the_committed_docs_show_what_docs_results_say():
    assert figures.main(["--check"]) == 0, "run python -m ssd_tools.figures (make docs) and commit the docs"


def test_render_puts_the_results_figures_in_place_of_what_was_typed(tree):
    assert figures.main(["--root", str(tree)]) == 0
    text = (tree / "docs" / "made-up.md").read_text()
    assert "<!-- figures:int8-drop -->0.50 points<!-- /figures:int8-drop -->" in text
    assert "typed by hand" not in text
    assert "<!-- figures:soak-ping-max -->1.23 s<!-- /figures:soak-ping-max -->" in text
    assert "Test CPU, 4 vCPUs, avx2, avx512_vnni" in text and "without VNNI" not in text
    assert "<!-- figures:bench-table -->\n```\n| made-up | table |\n```\n<!-- /figures:bench-table -->" in text
    assert (tree / "README.md").read_text() == "# no figures here\n"
    assert figures.main(["--root", str(tree), "--check"]) == 0


def test_check_names_the_stale_block_and_changes_nothing(tree, capsys):
    figures.main(["--root", str(tree)])
    doc = tree / "docs" / "made-up.md"
    edited = doc.read_text().replace("0.50 points", "0.1 point")
    doc.write_text(edited)
    assert figures.main(["--root", str(tree), "--check"]) == 1
    assert "docs/made-up.md: int8-drop" in capsys.readouterr().err
    assert doc.read_text() == edited


def test_new_results_make_the_docs_stale(tree, capsys):
    figures.main(["--root", str(tree)])
    bench = dict(BENCH, models=dict(BENCH["models"], demo={"name": "demo", "int8": {"accuracy": dict(
        BENCH["models"]["demo"]["int8"]["accuracy"], drop_points=0.75)}}))
    (tree / "docs" / "results" / "bench.json").write_text(json.dumps(bench))
    assert figures.main(["--root", str(tree), "--check"]) == 1
    assert "int8-drop" in capsys.readouterr().err
    figures.main(["--root", str(tree)])
    assert "0.75 points" in (tree / "docs" / "made-up.md").read_text()


@pytest.mark.parametrize("doc, message", [
    ("<!-- figures:no-such-block -->x<!-- /figures:no-such-block -->", "no figures block is called 'no-such-block'"),
    ("<!-- figures:int8-drop -->x", "<!-- figures:int8-drop --> has no matching <!-- /figures:int8-drop -->"),
    ("<!-- figures:demo-costs -->x<!-- /figures:demo-costs -->",
     "demo-costs: docs/results/bench.json has no models.demo.floor.forward_ms.p50"),
])
def test_what_cannot_be_rendered_is_an_error_naming_it(tree, doc, message):
    (tree / "docs" / "made-up.md").write_text(doc)
    with pytest.raises(figures.FiguresError, match=re.escape("docs/made-up.md: " + message)):
        figures.stale(str(tree))


def test_missing_results_say_how_to_make_them(tree, capsys):
    os.remove(str(tree / "docs" / "results" / "soak.json"))
    assert figures.main(["--root", str(tree), "--check"]) == 2
    assert "docs/results/soak.json is missing: make soak" in capsys.readouterr().err


def test_take_soak_adds_where_and_when_it_ran(tree):
    report = tree / "soak-report.json"
    report.write_text(json.dumps(dict(SOAK, seconds=12.5)))
    figures.take_soak(str(tree), str(report), commit="abc1234", date="2026-01-02T03:04:05")
    taken = json.loads((tree / "docs" / "results" / "soak.json").read_text())
    assert taken["git_commit"] == "abc1234" and taken["date"] == "2026-01-02T03:04:05"
    assert taken["seconds"] == 12.5 and taken["concurrency"] == 2
    assert set(taken["host"]) >= {"cpu_model", "cpus", "cpu_flags"}


def test_take_refuses_what_is_not_a_full_result(tree):
    report = tree / "latest.json"
    report.write_text(json.dumps(dict(BENCH, quick=True)))
    with pytest.raises(figures.FiguresError, match="--quick"):
        figures.take_bench(str(tree), str(report))
    report.write_text(json.dumps({"requests": 3}))
    with pytest.raises(figures.FiguresError, match="not a python -m ssd_tools.soak --json report"):
        figures.take_soak(str(tree), str(report))


def test_bench_results_of_another_schema_are_refused_naming_both(tree, capsys):
    (tree / "docs" / "results" / "bench.json").write_text(json.dumps(dict(BENCH, schema=figures.BENCH_SCHEMA + 1)))
    assert figures.main(["--root", str(tree), "--check"]) == 2
    assert "docs/results/bench.json holds make bench results of schema %d, and this version reads schema %d" % (
        figures.BENCH_SCHEMA + 1, figures.BENCH_SCHEMA) in capsys.readouterr().err
    report = tree / "latest.json"
    for schema in (figures.BENCH_SCHEMA + 1, None):
        report.write_text(json.dumps(dict(BENCH, schema=schema) if schema else
                                     dict((k, v) for k, v in BENCH.items() if k != "schema")))
        with pytest.raises(figures.FiguresError, match="of schema %s, and this version reads schema %d" % (
                re.escape(str(schema or "(none)")), figures.BENCH_SCHEMA)):
            figures.take_bench(str(tree), str(report))
    assert json.loads((tree / "docs" / "results" / "bench.json").read_text())["schema"] == figures.BENCH_SCHEMA + 1


def test_the_multi_model_table_takes_medians_and_what_a_second_model_adds(tree):
    rounds = [{"load_s": s, "rss_before": 400e6, "rss_loaded": loaded, "rss_after_unload": 410e6}
              for s, loaded in ((3.0, 700e6), (2.0, 690e6), (9.0, 720e6))]
    result = {"stacks": {"1.9.1": {"mxnet": "1.9.1", "model_server": "multi-model-server 1.1.11",
                                   "date": "2026-11-30T20:00:00", "rounds": rounds,
                                   "two_models_rss": [400e6, 700e6, 990e6, 420e6]}},
              "host": {"cpu_model": "Test CPU", "cpus": 2, "cpu_flags": ["avx2"], "git_commit": "abc1234"}}
    (tree / "result.json").write_text(json.dumps(result))
    figures.take_multimodel(str(tree), str(tree / "result.json"))
    (tree / "docs" / "made-up.md").write_text("<!-- figures:multimodel-table -->\n<!-- /figures:multimodel-table -->"
                                              " <!-- figures:multimodel-run --><!-- /figures:multimodel-run -->")
    figures.main(["--root", str(tree)])
    text = (tree / "docs" / "made-up.md").read_text()
    assert "| MXNet 1.9.1, multi-model-server 1.1.11 | 3.00 s | 400 MB | 700 MB (+300 MB) | 410 MB | 290 MB |" in text
    assert "commit abc1234" in text and "multi-model-server 1.1.11 on 2026-11-30 20:00" in text
    (tree / "result.json").write_text(json.dumps({"stacks": {}}))
    with pytest.raises(figures.FiguresError, match="not a bench/multimodel.py result"):
        figures.take_multimodel(str(tree), str(tree / "result.json"))


def _study_row(mode, variant, drop, calibration_s):
    return {"mode": mode, "variant": variant, "drop": drop, "fp32_map": 93.0, "int8_map": 93.0 - drop,
            "worst_class": {"class": "circle", "value": 2 * drop}, "agreement": 99.5 - drop, "recall": 98.766,
            "boxes": 843, "calibration_s": calibration_s}


def _floor_entry(images, boxes, passes):
    names = [name for name, _ in figures.INT8_FLOOR_GRAPHS]
    graphs = dict((name, {"drop_all": drop, "labelled_passes": passes, "agreement_passes": 1 - passes,
                          "fp32_boxes": boxes + i}) for i, (name, drop) in enumerate(zip(names, (0.1, 0.4, 1.6, 1.8))))
    graphs["entropy: 1 photo"] = {"drop_all": 9.0, "labelled_passes": 0.0, "agreement_passes": 0.0, "fp32_boxes": 1e6}
    return {"images": images, "graphs": graphs}


def _fallback_row(export, tries, kept, seconds, export_s, start_up):
    return {"export": export, "check_images": "12 scenes", "passed": tries[-1][2],
            "fallback": {"tries": [{"fp32_kept": k, "value": v, "passed": p, "seconds": 3.2} for k, v, p in tries],
                         "seconds": seconds, "stopped": "passed"},
            "fp32_kept_by_fallback": ["conv%d" % i for i in range(kept)], "quantizable_layers": 17,
            "export_s": export_s, "export_s_includes_start_up": start_up}


INT8_STUDY = {
    "scenes": 12,
    "rows": [_study_row("naive", "1 photo", 0.054, 2.5), _study_row("naive", "range x0.60", -0.021, None)],
    "floor": [_floor_entry(10, 27.5, 0.84), _floor_entry(50, 140.26, 0.13)],
    "fallback": {"rows": [_fallback_row("the default", [(0, -0.083, True)], 0, 44.5, 64.6, True),
                          _fallback_row("white", [(0, 5.062, False), (1, 1.155, False), (8, 0.151, True)], 8, 69.96,
                                        94.25, False)]},
}
INT8_DOC = """# made up

<!-- figures:int8-study -->
<!-- /figures:int8-study -->

<!-- figures:int8-floor -->
| typed | by hand |
<!-- /figures:int8-floor -->

<!-- figures:int8-fallback -->
<!-- /figures:int8-fallback -->
"""


@pytest.fixture
def int8_tree(tree):
    (tree / "docs" / "results" / "int8_study.json").write_text(json.dumps(INT8_STUDY))
    (tree / "docs" / "made-up.md").write_text(INT8_DOC)
    return tree


def test_the_int8_study_tables_render_from_its_results(int8_tree):
    assert figures.main(["--root", str(int8_tree)]) == 0
    text = (int8_tree / "docs" / "made-up.md").read_text()
    assert ("<!-- figures:int8-study -->\n| calibration | calibration images (the int8 graph) | mAP drop, labelled, "
            "points | worst class, drop | agreement with fp32 (AP), points | fp32 boxes found, % | calibration, s |\n"
            "| --- | --- | ---: | --- | ---: | ---: | ---: |\n"
            "| naive | 1 photo | 0.05 | circle 0.11 | 99.45 | 98.77 | 3 |\n"
            "| naive | range x0.60 | -0.02 | circle -0.04 | 99.52 | 98.77 | - |\n<!-- /figures:int8-study -->") in text
    # the graphs the table names, in its order, whatever else the floor holds; boxes: their mean
    assert ("<!-- figures:int8-floor -->\n| images (fp32 boxes) | builtin (0.10) | all-black (0.40) | ranges x0.60 "
            "(1.60) | noise (1.80) |\n| --- | ---: | ---: | ---: | ---: |\n"
            "| 10 (29) | 84% / 16% | 84% / 16% | 84% / 16% | 84% / 16% |\n"
            "| 50 (142) | 13% / 87% | 13% / 87% | 13% / 87% | 13% / 87% |\n<!-- /figures:int8-floor -->") in text
    assert "typed | by hand" not in text
    assert ("| the default | 12 scenes | 0: -0.08 | passed | 45 (of which int8 on the scenes: 3) | 65 with start-up |\n"
            "| white | 12 scenes | 0: 5.06, 1: 1.16, 8: 0.15 | passed, 8 of 17 layers in fp32 | 70 | 94 |\n"
            "<!-- /figures:int8-fallback -->") in text
    assert figures.main(["--root", str(int8_tree), "--check"]) == 0


@pytest.mark.parametrize("typed, edited, block", [
    ("| 10 (29) | 84% / 16% |", "| 10 (29) | 85% / 16% |", "int8-floor"),
    ("| naive | 1 photo | 0.05 |", "| naive | 1 photo | 0.04 |", "int8-study"),
    ("passed, 8 of 17 layers in fp32", "passed, 8 layers in fp32", "int8-fallback"),
])
def test_check_catches_a_hand_edit_of_an_int8_table(int8_tree, capsys, typed, edited, block):
    figures.main(["--root", str(int8_tree)])
    doc = int8_tree / "docs" / "made-up.md"
    assert typed in doc.read_text()
    doc.write_text(doc.read_text().replace(typed, edited, 1))
    assert figures.main(["--root", str(int8_tree), "--check"]) == 1
    assert "stale: docs/made-up.md: %s" % block in capsys.readouterr().err


def test_a_floor_without_a_graph_of_the_table_is_an_error_naming_it(int8_tree):
    study = json.loads(json.dumps(INT8_STUDY))
    del study["floor"][1]["graphs"]["naive: 40 all-black images"]
    (int8_tree / "docs" / "results" / "int8_study.json").write_text(json.dumps(study))
    with pytest.raises(figures.FiguresError, match="the floor has no graph 'naive: 40 all-black images'"):
        figures.stale(str(int8_tree))


def test_take_int8_study_adds_where_it_ran_and_keeps_the_fallback_rows(int8_tree):
    new = dict(INT8_STUDY, rows=[_study_row("entropy", "1 photo", 0.3, 28.0)])
    del new["fallback"]
    (int8_tree / "int8-study.json").write_text(json.dumps(new))
    assert figures.main(["--root", str(int8_tree), "--take-int8-study", str(int8_tree / "int8-study.json")]) == 0
    taken = json.loads((int8_tree / "docs" / "results" / "int8_study.json").read_text())
    assert taken["rows"] == new["rows"] and taken["fallback"] == INT8_STUDY["fallback"]
    assert set(taken) >= {"git_commit", "date", "host", "source"}
    assert "| entropy | 1 photo | 0.30 |" in (int8_tree / "docs" / "made-up.md").read_text()
    del new["floor"]
    (int8_tree / "int8-study.json").write_text(json.dumps(new))
    with pytest.raises(figures.FiguresError, match="not a python -m ssd_tools.demo.int8_study --floor result"):
        figures.take_int8_study(str(int8_tree), str(int8_tree / "int8-study.json"))


def test_the_hop_profile_renders_one_column_per_server_and_wait_with_the_no_op_first(tree):
    one = dict((part, 0.5) for part in figures.HOP_PARTS)
    one.update({"end_to_end": 2.345, "outside_worker": 1.6, "worker_stages": 0.1, "none_on_cpu": 0.0, "wake_ups": 11.0,
                "wake_ups_onto_idle_cpu": 3.0, "wake_up_p50_us": 27.4, "switches_not_in_trace": 1200, "requests": 400})
    hops = {"servers": {"demo model": {"0": dict(one, end_to_end=15.0)},
                        "no-op": {"13": one, "0": dict(one, end_to_end=1.5)}},
            "requests": 400, "warm_up": 1500, "date": "2026-12-04T15:00:00",
            "host": dict(BENCH["host"], git_commit="abc1234")}  # bench/common.py host_info, as hops.py records it
    report = tree / "hops.json"
    report.write_text(json.dumps(hops))
    figures.take_hops(str(tree), str(report))
    (tree / "docs" / "hops.md").write_text("<!-- figures:hop-run --><!-- /figures:hop-run -->\n\n"
                                          "<!-- figures:hop-profile -->\n<!-- /figures:hop-profile -->\n")
    assert figures.main(["--root", str(tree)]) == 0
    text = (tree / "docs" / "hops.md").read_text()
    assert "`make bench-hops` on commit abc1234, 2026-12-04 15:00: Test CPU, 4 vCPUs" in text
    assert "| p50 per request | no-op, back to back | no-op, after 13 ms | demo model, back to back |" in text
    assert "| end to end (the client's clock) | 1.50 ms | 2.35 ms | 15.00 ms |" in text
    assert "| thread wake-ups | 11 | 11 | 11 |" in text
    assert "| a wake-up seen whole, from waking to running | 27 us |" in text
    report.write_text(json.dumps({"servers": {}}))
    with pytest.raises(figures.FiguresError, match="not a bench/hops.py result"):
        figures.take_hops(str(tree), str(report))


def test_the_no_op_hop_figures_put_the_interleaved_rounds_beside_the_server_alone_and_the_run_its_wake_up(tmp_path):
    """From the committed bench results: the targets row and the prose figure show the interleaved p50 and the no-op
    alone (measure.idle_gap_probe), each from its own field; a run without the alone figures has the row without
    them."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(root, "docs", "results", "bench.json")) as stream:
        bench = json.load(stream)
    demo = bench["models"]["demo"]
    interleaved = demo["noop"]["timeline_lean_client_ms"]["outside_worker"]
    back_to_back, after_wait = (gap["timeline_ms"]["outside_worker"] for gap in demo["noop"]["idle_gaps"])
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "bench.json").write_text(json.dumps(bench))
    doc = tmp_path / "docs" / "hops.md"
    doc.write_text("<!-- figures:bench-run --><!-- /figures:bench-run -->\n\n"
                   "<!-- figures:targets -->\n<!-- /figures:targets -->\n\n"
                   "<!-- figures:noop-interleaved-vs-alone --><!-- /figures:noop-interleaved-vs-alone -->\n")
    assert figures.main(["--root", str(tmp_path)]) == 0
    text = doc.read_text()
    alone = "alone, not interleaved: %s ms back to back, %s ms after an idle wait" % (
        figures.ms(demo["ratios"]["noop_outside_worker_back_to_back_p50_ms"]),
        figures.ms(demo["ratios"]["noop_outside_worker_after_idle_p50_ms"]))
    assert alone in text
    longest = demo["noop"]["idle_gaps"][-1]
    assert "a process wake-up after a %s ms wait took %s us (the machine's state)" % (
        figures.ms(longest["gap_ms"]), figures.ms(longest["wake_round_trip_us"])) in text
    assert "%s ms outside its worker in the interleaved rounds, and %s ms back to back and %s ms after a %s ms wait " \
           "alone" % (figures.ms(interleaved), figures.ms(back_to_back), figures.ms(after_wait),
                      figures.ms(demo["noop"]["idle_gaps"][1]["gap_ms"])) in text
    for alone_ratio in ("noop_outside_worker_back_to_back_p50_ms", "noop_outside_worker_after_idle_p50_ms"):
        del demo["ratios"][alone_ratio]
    (tmp_path / "docs" / "results" / "bench.json").write_text(json.dumps(bench))
    assert figures.main(["--root", str(tmp_path)]) == 0
    text = doc.read_text()
    assert "alone, not interleaved" not in text
    assert "| the no-op entry point's (bench/noop) time outside its worker's stages" in text
    del demo["noop"]["idle_gaps"]
    (tmp_path / "docs" / "results" / "bench.json").write_text(json.dumps(bench))
    doc.write_text("<!-- figures:bench-run --><!-- /figures:bench-run -->\n")  # the prose figure needs the gaps
    assert figures.main(["--root", str(tmp_path)]) == 0
    assert "`make bench` on commit" in doc.read_text() and "process wake-up" not in doc.read_text()
