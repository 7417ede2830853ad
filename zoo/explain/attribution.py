"""Attribution maps with tf.GradientTape on the model's own forward pass (TensorFlow is the zoo's backend).

A layer's output is caught by wrapping that layer instance's `call` for the duration of one forward pass
(`Probe`), so Grad-CAM works on any Keras model, functional or Sequential, with the layer at the top level or
inside nested models: no rebuilt sub-graph (where the keras.io example breaks on Sequential and nested models).
Scores are logits: the pre-softmax values of the model's last layer (a softmax Dense or Activation).

- saliency: |d score / d input|, max over channels (Simonyan et al. 2014); SmoothGrad (Smilkov et al. 2017): the
  mean of |gradient| over noisy copies.
- Grad-CAM (Selvaraju et al. 2017): ReLU(sum_k alpha_k A_k), alpha_k the spatial mean of d score / d A_k.
- occlusion (Zeiler & Fergus 2014, sec. 4.2): the probability of the class with a square of the input set to the
  dataset mean (0 after normalisation), slid over the image.
- deconvnet (Zeiler & Fergus 2014, sec. 2.1): a unit's activation projected back to pixels through max-pool
  switches, ReLU on the backward signal and transposed filters. The gradient does the first and the last
  (TF's MaxPoolGrad routes to the argmax; the input gradient of a convolution is the transposed convolution);
  every ReLU's backward pass is replaced by ReLU(signal) for the projection.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Optional

import numpy as np

from ..errors import ZooError


class NotApplicableError(ZooError, ValueError):
    """A method that does not apply to this model (e.g. deconvnet where there is no max pooling)."""


def all_layers(model) -> list:
    """Every layer, nested models' layers included (depth first)."""
    found = []
    for layer in model.layers:
        found.append(layer)
        if hasattr(layer, "layers"):
            found.extend(all_layers(layer))
    return found


def find_layer(model, name: str):
    for layer in all_layers(model):
        if layer.name == name:
            return layer
    from .compute import LayerNotFoundError

    raise LayerNotFoundError(name, [layer.name for layer in all_layers(model)])


def output_layer(model):
    """The layer that makes the model's output (inside nested models too)."""
    layer = model.layers[-1]
    while hasattr(layer, "layers") and layer.layers:
        layer = layer.layers[-1]
    return layer


class Probe(contextlib.AbstractContextManager):
    """Records the inputs and output of some layers during forward passes inside the `with` block."""

    def __init__(self, layers: Iterable):
        self.layers = list(layers)
        self.inputs: dict[str, list] = {}
        self.outputs: dict[str, object] = {}

    def __enter__(self):
        for layer in self.layers:
            original = layer.call

            def recording(*args, _layer=layer, _original=original, **kwargs):
                out = _original(*args, **kwargs)
                self.inputs[_layer.name] = list(args)
                self.outputs[_layer.name] = out
                return out

            layer.call = recording
        return self

    def __exit__(self, *exc):
        for layer in self.layers:
            if "call" in vars(layer):
                del layer.call
        return False


def logits_of(last, probe: Probe, output):
    """The pre-softmax scores: the last layer's input (Activation) or its affine part (Dense)."""
    from keras import ops

    kind = type(last).__name__
    activation = getattr(getattr(last, "activation", None), "__name__", "linear")
    if kind == "Activation" and activation == "softmax":
        return probe.inputs[last.name][0]
    if kind == "Dense" and activation == "softmax":
        x = probe.inputs[last.name][0]
        z = ops.matmul(x, last.kernel)
        return z + last.bias if last.use_bias else z
    return output


def forward(model, x, layers=(), watch_input: bool = False):
    """One forward pass under a tape: (tape, probe, logits, probabilities); `layers` are recorded and watched."""
    import tensorflow as tf

    last = output_layer(model)
    wanted = [find_layer(model, n) if isinstance(n, str) else n for n in layers]
    tape = tf.GradientTape(persistent=True)
    with Probe([last, *wanted]) as probe, tape:
        if watch_input:
            tape.watch(x)
        out = model(x, training=False)
        out = out[0] if isinstance(out, (list, tuple)) else out
        logits = logits_of(last, probe, out)
    return tape, probe, logits, out


def one_hot(logits, cls: int):
    """d(score of class cls)/d(logits) for every image of the batch: the tape's output gradient (slicing the
    logits after the tape has stopped would leave the score off the tape)."""
    import tensorflow as tf

    return tf.one_hot(tf.fill([tf.shape(logits)[0]], cls), logits.shape[-1], dtype=logits.dtype)


def predict(model, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(logits, probabilities) of the first image."""
    import tensorflow as tf

    tape, _, logits, probs = forward(model, tf.constant(x))
    del tape
    return np.asarray(logits)[0].astype("float64"), np.asarray(probs)[0].astype("float64")


def saliency(model, x: np.ndarray, classes: list[int]) -> dict[int, np.ndarray]:
    """|d logit / d input| (max over channels), HxW, per class."""
    import tensorflow as tf

    xt = tf.constant(x)
    tape, _, logits, _ = forward(model, xt, watch_input=True)
    maps = {}
    for c in classes:
        grad = tape.gradient(logits, xt, output_gradients=one_hot(logits, c)).numpy()[0]
        maps[c] = np.abs(grad).max(axis=-1)
    del tape
    return maps


def smoothgrad(model, x: np.ndarray, cls: int, samples: int = 16, noise: float = 0.15, seed: int = 0) -> np.ndarray:
    """Mean |gradient| over `samples` copies with Gaussian noise of `noise` x the input's range (one batch)."""
    import tensorflow as tf

    rng = np.random.default_rng(seed)
    sigma = noise * float(x.max() - x.min() or 1.0)
    batch = (x + rng.normal(0.0, sigma, size=(samples, *x.shape[1:]))).astype("float32")
    xt = tf.constant(batch)
    tape, _, logits, _ = forward(model, xt, watch_input=True)
    grad = tape.gradient(logits, xt, output_gradients=one_hot(logits, cls)).numpy()
    del tape
    return np.abs(grad).max(axis=-1).mean(axis=0)


def gradcam(model, x: np.ndarray, layer_name: str, classes: list[int]) -> dict[int, np.ndarray]:
    """Grad-CAM at the named layer's resolution (h x w), per class: ReLU(sum_k mean(dS/dA_k) A_k)."""
    return gradients(model, x, [layer_name], classes, with_saliency=False)["gradcam"][layer_name]


def gradients(model, x: np.ndarray, layer_names: list[str], classes: list[int], with_saliency: bool = True) -> dict:
    """Grad-CAM at several layers and the saliency map, per class, from one forward pass and one backward pass
    per class (a deep net's forward and backward passes are the cost, not the maps)."""
    import tensorflow as tf

    xt = tf.constant(x)
    tape, probe, logits, _ = forward(model, xt, layers=layer_names, watch_input=with_saliency)
    activations = [probe.outputs[name] for name in layer_names]
    for name, a in zip(layer_names, activations):
        if len(a.shape) != 4:
            del tape
            raise NotApplicableError(f"Grad-CAM: layer {name!r} has no spatial output ({a.shape})")
    cams: dict[str, dict[int, np.ndarray]] = {name: {} for name in layer_names}
    saliency_maps: dict[int, np.ndarray] = {}
    for c in classes:
        targets = activations + ([xt] if with_saliency else [])
        grads = tape.gradient(logits, targets, output_gradients=one_hot(logits, c))
        for name, a, g in zip(layer_names, activations, grads):
            alpha = tf.reduce_mean(g, axis=(1, 2))  # (1, K)
            cams[name][c] = tf.nn.relu(tf.reduce_sum(a * alpha[:, None, None, :], axis=-1)).numpy()[0].astype(
                "float64")
        if with_saliency:
            saliency_maps[c] = np.abs(grads[-1].numpy()[0]).max(axis=-1)
    del tape
    return {"gradcam": cams, "saliency": saliency_maps}


def last_spatial_layer(model) -> str:
    """Grad-CAM's default layer: the last one with a spatial (4D) output of more than one position (a 1x1 map,
    LeNet-5's C5, makes every class's map the same single pixel)."""
    spatial = [layer.name for layer in model.layers if len(layer.output.shape) == 4]
    if not spatial:
        raise NotApplicableError(f"{model.name}: no layer with a spatial output for Grad-CAM")
    wide = [name for name in spatial if np.prod(model.get_layer(name).output.shape[1:3]) > 1]
    return (wide or spatial)[-1]


def occlusion_grid(size: int) -> tuple[int, int]:
    """(patch, stride) for a size x size input: a square a quarter of the side, slid to 7 positions per side on
    small inputs and 6 on large ones (36 forward passes of a 224x224 net instead of 49: the view's main cost)."""
    patch = max(1, size // 4)
    steps = 6 if size > 64 else 7
    return patch, max(1, (size - patch) // (steps - 1))


def occlusion(model, x: np.ndarray, classes: list[int], patch: Optional[int] = None,
              stride: Optional[int] = None, batch: int = 16) -> dict:
    """Probability of each class with a patch x patch square set to the mean, per position of the square."""
    size = x.shape[1]
    default_patch, default_stride = occlusion_grid(size)
    patch, stride = patch or default_patch, stride or default_stride
    positions = list(range(0, max(size - patch, 0) + 1, stride))
    boxes = [(top, left) for top in positions for left in positions]
    probabilities = []
    for start in range(0, len(boxes), batch):
        chunk = boxes[start:start + batch]
        images = np.repeat(x, len(chunk), axis=0)
        for i, (top, left) in enumerate(chunk):
            images[i, top:top + patch, left:left + patch, :] = 0.0  # the dataset mean after normalisation
        out = model(images, training=False)
        out = out[0] if isinstance(out, (list, tuple)) else out
        probabilities.append(np.asarray(out)[:, classes])
    probs = np.concatenate(probabilities).reshape(len(positions), len(positions), len(classes))
    return {"patch": patch, "stride": stride, "positions": positions,
            "maps": {c: probs[..., i].astype("float64") for i, c in enumerate(classes)}}


@contextlib.contextmanager
def replaced_relus(model, replacement):
    """Inside: every ReLU activation of the model (fused into a Conv2D/Dense or an Activation layer, nested models
    included) is `replacement`; restored on the way out."""
    changed = []
    for layer in all_layers(model):
        fn = getattr(layer, "activation", None)
        if getattr(fn, "__name__", "") == "relu":
            changed.append((layer, fn))
            layer.activation = replacement
    try:
        yield len(changed)
    finally:
        for layer, fn in changed:
            layer.activation = fn


def deconvnet_relus(model):
    """Every ReLU passes ReLU(signal) backward: the deconvnet's rectification of the reconstruction."""
    import tensorflow as tf

    @tf.custom_gradient
    def rectified(x):
        def backward(dy):
            return tf.nn.relu(dy)

        return tf.nn.relu(x), backward

    return replaced_relus(model, rectified)


def has_max_pooling(model) -> bool:
    return any(type(layer).__name__ in ("MaxPooling2D", "GlobalMaxPooling2D") for layer in all_layers(model))


def deconvnet(model, x: np.ndarray, layer_name: str, channels: list[int]) -> dict[int, dict]:
    """Per channel of the layer: its strongest unit projected back to the input (HxWxC), one batched pass."""
    return deconvnet_layers(model, x, {layer_name: channels})[layer_name]


def deconvnet_layers(model, x: np.ndarray, wanted: dict[str, Optional[list[int]]], top: int = 4) -> dict:
    """deconvnet for several layers at once: one forward and one backward pass over a batch of copies of `x`, one
    copy per (layer, channel). A layer's channels None: its `top` most active. -> {layer: {channel: {unit,
    activation, image}}}"""
    import tensorflow as tf

    if not has_max_pooling(model):
        raise NotApplicableError(f"deconvnet: {model.name} has no max pooling (Zeiler & Fergus' projection "
                                 "unpools through max-pool switches)")
    rows = sum(len(c) if c is not None else top for c in wanted.values())
    batch = tf.constant(np.repeat(x, rows, axis=0))
    with deconvnet_relus(model):
        tape, probe, _, _ = forward(model, batch, layers=list(wanted), watch_input=True)
        activations = [probe.outputs[name] for name in wanted]
        masks, picks, row = [], {}, 0
        for name, activation in zip(wanted, activations):
            values = activation.numpy()
            channels = wanted[name]
            if channels is None:  # the most active channels of the first copy (all copies are the same image)
                channels = [int(c) for c in np.argsort(-values[0].reshape(-1, values.shape[-1]).max(axis=0))[:top]]
            mask = np.zeros(values.shape, "float32")
            picks[name] = []
            for ch in channels:
                r, c = np.unravel_index(np.argmax(values[row, ..., ch]), values.shape[1:3])
                mask[row, r, c, ch] = 1.0
                picks[name].append((row, ch, int(r), int(c), float(values[row, r, c, ch])))
                row += 1
            masks.append(tf.constant(mask))
        grad = tape.gradient(activations, batch, output_gradients=masks).numpy()
        del tape
    return {name: {ch: {"unit": [r, c, ch], "activation": value, "image": grad[i].astype("float64")}
                   for i, ch, r, c, value in found} for name, found in picks.items()}


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Rank correlation of two maps (Adebayo et al.'s similarity of trained and randomised explanations)."""
    ra = np.argsort(np.argsort(a.ravel())).astype("float64")
    rb = np.argsort(np.argsort(b.ravel())).astype("float64")
    if ra.std() == 0 or rb.std() == 0:
        return 0.0
    return float(np.corrcoef(ra, rb)[0, 1])
