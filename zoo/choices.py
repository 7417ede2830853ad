"""Every enumeration of the zoo, declared once as a `Literal` type; the tuples are read from the types.

The registry's schemas annotate their fields with these types, click builds its `Choice`s from the tuples, and the
code that dispatches on a value checks against the same tuple, so adding a precision or an augmentation is one edit
here (plus the code that implements it). No TensorFlow, no Keras: the CLI imports this at start-up.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = ["Precision", "Strategy", "Augment", "Interpolation", "ScheduleKind", "ScheduleUnit", "OptimizerName",
           "Pooling", "BenchMode", "ResultMetric", "ReferenceSource",
           "PRECISIONS", "STRATEGIES", "AUGMENTS", "INTERPOLATIONS", "SCHEDULE_KINDS", "SCHEDULE_UNITS",
           "OPTIMIZERS", "POOLINGS", "BENCH_MODES", "RESULT_METRICS", "REFERENCE_SOURCES", "values"]

Precision = Literal["float32", "mixed_bfloat16", "mixed_float16"]  # Keras dtype policies
Strategy = Literal["auto", "default", "mirrored", "multi-worker"]  # tf.distribute; auto: from TF_CONFIG / GPUs
Augment = Literal["none", "flip", "pad_crop_flip", "inception_crop_flip", "scale_crop_flip"]
Interpolation = Literal["bilinear", "bicubic", "nearest", "area"]
ScheduleKind = Literal["constant", "step", "cosine", "linear"]
ScheduleUnit = Literal["epochs", "steps"]
OptimizerName = Literal["sgd", "adam", "adamw", "rmsprop"]
Pooling = Literal["avg", "max"]  # keras.applications' `pooling` (None keeps the 4D feature map)
BenchMode = Literal["infer", "train"]
ResultMetric = Literal["top1_error", "top5_error", "error", "top1_accuracy", "top5_accuracy"]
ReferenceSource = Literal["paper", "torchvision", "keras.applications", "timm"]


def values(literal) -> tuple[str, ...]:
    """The values of a `Literal` type, in declaration order."""
    return tuple(get_args(literal))


PRECISIONS = values(Precision)
STRATEGIES = values(Strategy)
AUGMENTS = values(Augment)
INTERPOLATIONS = values(Interpolation)
SCHEDULE_KINDS = values(ScheduleKind)
SCHEDULE_UNITS = values(ScheduleUnit)
OPTIMIZERS = values(OptimizerName)
POOLINGS = values(Pooling)
BENCH_MODES = values(BenchMode)
RESULT_METRICS = values(ResultMetric)
REFERENCE_SOURCES = values(ReferenceSource)

# Appended (tables): the output formats of `zoo table` and of zoo.tables.render.
TableFormat = Literal["md", "csv", "json"]
TABLE_FORMATS = values(TableFormat)
__all__ += ["TableFormat", "TABLE_FORMATS"]

# Appended (pretrained weights, issue 12): Keras' preprocess_input modes, pixel channel order, where named weights
# come from, and `zoo export`'s formats.
KerasPreprocessMode = Literal["caffe", "torch", "tf"]  # keras.applications.imagenet_utils.preprocess_input
ChannelOrder = Literal["rgb", "bgr"]
WeightsSource = Literal["shipped", "keras_applications", "train"]  # inside the package / Keras' cache / train it
ExportFormat = Literal["savedmodel", "onnx", "litert"]
KERAS_PREPROCESS_MODES = values(KerasPreprocessMode)
CHANNEL_ORDERS = values(ChannelOrder)
WEIGHTS_SOURCES = values(WeightsSource)
EXPORT_FORMATS = values(ExportFormat)
__all__ += ["KerasPreprocessMode", "ChannelOrder", "WeightsSource", "ExportFormat", "KERAS_PREPROCESS_MODES",
            "CHANNEL_ORDERS", "WEIGHTS_SOURCES", "EXPORT_FORMATS"]

# Appended (test protocols, issue 16): `zoo eval --protocol`, a run record's `protocol` and a published result's
# `eval_protocol`. Each is declared (views, paper, how scores combine) in zoo/training/protocols.py.
EvalProtocol = Literal["center", "10crop", "144crop", "dense", "dense_multiscale", "dense_384",
                       "dense_multiscale_jittered", "dense_5scale"]
EVAL_PROTOCOLS = values(EvalProtocol)
__all__ += ["EvalProtocol", "EVAL_PROTOCOLS"]

# Appended (test protocols, issue 16): what `zoo eval --mean` subtracts before the std division: the per-channel
# mean (the zoo's pipelines, zoo/data/catalogue.yaml) or the training images' mean image (AlexNet, ZFNet).
MeanSubtraction = Literal["channel", "pixel"]
MEAN_SUBTRACTIONS = values(MeanSubtraction)
__all__ += ["MeanSubtraction", "MEAN_SUBTRACTIONS"]
