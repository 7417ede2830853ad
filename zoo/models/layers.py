"""The zoo's custom Keras objects, in one module that imports nothing of the zoo but Keras: Local Response
Normalization (AlexNet, ZFNet, GoogLeNet), LeNet-5's scaled tanh, trainable subsampling, partial C3 convolution and
Euclidean RBF outputs, and ResNet's option-A zero-padding shortcut.

Each is registered with `@keras.saving.register_keras_serializable(package="zoo")`; `zoo.saving` imports this module
the moment Keras is imported, so a `.keras` file of any variant loads after a plain `import zoo`. Keeping them out of
the family modules is what makes that safe: importing this module never imports `zoo.models.family`, which may be
half-imported itself when Keras first loads. The family modules re-export their objects under the old names.
"""

from __future__ import annotations

import numpy as np
import keras
from keras import layers, ops

__all__ = ["LocalResponseNormalization", "scaled_tanh", "TrainableSubsampling", "PartialConv2D", "EuclideanRBF",
           "ZeroPadShortcut", "SCALED_TANH_A", "SCALED_TANH_S", "FilterRMSNorm", "FanInUniform"]

A, S = 1.7159, 2.0 / 3.0  # LeNet-5's squashing constants (LeCun et al. 1998, Appendix A)
SCALED_TANH_A, SCALED_TANH_S = A, S


@keras.saving.register_keras_serializable(package="zoo")
class LocalResponseNormalization(layers.Layer):
    """Local Response Normalization across channels (Krizhevsky et al. 2012, sec. 3.3):

        b_i = a_i / (k + alpha * sum_{j = i - n//2}^{i + n//2} a_j^2) ^ beta

    with the paper's constants k=2, n=5, alpha=1e-4, beta=0.75. Note the conventions: TF's
    `tf.nn.local_response_normalization` takes `depth_radius = n // 2` and the same alpha (not divided by n);
    PyTorch's `LocalResponseNorm(size=n)` divides alpha by n. Only channels_last inputs.
    """

    def __init__(self, size: int = 5, alpha: float = 1e-4, beta: float = 0.75, k: float = 2.0, **kwargs):
        super().__init__(**kwargs)
        if size < 1 or size % 2 == 0:
            raise ValueError(f"LRN size must be a positive odd number, got {size}")
        self.size, self.alpha, self.beta, self.k = size, alpha, beta, k

    def call(self, x):
        radius = self.size // 2
        squared = ops.square(x)
        padded = ops.pad(squared, [[0, 0]] * (len(x.shape) - 1) + [[radius, radius]])
        channels = x.shape[-1]
        window_sum = padded[..., 0:channels]
        for offset in range(1, self.size):
            window_sum = window_sum + padded[..., offset:offset + channels]
        return x / ops.power(self.k + self.alpha * window_sum, self.beta)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k}


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


@keras.saving.register_keras_serializable(package="zoo")
class FilterRMSNorm(keras.constraints.Constraint):
    """ZFNet's filter renormalisation (Zeiler & Fergus 2013, sec. 3): each filter (the kernel's slice for one output
    map) whose RMS value exceeds `radius` is scaled down to RMS `radius`; the others are left as they are. A Keras
    constraint, so the optimizer applies it after every update."""

    def __init__(self, radius: float = 0.1):
        if not radius > 0:
            raise ValueError(f"FilterRMSNorm radius must be positive, got {radius}")
        self.radius = float(radius)

    def __call__(self, w):
        w = ops.convert_to_tensor(w)
        axes = tuple(range(len(w.shape) - 1))  # all but the output maps
        rms = ops.sqrt(ops.mean(ops.square(w), axis=axes, keepdims=True))
        return w * ops.minimum(1.0, self.radius / ops.maximum(rms, 1e-12))

    def get_config(self):
        return {"radius": self.radius}


@keras.saving.register_keras_serializable(package="zoo")
class FanInUniform(keras.initializers.RandomUniform):
    """U(-scale/F, scale/F), F the fan-in of the unit a weight feeds (LeNet-5, LeCun et al. 1998, Appendix A).

    F is computed from the shape as Keras does (kernel_h * kernel_w * input maps; a dense kernel's inputs) unless
    `fan_in` gives it: one number, or one per entry of the last axis where the units differ (C3's kernel columns
    feed maps of 3, 4 or 6 inputs; an S2 coefficient multiplies the 4 pixels of its window). The seed is Keras'
    (RandomUniform's): None draws from the global seed `keras.utils.set_random_seed` sets."""

    def __init__(self, scale: float = 2.4, fan_in=None, seed=None):
        super().__init__(minval=-1.0, maxval=1.0, seed=seed)
        self.scale = float(scale)
        self.fan_in = fan_in if fan_in is None or np.isscalar(fan_in) else [float(f) for f in fan_in]

    def __call__(self, shape, dtype=None):
        fan_in = self.fan_in
        if fan_in is None:
            fan_in = shape[0] if len(shape) <= 2 else int(np.prod(shape[:-1]))  # Keras' compute_fans
        limit = ops.convert_to_tensor(self.scale / np.asarray(fan_in, dtype="float32"), dtype=dtype)
        return super().__call__(shape, dtype=dtype) * limit

    def get_config(self):
        return {"scale": self.scale, "fan_in": self.fan_in, "seed": super().get_config()["seed"]}


@keras.saving.register_keras_serializable(package="zoo")
class ZeroPadShortcut(layers.Layer):
    """Option A shortcut (sec. 3.3): identity, subsampled by `strides`, with zero channels appended.

    Taking every `strides`-th pixel (from the top-left one) lines the shortcut up with a strided conv whose
    padding is symmetric: output pixel i of both is centred on input pixel `strides * i`. No parameters.
    """

    def __init__(self, filters: int, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.strides = int(filters), int(strides)

    def build(self, input_shape):
        if input_shape[-1] > self.filters:
            raise ValueError(f"{self.name}: cannot zero-pad {input_shape[-1]} channels down to {self.filters}")

    def call(self, x):
        s = self.strides
        x = x[:, ::s, ::s, :] if s > 1 else x
        return ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, self.filters - x.shape[-1]]])

    def compute_output_shape(self, input_shape):
        n, h, w, _ = input_shape
        s = self.strides
        ceil = lambda side: None if side is None else (side + s - 1) // s  # noqa: E731 - x[::s] keeps ceil(side/s)
        return (n, ceil(h), ceil(w), self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}

    @classmethod
    def from_config(cls, config):
        # Loading a saved CIFAR ResNet rebuilds its graph before the builder ever runs in this process; the
        # layers are deserialized first, so this is the one hook that can make room for ResNet-1202's depth.
        from .family import allow_deep_graphs  # at load time the family module is complete

        allow_deep_graphs()
        return cls(**config)
