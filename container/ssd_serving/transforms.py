"""The SSD preprocessing shared by training, evaluation and serving (GluonCV's SSD validation transform)."""
from __future__ import absolute_import

import mxnet as mx
import numpy as np
from mxnet.image.image import _get_interp_method

try:  # the cpu/gpu stack has OpenCV's own wheel (requirements/mxnet-1.9.txt); MXNet 1.4.1's has not
    import cv2
except ImportError:
    cv2 = None

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# GluonCV's SSDDefaultValTransform passes interp=9: area when shrinking, cubic when enlarging,
# bilinear otherwise. Using the same choice keeps served detections equal to GluonCV's.
_AUTO_INTERP = 9

# The interpolations in which OpenCV's wheel gives the very pixels of the OpenCV inside MXNet's mx.image.imresize
# (tests/test_transforms.py compares them): bilinear and area. Bicubic differs by one level on a few per cent of
# pixels, so enlarging both sides stays with MXNet. cv2.resize of a 640x480 photo takes a third of MXNet's
# imresize, which also hands the image to MXNet's engine thread and back.
_SAME_PIXELS_IN_CV2 = (1, 3)


def resize_interp(src_height, src_width, dst_height, dst_width):
    """OpenCV interpolation code GluonCV picks for this resize."""
    return _get_interp_method(_AUTO_INTERP, (src_height, src_width, dst_height, dst_width))


def _as_ndarray(rgb, borrow):
    """The image as an MXNet NDArray. `borrow`: a C-contiguous uint8 numpy array lends its memory (MXNet >= 1.6's
    zero-copy from_numpy, which makes the array read-only) instead of being copied: mx.nd.array's copy of a
    640x480 photo takes 1.6 ms on MXNet 1.9.1 (0.5 ms on 1.4.1), a twentieth of the demo model's request."""
    if isinstance(rgb, mx.nd.NDArray):
        return rgb
    if borrow and hasattr(mx.nd, "from_numpy") and rgb.dtype == 'uint8' and rgb.flags['C_CONTIGUOUS']:
        return mx.nd.from_numpy(rgb, zero_copy=True)
    return mx.nd.array(rgb, dtype='uint8')


def _resized(rgb, width, height, borrow):
    """The image resized to width x height as GluonCV resizes it, as a numpy HxWx3 uint8 array."""
    interp = resize_interp(rgb.shape[0], rgb.shape[1], height, width)
    if cv2 is not None and interp in _SAME_PIXELS_IN_CV2 and isinstance(rgb, np.ndarray) and rgb.dtype == 'uint8':
        return cv2.resize(rgb, (width, height), interpolation=interp)
    return mx.image.imresize(_as_ndarray(rgb, borrow), width, height, interp=interp).asnumpy()


def normalized_planes(pixels, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """An HxWx3 uint8 image as 3xHxW float32 (x / 255 - mean) / std: the float32 operations of MXNet's
    mx.nd.image.to_tensor and normalize, in their order, so the very same values (tests/test_transforms.py checks
    every byte value in every channel on both stacks), without MXNet's two passes and its engine's hand-offs."""
    planes = np.ascontiguousarray(pixels.transpose(2, 0, 1)).astype(np.float32)
    planes /= np.float32(255.0)
    planes -= np.asarray(mean, dtype=np.float32).reshape(3, 1, 1)
    planes /= np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
    return planes


def ssd_val_transform(rgb, width, height, mean=IMAGENET_MEAN, std=IMAGENET_STD, borrow=False):
    """Resize an HxWx3 uint8 RGB image to the fixed network size and normalise it.

    `rgb` is a numpy array or an mx.nd.NDArray; returns a (1, 3, height, width) float32 NDArray
    on the CPU, exactly as GluonCV's SSDDefaultValTransform builds it. `borrow`: see _as_ndarray.
    """
    planes = normalized_planes(_resized(rgb, width, height, borrow), mean, std)[np.newaxis]
    if hasattr(mx.nd, "from_numpy"):  # the array is ours alone: MXNet >= 1.6 takes it without a copy
        return mx.nd.from_numpy(planes, zero_copy=True)
    return mx.nd.array(planes, dtype='float32')
