"""LeNet-5 as LeCun et al. (1998) wrote it: C3's table, trainable subsampling, scaled tanh, RBF outputs."""

import numpy as np
import pytest

import zoo
from zoo.models import lenet


@pytest.fixture(scope="module")
def original():
    return zoo.build("lenet5_original")


def test_layer_parameter_counts_match_the_paper(original):
    counts = {layer.name: layer.count_params() for layer in original.layers if layer.weights}
    trainable = {layer.name: sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
                 for layer in original.layers if layer.weights}
    assert trainable == {"C1": 156, "S2": 12, "C3": 1516, "S4": 32, "C5": 48120, "F6": 10164, "RBF": 0}
    assert counts["RBF"] == 840  # fixed prototypes


def test_feature_map_sizes(original):
    sizes = {name: tuple(original.get_layer(name).output.shape[1:])
             for name in ("C1", "S2", "C3", "S4", "C5", "F6", "RBF")}
    assert sizes == {"C1": (28, 28, 6), "S2": (14, 14, 6), "C3": (10, 10, 16), "S4": (5, 5, 16),
                     "C5": (1, 1, 120), "F6": (84,), "RBF": (10,)}


def test_c3_sees_only_its_table(original):
    """Perturbing an S2 map changes exactly the C3 maps that Table I connects to it."""
    import keras

    table = zoo.get_spec("lenet5_original").arch.c3_table
    c3 = original.get_layer("C3")
    probe = keras.Model(original.get_layer("S2_squash").output, c3.output)
    base = np.zeros((1, 14, 14, 6), "float32")
    for source in range(6):
        bumped = base.copy()
        bumped[0, :, :, source] = 1.0
        delta = np.abs(np.asarray(probe(bumped)) - np.asarray(probe(base))).sum(axis=(0, 1, 2))
        assert sorted(np.nonzero(delta)[0].tolist()) == [o for o, ins in enumerate(table) if source in ins]


def test_scaled_tanh_constants():
    x = np.array([-1.0, 0.0, 1.0], "float32")
    np.testing.assert_allclose(np.asarray(lenet.scaled_tanh(x)), [-1.0, 0.0, 1.0], atol=2e-4)
    np.testing.assert_allclose(np.asarray(lenet.scaled_tanh(np.array([100.0]))), [1.7159], rtol=1e-6)


def test_subsampling_is_sum_times_coefficient_plus_bias():
    layer = lenet.TrainableSubsampling()
    x = np.arange(16, dtype="float32").reshape(1, 4, 4, 1)
    layer.build(x.shape)
    layer.coefficient.assign([0.5])
    layer.bias.assign([1.0])
    expected = np.array([[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]]) * 0.5 + 1.0
    np.testing.assert_allclose(np.asarray(layer(x))[0, :, :, 0], expected, rtol=1e-6)


def test_rbf_outputs_negative_squared_distances(original):
    rbf = original.get_layer("RBF")
    prototypes = np.asarray(rbf.prototypes)
    assert prototypes.shape == (10, 84) and set(np.unique(prototypes)) == {-1.0, 1.0}
    x = np.random.default_rng(0).normal(size=(3, 84)).astype("float32")
    expected = -((x[:, None, :] - prototypes[None]) ** 2).sum(-1)
    np.testing.assert_allclose(np.asarray(rbf(x)), expected, rtol=1e-4, atol=1e-3)
    assert not rbf.trainable_weights


def test_digit_prototypes_are_distinct_bitmaps():
    codes = lenet.rbf_prototypes(10, 84)
    distances = ((codes[:, None] - codes[None]) ** 2).sum(-1)
    assert (distances[~np.eye(10, dtype=bool)] > 0).all()
    assert lenet.rbf_prototypes(5, 84).shape == (5, 84)  # other class counts: random +-1 codes


def test_modern_lenet_layers():
    model = zoo.build("lenet5")
    assert [l.name for l in model.layers if l.weights] == ["conv1", "conv2", "fc1", "fc2", "predictions"]
