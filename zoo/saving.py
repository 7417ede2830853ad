"""Portable `.keras` files: the zoo's custom layers, activations, schedules and losses registered with Keras whenever
Keras is imported, so `import zoo` then `keras.saving.load_model("x.keras")` works in a fresh process.

Keras finds a custom object at load time only if the module that registers it (`register_keras_serializable`) has
run; for packages other than its own it does not import the module named in the file. Importing every family
module from `import zoo` would import Keras and TensorFlow and make the CLI's start slow, so the registration
waits for Keras: a post-import hook (wrapt, the well-kept library TensorFlow itself depends on) runs `register()`
the moment `keras` is imported, or at once if it already is.
"""

from __future__ import annotations

import importlib

__all__ = ["CUSTOM_OBJECT_MODULES", "register", "install"]

# The modules that define `@keras.saving.register_keras_serializable(package="zoo")` objects.
# Neither imports zoo.models.family (which may be half-imported when Keras first loads: family -> common -> keras).
CUSTOM_OBJECT_MODULES = (
    "zoo.models.layers",  # LRN, LeNet-5's scaled tanh, subsampling, C3 and RBF; ResNet's zero-pad shortcut
    "zoo.training.schedules",  # RecipeSchedule (a compiled model's optimizer)
    "zoo.training.losses",  # MAPCriterion, LeNet-5's eq. 9 (a compiled lenet5_original's loss)
)

_installed = False


def register(_module=None) -> None:
    """Import the modules that register the zoo's custom objects (idempotent: Python imports a module once)."""
    for name in CUSTOM_OBJECT_MODULES:
        importlib.import_module(name)


def install() -> None:
    """Run `register` when Keras is imported (now, if it is already); called by `import zoo`."""
    global _installed
    if _installed:
        return
    import wrapt

    wrapt.register_post_import_hook(register, "keras")
    _installed = True
