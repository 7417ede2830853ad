"""The `arch` block of registry.yaml, typed: one pydantic schema per family, validated when the registry loads.

Every constraint a builder relies on lives here (stage tables of equal length, known stems and blocks, positive
widths, existing auxiliary-head positions, ...), so a bad entry fails at load time with one line naming the entry
and the field (`registry.yaml: model 'resnet20': field 'arch.depths': ...`) and the builders read typed attributes
(`arch.depths`) without checking them again. pydantic only: `zoo list` / `zoo info` import this without TensorFlow.

An arch dumps as it was written (`model_dump` keeps the fields the entry set, not the schema's defaults), so
`zoo info NAME --json` prints the registry's facts and a dump validates back to the same arch.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union, get_args, get_origin

from pydantic import Field, TypeAdapter, ValidationInfo, field_validator, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from .schema import Strict, validate_model

__all__ = ["ArchSchema", "LeNetModernArch", "LeNetOriginalArch", "LeNetArch", "ConvLayer", "AlexNetArch",
           "VGGArch", "GoogLeNetArch", "ResNetArch", "DenseNetArch", "Arch", "SCHEMAS", "parse_arch",
           "Stem", "ResNetBlock", "Shortcut", "NormOrder", "PoolPadding", "LeNetPool",
           "Init", "InitName", "INIT_NAMES", "LeNetLoss"]

Stem = Literal["imagenet", "cifar"]  # 7x7/2 conv + 3x3/2 max pool (ImageNet), or one 3x3 conv (CIFAR)
ResNetBlock = Literal["basic", "bottleneck"]
Shortcut = Literal["projection", "zero_pad"]  # the paper's options B and A (sec. 3.3)
NormOrder = Literal["before_pool", "after_pool"]  # AlexNet normalizes then pools; ZFNet pools then normalizes
PoolPadding = Literal["valid", "same"]
LeNetPool = Literal["max", "avg"]

Positive = Annotated[int, Field(gt=0)]
Widths = Annotated[list[Positive], Field(min_length=1)]
DropoutRate = Annotated[float, Field(ge=0, lt=1)]


def invalid(message: str) -> PydanticCustomError:
    """A validation error whose message is exactly `message` (no "Value error, " prefix)."""
    return PydanticCustomError("arch", message.replace("{", "{{").replace("}", "}}"))


class ArchSchema(Strict):
    """Base of the arch schemas: strict, frozen, and dumped as written (see the module docstring)."""

    @model_serializer(mode="wrap")
    def _as_written(self, handler):
        return {key: value for key, value in handler(self).items() if key in self.model_fields_set}


def same_length(values: list, info: ValidationInfo, other: str, what: str) -> list:
    """Check that `values` has one entry per entry of the field `other` (validated before it)."""
    if other in info.data and len(values) != len(info.data[other]):
        raise invalid(f"{len(values)} entries, but {other} has {len(info.data[other])}: {what}")
    return values


# ---------------------------------------------------------------------------------------------------------------
# Shared parts


class LRNParams(ArchSchema):
    """Local Response Normalization constants (zoo.models.common.LocalResponseNormalization); AlexNet's defaults."""

    size: int = Field(5, gt=0, description="channels in the window (odd)")
    alpha: float = Field(1e-4, gt=0)
    beta: float = Field(0.75, gt=0)
    k: float = Field(2.0, ge=0)

    @field_validator("size")
    @classmethod
    def _odd(cls, size: int) -> int:
        if size % 2 == 0:
            raise invalid(f"must be odd (a window centred on each channel), got {size}")
        return size


class PoolParams(ArchSchema):
    size: Positive
    stride: Positive


# The initialisation a model is built with (`zoo.build(name, init=...)`, `zoo train --init`): each paper's, or the
# initialisers Keras' layers (and the zoo's custom ones) come with.
InitName = Literal["paper", "keras"]
INIT_NAMES = get_args(InitName)
InitKernel = Literal["normal", "fan_in_uniform", "glorot_uniform", "lecun_uniform", "he_normal"]
FanMode = Literal["fan_in", "fan_out"]


class Init(ArchSchema):
    """How a paper initialises its weights (applied by zoo/models/init.py when a model is built with
    init="paper"): every conv and dense kernel (and LeNet-5's subsampling coefficients) drawn from `kernel`,
    every bias `bias` unless a pattern of `biases` names its layer; BatchNorm keeps gamma 1, beta 0.

        normal          N(0, std^2)                                   AlexNet, ZFNet
        fan_in_uniform  U(-scale/F, scale/F), F the fan-in of the unit the weight feeds    LeNet-5 (App. A)
        glorot_uniform  U(+-sqrt(6 / (fan_in + fan_out))) (Keras' default)               VGG
        lecun_uniform   U(+-sqrt(3 / fan_in)): Caffe's "xavier" filler                   GoogLeNet (BVLC)
        he_normal       N(0, 2/n), n the fan-in (or fan-out, `mode`); a plain, untruncated normal   ResNet, DenseNet
    """

    kernel: InitKernel
    std: Optional[float] = Field(None, gt=0, description="normal: the standard deviation")
    scale: Optional[float] = Field(None, gt=0, description="fan_in_uniform: the bound times the fan-in")
    mode: FanMode = Field("fan_in", description="he_normal: n is the fan-in (the paper's) or the fan-out")
    bias: float = Field(0.0, description="every bias, unless `biases` names the layer")
    biases: dict[str, float] = Field({}, description="layer-name pattern (fnmatch) -> its biases' constant")
    filter_rms: Optional[float] = Field(None, gt=0, description=(
        "ZFNet: each conv filter whose RMS exceeds this is renormalised to it after every update (a constraint)"))
    source: str = Field(description="where the paper (or the reproduction followed) states it")

    @model_validator(mode="after")
    def _parameters_of_the_kernel(self):
        for name, kernel in (("std", "normal"), ("scale", "fan_in_uniform")):
            if (getattr(self, name) is None) == (self.kernel == kernel):
                raise invalid(f"{name} is needed by kernel '{kernel}' and only by it")
        return self

    def describe(self) -> str:
        """One line: 'N(0, 0.01^2); biases 0, 1 in conv2, conv4; filter RMS <= 0.1'."""
        kernel = {"normal": lambda: f"N(0, {self.std:g}^2)", "fan_in_uniform": lambda: f"U(+-{self.scale:g}/F_in)",
                  "glorot_uniform": lambda: "Glorot uniform",
                  "lecun_uniform": lambda: "U(+-sqrt(3/fan_in)) (Caffe xavier)",
                  "he_normal": lambda: f"He normal ({self.mode.replace('_', '-')})"}[self.kernel]()
        by_value: dict[float, list[str]] = {}
        for pattern, value in self.biases.items():
            by_value.setdefault(value, []).append(pattern)
        biases = f"biases {self.bias:g}" + "".join(f", {value:g} in {', '.join(names)}"
                                                   for value, names in by_value.items())
        rms = f"; filter RMS <= {self.filter_rms:g}" if self.filter_rms else ""
        return f"{kernel}; {biases}{rms}"


def init_field(default: Init):
    return Field(default, description="the paper's initialisation (zoo.build(..., init='paper'), the default)")


# ---------------------------------------------------------------------------------------------------------------
# LeNet-5: two variants, told apart by `variant`

LENET_MODERN_INIT = Init(kernel="glorot_uniform", source=(
    "not in the paper: the modern form's usual Glorot & Bengio (2010) initialisation, Keras' own (Appendix A's "
    "U(+-2.4/F_i) is made for the scaled tanh the modern form replaces by ReLU); biases 0"))
LENET_ORIGINAL_INIT = Init(kernel="fan_in_uniform", scale=2.4, source=(
    "LeCun et al. 1998, Appendix A: U(-2.4/F_i, 2.4/F_i), F_i the fan-in of the unit the connection belongs to "
    "(C1 25; C3 75, 100 or 150 by its map's row of Table I; C5 400; F6 120; an S2/S4 coefficient 4); biases 0, "
    "of which the paper says nothing"))
LeNetLoss = Literal["map", "crossentropy"]  # eq. 9's MAP criterion, or softmax cross-entropy on the -y_i


class LeNetModernArch(ArchSchema):
    """The form most courses teach: full C3, ReLU, max pooling, a dense 120-84 head."""

    variant: Literal["modern"]
    conv: Widths = Field(description="filters of each conv + pool stage")
    kernel: Positive
    dense: list[Positive] = Field(description="hidden dense widths before the classifier")
    activation: str = Field(description="a Keras activation name")
    pool: LeNetPool
    init: Init = init_field(LENET_MODERN_INIT)


class LeNetOriginalArch(ArchSchema):
    """The paper as written: C3's connection table, trainable subsampling, scaled tanh, RBF outputs."""

    variant: Literal["original"]
    c1: Positive
    c3_table: list[Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]] = Field(
        min_length=1, description="the S2 maps each C3 map combines (Table I)")
    c5: Positive
    f6: Positive
    init: Init = init_field(LENET_ORIGINAL_INIT)
    loss: LeNetLoss = Field("map", description=(
        "the training criterion of the RBF penalties y_i: 'map', eq. 9 (sec. II.C): mean of y_D + log(e^-j + "
        "sum_i e^-y_i); 'crossentropy': softmax cross-entropy on -y_i (eq. 9 without its e^-j term)"))
    rubbish_penalty: float = Field(0.1, gt=0, description=(
        "j of eq. 9, the penalty of the 'rubbish' class; the paper says only that it is positive"))

    @field_validator("c3_table")
    @classmethod
    def _maps_exist(cls, table: list[list[int]], info: ValidationInfo) -> list[list[int]]:
        maps = info.data.get("c1")
        for row, inputs in enumerate(table):
            if maps is not None and max(inputs) >= maps:
                raise invalid(f"row {row} refers to S2 map {max(inputs)}, but c1 makes only {maps} maps")
        return table


LeNetArch = Annotated[Union[LeNetModernArch, LeNetOriginalArch], Field(discriminator="variant")]


# ---------------------------------------------------------------------------------------------------------------
# AlexNet and ZFNet

ALEXNET_INIT = Init(kernel="normal", std=0.01, biases={"conv2": 1.0, "conv4": 1.0, "conv5": 1.0, "fc6": 1.0,
                                                       "fc7": 1.0}, source=(
    "Krizhevsky et al. 2012, sec. 5: weights N(0, 0.01^2); biases 1 in the second, fourth and fifth conv layers "
    "and the hidden fully connected ones (fc6, fc7), 0 elsewhere (alexnet_owt takes the same)"))


class ConvLayer(ArchSchema):
    """One conv layer: zero padding `pad` on every side, then LRN and a 3x3/2 max pool where asked."""

    filters: Positive
    kernel: Positive
    stride: Positive = 1
    pad: int = Field(0, ge=0)
    groups: Positive = 1
    lrn: bool = False
    pool: Optional[PoolPadding] = None

    @field_validator("groups")
    @classmethod
    def _divides_filters(cls, groups: int, info: ValidationInfo) -> int:
        filters = info.data.get("filters")
        if filters is not None and filters % groups:
            raise invalid(f"{groups} groups do not divide {filters} filters")
        return groups


class AlexNetArch(ArchSchema):
    conv: list[ConvLayer] = Field(min_length=1)
    norm: NormOrder = "before_pool"
    lrn: LRNParams = LRNParams()
    pool: PoolParams
    dense: list[Positive]
    dropout: DropoutRate = 0.0
    dropout_first: bool = Field(False, description="dropout before each hidden dense layer (torchvision)")
    init: Init = init_field(ALEXNET_INIT)

    @field_validator("conv")
    @classmethod
    def _groups_divide_inputs(cls, layers: list[ConvLayer]) -> list[ConvLayer]:
        for index, (before, layer) in enumerate(zip(layers, layers[1:]), start=1):
            if before.filters % layer.groups:
                raise invalid(f"layer {index}: {layer.groups} groups do not divide its {before.filters} input maps")
        return layers


# ---------------------------------------------------------------------------------------------------------------
# VGG

VGG_INIT = Init(kernel="glorot_uniform", source=(
    "Simonyan & Zisserman 2014, sec. 3.1: net A from N(0, 10^-2), the deeper nets from A's layers; 'it is possible "
    "to initialise the weights without pre-training by using the random initialisation procedure of Glorot & "
    "Bengio (2010)', followed here: it trains every configuration from scratch, with no staged start; biases 0. "
    "(The same as Keras' defaults.)"))


class VGGArch(ArchSchema):
    widths: Widths = Field(description="filters per stage")
    depths: Widths = Field(description="3x3 convs per stage, each stage ending in a 2x2/2 max pool")
    dense: list[Positive]
    dropout: DropoutRate = 0.0
    batch_norm: bool = Field(False, description="torchvision's vgg*_bn: BatchNorm after every conv")
    init: Init = init_field(VGG_INIT)

    @field_validator("depths")
    @classmethod
    def _one_per_stage(cls, depths: list[int], info: ValidationInfo) -> list[int]:
        return same_length(depths, info, "widths", "one entry per stage")


# ---------------------------------------------------------------------------------------------------------------
# GoogLeNet

GOOGLENET_INIT = Init(kernel="lecun_uniform", bias=0.2, biases={"*predictions": 0.0}, source=(
    "the BVLC Caffe reproduction (models/bvlc_googlenet/train_val.prototxt; the paper states none): Caffe's "
    "'xavier' filler, U(+-sqrt(3/fan_in)); biases 0.2 in every conv and the auxiliary fc layers, 0 in the "
    "classifiers"))

ModuleName = Annotated[str, Field(pattern=r"^[A-Za-z0-9]+$")]  # part of layer names: inception_{stage}{module}
InceptionWidths = Annotated[list[Positive], Field(
    min_length=6, max_length=6, description="#1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj")]


class GoogLeNetStem(ArchSchema):
    conv1: Positive
    conv2_reduce: Positive
    conv2: Positive


class AuxHeads(ArchSchema):
    """The auxiliary classifiers of sec. 5, built only with `aux_logits=True`."""

    after: list[str] = Field(min_length=1, description="the modules they attach to, e.g. 4a")
    pool: Positive
    stride: Positive
    conv: Positive
    fc: Positive
    dropout: DropoutRate


class GoogLeNetArch(ArchSchema):
    stem: GoogLeNetStem
    lrn: LRNParams = LRNParams()
    stages: dict[ModuleName, Annotated[dict[ModuleName, InceptionWidths], Field(min_length=1)]] = Field(
        min_length=1, description="stage -> module -> widths; a 3x3/2 max pool between stages")
    aux: AuxHeads
    dropout: DropoutRate
    init: Init = init_field(GOOGLENET_INIT)

    @field_validator("aux")
    @classmethod
    def _after_existing_modules(cls, aux: AuxHeads, info: ValidationInfo) -> AuxHeads:
        stages = info.data.get("stages")
        if stages is None:
            return aux
        modules = [f"{stage}{module}" for stage, names in stages.items() for module in names]
        for where in aux.after:
            if where not in modules:
                raise invalid(f"after: {where!r} is not a module (modules: {', '.join(modules)})")
        if len(set(aux.after)) != len(aux.after):
            raise invalid("after: a module is named twice")
        return aux


# ---------------------------------------------------------------------------------------------------------------
# ResNet

RESNET_INIT = Init(kernel="he_normal", mode="fan_in", source=(
    "He et al. 2015, sec. 3.4: 'we initialize the weights as in [13]' (He et al. 2015, Delving Deep into "
    "Rectifiers, eq. 10): N(0, 2/n), n = k^2 c the fan-in, as derived there (torchvision and fb.resnet.torch "
    "use the fan-out, eq. 14, which that paper shows works as well); conv and fc kernels; biases 0"))


class ResNetArch(ArchSchema):
    stem: Stem
    block: ResNetBlock
    widths: Widths = Field(description="filters per stage (a bottleneck block outputs expansion x width)")
    depths: Widths = Field(description="residual blocks per stage")
    expansion: Positive = Field(4, description="bottleneck only: output/width ratio")
    shortcut: Shortcut = "projection"
    init: Init = init_field(RESNET_INIT)
    stride_in_1x1: bool = Field(True, description="bottleneck only: stride 2 in the first 1x1 conv (v1), "
                                                  "else in the 3x3 conv (v1.5)")

    @field_validator("depths")
    @classmethod
    def _one_per_stage(cls, depths: list[int], info: ValidationInfo) -> list[int]:
        return same_length(depths, info, "widths", "one entry per stage")

    @field_validator("expansion", "stride_in_1x1")
    @classmethod
    def _bottleneck_only(cls, value, info: ValidationInfo):
        if info.data.get("block") == "basic":
            raise invalid("applies to bottleneck blocks only; this arch has basic blocks")
        return value

    @field_validator("shortcut")
    @classmethod
    def _zero_pad_only_widens(cls, shortcut: str, info: ValidationInfo) -> str:
        widths = info.data.get("widths") or []
        if shortcut == "zero_pad" and any(b < a for a, b in zip(widths, widths[1:])):
            raise invalid(f"zero_pad shortcuts cannot narrow the widths {widths}; use projection")
        return shortcut


# ---------------------------------------------------------------------------------------------------------------
# DenseNet

DENSENET_INIT = Init(kernel="he_normal", mode="fan_in", source=(
    "Huang et al. 2017, sec. 4.2: 'we adopt the weight initialization introduced by [He et al. 2015]': N(0, 2/n), "
    "n the fan-in as that paper derives it (torchvision's DenseNet too); conv and fc kernels; biases 0"))


class DenseNetArch(ArchSchema):
    stem: Stem
    initial_filters: Positive = Field(description="maps of the stem conv")
    growth_rate: Positive = Field(description="k: maps each layer adds")
    blocks: Widths = Field(description="layers per dense block")
    bottleneck: bool = Field(description="BN-ReLU-Conv1x1(4k) before each 3x3 conv (DenseNet-B)")
    compression: float = Field(gt=0, le=1, description="theta: a transition keeps floor(theta * m) maps")
    dropout: DropoutRate = Field(0.0, description="after each conv in blocks and transitions")
    init: Init = init_field(DENSENET_INIT)


# ---------------------------------------------------------------------------------------------------------------
# The schemas by family

SCHEMAS: dict[str, Any] = {
    "lenet": LeNetArch,
    "alexnet": AlexNetArch,
    "vgg": VGGArch,
    "googlenet": GoogLeNetArch,
    "resnet": ResNetArch,
    "densenet": DenseNetArch,
}

Arch = Union[LeNetModernArch, LeNetOriginalArch, AlexNetArch, VGGArch, GoogLeNetArch, ResNetArch, DenseNetArch]


def _variant_model(schema, value) -> Optional[type[ArchSchema]]:
    """The member of a discriminated-union schema that `value`'s tag names (None if it names none)."""
    if get_origin(schema) is not Annotated:
        return schema
    union, field = get_args(schema)[:2]
    tag = value.get(field.discriminator) if isinstance(value, dict) else None
    for member in get_args(union):
        if get_args(member.model_fields[field.discriminator].annotation) == (tag,):
            return member
    return None


def parse_arch(family: str, value: Any) -> ArchSchema:
    """`value` validated against `family`'s schema. A variant's errors are located in the arch itself
    (`arch.kernel`, not pydantic's `arch.modern.kernel`); a wrong or missing tag is pydantic's union error; a
    misspelt key is an unknown key with the close name suggested (`arch.widhts`: did you mean 'widths'?)."""
    schema = SCHEMAS[family]
    model = _variant_model(schema, value)
    if model is None:
        return TypeAdapter(schema).validate_python(value)
    return validate_model(model, value)
