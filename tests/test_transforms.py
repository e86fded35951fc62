"""The shared SSD preprocessing: the same values as GluonCV's own MXNet operators, on each stack."""
import mxnet as mx
import numpy as np
import pytest

from helpers import synthetic_scene
from ssd_serving import transforms
from ssd_serving.transforms import IMAGENET_MEAN, IMAGENET_STD, normalized_planes, resize_interp, ssd_val_transform


def _gluoncv_ops(rgb, width, height, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    """What GluonCV's SSDDefaultValTransform does to an image, with MXNet's operators (the old transform here)."""
    image = mx.nd.array(rgb, dtype="uint8")
    image = mx.image.imresize(image, width, height, interp=resize_interp(rgb.shape[0], rgb.shape[1], height, width))
    return mx.nd.image.normalize(mx.nd.image.to_tensor(image), mean=mean, std=std).expand_dims(0).asnumpy()


@pytest.mark.parametrize("mean,std", [(IMAGENET_MEAN, IMAGENET_STD), ((0.5, 0.5, 0.5), (0.25, 0.5, 1.0))])
def test_normalization_equals_mxnets_for_every_byte_value(mean, std):
    # elementwise, so equal for every value in every channel means equal for every image
    values = np.tile(np.arange(256, dtype=np.uint8).reshape(1, 256, 1), (1, 1, 3))
    expected = mx.nd.image.normalize(mx.nd.image.to_tensor(mx.nd.array(values, dtype="uint8")), mean=mean, std=std)
    assert np.array_equal(normalized_planes(values, mean, std), expected.asnumpy())


@pytest.mark.parametrize("size", [(640, 480), (4000 // 4, 3000 // 4), (512, 512), (300, 600), (200, 150), (1280, 400)])
def test_transform_equals_gluoncvs_operators(size):
    # every interpolation GluonCV picks: area (shrinking), bilinear (one side each way), bicubic (enlarging)
    rgb, _, _ = synthetic_scene(size[0] + size[1], *size)
    noisy = np.clip(rgb.astype(np.int16) + np.random.RandomState(1).randint(-40, 40, rgb.shape), 0, 255)
    rgb = noisy.astype(np.uint8)
    served = ssd_val_transform(rgb, 512, 512, borrow=True)
    assert served.shape == (1, 3, 512, 512) and served.dtype == np.float32
    assert np.array_equal(served.asnumpy(), _gluoncv_ops(rgb, 512, 512))


@pytest.mark.skipif(transforms.cv2 is None, reason="this stack has no OpenCV wheel (MXNet 1.4.1's): MXNet resizes")
@pytest.mark.parametrize("interp", transforms._SAME_PIXELS_IN_CV2)
def test_opencvs_wheel_resizes_to_mxnets_pixels_where_it_is_used(interp):
    rng = np.random.RandomState(interp)
    for height, width, out_height, out_width in [(480, 640, 512, 512), (750, 1000, 512, 512), (1080, 1920, 300, 300),
                                                 (333, 777, 512, 512), (600, 300, 512, 512)]:
        rgb = rng.randint(0, 256, (height, width, 3)).astype(np.uint8)
        theirs = mx.image.imresize(mx.nd.array(rgb, dtype="uint8"), out_width, out_height, interp=interp).asnumpy()
        assert np.array_equal(transforms.cv2.resize(rgb, (out_width, out_height), interpolation=interp), theirs)


def test_an_ndarray_image_is_transformed_alike():
    rgb, _, _ = synthetic_scene(3, 640, 480)
    assert np.array_equal(ssd_val_transform(mx.nd.array(rgb, dtype="uint8"), 512, 512).asnumpy(),
                          ssd_val_transform(rgb, 512, 512).asnumpy())
