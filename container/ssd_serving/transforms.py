"""The SSD preprocessing shared by training, evaluation and serving (GluonCV's SSD validation transform)."""
from __future__ import absolute_import

import mxnet as mx
from mxnet.image.image import _get_interp_method

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# GluonCV's SSDDefaultValTransform passes interp=9: area when shrinking, cubic when enlarging,
# bilinear otherwise. Using the same choice keeps served detections equal to GluonCV's.
_AUTO_INTERP = 9


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


def ssd_val_transform(rgb, width, height, mean=IMAGENET_MEAN, std=IMAGENET_STD, borrow=False):
    """Resize an HxWx3 uint8 RGB image to the fixed network size and normalise it.

    `rgb` is a numpy array or an mx.nd.NDArray; returns a (1, 3, height, width) float32 NDArray
    on the CPU, exactly as GluonCV's SSDDefaultValTransform builds it. `borrow`: see _as_ndarray.
    """
    img = _as_ndarray(rgb, borrow)
    src_height, src_width = img.shape[0], img.shape[1]
    img = mx.image.imresize(img, width, height,
                            interp=resize_interp(src_height, src_width, height, width))
    img = mx.nd.image.to_tensor(img)
    img = mx.nd.image.normalize(img, mean=tuple(mean), std=tuple(std))
    return img.expand_dims(0)
