"""The training and evaluation harness.

    import zoo
    result = zoo.train("lenet5")                       # the registry's recipe and dataset; returns a RunResult
    result = zoo.train("lenet5", dataset="fashion_mnist", epochs=2)   # any RunOptions field as a keyword
    scores = zoo.evaluate("lenet5", result.output_dir + "/model.weights.h5")

Pieces: options.py (RunOptions: every training option declared once; the CLI's flags come from it), config.py
(the registry's defaults plus the options, checked, no TF; `Run`: the resolved run passed down), schedules.py
(learning rates), setup.py (model, optimizer, losses), inputs.py (the registry-to-data translation: a model's
input and protocol as a data PipelineSpec; the input streams), callbacks.py (step limit, divergence, history,
checkpoint, progress), rundir.py (the output folder), devices.py (tf.distribute, dtype policies), run.py
(`train`), evaluate.py (`evaluate`). The results store and its record are zoo/results.py.

Importing this package is cheap (no TensorFlow): the CLI reads `options` at start-up; the rest loads on use.
"""

from __future__ import annotations

import importlib

# evaluate.py is TF-free at import, and binding the function here keeps `zoo.training.evaluate` the function,
# not the submodule of the same name.
from .evaluate import EvalResult, evaluate  # noqa: F401
from .options import OptionError, RunOptions, TrainError  # noqa: F401

__all__ = ["train", "evaluate", "RunResult", "EvalResult", "TrainError", "DivergedError", "RunOptions",
           "OptionError"]

_LAZY = {"train": "zoo.training.run", "RunResult": "zoo.training.run", "DivergedError": "zoo.training.run"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo.training' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
