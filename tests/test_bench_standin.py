"""The bench's stand-in for the default model (bench/models.py): random weights whose background bias is raised until
they keep as many (anchor, class) candidates as a trained detector; here the bias search and where the bias goes."""

import numpy as np

from helpers import load_bench_module


def bench_models():
    return load_bench_module("models")


def test_the_background_bias_brings_the_kept_share_to_the_target():
    models = bench_models()
    rng = np.random.RandomState(0)
    # logits spread as random features spread them: every class often above the 0.01 the decoder keeps
    logits = rng.normal(0, 30, size=(4, 5000, 21)).astype(np.float32)
    before = models.kept_share(models._softmax(logits))
    assert before > 0.05
    for target in (0.02, 0.002):
        bias = models.trained_like_bias(logits, target)
        shifted = logits.copy()
        shifted[:, :, 0] += bias
        assert abs(models.kept_share(models._softmax(shifted)) - target) < 0.0005, (target, bias)


def test_the_bias_raises_each_anchors_background_logit_and_nothing_else():
    # a real GluonCV SSD (the small mobilenet one, random weights): its class predictors lay channels out anchor-major,
    # class-minor, so raise_background must move exactly the background column of the head's (anchors, C + 1) logits
    import mxnet as mx
    from gluoncv import model_zoo
    models = bench_models()
    mx.random.seed(0)
    net = model_zoo.get_model("ssd_512_mobilenet1.0_voc", pretrained=False, pretrained_base=False)
    net.initialize()
    batch = mx.nd.random.normal(shape=(1, 3, 512, 512))
    before = models.class_logits(net, batch)
    models.raise_background(net, 5.0)
    after = models.class_logits(net, batch)
    assert before.shape[2] == len(net.classes) + 1
    np.testing.assert_allclose(after[:, :, 0] - before[:, :, 0], 5.0, atol=1e-3)
    np.testing.assert_array_equal(after[:, :, 1:], before[:, :, 1:])
