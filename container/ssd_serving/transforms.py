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


def ssd_val_transform(rgb, width, height, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """Resize an HxWx3 uint8 RGB image to the fixed network size and normalise it.

    `rgb` is a numpy array or an mx.nd.NDArray; returns a (1, 3, height, width) float32 NDArray
    on the CPU, exactly as GluonCV's SSDDefaultValTransform builds it.
    """
    img = rgb if isinstance(rgb, mx.nd.NDArray) else mx.nd.array(rgb, dtype='uint8')
    src_height, src_width = img.shape[0], img.shape[1]
    img = mx.image.imresize(img, width, height,
                            interp=resize_interp(src_height, src_width, height, width))
    img = mx.nd.image.to_tensor(img)
    img = mx.nd.image.normalize(img, mean=tuple(mean), std=tuple(std))
    return img.expand_dims(0)
