"""LeNet-5 (LeCun, Bottou, Bengio, Haffner 1998, "Gradient-Based Learning Applied to Document Recognition").

Two variants from one builder, chosen by `arch.variant` in the registry:
- `modern`: the form most courses teach: full C3 connectivity, max pooling, ReLU, dense 120-84-classes.
- `original`: the paper as written (sec. II.B, Fig. 2, Table I): C3's partial connection table, trainable
  subsampling (sum of a 2x2 window times a trainable coefficient plus a bias, then squashing), the scaled tanh
  f(a) = 1.7159 tanh(2a/3) (Appendix A), C5 as a 5x5 convolution, F6 with 84 units and Euclidean RBF output
  units with fixed +-1 prototypes (eq. 7) drawn as 7x12 bitmaps of the digits. The RBF layer returns the
  *negated* penalties y_i, so that softmax over them is exactly the paper's MAP criterion (eq. 9) and the
  usual cross-entropy trains it.
"""

from __future__ import annotations

import numpy as np
import keras
from keras import layers, ops

from ..archs import LeNetArch, LeNetModernArch, LeNetOriginalArch
from . import common
from .family import Family, Head, Stage

A, S = 1.7159, 2.0 / 3.0  # the paper's squashing constants (Appendix A)


@keras.saving.register_keras_serializable(package="zoo")
def scaled_tanh(x):
    """f(a) = A tanh(S a), A = 1.7159, S = 2/3: f(1) = 1, f(-1) = -1 (LeCun et al. 1998, Appendix A)."""
    return A * ops.tanh(S * x)


@keras.saving.register_keras_serializable(package="zoo")
class TrainableSubsampling(layers.Layer):
    """S2/S4: each map's non-overlapping 2x2 sums times a trainable coefficient plus a trainable bias."""

    def __init__(self, pool_size: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pool_size

    def build(self, input_shape):
        channels = input_shape[-1]
        self.coefficient = self.add_weight(shape=(channels,), initializer="ones", name="coefficient")
        self.bias = self.add_weight(shape=(channels,), initializer="zeros", name="bias")

    def call(self, x):
        window = self.pool_size * self.pool_size
        summed = ops.average_pool(x, self.pool_size, strides=self.pool_size, padding="valid") * window
        return summed * self.coefficient + self.bias

    def compute_output_shape(self, input_shape):
        n, h, w, c = input_shape
        p = self.pool_size
        return (n, None if h is None else h // p, None if w is None else w // p, c)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size}


@keras.saving.register_keras_serializable(package="zoo")
class PartialConv2D(layers.Layer):
    """A valid convolution in which output map o sees only the input maps `table[o]` (LeNet-5's C3, Table I).

    Only the connected kernels are weights: `kernel` has shape (k, k, connections). They are scattered into a
    dense (k, k, in, out) kernel by a fixed 0/1 matrix, so the layer is a plain convolution to run.
    """

    def __init__(self, table, kernel_size: int = 5, **kwargs):
        super().__init__(**kwargs)
        self.table = [list(map(int, row)) for row in table]
        self.kernel_size = kernel_size

    def build(self, input_shape):
        in_maps, out_maps = int(input_shape[-1]), len(self.table)
        pairs = [(i, o) for o, inputs in enumerate(self.table) for i in inputs]
        if any(i >= in_maps for i, _ in pairs):
            raise ValueError(f"{self.name}: connection table refers to input maps beyond {in_maps}")
        scatter = np.zeros((len(pairs), in_maps * out_maps), dtype="float32")
        for c, (i, o) in enumerate(pairs):
            scatter[c, i * out_maps + o] = 1.0
        self._scatter = scatter
        self.in_maps, self.out_maps = in_maps, out_maps
        k = self.kernel_size
        fan_in = k * k * len(pairs) / out_maps  # mean fan-in of an output map: LeCun-uniform on it
        limit = float(np.sqrt(3.0 / fan_in))
        self.kernel = self.add_weight(shape=(k, k, len(pairs)), name="kernel",
                                      initializer=keras.initializers.RandomUniform(-limit, limit))
        self.bias = self.add_weight(shape=(out_maps,), initializer="zeros", name="bias")

    def dense_kernel(self):
        k = self.kernel_size
        scatter = ops.convert_to_tensor(self._scatter, dtype=self.kernel.dtype)
        flat = ops.matmul(ops.reshape(self.kernel, (k * k, -1)), scatter)
        return ops.reshape(flat, (k, k, self.in_maps, self.out_maps))

    def call(self, x):
        kernel = ops.cast(self.dense_kernel(), x.dtype)
        return ops.conv(x, kernel, strides=1, padding="valid") + ops.cast(self.bias, x.dtype)

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        k = self.kernel_size
        return (n, None if h is None else h - k + 1, None if w is None else w - k + 1, len(self.table))

    def count_macs(self, input_shape, output_shape):
        connections = sum(len(t) for t in self.table)
        return int(output_shape[1] * output_shape[2] * connections * self.kernel_size ** 2)

    def get_config(self):
        return {**super().get_config(), "table": self.table, "kernel_size": self.kernel_size}


@keras.saving.register_keras_serializable(package="zoo")
class EuclideanRBF(layers.Layer):
    """Output units y_i = sum_j (x_j - w_ij)^2 with fixed prototypes w (eq. 7); returns -y as logits."""

    def __init__(self, prototypes, **kwargs):
        super().__init__(**kwargs)
        self.prototypes_init = np.asarray(prototypes, dtype="float32").tolist()

    def build(self, input_shape):
        values = np.asarray(self.prototypes_init, dtype="float32")  # (classes, features)
        if values.shape[1] != input_shape[-1]:
            raise ValueError(f"{self.name}: prototypes have {values.shape[1]} components, input has "
                             f"{input_shape[-1]}")
        self.prototypes = self.add_weight(shape=values.shape, name="prototypes", trainable=False,
                                          initializer=keras.initializers.Constant(values))

    def call(self, x):
        w = ops.cast(self.prototypes, x.dtype)
        # ||x - w||^2 = |x|^2 - 2 x.w + |w|^2, one matmul instead of a (batch, classes, features) tensor
        penalties = (ops.sum(ops.square(x), axis=-1, keepdims=True) - 2.0 * ops.matmul(x, ops.transpose(w))
                     + ops.sum(ops.square(w), axis=-1)[None, :])
        return -penalties

    def compute_output_shape(self, input_shape):
        return (input_shape[0], len(self.prototypes_init))

    def count_macs(self, input_shape, output_shape):
        return int(input_shape[-1] * output_shape[-1])

    def get_config(self):
        return {**super().get_config(), "prototypes": self.prototypes_init}


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
    """F6 (scaled tanh) and the Euclidean RBF output units; softmax over their negated penalties (eq. 9)."""
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


def stages(arch: LeNetArch) -> tuple[Stage, ...]:
    """The two subsampled maps (after S2 and S4, or after pool1 and pool2)."""
    if arch.variant == "original":
        return (Stage("S2_squash", 2), Stage("S4_squash", 4))
    return tuple(Stage(f"pool{i + 1}", 2 ** (i + 1)) for i in range(len(arch.conv)))


FAMILY = Family("lenet", LeNetArch, body=body, head=classifier, stages=stages)
