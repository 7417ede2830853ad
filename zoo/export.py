"""`zoo export`: a model to a SavedModel, an ONNX file or a LiteRT (.tflite) file through Keras 3's `model.export`
(for ONNX its tf2onnx conversion, called directly: see below), checked by running the artifact in its own runtime
against Keras before it is kept.

    result = export_model(model, "lenet5.onnx", "onnx", batch=x)    # ExportResult(path, max_abs_diff, ...)

The artifact is written beside the output under a temporary name, loaded back with its runtime (TensorFlow for a
SavedModel, onnxruntime, the LiteRT interpreter), run on `batch` and compared with Keras' outputs; only if the
largest absolute difference is at most `tolerance` (1e-4, float32) is it renamed to the output, so a failed or
inexact export never leaves a file behind.

Grouped convolutions (AlexNet's two towers) are exported as the split -> convolutions -> concat they stand for:
tf2onnx writes a grouped Conv2D as a nested function call onnxruntime rejects (INVALID_GRAPH), so `export_build`
clones the model with every grouped Conv2D replaced by `SplitGroupsConv2D`, weights copied (exactly the same
arithmetic). `include_preprocessing` puts the weights' padding, channel order and mean/std in front: the exported
model then takes 0-255 pixels at the input size less the padding (resize and crop stay outside the graph).

ONNX goes through tf2onnx as Keras' exporter does, with two changes that keep VGG's 133-144M parameters in
memory (`_export_onnx`; measured in docs/weights.md): the weights are frozen with tf2onnx's large-model path (no
Grappler pass over a graph holding every weight as a constant), and each tf2onnx node's protobuf is rebuilt rather
than cleared and refilled after every optimizer pass (under protobuf's upb runtime a cleared attribute stays in its
message's arena, so each pass kept one more copy of every weight: VGG11 passed 13 GiB). The result is still one
self-contained .onnx file (the weights inlined; every zoo model is far below protobuf's 2 GiB limit).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from .choices import EXPORT_FORMATS
from .errors import ZooError

__all__ = ["ExportError", "ExportResult", "export_model", "export_build", "with_preprocessing", "TOLERANCE",
           "KERAS_FORMATS", "SUFFIXES"]

TOLERANCE = 1e-4  # float32: larger differences mean the artifact computes something else
KERAS_FORMATS = {"savedmodel": "tf_saved_model", "onnx": "onnx", "litert": "litert"}  # ours -> model.export's
SUFFIXES = {"savedmodel": "", "onnx": ".onnx", "litert": ".tflite"}
NEEDS = {"onnx": ("onnx", "tf2onnx", "onnxruntime")}


class ExportError(ZooError, ValueError):
    """An export that cannot be made or is not exact; nothing is left at the output."""


@dataclass
class ExportResult:
    path: Path
    format: str
    max_abs_diff: float
    images: int
    runtime: str
    grouped_convs: int  # grouped convolutions exported as split/concat


# ---------------------------------------------------------------------------------------------------------------
# The export build: grouped convolutions as split -> convs -> concat, preprocessing in front


def _split_groups_layer():
    import keras
    from keras import layers, ops

    class SplitGroupsConv2D(layers.Layer):
        """A grouped Conv2D written out: the input's channels split into `groups`, one Conv2D each, concatenated."""

        def __init__(self, conv_config: dict, groups: int, **kwargs):
            super().__init__(name=conv_config["name"], **kwargs)
            self.groups = groups
            per_group = {**conv_config, "groups": 1, "filters": conv_config["filters"] // groups}
            self.convs = [layers.Conv2D.from_config({**per_group, "name": f"{conv_config['name']}_group{i}"})
                          for i in range(groups)]

        def call(self, x):
            parts = ops.split(x, self.groups, axis=-1)
            return ops.concatenate([conv(part) for conv, part in zip(self.convs, parts)], axis=-1)

        def set_from(self, conv) -> None:
            kernel, *bias = conv.get_weights()
            width = kernel.shape[-1] // self.groups
            for i, sub in enumerate(self.convs):
                sub.set_weights([kernel[..., i * width:(i + 1) * width]] + [b[i * width:(i + 1) * width] for b in bias])

    return keras, SplitGroupsConv2D


def export_build(model):
    """`model` with each grouped Conv2D as split/conv/concat (same weights, same outputs); `model` itself when it
    has none. Returns (model, number of grouped convolutions replaced)."""
    keras, SplitGroupsConv2D = _split_groups_layer()
    grouped = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1]
    if not grouped:
        return model, 0

    def clone(layer):
        if isinstance(layer, keras.layers.Conv2D) and layer.groups > 1:
            return SplitGroupsConv2D(layer.get_config(), layer.groups)
        return layer.__class__.from_config(layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for layer in model.layers:
        target = copy.get_layer(layer.name)
        if isinstance(target, SplitGroupsConv2D):
            target.set_from(layer)
        elif layer.weights:
            target.set_weights(layer.get_weights())
    return copy, len(grouped)


def with_preprocessing(model, preprocessing):
    """`model` behind `preprocessing`'s padding, channel order and mean/std: 0-255 pixels in, at the input size
    less the padding (28x28 for LeNet-5 on Fashion-MNIST); resizing and cropping stay outside the graph."""
    import keras
    from keras import layers, ops

    mean = np.asarray(preprocessing.mean, "float32")
    std = np.asarray(preprocessing.std, "float32")
    reverse = preprocessing.channel_order == "bgr"

    class Standardize(layers.Layer):
        def call(self, x):
            x = ops.flip(x, axis=-1) if reverse else x
            return (x - mean) / std

    side, pad, channels = preprocessing.size - 2 * preprocessing.pad, preprocessing.pad, preprocessing.channels
    pixels = keras.Input((side, side, channels), name="pixels")
    x = layers.ZeroPadding2D(pad, name="padding")(pixels) if pad else pixels  # black borders, before normalising
    return keras.Model(pixels, model(Standardize(name="preprocessing")(x)), name=f"{model.name}_with_preprocessing")


# ---------------------------------------------------------------------------------------------------------------
# Running the artifact in its own runtime


def _check_installed(fmt: str) -> None:
    import importlib.util

    missing = [name for name in NEEDS.get(fmt, ()) if importlib.util.find_spec(name) is None]
    if missing:
        raise ExportError(f"--format {fmt} needs {', '.join(NEEDS[fmt])} (missing: {', '.join(missing)}): "
                          f"pip install \".[export]\"")


PROTOBUF_LIMIT = 2 ** 31 - 1  # bytes: one .onnx file without external data


@contextlib.contextmanager
def _tf2onnx_node_protos_rebuilt():
    """While active, tf2onnx's `Node.update_proto` (run on every node after each optimizer pass) starts from a new
    NodeProto: it used to clear the node's attributes and add them again, and upb keeps a cleared message in its
    parent's arena until the parent dies, so every pass left one more copy of each Const's tensor behind."""
    from tf2onnx.graph import Node

    refill = Node.update_proto

    def update_proto(self, external_tensor_storage=None):
        del self._op.attribute[:]  # rebuilt from self._attr by `refill`; cleared first so CopyFrom skips them
        fresh = type(self._op)()
        fresh.CopyFrom(self._op)
        self._op = fresh
        return refill(self, external_tensor_storage)

    Node.update_proto = update_proto
    try:
        yield
    finally:
        Node.update_proto = refill


def _inline_external(proto, storage) -> None:
    """Put the tensors tf2onnx's large-model mode kept aside back into the model's initializers (one file)."""
    from onnx import TensorProto

    for tensor in proto.graph.initializer:
        if tensor.data_location == TensorProto.EXTERNAL:
            location = {entry.key: entry.value for entry in tensor.external_data}["location"]
            tensor.raw_data = storage.name_to_tensor_data.pop(location)  # popped: one copy at a time
            del tensor.external_data[:]
            tensor.data_location = TensorProto.DEFAULT


def _export_onnx(model, path: Path) -> None:
    """`model.export(path, format="onnx")`'s conversion (a tf.function of the inference call, tf2onnx at its
    default opset), frozen through tf2onnx's large-model path and with `_tf2onnx_node_protos_rebuilt`; written as
    one .onnx file."""
    import gc

    import tensorflow as tf
    import tf2onnx
    from keras.src.export.tf2onnx_lib import patch_tf2onnx  # what model.export applies: tf2onnx under numpy 2

    signature = [tf.TensorSpec(tensor.shape, tensor.dtype, name=tensor.name) for tensor in model.inputs]
    inference = tf.function(lambda *x: model(x[0] if len(x) == 1 else list(x), training=False),
                            input_signature=signature)
    patch_tf2onnx()
    with _tf2onnx_node_protos_rebuilt():
        proto, storage = tf2onnx.convert.from_function(inference, signature, large_model=True)
    _inline_external(proto, storage)
    del storage
    gc.collect()  # tf2onnx's graphs are cyclic: free their tensors before the file is serialised and checked
    size = proto.ByteSize()
    if size > PROTOBUF_LIMIT:
        raise ExportError(f"{model.name} is {size / 2**30:.1f} GiB as ONNX, above protobuf's 2 GiB for one file")
    path.write_bytes(proto.SerializeToString())


def _run_savedmodel(path: Path, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    loaded = tf.saved_model.load(os.fspath(path))  # held while serving: its variables live as long as it does
    return np.asarray(loaded.serve(tf.constant(x)))


def _run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    try:
        session = onnxruntime.InferenceSession(os.fspath(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # INVALID_GRAPH, unsupported ops: the runtime's own words, one line
        raise ExportError(f"onnxruntime rejects the exported file: {' '.join(str(e).split())[:300]}") from None
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def _litert_interpreter(path: Path):
    try:
        from ai_edge_litert.interpreter import Interpreter  # LiteRT's own package, where installed
    except ImportError:
        import tensorflow as tf

        Interpreter = tf.lite.Interpreter  # noqa: N806 - TensorFlow's copy of the same interpreter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
        return Interpreter(model_path=os.fspath(path))


def _run_litert(path: Path, x: np.ndarray) -> np.ndarray:
    interpreter = _litert_interpreter(path)
    source = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(source["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(source["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


RUNTIMES = {"savedmodel": ("TensorFlow (tf.saved_model.load)", _run_savedmodel),
            "onnx": ("onnxruntime", _run_onnx), "litert": ("LiteRT interpreter", _run_litert)}


# ---------------------------------------------------------------------------------------------------------------
# Export, check, keep


def _temporary(output: Path) -> Path:
    return output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.tmp{output.suffix}")


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _put_in_place(tmp: Path, output: Path) -> None:
    """Rename the checked artifact over `output` (a SavedModel folder replaces the old one only once complete)."""
    if output.is_dir():
        old = output.with_name(f".{output.name}.{uuid.uuid4().hex[:8]}.old")
        os.replace(output, old)
        os.replace(tmp, output)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, output)


def check_output(output, fmt: str) -> Path:
    if fmt not in EXPORT_FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose from {', '.join(EXPORT_FORMATS)}")
    output = Path(output)
    suffix = SUFFIXES[fmt]
    if suffix and output.is_dir():
        raise ExportError(f"--output {output} is a folder; a {fmt} export is one file")
    if suffix and output.suffix != suffix:
        raise ExportError(f"--output {output}: {fmt} files end in {suffix}")
    if not suffix and output.exists() and not output.is_dir():
        raise ExportError(f"--output {output}: a SavedModel is a folder, and this is a file")
    return output


def export_model(model, output, fmt: str, batch: np.ndarray, tolerance: float = TOLERANCE) -> ExportResult:
    """Export `model` to `output` as `fmt`, run the artifact on `batch` with its runtime, and keep it only if it
    matches Keras' outputs to `tolerance`."""
    from .io import quiet_stderr

    output = check_output(output, fmt)
    _check_installed(fmt)
    build, grouped = export_build(model)
    expected = np.asarray(model.predict(batch, verbose=0))
    if build is not model:
        build.predict(batch[:1], verbose=0)  # model.export wants a model that has been called
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(output)
    runtime, run = RUNTIMES[fmt]
    try:
        with warnings.catch_warnings(), quiet_stderr():
            warnings.simplefilter("ignore")
            if fmt == "onnx":
                _export_onnx(build, tmp)
            else:
                build.export(os.fspath(tmp), format=KERAS_FORMATS[fmt], verbose=False)
            found = np.asarray(run(tmp, batch.astype("float32")))
        if found.shape != expected.shape:
            raise ExportError(f"the {fmt} export gives outputs of shape {found.shape}, Keras {expected.shape}")
        diff = float(np.max(np.abs(found.astype("float64") - expected)))
        if not diff <= tolerance:
            raise ExportError(f"the {fmt} export differs from Keras by {diff:.3g} (more than {tolerance:g}); "
                              f"nothing written to {output}")
        _put_in_place(tmp, output)
    except ExportError:
        raise
    except Exception as e:  # the exporter's or the runtime's failure: one line, nothing left behind
        raise ExportError(f"cannot export {model.name} as {fmt}: {' '.join(str(e).split())[:300] or type(e).__name__}"
                          ) from None
    finally:
        _remove(tmp)
    return ExportResult(output, fmt, diff, int(batch.shape[0]), runtime, grouped)


def example_batch(preprocessing, images: int = 2, seed: int = 0, raw: bool = False) -> np.ndarray:
    """Smooth random 0-255 images, prepared by `preprocessing` (the model's input); `raw`: the pixels an export
    with its preprocessing takes (the input size less the padding)."""
    rng = np.random.default_rng(seed)
    size, channels = preprocessing.size - (2 * preprocessing.pad if raw else 0), preprocessing.channels
    coarse = rng.uniform(0, 255, (images, 4, 4, channels))
    pixels = np.kron(coarse, np.ones((1, -(-size // 4), -(-size // 4), 1)))[:, :size, :size].astype("float32")
    return pixels if raw else preprocessing(pixels)


def exported_default(spec, fmt: str, include_preprocessing: bool) -> Optional[str]:
    """The default output name: <model>[_preprocessed].<suffix> (a folder for a SavedModel)."""
    return f"{spec.name}{'_preprocessed' if include_preprocessing else ''}{SUFFIXES[fmt] or '_savedmodel'}"
