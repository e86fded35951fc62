"""Train the demo SSD on synthetic shape scenes on the CPU and export it (needs GluonCV).

    python -m ssd_tools.demo.train --out container/models/demo [--epochs N] [--seed S]

The network is a GluonCV SSD (gluoncv.model_zoo.ssd.SSD: its anchors, box decoder, per-class
decoder and NMS) over a small plain conv feature extractor trained from scratch, at a fixed square
input. Targets come from GluonCV's SSDTargetGenerator and the loss is GluonCV's SSDMultiBoxLoss, as
in GluonCV's SSD training recipe. Everything is seeded, so the same command gives the same model
(up to floating-point summation order). The result is exported with ssd_tools.export.
"""
from __future__ import absolute_import, division, print_function

import argparse
import json
import logging
import math
import random
import sys
import time

import mxnet as mx
import numpy as np
from mxnet import autograd, gluon
from mxnet.gluon import nn

from ssd_tools.demo import scenes
from ssd_tools.export import export_detector
from ssd_serving.transforms import IMAGENET_MEAN, IMAGENET_STD

LOG = logging.getLogger("ssd_tools.demo.train")

MODEL_NAME = "ssd_256_demo_shapes"
INPUT_SIZE = 256
# feature maps at strides 8, 16, 32, 64 (32x32 .. 4x4 at 256 input)
STEPS = [8, 16, 32, 64]
# anchor sizes in input pixels: layer k gets s_k and sqrt(s_k * s_k+1), plus ratios 2 and 1/2 at s_k;
# objects span ~11..135 input pixels a side after the (aspect-distorting) resize to 256x256
ANCHOR_SIZES = [16, 32, 64, 112, 180]
ANCHOR_RATIOS = [[1, 2, 0.5]] * 4
FEATURE_CHANNELS = (16, 32, 64, 96, 128, 128)
DEFAULT_SEED = 7
DEFAULT_EPOCHS = 14
DEFAULT_TRAIN_COUNT = 3200
DEFAULT_BATCH_SIZE = 16
DEFAULT_LR = 2e-3
DEFAULT_WD = 1e-4
DEFAULT_WARMUP = 100
# progress is watched on scenes of this seed; the evaluation command's held-out seed is another one
MONITOR_SEED = 99


def _conv_bn_relu(channels, stride):
    block = nn.HybridSequential(prefix="")
    block.add(nn.Conv2D(channels, 3, strides=stride, padding=1, use_bias=False))
    block.add(nn.BatchNorm())
    block.add(nn.Activation("relu"))
    return block


class TinyFeatures(gluon.HybridBlock):
    """A plain conv-BN-ReLU backbone returning feature maps at strides 8, 16, 32 and 64."""

    def __init__(self, channels=FEATURE_CHANNELS, **kwargs):
        # SSD passes pretrained/ctx/root/norm_layer/norm_kwargs; there is nothing pretrained here
        for key in ("pretrained", "ctx", "root", "norm_layer", "norm_kwargs"):
            kwargs.pop(key, None)
        super(TinyFeatures, self).__init__(**kwargs)
        c1, c2, c3, c4, c5, c6 = channels
        with self.name_scope():
            self.stage8 = nn.HybridSequential()
            self.stage8.add(_conv_bn_relu(c1, 2), _conv_bn_relu(c2, 2), _conv_bn_relu(c3, 2),
                            _conv_bn_relu(c3, 1))
            self.stage16 = nn.HybridSequential()
            self.stage16.add(_conv_bn_relu(c4, 2), _conv_bn_relu(c4, 1))
            self.stage32 = nn.HybridSequential()
            self.stage32.add(_conv_bn_relu(c5, 2), _conv_bn_relu(c5, 1))
            self.stage64 = nn.HybridSequential()
            self.stage64.add(_conv_bn_relu(c6, 2))

    def hybrid_forward(self, F, x):
        f8 = self.stage8(x)
        f16 = self.stage16(f8)
        f32 = self.stage32(f16)
        f64 = self.stage64(f32)
        return [f8, f16, f32, f64]


def build_net(classes=scenes.CLASSES, input_size=INPUT_SIZE, anchor_grid=None):
    """The demo SSD, initialised (uninitialised weights get Xavier), on the CPU.

    `anchor_grid`: cells of the anchor grid per side (default: the fixed input's); an un-hybridized net
    fed larger images (the benchmark's original approach) needs more. Anchors per cell do not change.
    """
    from gluoncv.model_zoo.ssd import SSD
    kwargs = dict(network=None, base_size=input_size, features=TinyFeatures, num_filters=None,
                  sizes=ANCHOR_SIZES, ratios=ANCHOR_RATIOS, steps=STEPS, classes=list(classes),
                  pretrained=False, anchor_alloc_size=anchor_grid or input_size // STEPS[0], ctx=mx.cpu())
    try:
        # GluonCV >= 0.6 decodes boxes with contrib.box_decode/amp_multicast unless told not to;
        # MXNet 1.4.1 has neither, so ask for the plain operators to keep the graph loadable there
        net = SSD(minimal_opset=True, **kwargs)
    except TypeError:  # GluonCV 0.5 has no minimal_opset and always uses the plain operators
        net = SSD(**kwargs)
    net.initialize(mx.init.Xavier(magnitude=2), ctx=mx.cpu())
    return net


def net_anchors(net, input_size=INPUT_SIZE):
    with autograd.train_mode():
        _, _, anchors = net(mx.nd.zeros((1, 3, input_size, input_size)))
    return anchors


def make_pool(seed, count, input_size=INPUT_SIZE, log_every=500):
    """`count` scenes from data set `seed`, resized to the input size as GluonCV's train transform does.

    Returns uint8 images (count, size, size, 3), boxes padded with -1 (count, M, 4) in input pixels
    and class ids padded with -1 (count, M).
    """
    from gluoncv.data.transforms import image as timage
    images = np.zeros((count, input_size, input_size, 3), dtype=np.uint8)
    boxes = -np.ones((count, scenes.MAX_OBJECTS, 4), dtype=np.float32)
    ids = -np.ones((count, scenes.MAX_OBJECTS), dtype=np.float32)
    interp_rng = np.random.RandomState([int(seed) & 0xffffffff, 0x1a7e])
    start = time.time()
    for index in range(count):
        rgb, scene_boxes, scene_ids = scenes.scene_at(seed, index)
        height, width = rgb.shape[:2]
        # random interpolation, as GluonCV's SSDDefaultTrainTransform resizes
        resized = timage.imresize(mx.nd.array(rgb, dtype="uint8"), input_size, input_size,
                                  interp=int(interp_rng.randint(0, 5)))
        images[index] = resized.asnumpy()
        count_objects = len(scene_ids)
        scale = np.array([input_size / width, input_size / height] * 2, dtype=np.float32)
        boxes[index, :count_objects] = scene_boxes * scale
        ids[index, :count_objects] = scene_ids
        if log_every and (index + 1) % log_every == 0:
            LOG.info("generated %d/%d training scenes (%.0fs)", index + 1, count, time.time() - start)
    return images, boxes, ids


def augment(rng, image, boxes, ids, size):
    """Random dihedral transform (flips and transpose keep every class what it is) and colour shuffle."""
    valid = ids >= 0
    boxes = boxes.copy()
    b = boxes[valid]
    if rng.rand() < 0.5:  # horizontal flip
        image = image[:, ::-1]
        b = np.stack([size - b[:, 2], b[:, 1], size - b[:, 0], b[:, 3]], axis=1)
    if rng.rand() < 0.5:  # vertical flip
        image = image[::-1]
        b = np.stack([b[:, 0], size - b[:, 3], b[:, 2], size - b[:, 1]], axis=1)
    if rng.rand() < 0.5:  # transpose (with the flips: all 8 rotations/reflections of the square)
        image = image.transpose(1, 0, 2)
        b = b[:, [1, 0, 3, 2]]
    if rng.rand() < 0.5:  # colour is no clue to the class: permute the channels
        image = image[:, :, rng.permutation(3)]
    if rng.rand() < 0.2:
        image = 255 - image
    boxes[valid] = b
    return image, boxes


def _iou(boxes_a, boxes_b):
    """IoU of corner boxes (N, 4) x (M, 4) -> (N, M), without a +1 pixel offset (as box_iou)."""
    width = np.minimum(boxes_a[:, None, 2], boxes_b[None, :, 2]) - np.maximum(boxes_a[:, None, 0], boxes_b[None, :, 0])
    height = np.minimum(boxes_a[:, None, 3], boxes_b[None, :, 3]) - np.maximum(boxes_a[:, None, 1], boxes_b[None, :, 1])
    inter = np.clip(width, 0, None) * np.clip(height, 0, None)
    area_a = (boxes_a[:, 2] - boxes_a[:, 0]) * (boxes_a[:, 3] - boxes_a[:, 1])
    area_b = (boxes_b[:, 2] - boxes_b[:, 0]) * (boxes_b[:, 3] - boxes_b[:, 1])
    return inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-12)


class SSDTargets(object):
    """GluonCV's SSDTargetGenerator(iou_thresh=0.5, negative_mining_ratio=-1) for one image, in numpy.

    The same matching (bipartite, then ties of each object's best anchor, then every anchor with
    IoU >= 0.5 to its best object) and the same NormalizedBoxCenterEncoder targets, but ~50x faster
    on the CPU than the NDArray version for these tiny per-image problems. test_targets() checks it
    against GluonCV.
    """

    def __init__(self, anchors, iou_thresh=0.5, stds=(0.1, 0.1, 0.2, 0.2), eps=1e-12):
        center = anchors.reshape((-1, 4)).asnumpy().astype(np.float64)  # (cx, cy, w, h)
        self.anchor_center = center
        self.anchor_corner = np.concatenate([center[:, :2] - center[:, 2:] / 2,
                                             center[:, :2] + center[:, 2:] / 2], axis=1)
        self.iou_thresh = iou_thresh
        self.stds = np.array(stds, dtype=np.float64)
        self.eps = eps

    def match(self, gt_boxes):
        num_anchors, num_gt = len(self.anchor_corner), len(gt_boxes)
        matches = -np.ones(num_anchors, dtype=np.int64)
        if num_gt == 0:
            return matches
        ious = _iou(self.anchor_corner, gt_boxes.astype(np.float64))
        # greedy bipartite matching (contrib.bipartite_matching, threshold 1e-12, descending)
        free = ious.copy()
        for _ in range(min(num_anchors, num_gt)):
            flat = int(np.argmax(free))
            row, col = flat // num_gt, flat % num_gt
            if not free[row, col] >= 1e-12:
                break
            matches[row] = col
            free[row, :] = -1
            free[:, col] = -1
        best = ious.argmax(axis=1)
        best_iou = ious[np.arange(num_anchors), best]
        # anchors tying with an object's best anchor match it too (BipartiteMatcher, share_max=False)
        tie = best_iou + self.eps >= ious.max(axis=0)[best]
        matches = np.where((matches < 0) & tie, best, matches)
        # then every anchor whose best object has IoU >= iou_thresh (MaximumMatcher)
        return np.where((matches < 0) & (best_iou >= self.iou_thresh), best, matches)

    def __call__(self, gt_boxes, gt_ids):
        """(cls_targets (N,), box_targets (N, 4)) for one image's valid objects."""
        matches = self.match(gt_boxes)
        positive = matches >= 0
        cls_targets = np.zeros(len(matches), dtype=np.float32)
        box_targets = np.zeros((len(matches), 4), dtype=np.float32)
        if positive.any():
            cls_targets[positive] = gt_ids[matches[positive]] + 1
            gt = gt_boxes[matches[positive]].astype(np.float64)
            g_wh = gt[:, 2:] - gt[:, :2]
            g_xy = gt[:, :2] + g_wh / 2
            anchor = self.anchor_center[positive]
            box_targets[positive] = np.concatenate([
                (g_xy - anchor[:, :2]) / anchor[:, 2:] / self.stds[:2],
                np.log(g_wh / anchor[:, 2:]) / self.stds[2:]], axis=1)
        return cls_targets, box_targets


class BatchMaker(object):
    """Normalised NCHW batches with GluonCV SSD training targets, drawn from the scene pool."""

    def __init__(self, pool, anchors, seed, input_size=INPUT_SIZE, mean=IMAGENET_MEAN, std=IMAGENET_STD):
        self.images, self.boxes, self.ids = pool
        self.size = input_size
        self.rng = np.random.RandomState([int(seed) & 0xffffffff, 0xba7c4])
        self.mean = mx.nd.array(np.array(mean, dtype=np.float32).reshape(1, 3, 1, 1) * 255.0)
        self.std = mx.nd.array(np.array(std, dtype=np.float32).reshape(1, 3, 1, 1) * 255.0)
        # as SSDDefaultTrainTransform: no sampling here, SSDMultiBoxLoss mines the hard negatives
        self.targets = SSDTargets(anchors, iou_thresh=0.5, stds=(0.1, 0.1, 0.2, 0.2))

    def epoch(self, batch_size):
        order = self.rng.permutation(len(self.images))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            yield self.batch(order[start:start + batch_size])

    def batch(self, indices):
        images, cls_targets, box_targets = [], [], []
        for index in indices:
            image, boxes = augment(self.rng, self.images[index], self.boxes[index], self.ids[index],
                                   self.size)
            valid = self.ids[index] >= 0
            cls_target, box_target = self.targets(boxes[valid], self.ids[index][valid])
            images.append(image)
            cls_targets.append(cls_target)
            box_targets.append(box_target)
        data = mx.nd.array(np.stack(images), dtype="uint8").astype("float32").transpose((0, 3, 1, 2))
        data = mx.nd.broadcast_div(mx.nd.broadcast_sub(data, self.mean), self.std)
        return data, mx.nd.array(np.stack(cls_targets)), mx.nd.array(np.stack(box_targets))


def test_targets(seed=11, count=64):
    """Check SSDTargets against GluonCV's SSDTargetGenerator on augmented pool scenes; returns mismatches."""
    from gluoncv.model_zoo.ssd.target import SSDTargetGenerator
    net = build_net()
    anchors = net_anchors(net)
    images, boxes, ids = make_pool(seed, count, log_every=0)
    ours = SSDTargets(anchors)
    theirs = SSDTargetGenerator(iou_thresh=0.5, stds=(0.1, 0.1, 0.2, 0.2), negative_mining_ratio=-1)
    rng = np.random.RandomState(seed)
    mismatches = 0
    for index in range(count):
        _, aug_boxes = augment(rng, images[index], boxes[index], ids[index], INPUT_SIZE)
        valid = ids[index] >= 0
        cls_a, box_a = ours(aug_boxes[valid], ids[index][valid])
        cls_b, box_b, _ = theirs(anchors, None, mx.nd.array(aug_boxes[valid][None]),
                                 mx.nd.array(ids[index][valid][None, :, None]))
        if not (np.array_equal(cls_a, cls_b[0].asnumpy()) and
                np.allclose(box_a, box_b[0].asnumpy(), rtol=1e-4, atol=1e-4)):
            mismatches += 1
    return mismatches


def lr_at(step, total, base_lr, warmup):
    if step < warmup:
        return base_lr * (0.1 + 0.9 * step / float(warmup))
    progress = (step - warmup) / float(max(1, total - warmup))
    return base_lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    mx.random.seed(seed)


def monitor_map(net, count):
    """mAP on `count` monitoring scenes, through the exported graph as served (a progress signal only)."""
    import shutil
    import tempfile
    from ssd_tools.demo.evaluate import evaluate
    from ssd_serving.model import load_detector
    out_dir = tempfile.mkdtemp(prefix="demo-monitor-")
    try:
        export_detector(net, out_dir, MODEL_NAME, scenes.CLASSES, INPUT_SIZE, {"source": "monitor"})
        detector = load_detector(out_dir, context="cpu", warm_up=False)
        return float(evaluate(detector, MONITOR_SEED, count)[1][-1])
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
        # the export traced the inference graph (SSD's outputs depend on the mode): trace anew for training
        net.hybridize(static_alloc=True, static_shape=True)


def train(args):
    seed_everything(args.seed)
    net = build_net()
    anchors = net_anchors(net)
    LOG.info("%d anchors; generating %d training scenes from seed %d", anchors.shape[1], args.train_count,
             args.seed)
    start = time.time()
    pool = make_pool(args.seed, args.train_count)
    LOG.info("training scenes ready in %.0fs", time.time() - start)
    batches = BatchMaker(pool, anchors, args.seed)
    net.hybridize(static_alloc=True, static_shape=True)
    from gluoncv.loss import SSDMultiBoxLoss
    mbox_loss = SSDMultiBoxLoss(negative_mining_ratio=3, rho=1.0, lambd=1.0)
    trainer = gluon.Trainer(net.collect_params(), "adam",
                            {"learning_rate": args.lr, "wd": args.wd})
    steps_per_epoch = args.train_count // args.batch_size
    total = steps_per_epoch * args.epochs
    step = 0
    train_start = time.time()
    for epoch in range(args.epochs):
        epoch_start = time.time()
        cls_sum = box_sum = 0.0
        for data, cls_targets, box_targets in batches.epoch(args.batch_size):
            trainer.set_learning_rate(lr_at(step, total, args.lr, args.warmup))
            with autograd.record():
                cls_preds, box_preds, _ = net(data)
                sum_loss, cls_loss, box_loss = mbox_loss([cls_preds], [box_preds], [cls_targets],
                                                         [box_targets])
            autograd.backward(sum_loss)
            trainer.step(1)  # SSDMultiBoxLoss already normalises by the number of positives
            cls_sum += float(cls_loss[0].mean().asscalar())
            box_sum += float(box_loss[0].mean().asscalar())
            step += 1
            if args.max_steps and step >= args.max_steps:
                break
        done = max(1, step - epoch * steps_per_epoch)
        LOG.info("epoch %d/%d: cls loss %.4f, box loss %.4f, lr %.5f, %.0fs (%.1f img/s)", epoch + 1,
                 args.epochs, cls_sum / done, box_sum / done, trainer.learning_rate,
                 time.time() - epoch_start, done * args.batch_size / (time.time() - epoch_start))
        if args.max_steps and step >= args.max_steps:
            break
        if args.monitor_every and (epoch + 1) % args.monitor_every == 0 and epoch + 1 < args.epochs:
            LOG.info("epoch %d: mAP %.3f on %d monitoring scenes (seed %d)", epoch + 1,
                     monitor_map(net, args.monitor_count), args.monitor_count, MONITOR_SEED)
    LOG.info("trained in %.0fs (%.0fs with data generation)", time.time() - train_start, time.time() - start)
    return net


def reproduce_command(args):
    """The command line that retrains this model: seed, epochs and every setting that differs from the defaults."""
    command = "python -m ssd_tools.demo.train --seed %d --epochs %d" % (args.seed, args.epochs)
    for flag, value, default in (("--train-count", args.train_count, DEFAULT_TRAIN_COUNT),
                                 ("--batch-size", args.batch_size, DEFAULT_BATCH_SIZE),
                                 ("--lr", args.lr, DEFAULT_LR), ("--wd", args.wd, DEFAULT_WD),
                                 ("--warmup", args.warmup, DEFAULT_WARMUP),
                                 ("--max-steps", args.max_steps, 0)):
        if value != default:
            command += " %s %s" % (flag, value)
    return command


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="directory to export the trained model to")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="seeds the training scenes and the training")
    parser.add_argument("--train-count", type=int, default=DEFAULT_TRAIN_COUNT, help="training scenes")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--lr", type=float, default=DEFAULT_LR)
    parser.add_argument("--wd", type=float, default=DEFAULT_WD)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP, help="warm-up steps")
    parser.add_argument("--monitor-every", type=int, default=0, metavar="EPOCHS",
                        help="log mAP on monitoring scenes every this many epochs (0: never)")
    parser.add_argument("--monitor-count", type=int, default=100, help="monitoring scenes")
    parser.add_argument("--max-steps", type=int, default=0, help="stop after this many steps (smoke tests)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    start = time.time()
    net = train(args)
    weights = {"source": "demo-trained", "location": reproduce_command(args), "train_seed": args.seed}
    meta = export_detector(net, args.out, MODEL_NAME, scenes.CLASSES, INPUT_SIZE, weights,
                           mean=IMAGENET_MEAN, std=IMAGENET_STD, demo=True)
    LOG.info("exported to %s in %.0fs total", args.out, time.time() - start)
    print(json.dumps(meta, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
