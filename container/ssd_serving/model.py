"""The served detector: the one check of a model folder, loading the exported graph on the right device, warm-up, and
detection."""
from __future__ import absolute_import

import logging
import os
import time

import mxnet as mx
import numpy as np

from . import artifact, precision
from .environment import CONTEXT_ENV, MODEL_DIR_ENV, Environment
from .errors import ModelLoadError
from .precision import graph_precision, onednn_enabled
from .transforms import ssd_val_transform

LOG = logging.getLogger(__name__)

WARMUP_RUNS = 2


def find_model_dir(preferred=None, settings=None):
    """The model to serve: `preferred` when it holds one, else what SageMaker unpacked into /opt/ml/model
    (served or refused, never passed over: artifact.given_model_dir), else the one baked into the image."""
    if preferred and artifact.has_model(preferred):
        return preferred
    settings = settings or Environment()
    given = artifact.given_model_dir(settings.sagemaker_model_dir)
    if given:
        return given
    baked = settings.baked_model_dir
    if baked and artifact.has_model(baked):
        return baked
    raise ModelLoadError("no exported model found in %s; set %s to a directory written by "
                         "`python -m ssd_tools.export`" % (
                             ", ".join(p for p in (preferred, settings.sagemaker_model_dir, baked) if p),
                             MODEL_DIR_ENV))


def _has_eia():
    return hasattr(mx, "eia")


def _num_gpus():
    try:
        return mx.context.num_gpus()
    except Exception:  # MXNet builds without CUDA raise instead of returning 0
        return 0


def candidate_contexts(preference="auto"):
    """Contexts to try in order, for SSD_CONTEXT's value. `auto`: EI when this MXNet build has it, then GPU, then CPU."""
    if preference == "cpu":
        return [("cpu", mx.cpu())]
    if preference == "gpu":
        return [("gpu", mx.gpu(0))]
    if preference == "eia":
        if not _has_eia():
            raise ModelLoadError("%s=eia but this MXNet build has no mx.eia() (it needs AWS's "
                                 "amazonei_mxnet build)" % CONTEXT_ENV)
        return [("eia", mx.eia())]
    if preference != "auto":
        raise ModelLoadError("%s must be auto, eia, gpu or cpu, not %r" % (CONTEXT_ENV, preference))
    contexts = []
    if _has_eia():
        contexts.append(("eia", mx.eia()))
    if _num_gpus() > 0:
        contexts.append(("gpu", mx.gpu(0)))
    contexts.append(("cpu", mx.cpu()))
    return contexts


class Detector(mx.gluon.Block):
    """A fixed-shape SSD graph plus what it needs to map images in and detections out."""

    def __init__(self, net, meta, device_name, ctx, settings=None, **kwargs):
        super(Detector, self).__init__(**kwargs)
        self.net = net
        self.meta = meta
        self.device_name = device_name
        self.ctx = ctx
        # the settings it was loaded with travel with it to the request steps (SageMaker's contract hands
        # predict_fn the model and nothing else)
        self.settings = settings or Environment.defaults()
        self.classes = list(meta["classes"])
        self.input_width = int(meta["input_width"])
        self.input_height = int(meta["input_height"])
        # a multi-model endpoint's name for it (SageMaker's model_name), set by the handler; None otherwise
        self.target_model = None
        # seconds of the graph's forward, and of a whole record (decode to answer), measured at warm-up; and the
        # records a transform job's request may hold to be answered within the response timeout (None: no bound)
        self.forward_seconds = None
        self.record_seconds = None
        self.max_records = None

    @property
    def info(self):
        """What responses and logs say about the model: its name and where its weights came from."""
        weights = self.meta.get("weights", {})
        info = {
            "name": self.meta["model_name"],
            "demo": bool(self.meta.get("demo", False)),
            "weights_source": weights.get("source"),
            "weights_location": weights.get("location"),
            "params_sha256": self.meta.get("params_sha256"),
            "precision": graph_precision(self.meta),
            "device": self.device_name,
        }
        if self.target_model is not None:
            info["target_model"] = self.target_model
        return info

    def forward(self, x):
        return self.net(x)

    def preprocess(self, rgb):
        """The network's input for an HxWx3 uint8 image; a numpy image that MXNet resizes (MXNet 1.4.1's stack, or
        bicubic) lends it its memory and becomes read-only."""
        return ssd_val_transform(rgb, self.input_width, self.input_height,
                                 self.meta["mean"], self.meta["std"], borrow=True)

    # A detection's stages, each a method of its own so that a caller can time them (the request steps do):
    # prepare (preprocess), run_graph (forward) and detections (postprocess).

    def prepare(self, rgb):
        """The network's input for one HxWx3 uint8 RGB image, on the graph's device and computed."""
        x = self.preprocess(rgb)
        if self.device_name == "gpu":  # EI takes inputs on the CPU and moves them itself
            x = x.as_in_context(self.ctx)
        x.wait_to_read()  # MXNet runs asynchronously: without this, its time would count as the forward's
        return x

    def run_graph(self, inputs):
        """The graph's forward over prepared inputs, all in one batch: for each, (class ids, scores, boxes) in the
        input frame."""
        batch = mx.nd.concat(*inputs, dim=0) if len(inputs) > 1 else inputs[0]
        ids, scores, boxes = (output.asnumpy() for output in self.net(batch))
        return [(ids[i][:, 0], scores[i][:, 0], boxes[i]) for i in range(len(inputs))]

    def detections(self, output, shape, threshold=0.0, top_k=None, class_ids=None, original_size=None):
        """Detections from one image's graph output as dicts, boxes in `original_size` (w, h) pixels, best first.

        `shape`: the image's array shape; `original_size` defaults to its size, and differs when the image was
        decoded at reduced scale."""
        ids, scores, boxes = output
        height, width = shape[0], shape[1]
        out_width, out_height = original_size or (width, height)
        scale = np.array([out_width / float(self.input_width), out_height / float(self.input_height)] * 2,
                         dtype=np.float64)
        keep = (ids >= 0) & (scores >= threshold)
        if class_ids is not None:
            keep &= np.isin(ids.astype(np.int64), np.asarray(sorted(class_ids), dtype=np.int64))
        order = np.argsort(-scores[keep], kind="stable")
        ids, scores, boxes = ids[keep][order], scores[keep][order], boxes[keep][order]
        if top_k is not None:
            ids, scores, boxes = ids[:top_k], scores[:top_k], boxes[:top_k]
        boxes = boxes.astype(np.float64) * scale
        boxes[:, 0::2] = np.clip(boxes[:, 0::2], 0, out_width)
        boxes[:, 1::2] = np.clip(boxes[:, 1::2], 0, out_height)
        detections = []
        for class_id, score, box in zip(ids, scores, boxes):
            class_id = int(class_id)
            detections.append({
                "class_id": class_id,
                "label": self.classes[class_id] if class_id < len(self.classes) else str(class_id),
                "score": float(score),
                "box": [float(v) for v in box],
            })
        return detections

    def raw_outputs(self, rgb):
        """The graph's (class ids, scores, boxes) for one image, in the input frame."""
        return self.raw_outputs_many([rgb])[0]

    def raw_outputs_many(self, images):
        """raw_outputs for several images in one forward."""
        return self.run_graph([self.prepare(rgb) for rgb in images])

    def detect(self, rgb, threshold=0.0, top_k=None, class_ids=None, original_size=None):
        """Detections for one HxWx3 uint8 RGB image: the three stages in turn (see detections for the arguments)."""
        return self.detections(self.raw_outputs(rgb), rgb.shape, threshold, top_k, class_ids, original_size)

    def warm_up(self, runs=WARMUP_RUNS):
        """Run the graph so the first request pays no allocation or kernel-selection cost; a batching server's graph
        also at its full batch (SSD_SERVER_BATCH_SIZE), the size it runs at under load."""
        dummy = np.zeros((self.input_height, self.input_width, 3), dtype=np.uint8)
        for _ in range(runs):
            started = time.perf_counter()
            self.raw_outputs(dummy)
            # the last (warmest) run's forward, with its preprocessing: what a record's forward costs from now on
            self.forward_seconds = time.perf_counter() - started
        batch_size = self.settings.server_batch_size
        if batch_size > 1:
            self.raw_outputs_many([dummy] * batch_size)


def choose_graph(model_dir, meta, settings, flags=None, wanted=None, context=None):
    """The fp32 graph or its int8 variant, by `wanted` (default: SSD_PRECISION), the device and the CPU."""
    device_name = candidate_contexts(context or settings.context)[0][0]
    problem = precision.int8_support_problem()
    flags = precision.cpu_flags() if flags is None else flags
    return precision.choose(model_dir, meta, wanted or settings.precision, device_name, flags, problem)


def fuses_graph(meta, device_name, fusion=True):
    """Whether loading fuses the fp32 graph with oneDNN (conv+batchnorm+relu and sums into one kernel):
    about 12% less forward time for ssd_512_resnet50_v1 on 2 vCPUs (see docs/performance.md). An int8
    graph is fused when quantized; EI and GPU have their own kernels. `fusion`: SSD_GRAPH_FUSION."""
    return device_name == "cpu" and graph_precision(meta) == "fp32" and fusion and onednn_enabled()


def _import_graph(model_dir, meta, device_name, ctx, fusion):
    symbol_file = os.path.join(model_dir, meta.get("symbol_file", artifact.SYMBOL_FILE))
    params_file = os.path.join(model_dir, meta.get("params_file", artifact.PARAMS_FILE))
    input_name = meta.get("input_name", "data")
    if fuses_graph(meta, device_name, fusion):
        symbol = mx.sym.load(symbol_file).get_backend_symbol("MKLDNN")
        net = mx.gluon.SymbolBlock(symbol, [mx.sym.var(input_name)])
        net.collect_params().load(params_file, ctx=ctx)
    else:
        net = mx.gluon.SymbolBlock.imports(symbol_file, [input_name], params_file, ctx=ctx)
    if device_name in ("cpu", "gpu"):
        # static memory and shapes: the input is (1, 3, H, W), so plan once (a few % per forward); a batching
        # server's batches of another size re-plan (about 4 ms for the demo graph on 2 vCPUs, measured by hand)
        net.hybridize(static_alloc=True, static_shape=True)
    return net


def verify_params(model_dir, meta):
    """Refuse weights whose checksum differs from the one the export recorded."""
    expected = meta.get("params_sha256")
    if not expected:
        raise ModelLoadError("model metadata in %s records no params_sha256" % model_dir)
    params_file = os.path.join(model_dir, meta.get("params_file", artifact.PARAMS_FILE))
    actual = artifact.file_sha256(params_file)
    if actual != expected:
        raise ModelLoadError("%s has sha256 %s but its metadata says %s: the weights are not the "
                             "exported ones" % (params_file, actual, expected))


def check_model_folder(model_dir, settings, wanted=None, context=None, read_graph=True):
    """The graph to serve from the model folder `model_dir` (a precision.Choice: fp32 or int8, by `wanted`, default
    SSD_PRECISION, and the device of `context`, default SSD_CONTEXT), once its metadata, its weights' sha256 and,
    with `read_graph`, its graph as this MXNet reads it have passed; a ModelLoadError saying what is wrong otherwise.
    The one check of a model folder: at start-up, on a multi-model endpoint's load, and in the worker."""
    choice = choose_graph(model_dir, artifact.read_metadata(model_dir), settings, wanted=wanted, context=context)
    verify_params(choice.model_dir, choice.meta)
    if read_graph:
        # a graph exported by a newer MXNet can use operators this one lacks (the EI image has MXNet 1.4.1)
        symbol = os.path.join(choice.model_dir, choice.meta.get("symbol_file", artifact.SYMBOL_FILE))
        try:
            mx.sym.load(symbol)
        except Exception as err:
            raise ModelLoadError("the graph %s cannot be read by MXNet %s: %s" % (symbol, mx.__version__, err))
    return choice


def load_detector(model_dir=None, settings=None, context=None, warm_up=True, wanted_precision=None):
    """Load the exported model from `model_dir` (or find it) on the best available device.

    `settings`: an Environment (default: read now). `context` (auto, eia, gpu, cpu) overrides SSD_CONTEXT and
    `wanted_precision` (auto, fp32, int8) SSD_PRECISION: tools that measure one device or graph say which.
    """
    settings = settings or Environment()
    context = context or settings.context
    # the graph is read where it is loaded, on each device in turn
    choice = check_model_folder(find_model_dir(model_dir, settings), settings, wanted=wanted_precision,
                                context=context, read_graph=False)
    model_dir, meta = choice.model_dir, choice.meta
    LOG.info("serving the %s graph: %s", choice.precision, choice.reason)
    if choice.warning:
        LOG.warning("%s", choice.warning)
    contexts = candidate_contexts(context)
    if choice.precision == "int8":
        contexts = [(name, ctx) for name, ctx in contexts if name == "cpu"]
    errors = []
    for device_name, ctx in contexts:
        try:
            net = _import_graph(model_dir, meta, device_name, ctx, settings.graph_fusion)
            detector = Detector(net, meta, device_name, ctx, settings)
            if warm_up:
                detector.warm_up()
        except ModelLoadError:
            raise
        except Exception as err:  # a device that is absent or refuses the graph: try the next one
            LOG.warning("could not load the model on %s: %s", device_name, err)
            errors.append("%s: %s" % (device_name, err))
            continue
        info = detector.info
        LOG.info("serving model %s%s from %s on %s; weights: %s (%s), sha256 %s", info["name"],
                 " (DEMO model trained on synthetic shapes)" if info["demo"] else "", model_dir,
                 device_name, info["weights_source"], info["weights_location"], info["params_sha256"])
        return detector
    raise ModelLoadError("could not load the model from %s on any device: %s" % (model_dir, "; ".join(errors)))
