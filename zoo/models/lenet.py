"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998, "Gradient-Based Learning Applied to Document Recognition").

Two variants from one builder, chosen by `arch.variant` in the registry:
- `modern`: the form most courses teach: full C3 connectivity, max pooling, ReLU, dense 120-84-classes.
- `original`: the paper as written (sec. II.B, Fig. 2, Table I): C3's partial connection table, trainable
  subsampling (sum of a 2x2 window times a trainable coefficient plus a bias, then squashing), the scaled tanh
  f(a) = 1.7159 tanh(2a/3) (Appendix A), C5 as a 5x5 convolution, F6 with 84 units and Euclidean RBF output
  units with fixed +-1 prototypes (eq. 7) drawn as 7x12 bitmaps of the digits. The RBF layer returns the
  *negated* penalties -y_i as logits (the class is the argmax, the nearest prototype). It trains with the paper's
  MAP criterion, eq. 9, y_D + log(e^-j + sum_i e^-y_i) (`arch.loss`, zoo.training.losses.MAPCriterion);
  softmax cross-entropy on the logits is eq. 9 without the e^-j of its "rubbish" class.
"""

from __future__ import annotations

import numpy as np
from keras import layers

from ..archs import LeNetArch, LeNetModernArch, LeNetOriginalArch
from . import common
from .family import Family, Head
from .features import lenet_stages
from .layers import A, S, EuclideanRBF, PartialConv2D, TrainableSubsampling, scaled_tanh  # noqa: F401

# 7 wide x 12 tall stylised digits ('#' = +1, '.' = -1): the paper's RBF prototypes are such bitmaps of the
# ASCII characters (sec. II.B); drawn here for the ten digits.
DIGIT_BITMAPS = {
    0: "..###..|.#...#.|#.....#|#.....#|#.....#|#.....#|#.....#|#.....#|#.....#|#.....#|.#...#.|..###..",
    1: "...#...|..##...|.#.#...|...#...|...#...|...#...|...#...|...#...|...#...|...#...|...#...|.#####.",
    2: ".#####.|#.....#|......#|......#|.....#.|....#..|...#...|..#....|.#.....|#......|#......|#######",
    3: ".#####.|#.....#|......#|......#|......#|..####.|......#|......#|......#|......#|#.....#|.#####.",
    4: ".....#.|....##.|...#.#.|..#..#.|.#...#.|#....#.|#######|.....#.|.....#.|.....#.|.....#.|.....#.",
    5: "#######|#......|#......|#......|######.|......#|......#|......#|......#|......#|#.....#|.#####.",
    6: "..####.|.#.....|#......|#......|######.|#.....#|#.....#|#.....#|#.....#|#.....#|#.....#|.#####.",
    7: "#######|......#|......#|.....#.|.....#.|....#..|....#..|...#...|...#...|..#....|..#....|..#....",
    8: ".#####.|#.....#|#.....#|#.....#|.#...#.|..###..|.#...#.|#.....#|#.....#|#.....#|#.....#|.#####.",
    9: ".#####.|#.....#|#.....#|#.....#|#.....#|.######|......#|......#|......#|......#|.....#.|.####..",
}


def rbf_prototypes(classes: int, units: int, seed: int = 1998) -> np.ndarray:
    """Digit bitmaps for 10 classes and 84 units; otherwise random +-1 codes, the alternative the paper names."""
    if classes == 10 and units == 84:
        rows = [DIGIT_BITMAPS[d].replace("|", "") for d in range(10)]
        return np.array([[1.0 if c == "#" else -1.0 for c in row] for row in rows], dtype="float32")
    return np.random.default_rng(seed).choice([-1.0, 1.0], size=(classes, units)).astype("float32")


def modern_features(x, arch: LeNetModernArch):
    pool = layers.MaxPooling2D if arch.pool == "max" else layers.AveragePooling2D
    for i, filters in enumerate(arch.conv):
        x = layers.Conv2D(filters, arch.kernel, activation=arch.activation, name=f"conv{i + 1}")(x)
        x = pool(2, name=f"pool{i + 1}")(x)
    return x


def original_features(x, arch: LeNetOriginalArch):
    x = layers.Conv2D(arch.c1, 5, activation=scaled_tanh, name="C1")(x)
    x = layers.Activation(scaled_tanh, name="S2_squash")(TrainableSubsampling(name="S2")(x))
    x = layers.Activation(scaled_tanh, name="C3_squash")(PartialConv2D(arch.c3_table, 5, name="C3")(x))
    x = layers.Activation(scaled_tanh, name="S4_squash")(TrainableSubsampling(name="S4")(x))
    return layers.Conv2D(arch.c5, 5, activation=scaled_tanh, name="C5")(x)


def body(x, arch: LeNetArch, head: Head):
    return modern_features(x, arch) if arch.variant == "modern" else original_features(x, arch)


def rbf_head(x, arch: LeNetOriginalArch, head: Head):
    """F6 (scaled tanh) and the Euclidean RBF output units, their negated penalties -y_i the logits."""
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(arch.f6, activation=scaled_tanh, name="F6")(x)
    x = EuclideanRBF(rbf_prototypes(head.classes, arch.f6), name="RBF")(x)
    return layers.Activation(head.classifier_activation, dtype=common.prediction_dtype(), name="predictions")(x)


def classifier(x, arch: LeNetArch, head: Head):
    if not head.include_top:
        return common.pool_features(x, head.pooling)
    if arch.variant == "original":
        return rbf_head(x, arch, head)
    return common.dense_head(x, arch.dense, include_top=True, pooling=head.pooling, classes=head.classes,
                             classifier_activation=head.classifier_activation, activation=arch.activation)


FAMILY = Family("lenet", LeNetArch, body=body, head=classifier, stages=lenet_stages)
