"""Which graph a model folder serves (precision.py): fp32 or its int8 variant, by SSD_PRECISION, device and CPU."""
import json
import os

import pytest

from conftest import passed_check
from helpers import copy_model, rewrite_meta
from ssd_serving import precision
from ssd_serving.errors import ModelLoadError

VNNI = {"fpu", "avx2", "avx512f", "avx512_vnni"}
AVX2_ONLY = {"fpu", "avx2", "fma"}


def choose(folder, meta, wanted="auto", device="cpu", flags=VNNI, problem=None):
    return precision.choose(folder, meta, wanted, device, flags, problem)


def test_auto_serves_int8_where_the_cpu_has_vnni_and_says_why(stub_int8_pair):
    root, meta = stub_int8_pair
    choice = choose(root, meta)
    assert choice.precision == "int8" and choice.model_dir == os.path.join(root, "int8")
    assert choice.meta["precision"] == "int8" and "avx512_vnni" in choice.reason


@pytest.mark.parametrize("flag", ["avx_vnni", "amx_int8"])
def test_avx_vnni_and_amx_count_as_int8_dot_products(stub_int8_pair, flag):
    root, meta = stub_int8_pair
    assert choose(root, meta, flags={"avx2", flag}).precision == "int8"


def test_auto_serves_fp32_on_a_cpu_without_int8_dot_products_and_names_what_it_looked_for(stub_int8_pair):
    root, meta = stub_int8_pair
    choice = choose(root, meta, flags=AVX2_ONLY)
    assert choice.precision == "fp32" and choice.model_dir == root
    assert "avx512_vnni, avx_vnni, amx_int8" in choice.reason


@pytest.mark.parametrize("device", ["gpu", "eia"])
def test_auto_serves_fp32_on_gpu_and_ei(stub_int8_pair, device):
    root, meta = stub_int8_pair
    choice = choose(root, meta, device=device)
    assert choice.precision == "fp32" and device in choice.reason


def test_auto_serves_fp32_where_this_mxnet_cannot_run_int8(stub_int8_pair):
    root, meta = stub_int8_pair
    choice = choose(root, meta, problem="MXNet 1.4.1 cannot run the int8 graph")
    assert choice.precision == "fp32" and "MXNet 1.4.1" in choice.reason


def test_auto_without_an_int8_folder_serves_fp32(demo_model_dir):
    meta = json.load(open(os.path.join(demo_model_dir, "model-meta.json")))
    choice = choose(demo_model_dir, meta)
    assert choice.precision == "fp32" and "no int8 graph" in choice.reason


def test_forced_fp32_serves_fp32_even_with_vnni(stub_int8_pair):
    root, meta = stub_int8_pair
    assert choose(root, meta, wanted="fp32").precision == "fp32"


def test_forced_int8_runs_without_vnni_and_says_it_is_slower(stub_int8_pair):
    root, meta = stub_int8_pair
    choice = choose(root, meta, wanted="int8", flags=AVX2_ONLY)
    assert choice.precision == "int8" and "hardly faster" in choice.reason


@pytest.mark.parametrize("device, problem, message", [
    ("gpu", None, "runs on the CPU only"),
    ("cpu", "MXNet 1.4.1 cannot run the int8 graph", "MXNet 1.4.1"),
])
def test_forced_int8_is_refused_where_it_cannot_run(stub_int8_pair, device, problem, message):
    root, meta = stub_int8_pair
    with pytest.raises(ModelLoadError, match=message):
        choose(root, meta, wanted="int8", device=device, problem=problem)


def test_forced_int8_without_an_int8_graph_is_refused(demo_model_dir):
    meta = json.load(open(os.path.join(demo_model_dir, "model-meta.json")))
    with pytest.raises(ModelLoadError, match="holds no int8 graph"):
        choose(demo_model_dir, meta, wanted="int8")


def test_an_int8_folder_made_from_other_weights_is_refused(stub_int8_pair):
    root, meta = stub_int8_pair
    rewrite_meta(os.path.join(root, "int8"), quantization={"fp32_params_sha256": "0" * 64})
    with pytest.raises(ModelLoadError, match="not a quantization of the fp32 model beside it"):
        choose(root, meta)


def test_an_int8_only_folder_is_served_as_int8_or_refused_with_the_reason(demo_model_dir, tmp_path):
    only = copy_model(demo_model_dir, str(tmp_path / "only"), precision="int8")
    meta = json.load(open(os.path.join(only, "model-meta.json")))
    # unchecked, with no fp32 graph to serve instead: auto refuses, int8 forces it with a warning
    with pytest.raises(ModelLoadError, match="records no accuracy check .* no fp32 graph to serve instead"):
        choose(only, meta, flags=AVX2_ONLY)
    assert "records no accuracy check" in choose(only, meta, wanted="int8", flags=AVX2_ONLY).warning
    rewrite_meta(only, accuracy_check=passed_check(meta, meta["params_sha256"]))
    meta = json.load(open(os.path.join(only, "model-meta.json")))
    assert choose(only, meta, flags=AVX2_ONLY).precision == "int8"
    with pytest.raises(ModelLoadError, match="only an int8 graph"):
        choose(only, meta, wanted="fp32")
    with pytest.raises(ModelLoadError, match="runs on the CPU only"):
        choose(only, meta, device="gpu")


def test_cpu_flags_come_from_proc_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512_vnni\n\n"
                       "processor\t: 1\nflags\t\t: fpu avx2 avx512_vnni\n")
    flags = precision.cpu_flags(str(cpuinfo))
    assert precision.int8_instructions(flags) == ["avx512_vnni"]
    assert precision.cpu_flags(str(tmp_path / "absent")) == set()


def test_an_unreadable_int8_folder_stops_the_server_instead_of_being_ignored(stub_int8_pair, monkeypatch):
    # Tests run as root, who reads any folder: os.access is patched to answer as the image's non-root user
    # would for a 0700 folder of another owner (what a mkdtemp-made int8/ once was in the image).
    root, meta = stub_int8_pair
    unreadable = os.path.join(root, "int8")
    real_access = os.access
    monkeypatch.setattr(precision.os, "access", lambda path, mode: path != unreadable and real_access(path, mode))
    with pytest.raises(ModelLoadError, match="cannot be read by this server's user"):
        choose(root, meta)


def test_a_graph_of_another_precision_is_refused(demo_model_dir, tmp_path):
    other = copy_model(demo_model_dir, str(tmp_path / "bf16"), precision="bf16")
    meta = json.load(open(os.path.join(other, "model-meta.json")))
    with pytest.raises(ModelLoadError, match="model precision 'bf16' .* is not fp32 or int8"):
        choose(other, meta)


def _int8_meta(root):
    with open(os.path.join(root, "int8", "model-meta.json")) as stream:
        return json.load(stream)


@pytest.mark.parametrize("record, says", [
    (None, "records no accuracy check"),
    ({"passed": False, "skipped": True, "reason": "skipped with --skip-check"}, "was skipped"),
    ({"passed": False, "value": 3.2, "reason": "mAP drop 3.20 points > 1.00"}, "failed its accuracy check"),
    ({"fp32_params_sha256": "1" * 64}, "made against other fp32 weights"),
    ({"int8_params_sha256": "2" * 64}, "made on other int8 weights"),
])
def test_auto_serves_fp32_on_a_vnni_cpu_unless_the_int8_graph_passed_its_check_against_these_weights(
        stub_int8_pair, record, says):
    root, meta = stub_int8_pair
    int8 = _int8_meta(root)
    if record is None:
        changed = None
    elif "skipped" in record:
        changed = dict(record, fp32_params_sha256=meta["params_sha256"], int8_params_sha256=int8["params_sha256"])
    else:
        changed = dict(passed_check(meta, int8["params_sha256"]), **record)
    rewrite_meta(os.path.join(root, "int8"), accuracy_check=changed)
    choice = choose(root, meta)
    assert choice.precision == "fp32" and choice.model_dir == root and choice.warning is None
    # the log says why, and how to check it
    assert says in choice.reason and "avx512_vnni" in choice.reason and "ssd_tools.export --quantize int8" in choice.reason
    # forcing int8 still serves it, with a warning naming the failed or missing check
    forced = choose(root, meta, wanted="int8")
    assert forced.precision == "int8" and says in forced.warning and "not proven" in forced.warning


def test_a_passed_check_is_named_with_its_figure_when_int8_is_served(stub_int8_pair):
    root, meta = stub_int8_pair
    choice = choose(root, meta)
    assert choice.precision == "int8" and choice.warning is None
    assert "int8 accuracy check passed: VOC07 mAP drop 0.05 points (at most 1.00) on 200 images" in choice.reason
    assert choose(root, meta, wanted="int8").warning is None
