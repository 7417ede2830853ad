"""Which Keras backend this process runs on, and whether TensorFlow is there at all.

The zoo's models are written with `keras.layers` / `keras.ops` only and run on every Keras 3 backend
(TensorFlow, JAX, PyTorch). The harness has two input paths: the tf.data pipelines (zoo/data/pipeline.py: TFDS,
ImageNet streaming, every augmentation) under the TensorFlow backend, and the numpy one (zoo/data/arrays.py:
in-memory fixed-size datasets served as a keras.utils.PyDataset) everywhere else, e.g. under JAX on a GPU machine
that has no TensorFlow. This module answers the questions that choose between them without importing Keras or
TensorFlow (reading the environment and ~/.keras/keras.json as Keras itself does), so `zoo list` stays light.

    from zoo import backend
    backend.name()                  # 'tensorflow', 'jax' or 'torch'
    backend.tensorflow_available()  # False on the GPU machines lent here
    backend.input_path()            # 'tf.data' or 'numpy'
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Literal, Optional

__all__ = ["BACKENDS", "name", "tensorflow_available", "uses_tensorflow", "input_path", "versions", "InputPath",
           "block_tensorflow"]

BACKENDS = ("tensorflow", "jax", "torch")
InputPath = Literal["tf.data", "numpy"]


def _configured() -> Optional[str]:
    """KERAS_BACKEND, else the `backend` of $KERAS_HOME/keras.json (or ~/.keras/keras.json), as Keras reads them."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
    try:
        return json.loads((home / "keras.json").read_text()).get("backend")
    except (OSError, ValueError, AttributeError):
        return None


def name() -> str:
    """The Keras backend of this process: Keras' own answer once Keras is imported, else what it will choose."""
    keras = sys.modules.get("keras")
    if keras is not None and hasattr(keras, "backend"):
        return keras.backend.backend()
    return _configured() or "tensorflow"


def tensorflow_available() -> bool:
    """Whether `import tensorflow` can succeed, found without importing it (that takes seconds)."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"] is not None
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):  # a blocked or half-installed package
        return False


def uses_tensorflow() -> bool:
    """The TensorFlow backend, with TensorFlow importable: tf.data, tf.distribute and TF's device queries apply."""
    return name() == "tensorflow" and tensorflow_available()


def input_path() -> InputPath:
    """'tf.data' under the TensorFlow backend; 'numpy' (zoo.data.arrays) under any other backend, where a tf.data
    pipeline would need TensorFlow beside the backend (and does not exist on a machine without it)."""
    return "tf.data" if uses_tensorflow() else "numpy"


def versions() -> dict[str, Optional[str]]:
    """The versions of the frameworks this process has imported or can import (None where absent): keras, the
    backend's framework, and TensorFlow when it is the backend or already loaded."""
    import keras

    out = {"keras": keras.__version__, "backend": name(), "tensorflow": None, "jax": None, "torch": None}
    for module in ("tensorflow", "jax", "torch"):
        if module in sys.modules or (module == out["backend"]):
            try:
                out[module] = importlib.import_module(module).__version__
            except ImportError:
                pass
    return out


# ---------------------------------------------------------------------------------------------------------------
# Simulating a machine without TensorFlow (the GPU machines lent here have none): a sitecustomize that makes
# `import tensorflow` (and tensorflow_datasets) fail as if it were not installed. For tests and the acceptance
# run's CPU smoke mode; `PYTHONPATH=<folder>` puts it in front of any other sitecustomize.

_BLOCKER = '''"""Written by zoo.backend.block_tensorflow: `import tensorflow` fails here as if it were not installed."""
import sys


class _NoTensorFlow:
    BLOCKED = ("tensorflow", "tensorflow_datasets", "tf_keras")

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: simulating a machine without "
                                      "TensorFlow)", name=name)
        return None


sys.meta_path.insert(0, _NoTensorFlow())
'''


def block_tensorflow(folder, env: Optional[dict] = None) -> dict:
    """Write the blocking sitecustomize.py into `folder` and return a copy of `env` (default os.environ) whose
    PYTHONPATH starts with it: a subprocess started with that environment has no TensorFlow."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(_BLOCKER)
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(folder), env.get("PYTHONPATH")]))
    return env
