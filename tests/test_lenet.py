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


# -- eq. 9, the MAP criterion, and the paper's input scaling ------------------------------------------------------


def map_by_hand(logits: np.ndarray, labels: np.ndarray, j: float):
    """Eq. 9 and its gradient with respect to the logits z = -y, written out with numpy (float64)."""
    z = logits.astype("float64")
    y = -z
    batch = len(labels)
    penalties = np.exp(-y)  # e^-y_i
    total = np.exp(-j) + penalties.sum(axis=1)
    loss = np.mean(y[np.arange(batch), labels] + np.log(total))
    q = penalties / total[:, None]  # dE_p/dy_i = [i = D] - q_i, so dE_p/dz_i = q_i - [i = D]
    grad = (q - np.eye(z.shape[1])[labels]) / batch
    return loss, grad


def test_map_criterion_and_its_gradient_are_eq_9():
    import tensorflow as tf

    from zoo.training.losses import MAPCriterion

    rng = np.random.default_rng(9)
    logits = -rng.uniform(0.0, 6.0, size=(5, 10)).astype("float32")  # penalties y in [0, 6]: e^-j matters
    labels = rng.integers(0, 10, size=5)
    j = 1.5
    expected_loss, expected_grad = map_by_hand(logits, labels, j)
    z = tf.Variable(logits)
    with tf.GradientTape() as tape:
        loss = MAPCriterion(j)(labels, tf.identity(z))  # a model's output is a tensor
    np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(loss, z).numpy(), expected_grad, rtol=1e-4, atol=1e-7)
    one_hot = np.eye(10, dtype="float32")[labels]
    np.testing.assert_allclose(float(MAPCriterion(j)(one_hot, logits)), expected_loss, rtol=1e-5)


def test_the_rubbish_term_is_what_separates_eq_9_from_cross_entropy():
    import keras

    from zoo.training.losses import MAPCriterion

    rng = np.random.default_rng(1)
    logits = -rng.uniform(0.0, 3.0, size=(4, 10)).astype("float32")
    labels = rng.integers(0, 10, size=4)
    xent = float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits))
    assert float(MAPCriterion(80.0)(labels, logits)) == pytest.approx(xent, rel=1e-6)  # e^-80: nothing
    assert float(MAPCriterion(0.1)(labels, logits)) > xent + 0.1  # j = 0.1: the rubbish class counts
    with pytest.raises(ValueError, match="must be positive"):
        MAPCriterion(0.0)


def test_lenet5_original_trains_with_eq_9_and_the_others_with_cross_entropy():
    from zoo.training.config import resolve
    from zoo.training.losses import MAPCriterion, training_loss

    arch = zoo.get_spec("lenet5_original").arch
    assert (arch.loss, arch.rubbish_penalty) == ("map", 0.1)
    config = resolve("lenet5_original")
    assert config.loss == {"name": "map", "rubbish_penalty": 0.1}
    loss = training_loss(config.loss, soft_labels=False)
    assert isinstance(loss, MAPCriterion) and loss.rubbish_penalty == 0.1
    assert resolve("lenet5").loss == {"name": "crossentropy"}
    assert type(training_loss(None, soft_labels=False)).__name__ == "SparseCategoricalCrossentropy"
    from zoo.training.options import TrainError

    with pytest.raises(TrainError, match="label smoothing"):
        training_loss(config.loss, soft_labels=True, label_smoothing=0.1)


def test_input_scaling_is_the_papers():
    """Sec. II.B: background -0.1, ink 1.175 (mean 0, variance about 1 on MNIST)."""
    from zoo.data.catalogue import dataset_info
    from zoo.data.pipeline import make_dataset
    from zoo.training.inputs import pipeline_spec

    spec = zoo.get_spec("lenet5_original")
    mean, std = spec.eval.mean[0], spec.eval.std[0]
    assert ((0 - mean) / std, (255 - mean) / std) == (pytest.approx(-0.1), pytest.approx(1.175))
    served = pipeline_spec(spec, None, dataset_info(spec.dataset), training=False, batch_size=8)
    assert (tuple(served.mean), tuple(served.std)) == ((20.0,), (200.0,))
    images = next(iter(make_dataset("fashion_mnist_sample", "test[:8]", image_size=32, channels=1, batch_size=8,
                                    training=False, mean=served.mean, std=served.std)))[0].numpy()
    assert images[:, 0, 0, 0] == pytest.approx(-0.1)  # the 2-pixel zero border is background
    assert images.max() <= 1.175 + 1e-6


@pytest.mark.parametrize("dataset", ["fashion_mnist", "mnist", "cifar10"])
def test_the_papers_scaling_applies_on_every_dataset(dataset):
    """A fixed scaling (eval.fixed), not a dataset's statistics: the pipeline and the preprocessing a run's weights
    record both use it on any dataset; a model whose eval mean/std are statistics (none here: lenet5) gets each
    dataset's own."""
    from zoo.data.catalogue import dataset_info, get_dataset
    from zoo.pretrained import pipeline_preprocessing
    from zoo.training.inputs import pipeline_spec

    original, modern = zoo.get_spec("lenet5_original"), zoo.get_spec("lenet5")
    assert original.eval.fixed and not modern.eval.fixed
    served = pipeline_spec(original, None, dataset_info(dataset), training=True, batch_size=8)
    assert (tuple(served.mean), tuple(served.std)) == ((20.0,), (200.0,))
    recorded = pipeline_preprocessing(original, dataset)
    assert (recorded.mean, recorded.std) == ([20.0], [200.0])
    served = pipeline_spec(modern, None, dataset_info(dataset), training=True, batch_size=8)
    assert (served.mean, served.std) == (None, None)  # the pipeline takes the catalogue's
    entry = get_dataset(dataset)
    assert pipeline_preprocessing(modern, dataset).mean[0] == pytest.approx(
        entry.mean[0] if len(entry.mean) == 1 else sum(w * m for w, m in zip((0.2989, 0.5870, 0.1140), entry.mean)))


def test_a_fixed_scaling_needs_its_values():
    from pydantic import ValidationError

    from zoo.registry import EvalSpec

    with pytest.raises(ValidationError, match="fixed: true needs both mean and std"):
        EvalSpec(mean=[20.0], fixed=True)
