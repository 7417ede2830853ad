"""zoo: the historic CNNs (LeNet-5, AlexNet, ZFNet, VGG, GoogLeNet, ResNet, DenseNet) in Keras 3.

    import zoo
    zoo.list_models("resnet*")
    model = zoo.build("resnet50", classes=10)

Importing `zoo` is cheap: TensorFlow/Keras are imported only by the functions that need them.
"""

from __future__ import annotations

import importlib
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter off the terminal

from .errors import ZooError  # noqa: F401
from .registry import (RegistryError, UnknownModelError, families, get_spec, list_models,  # noqa: F401
                       load_registry)

__version__ = "0.1.0"

from . import saving as _saving  # noqa: E402

_saving.install()  # custom layers registered as soon as Keras is imported: .keras files load after `import zoo`

# name -> module that defines it; resolved on first use so `import zoo` never imports TensorFlow.
_LAZY = {
    "build": "zoo.models",
    "count_macs": "zoo.macs",
    "count_params": "zoo.macs",
    "train": "zoo.training",
    "evaluate": "zoo.training",
    "RunResult": "zoo.training",
    "EvalResult": "zoo.training",
    "get_weights": "zoo.pretrained",
    "feature_info": "zoo.models.features",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'zoo' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
