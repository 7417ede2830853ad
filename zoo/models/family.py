"""The contract between a family and everything else: each family module exports one `FAMILY = Family(...)`.

A family states what is particular to it (its arch schema, its body, its head, its options, its inference model,
its feature stages); `Family.build` does what every family shares, keras.applications' way:

    prologue  check the head arguments and the options, resolve the input (minimum size), make room for deep graphs
    body      image -> features (+ side outputs, such as GoogLeNet's auxiliary classifiers)
    head      the classifier, or the features pooled as `pooling` says when include_top=False
    epilogue  the functional model, named, with the weights file loaded

The harness (zoo.training.setup) reads the options and the inference model from here instead of probing
signatures; the features API (zoo.models.features) reads `stages`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

from pydantic import ValidationError

from ..archs import SCHEMAS, parse_arch
from ..errors import ZooError
from ..schema import validation_message
from . import init as initialisation
from . import common
from .features import Stage  # (layer, stride, channels): defined where zoo.feature_info reads it, without Keras

__all__ = ["Family", "Option", "Stage", "Head", "Body", "UnknownOptionError", "same_model", "pooled_head",
           "allow_deep_graphs", "DEEP_GRAPH_RECURSION_LIMIT"]

# Keras builds and deserializes a functional graph by recursing along its longest path, a frame or more per layer;
# ResNet-1202 has 4,210 layers in sequence, beyond Python's default limit of 1,000 frames. 20,000 is enough to
# build, save and load it (checked with Python 3.11 and the default 8 MB stack).
DEEP_GRAPH_RECURSION_LIMIT = 20_000


def allow_deep_graphs() -> None:
    if sys.getrecursionlimit() < DEEP_GRAPH_RECURSION_LIMIT:
        sys.setrecursionlimit(DEEP_GRAPH_RECURSION_LIMIT)


class UnknownOptionError(ZooError, TypeError):
    """A build keyword the family does not have (a TypeError, as for any unexpected keyword argument)."""


@dataclass(frozen=True)
class Option:
    """A family-specific build keyword, e.g. DenseNet's `dropout`."""

    name: str
    default: Any
    help: str
    check: Optional[Callable[[Any], None]] = field(default=None, repr=False)  # raises ValueError(reason)


@dataclass(frozen=True)
class Head:
    """keras.applications' head arguments, checked once by `Family.build` and passed to body and head, with the
    model's name for their error messages."""

    include_top: bool = True
    pooling: Optional[str] = None
    classes: int = 1000
    classifier_activation: Any = "softmax"
    model_name: str = "model"


@dataclass(frozen=True)
class Body:
    """What a body returns when it has outputs beside the features (GoogLeNet's auxiliary classifiers)."""

    features: Any
    side_outputs: Sequence[Any] = ()


def same_model(model):
    """The default inference model: the trained model itself."""
    return model


def never(arch) -> bool:
    return False


def pooled_head(x, arch, head: Head, dropout: float = 0.0):
    """Global average pooling + classifier (or the pooled features): ResNet, DenseNet, GoogLeNet."""
    return common.pooled_head(x, include_top=head.include_top, pooling=head.pooling, classes=head.classes,
                              classifier_activation=head.classifier_activation, dropout=dropout)


@dataclass(frozen=True)
class Family:
    """One family. `body(image, arch, head, **options)` returns the features (or a `Body`); `head(x, arch, head)`
    ends the model; `stages(arch)` lists the feature stages (a TF-free function of zoo.models.features, so
    `zoo.feature_info` needs no Keras); `deep_graph(arch)` says when the graph is so deep
    that Python's recursion limit must be raised to build and save it."""

    name: str
    schema: Any = field(repr=False)
    body: Callable = field(repr=False)
    head: Callable = field(repr=False)
    stages: Callable[[Any], tuple[Stage, ...]] = field(repr=False)
    options: tuple[Option, ...] = ()
    inference: Callable = field(default=same_model, repr=False)
    deep_graph: Callable[[Any], bool] = field(default=never, repr=False)

    def __post_init__(self):
        if SCHEMAS.get(self.name) is not self.schema:
            raise TypeError(f"family {self.name!r}: its schema must be zoo.archs.SCHEMAS[{self.name!r}]")

    def option(self, name: str) -> Optional[Option]:
        return next((option for option in self.options if option.name == name), None)

    def has_option(self, name: str) -> bool:
        return self.option(name) is not None

    def feature_stages(self, arch) -> tuple[Stage, ...]:
        return tuple(self.stages(arch))

    def inference_model(self, model):
        """The model to evaluate and save: without the training-only outputs (GoogLeNet's auxiliary heads)."""
        return self.inference(model)

    def resolve_options(self, given: dict, model_name: str) -> dict:
        """Every option with its value (given, else the default); an unknown one raises naming the options."""
        for key in given:
            if not self.has_option(key):
                known = ", ".join(option.name for option in self.options) or "none"
                raise UnknownOptionError(f"{model_name}: unknown option {key!r} (options of {self.name} models: "
                                         f"{known})")
        values = {option.name: given.get(option.name, option.default) for option in self.options}
        for option in self.options:
            try:
                if option.check:
                    option.check(values[option.name])
            except ValueError as e:
                raise ValueError(f"{model_name}: {e}") from None
        return values

    def build(self, arch, input, *, include_top: bool = True, weights=None, input_tensor=None, input_shape=None,
              pooling=None, classes: int = 1000, classifier_activation="softmax", name: Optional[str] = None,
              init: str = "paper", **options):
        """The functional keras.Model of `arch` (a schema instance; a mapping is validated first) for the input
        facts `input` (size, min_size, channels), with keras.applications' arguments and the family's options.
        `init`: "paper" draws the weights as the paper says (`arch.init`, zoo/models/init.py), "keras" keeps
        Keras' initialisers; with `weights` the file's values replace either, the paper's constraints stay."""
        name = name or self.name
        arch = self.parse(arch, name)
        initialisation.check_init(init, name)
        common.check_head_args(weights, pooling, classes, classifier_activation, name)
        head = Head(include_top, pooling, classes, classifier_activation, name)
        values = self.resolve_options(options, name)
        image, inputs = common.resolve_input(input_tensor, input_shape, default_size=input.size,
                                             min_size=input.min_size, channels=input.channels, model_name=name)
        if self.deep_graph(arch):
            allow_deep_graphs()
        body = self.body(image, arch, head, **values)
        body = body if isinstance(body, Body) else Body(body)
        x = self.head(body.features, arch, head)
        outputs = [x, *body.side_outputs] if body.side_outputs else x
        model = common.finalize(inputs, outputs, name=name)
        initialisation.initialise(model, arch.init, init, draw=weights is None)  # no draw for values a file replaces
        if weights is not None:
            common.load_weights(model, weights)
        return model

    def parse(self, arch, model_name: str):
        """`arch` as a schema instance: registry specs carry one; a mapping (a variant outside the registry) is
        validated here, with the registry's one-line errors."""
        if not isinstance(arch, dict):
            return arch
        try:
            return parse_arch(self.name, arch)
        except ValidationError as e:
            raise ValueError(validation_message(f"{model_name}: arch", e)) from None
