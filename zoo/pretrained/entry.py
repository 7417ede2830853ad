"""The schema of a named weights entry (registry.yaml: `models.<name>.weights.<tag>`). Light: no TensorFlow, no
registry import (zoo/registry.py imports this)."""

from __future__ import annotations

from typing import Optional

from pydantic import Field, model_validator

from ..choices import WeightsSource
from ..preprocess import Preprocessing
from ..schema import Strict

__all__ = ["WeightsEntry", "Measured"]


class Measured(Strict):
    """An accuracy we measured, with the command that measures it again."""

    dataset: str
    split: str
    top1: float = Field(ge=0, le=100, description="percent")
    top5: Optional[float] = Field(None, ge=0, le=100)
    examples: int = Field(gt=0)
    command: str = Field(description="the command that reproduces the number")


class WeightsEntry(Strict):
    """Named weights of one variant: where the file is, what it was trained on, what its images must look like,
    how well it does and where it comes from."""

    source: WeightsSource = Field(description="shipped: inside the package (zoo/pretrained/); keras_applications: "
                                  "the file Keras caches in $KERAS_HOME/models/; train: not shipped, made by "
                                  "`train_command`")
    file: str = Field(description="the file name: in zoo/pretrained/, in Keras' cache (the with-top file; the "
                                  "headless one ends in _notop.h5), or the one the training run writes")
    sha256: Optional[str] = Field(None, pattern=r"^[0-9a-f]{64}$")
    size_bytes: Optional[int] = Field(None, gt=0)
    dataset: str = Field(description="the catalogue dataset the weights were trained on (their class names)")
    classes: int = Field(gt=0)
    preprocessing: Preprocessing
    accuracy: list[Measured] = []
    provenance: str
    recipe: Optional[str] = None
    commit: Optional[str] = Field(None, description="the zoo commit the training ran at")
    record: Optional[str] = Field(None, description="the training run's record (docs/runs/*.json)")
    train_command: Optional[str] = Field(None, description="how to make the same file")

    @model_validator(mode="after")
    def _complete(self):
        if self.source == "shipped" and not self.sha256:
            raise ValueError("shipped weights need their sha256")
        if self.source == "train" and not self.train_command:
            raise ValueError("weights that are not shipped need the train_command that makes them")
        return self
