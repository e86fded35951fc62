"""Which graph a model folder serves, fp32 or its int8 variant, chosen by SSD_PRECISION and the CPU's instructions."""
from __future__ import absolute_import

import logging
import os

from . import artifact
from .environment import PRECISION_ENV
from .errors import ModelLoadError

LOG = logging.getLogger(__name__)

# A model folder may hold its int8 quantization (python -m ssd_tools.export --quantize int8) here, beside
# the fp32 graph it was made from; the cpu image bakes both.
INT8_SUBDIR = "int8"
# Linux /proc/cpuinfo flags of int8 dot-product instructions: with them oneDNN's int8 convolutions do 4
# multiply-adds per lane per instruction (VNNI) or whole tiles (AMX); without them int8 is hardly faster
# than fp32 (seen: 262 vs 297 ms for ssd_512_resnet50_v1 on an AVX2-only EPYC).
INT8_DOT_PRODUCT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8")
CPUINFO = "/proc/cpuinfo"
# The MXNet an int8 graph is made for; its fused oneDNN operators (_sg_mkldnn_conv with int8 attributes)
# do not exist in older releases, and MXNet 1.4.1 (the EI image) cannot read them.
MIN_MXNET = (1, 9)


# How to check an int8 graph, for the messages that say it was not checked (docs/int8.md)
HOW_TO_CHECK = ("check it with python -m ssd_tools.export --quantize int8 --from-export FP32_DIR --out FP32_DIR/int8 "
                "(docs/int8.md)")


class Choice(object):
    """The graph to load: its folder, metadata and precision, and the reason, for the start-up log; `warning`:
    what the log must also say loudly (an int8 graph forced without a passed accuracy check)."""

    def __init__(self, model_dir, meta, precision, reason, warning=None):
        self.model_dir = model_dir
        self.meta = meta
        self.precision = precision
        self.reason = reason
        self.warning = warning

    def __repr__(self):
        return "Choice(%r, %r, %r)" % (self.model_dir, self.precision, self.reason)


def cpu_flags(path=CPUINFO):
    """The CPU feature flags Linux reports (empty where /proc/cpuinfo cannot be read)."""
    try:
        with open(path) as stream:
            for line in stream:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except (IOError, OSError):
        pass
    return set()


def int8_instructions(flags):
    """The int8 dot-product instruction sets among `flags`, in a fixed order."""
    return [flag for flag in INT8_DOT_PRODUCT_FLAGS if flag in flags]


def mxnet_version():
    import mxnet as mx
    return tuple(int(p) for p in mx.__version__.split(".")[:2])


def onednn_enabled():
    """True when this MXNet has oneDNN (MKLDNN), which the int8 operators need (runtime features: MXNet >= 1.5)."""
    import mxnet as mx
    try:
        return bool(mx.runtime.Features().is_enabled("MKLDNN"))
    except Exception:
        return False


def int8_support_problem():
    """Why this MXNet cannot run or make an int8 graph, or None when it can."""
    import mxnet as mx
    if mxnet_version() < MIN_MXNET:
        return ("MXNet %s cannot run the int8 graph: it needs MXNet >= %d.%d with oneDNN on a CPU (the cpu "
                "image); serve the fp32 export here instead (images built without WITH_INT8=1 hold only fp32)"
                % (mx.__version__, MIN_MXNET[0], MIN_MXNET[1]))
    if not onednn_enabled():
        return ("MXNet %s here is built without oneDNN (MKLDNN), which the int8 graph needs; use the PyPI "
                "mxnet wheel (the cpu image) or serve the fp32 export" % mx.__version__)
    return None


def graph_precision(meta):
    """"fp32", or "int8" for a graph quantized by ssd_tools.quantize (exports before it are fp32)."""
    return meta.get("precision", "fp32")


def variants(model_dir, meta):
    """{"fp32": (dir, meta), "int8": (dir, meta)} for the graphs `model_dir` holds."""
    if graph_precision(meta) not in ("fp32", "int8"):
        raise ModelLoadError("model precision %r in %s is not fp32 or int8" % (graph_precision(meta), model_dir))
    found = {graph_precision(meta): (model_dir, meta)}
    int8_dir = os.path.join(model_dir, INT8_SUBDIR)
    if os.path.isdir(int8_dir):
        artifact.require_readable(int8_dir)
    if graph_precision(meta) == "fp32" and artifact.has_model(int8_dir):
        int8_meta = artifact.read_metadata(int8_dir)
        if graph_precision(int8_meta) != "int8":
            raise ModelLoadError("%s should hold the int8 variant of the model but its metadata says %s"
                                 % (int8_dir, graph_precision(int8_meta)))
        made_from = int8_meta.get("quantization", {}).get("fp32_params_sha256")
        if int8_meta.get("model_name") != meta.get("model_name") or made_from != meta.get("params_sha256"):
            raise ModelLoadError("%s is not a quantization of the fp32 model beside it (%s, weights sha256 %s; "
                                 "it was made from %s, sha256 %s): re-export both together"
                                 % (int8_dir, meta.get("model_name"), meta.get("params_sha256"),
                                    int8_meta.get("model_name"), made_from))
        found["int8"] = (int8_dir, int8_meta)
    return found


def check_summary(record):
    """One line of what an int8 graph's accuracy check measured (ssd_tools.int8_check writes the record)."""
    if record.get("skipped"):
        return "its accuracy check was skipped (%s)" % record.get("reason")
    name = "VOC07 mAP drop" if record.get("metric") == "voc07_map_drop" else "agreement with fp32 (AP)"
    try:
        return "int8 accuracy check %s: %s %.2f points (%s %.2f) on %d images" % (
            "passed" if record.get("passed") is True else "failed", name, float(record.get("value")),
            record.get("direction", ""), float(record.get("limit")), int(record.get("images", {}).get("count", 0)))
    except (TypeError, ValueError):
        return "int8 accuracy check %s (%s)" % ("passed" if record.get("passed") is True else "failed",
                                                record.get("reason"))


def check_problem(int8_meta, fp32_meta=None):
    """Why the int8 graph's recorded accuracy check does not let SSD_PRECISION=auto serve it, or None: it passed,
    on exactly these int8 weights, against exactly the fp32 weights `fp32_meta` describes (when given)."""
    record = int8_meta.get("accuracy_check")
    if not isinstance(record, dict):
        return "its model-meta.json records no accuracy check against fp32"
    if record.get("skipped"):
        return "its accuracy check was skipped (%s)" % record.get("reason")
    if fp32_meta is not None and record.get("fp32_params_sha256") != fp32_meta.get("params_sha256"):
        return ("its accuracy check was made against other fp32 weights (sha256 %s; the fp32 weights beside it are %s)"
                % (record.get("fp32_params_sha256"), fp32_meta.get("params_sha256")))
    if record.get("int8_params_sha256") != int8_meta.get("params_sha256"):
        return "its accuracy check was made on other int8 weights (sha256 %s)" % record.get("int8_params_sha256")
    if record.get("passed") is not True:
        return "it failed its accuracy check (%s: %s)" % (check_summary(record), record.get("reason"))
    return None


def choose(model_dir, meta, wanted, device_name, flags, int8_problem=None):
    """The graph to serve from `model_dir` on `device_name` for SSD_PRECISION=`wanted`.

    `flags` are the CPU's feature flags; `int8_problem` is why this MXNet cannot run int8 (None: it can).
    Refuses (ModelLoadError) what cannot be served as asked, rather than silently serving another graph.
    """
    found = variants(model_dir, meta)
    seen = int8_instructions(flags)
    seen_text = ", ".join(seen) if seen else "none of %s" % ", ".join(INT8_DOT_PRODUCT_FLAGS)

    def pick(precision, reason, warning=None):
        path, graph_meta = found[precision]
        return Choice(path, graph_meta, precision, reason, warning)

    def int8_refusal():
        if device_name != "cpu":
            return "the int8 graph runs on the CPU only and this server runs on %s" % device_name
        return int8_problem

    def unchecked():
        int8_meta = found["int8"][1]
        return check_problem(int8_meta, found["fp32"][1] if "fp32" in found else None)

    if wanted == "fp32":
        if "fp32" not in found:
            raise ModelLoadError("%s=fp32 but %s holds only an int8 graph; export the fp32 model there"
                                 % (PRECISION_ENV, model_dir))
        return pick("fp32", "%s=fp32" % PRECISION_ENV)
    if wanted == "int8":
        if "int8" not in found:
            raise ModelLoadError("%s=int8 but %s holds no int8 graph (no %s/ folder); export one with "
                                 "python -m ssd_tools.export --quantize int8, or set %s=fp32"
                                 % (PRECISION_ENV, model_dir, INT8_SUBDIR, PRECISION_ENV))
        problem = int8_refusal()
        if problem:
            raise ModelLoadError("%s=int8 but %s" % (PRECISION_ENV, problem))
        gap = unchecked()
        warning = None
        if gap:
            warning = ("%s=int8 forces the int8 graph in %s although %s: its accuracy against fp32 is not proven "
                       "(%s=auto would serve fp32); %s" % (PRECISION_ENV, found["int8"][0], gap, PRECISION_ENV,
                                                           HOW_TO_CHECK))
        figure = "" if gap else "; " + check_summary(found["int8"][1]["accuracy_check"])
        if not seen:
            return pick("int8", "%s=int8; note: this CPU has %s, so int8 runs but hardly faster than fp32%s"
                        % (PRECISION_ENV, seen_text, figure), warning)
        return pick("int8", "%s=int8; CPU int8 dot-product instructions: %s%s" % (PRECISION_ENV, seen_text, figure),
                    warning)
    # auto
    if "fp32" not in found:  # an int8-only export: serve it or say why it cannot be
        problem = int8_refusal()
        if problem:
            raise ModelLoadError("the model is int8 (quantized for the CPU target) and %s" % problem)
        gap = unchecked()
        if gap:
            raise ModelLoadError("%s=auto and %s holds only an int8 graph, but %s, and there is no fp32 graph to "
                                 "serve instead: ship the fp32 export with the int8 one in its %s/ folder, %s, or "
                                 "set %s=int8 to serve it unproven" % (PRECISION_ENV, model_dir, gap, INT8_SUBDIR,
                                                                      HOW_TO_CHECK, PRECISION_ENV))
        return pick("int8", "%s=auto and %s holds only an int8 graph; %s" % (
            PRECISION_ENV, model_dir, check_summary(found["int8"][1]["accuracy_check"])))
    if "int8" not in found:
        return pick("fp32", "%s=auto and %s holds no int8 graph" % (PRECISION_ENV, model_dir))
    problem = int8_refusal()
    if problem:
        return pick("fp32", "%s=auto: %s" % (PRECISION_ENV, problem))
    if not seen:
        return pick("fp32", "%s=auto and this CPU has %s, where int8 is hardly faster than fp32"
                    % (PRECISION_ENV, seen_text))
    gap = unchecked()
    if gap:
        return pick("fp32", "%s=auto and this CPU has int8 dot-product instructions (%s), but the int8 graph in %s "
                    "is not served: %s; %s" % (PRECISION_ENV, seen_text, found["int8"][0], gap, HOW_TO_CHECK))
    return pick("int8", "%s=auto and this CPU has int8 dot-product instructions: %s; %s"
                % (PRECISION_ENV, seen_text, check_summary(found["int8"][1]["accuracy_check"])))
