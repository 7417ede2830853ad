"""Local Response Normalization against TensorFlow's kernel, with the convention mapping written down."""

import numpy as np
import pytest

from zoo.models.common import LocalResponseNormalization


@pytest.mark.parametrize("size, alpha, beta, k", [(5, 1e-4, 0.75, 2.0), (3, 1e-2, 0.5, 1.0)])
def test_matches_tf_local_response_normalization(size, alpha, beta, k):
    import tensorflow as tf

    x = np.random.default_rng(0).normal(scale=20.0, size=(2, 7, 7, 16)).astype("float32")
    ours = np.asarray(LocalResponseNormalization(size=size, alpha=alpha, beta=beta, k=k)(x))
    # The paper's n (window size) is TF's 2 * depth_radius + 1; TF's alpha multiplies the plain sum of squares
    # exactly like the paper's (PyTorch's LocalResponseNorm divides alpha by n instead).
    theirs = tf.nn.local_response_normalization(x, depth_radius=size // 2, bias=k, alpha=alpha, beta=beta).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


def test_paper_formula_by_hand():
    x = np.zeros((1, 1, 1, 7), "float32")
    x[..., 3] = 10.0
    x[..., 5] = 20.0
    y = np.asarray(LocalResponseNormalization()(x))[0, 0, 0]
    # channel 3 sees channels 1..5: 10^2 + 20^2; channel 6 sees 4..6 (clipped at the edge): 20^2
    assert y[3] == pytest.approx(10.0 / (2 + 1e-4 * 500) ** 0.75, rel=1e-6)
    assert y[6] == 0.0
    assert y[5] == pytest.approx(20.0 / (2 + 1e-4 * 500) ** 0.75, rel=1e-6)


def test_rejects_even_window():
    with pytest.raises(ValueError, match="odd"):
        LocalResponseNormalization(size=4)


def test_serializable():
    import keras

    layer = LocalResponseNormalization(size=3, alpha=2e-4)
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert (clone.size, clone.alpha, clone.beta, clone.k) == (3, 2e-4, 0.75, 2.0)
