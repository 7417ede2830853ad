"""The training and evaluation harness.

    import zoo
    result = zoo.train("lenet5")                       # the registry's recipe and dataset; returns a RunResult
    scores = zoo.evaluate("lenet5", result.output_dir + "/model.weights.h5")

Pieces: config.py (the registry's defaults plus overrides, checked, no TF), schedules.py (learning rates),
setup.py (model, optimizer, losses, input streams), callbacks.py (step limit, divergence, history, checkpoint,
progress), rundir.py (the output folder), devices.py (tf.distribute, dtype policies), run.py (`train`),
evaluate.py (`evaluate`). The results store is zoo/results.py.
"""

from __future__ import annotations

from .config import TrainError  # noqa: F401
from .evaluate import EvalResult, evaluate  # noqa: F401
from .run import DivergedError, RunResult, train  # noqa: F401

__all__ = ["train", "evaluate", "RunResult", "EvalResult", "TrainError", "DivergedError"]
