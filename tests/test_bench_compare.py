"""bench/compare.py's parts that decide which code each side serves: a commit's served trees exported from git, each
side's import resolved to its own tree (by a real Python started as the servers are), and the ratio it prints.
`make bench-compare` runs the whole of it; tests/test_bench.py runs it short against this checkout's HEAD."""
import os
import subprocess

import pytest

from helpers import ROOT, load_bench_module


def compare():
    return load_bench_module("compare")


def git_show(commit, path):
    return subprocess.run(["git", "-C", ROOT, "show", "%s:%s" % (commit, path)], stdout=subprocess.PIPE,
                          check=True).stdout


def test_a_commits_served_trees_come_out_of_git_and_nothing_else(tmp_path):
    module = compare()
    head = module.resolve_commit("HEAD")
    tree = module.export_tree(head, str(tmp_path))
    assert sorted(os.listdir(tree)) == sorted(module.SERVED_TREES)
    for path in ("container/ssd_serving/serving.py", "code/inference.py"):
        with open(os.path.join(tree, path), "rb") as stream:
            assert stream.read() == git_show(head, path)


def test_a_name_that_is_no_commit_stops_the_run_saying_what_to_give(tmp_path):
    with pytest.raises(SystemExit) as stopped:
        compare().resolve_commit("no-such-commit-anywhere")
    assert "BASE=" in str(stopped.value) and "no-such-commit-anywhere" in str(stopped.value)


def test_each_side_imports_the_serving_package_from_its_own_tree(tmp_path):
    module = compare()
    # a folder no Python has ssd_serving installed from
    exported = module.export_tree(module.resolve_commit("HEAD"), str(tmp_path / "base"))
    imports = dict(module.check_imports([("base", exported), ("working tree", ROOT)]))
    assert imports["base"] == os.path.join(os.path.realpath(exported), "container", "ssd_serving", "__init__.py")
    assert imports["working tree"].startswith(os.path.join(ROOT, "container") + os.sep)


def test_a_tree_without_the_serving_package_is_refused_by_name(tmp_path):
    (tmp_path / "container").mkdir()
    with pytest.raises(SystemExit) as stopped:
        list(compare().check_imports([("base", str(tmp_path))]))
    # this venv's own ssd_serving (the working tree's, installed editable) would answer instead: refused
    assert "the base side would import ssd_serving from" in str(stopped.value)


def test_the_ratio_is_the_working_trees_p50_over_the_bases():
    results = {"sides": ["base", "working tree"], "code": {"base": "ba41509", "working tree": "b5553b4"},
               "latency": {"base": {"p50": 17.17, "p90": 19.18, "n": 600},
                           "working tree": {"p50": 15.36, "p90": 17.35, "n": 600}}}
    text = compare().table(results)
    assert "| base | ba41509 | 17.17 | 19.18 | 600 |" in text
    assert text.endswith("working tree / base p50: 0.895")
