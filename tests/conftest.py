import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the repository's cli.py shim (`import cli`) lives at the top level

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    """Each test starts from a clean Keras global state (layer-name counters, dtype policy)."""
    yield
    if "keras" in sys.modules:
        import keras
        keras.config.set_dtype_policy("float32")
        keras.backend.clear_session()


@pytest.fixture
def root() -> Path:
    return ROOT
