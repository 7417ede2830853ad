"""The features API: a variant's feature stages as facts, and a model that outputs them (timm's `features_only`).

    zoo.feature_info("resnet50")                        # no TensorFlow: index, layer, channels, stride
    model = zoo.build("resnet50", features_only=True, out_indices=(1, 2, 3, 4))   # 4 outputs, strides 4-32
    maps = model(images)                                # a list, in stage order

A stage is the last map of the classifier's body at each stride (the deepest features at that resolution, as
timm's backbones take them), so the features model *is* the classifier's body: same layers, same names, same
weights files.
`stride` is input pixels per map pixel, timm's `reduction`; the map is input / stride, less the border rows that
valid (unpadded) convolutions drop in LeNet-5 and AlexNet/ZFNet.

The stages are computed from the typed arch (zoo.archs) here, without Keras, so listing them never imports
TensorFlow; each family's contract (`Family.stages`) points at its function below. Keras is imported only by
`build_features` and the weights loading.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from collections.abc import Iterable, Mapping
from numbers import Integral
from typing import Callable, Sequence

from ..archs import AlexNetArch, ConvLayer, DenseNetArch, GoogLeNetArch, LeNetArch, ResNetArch, VGGArch
from ..errors import ZooError
from ..registry import registry

__all__ = ["Stage", "FeatureInfo", "FeaturesError", "STAGES", "feature_info", "select", "build_features",
           "load_backbone", "stages_markdown"]


class FeaturesError(ZooError, ValueError):
    """A features request that cannot be built (bad out_indices, a head argument); one line naming the model."""


@dataclass(frozen=True)
class Stage:
    """A feature stage as a family states it: the layer whose output it is, its stride (input pixels per map
    pixel) and its channels."""

    name: str
    stride: int
    channels: int


@dataclass(frozen=True)
class FeatureInfo:
    """One output of a features model: `index` (what out_indices names), the Keras layer, channels, stride."""

    index: int
    layer: str
    channels: int
    stride: int

    @property
    def reduction(self) -> int:
        """timm's name for the stride."""
        return self.stride

    def as_dict(self) -> dict:
        return asdict(self)


# ---------------------------------------------------------------------------------------------------------------
# The stages of each family, from its arch alone


def last_per_stride(maps: Sequence[tuple[str, int, int]]) -> tuple[Stage, ...]:
    """The last of a body's maps (layer, stride, channels) at each stride, in order: the deepest features at each
    resolution, as timm and torchvision's backbones take them."""
    last: dict[int, Stage] = {}
    for name, stride, channels in maps:
        last[stride] = Stage(name, stride, channels)
    return tuple(last.values())


def lenet_stages(arch: LeNetArch) -> tuple[Stage, ...]:
    """C1 (stride 1), C3 (2) and S4 (4), squashed, in the paper's net; conv1, conv2 and pool2 in the modern one.
    C5 is left out: a 5x5 conv that leaves 1x1 at 32x32, it is the full connection the modern form's fc1 is."""
    if arch.variant == "original":
        return (Stage("C1", 1, arch.c1), Stage("C3_squash", 2, len(arch.c3_table)),
                Stage("S4_squash", 4, len(arch.c3_table)))
    maps = []
    for i, filters in enumerate(arch.conv):
        maps += [(f"conv{i + 1}", 2 ** i, filters), (f"pool{i + 1}", 2 ** (i + 1), filters)]
    return last_per_stride(maps)


def alexnet_unit_steps(layer: ConvLayer, arch: AlexNetArch) -> list[str]:
    """What follows a conv, in the papers' order (zoo.models.alexnet_zfnet): AlexNet normalizes then pools,
    ZFNet pools then normalizes."""
    steps = ["pool"] if layer.pool else []
    if layer.lrn:
        steps = ["lrn", *steps] if arch.norm == "before_pool" else [*steps, "lrn"]
    return steps


def alexnet_stages(arch: AlexNetArch) -> tuple[Stage, ...]:
    """The last map at each stride: AlexNet's lrn1, lrn2, conv5 and pool5 (strides 4-32); ZFNet's conv1 to pool5
    (strides 2-32)."""
    maps, stride = [], 1
    for index, layer in enumerate(arch.conv, start=1):
        stride *= layer.stride
        maps.append((f"conv{index}", stride, layer.filters))
        for step in alexnet_unit_steps(layer, arch):
            stride *= arch.pool.stride if step == "pool" else 1
            maps.append((f"{step}{index}", stride, layer.filters))
    return last_per_stride(maps)


def vgg_stages(arch: VGGArch) -> tuple[Stage, ...]:
    """The last conv unit of each stage, before its max pool (timm's VGG feature points, strides 1-16), then the
    last max pool (stride 32, the map keras' include_top=False ends in)."""
    last = "_relu" if arch.batch_norm else ""
    convs = [Stage(f"block{i}_conv{depth}{last}", 2 ** (i - 1), width)
             for i, (depth, width) in enumerate(zip(arch.depths, arch.widths), start=1)]
    count = len(arch.depths)
    return (*convs, Stage(f"block{count}_pool", 2 ** count, arch.widths[-1]))


def inception_stage_stride(index: int) -> int:
    """Input pixels per map pixel in inception stage `index` (0-based): the stem reduces 8x, each pool 2x more."""
    return 8 * 2 ** index


def inception_channels(widths: Sequence[int]) -> int:
    n1x1, _, n3x3, _, n5x5, pool_proj = widths
    return n1x1 + n3x3 + n5x5 + pool_proj


def googlenet_stages(arch: GoogLeNetArch) -> tuple[Stage, ...]:
    """conv1, the stem's second LRN, then the last module of each inception stage."""
    last = [(stage, *list(modules.items())[-1]) for stage, modules in arch.stages.items()]
    inceptions = [Stage(f"inception_{stage}{module}_concat", inception_stage_stride(i), inception_channels(widths))
                  for i, (stage, module, widths) in enumerate(last)]
    return (Stage("conv1_7x7", 2, arch.stem.conv1), Stage("lrn2", 4, arch.stem.conv2), *inceptions)


def resnet_stages(arch: ResNetArch) -> tuple[Stage, ...]:
    """Each stage's last block, after the ImageNet stem's ReLU (stride 2; its max pool brings the first stage to
    stride 4). The CIFAR stem keeps the resolution, so its output is no stage of its own (strides 1, 2, 4)."""
    expansion = arch.expansion if arch.block == "bottleneck" else 1
    first = 1 if arch.stem == "cifar" else 4
    blocks = [Stage(f"conv{i + 2}_block{depth}_out", first * 2 ** i, expansion * width)
              for i, (depth, width) in enumerate(zip(arch.depths, arch.widths))]
    return tuple(blocks) if arch.stem == "cifar" else (Stage("conv1_relu", 2, arch.widths[0]), *blocks)


def densenet_block_channels(arch: DenseNetArch) -> list[int]:
    """Maps out of each dense block: k more per layer; each transition keeps floor(theta * m) of them."""
    channels, found = arch.initial_filters, []
    for i, layer_count in enumerate(arch.blocks):
        channels += layer_count * arch.growth_rate
        found.append(channels)
        channels = int(channels * arch.compression)
    return found


def densenet_stages(arch: DenseNetArch) -> tuple[Stage, ...]:
    """Each dense block's output before its transition (the last one after the final BN-ReLU), after the ImageNet
    stem's ReLU (stride 2). The CIFAR stem keeps the resolution, so its output is no stage of its own."""
    imagenet = arch.stem == "imagenet"
    first = 4 if imagenet else 1
    blocks = [Stage(f"conv{i + 2}_block{count}_concat", first * 2 ** i, channels)
              for i, (count, channels) in enumerate(zip(arch.blocks, densenet_block_channels(arch)))]
    blocks[-1] = Stage("relu", blocks[-1].stride, blocks[-1].channels)
    return (Stage("conv1_relu", 2, arch.initial_filters), *blocks) if imagenet else tuple(blocks)


# family -> its stages; the family modules pass the same functions to their Family (a test checks it)
STAGES: dict[str, Callable] = {
    "lenet": lenet_stages,
    "alexnet": alexnet_stages,
    "vgg": vgg_stages,
    "googlenet": googlenet_stages,
    "resnet": resnet_stages,
    "densenet": densenet_stages,
}


# ---------------------------------------------------------------------------------------------------------------
# Selecting stages


def _spec(name_or_spec):
    return registry().get(name_or_spec) if isinstance(name_or_spec, str) else name_or_spec


def _all_stages(spec) -> tuple[FeatureInfo, ...]:
    stages = STAGES[spec.family](spec.arch)
    return tuple(FeatureInfo(i, stage.name, stage.channels, stage.stride) for i, stage in enumerate(stages))


def _describe(stages: Sequence[FeatureInfo]) -> str:
    return ", ".join(f"{s.index} {s.layer} ({s.channels} ch, stride {s.stride})" for s in stages)


def select(spec, out_indices=None) -> tuple[FeatureInfo, ...]:
    """The stages `out_indices` names (all when None), in stage order; negative indices count from the end.
    Anything else (out of range, repeated, not whole numbers) raises FeaturesError listing the stages."""
    stages = _all_stages(spec)
    if out_indices is None:
        return stages
    count = len(stages)
    listing = f"the {count} feature stages of {spec.name} are {_describe(stages)}"
    iterable = isinstance(out_indices, Iterable) and not isinstance(out_indices, (str, bytes, Mapping))
    given = tuple(out_indices) if iterable else ()
    if not given:
        raise FeaturesError(f"{spec.name}: out_indices must be a non-empty tuple of stage indices, got "
                            f"{out_indices!r}; {listing}")
    wrong = [i for i in given if isinstance(i, bool) or not isinstance(i, Integral)]
    if wrong:
        raise FeaturesError(f"{spec.name}: out_indices must be whole numbers, got {wrong[0]!r}; {listing}")
    out_indices = tuple(int(i) for i in given)  # numpy integers too
    outside = [i for i in out_indices if not -count <= i < count]
    if outside:
        raise FeaturesError(f"{spec.name}: out_indices {tuple(outside)} out of range (0..{count - 1}, or "
                            f"-{count}..-1 from the end); {listing}")
    chosen = [i % count for i in out_indices]
    if len(set(chosen)) != len(chosen):
        raise FeaturesError(f"{spec.name}: out_indices {tuple(out_indices)} name a stage twice; {listing}")
    return tuple(stages[i] for i in sorted(chosen))


def feature_info(name, out_indices=None) -> tuple[FeatureInfo, ...]:
    """The feature stages of registry variant `name` (or a Spec), or those `out_indices` selects: index, Keras
    layer name, channels and stride, exactly the outputs of `zoo.build(name, features_only=True, out_indices=...)`
    at any input size. Reads the registry only: no TensorFlow is imported."""
    return select(_spec(name), out_indices)


# ---------------------------------------------------------------------------------------------------------------
# The features model

HEAD_ARGUMENTS = ("classes", "classifier_activation")


def _check_head_free(spec, features_only: bool, include_top, pooling, kwargs: dict) -> None:
    if not features_only:
        raise FeaturesError(f"{spec.name}: out_indices needs features_only=True")
    if include_top:
        raise FeaturesError(f"{spec.name}: features_only=True builds no classifier; leave out include_top=True")
    if pooling is not None:
        raise FeaturesError(f"{spec.name}: features_only=True returns the feature maps unpooled; leave out "
                            f"pooling={pooling!r}")
    given = [key for key in HEAD_ARGUMENTS if key in kwargs]
    if given:
        raise FeaturesError(f"{spec.name}: features_only=True builds no classifier; leave out {given[0]}")


def build_features(spec, *, features_only: bool = True, out_indices=None, weights=None, include_top=False,
                   pooling=None, **kwargs):
    """The features model of `spec`: the classifier's body (built by the family, same layer names) with one
    output per selected stage, in stage order; the layers after the deepest selected stage are left out.

    `weights` are what zoo.build takes (a tag, a path, a zoo.pretrained.Weights): a classifier's file loads with
    its head skipped; keras.applications' ImageNet weights come from their headless (`_notop`) file. Keyword
    arguments: input_tensor, input_shape, name and the family's options; no head arguments."""
    from . import family_of

    _check_head_free(spec, features_only, include_top, pooling, kwargs)
    stages = select(spec, out_indices)
    resolved = None
    if weights is not None:
        from ..pretrained import resolve

        resolved = resolve(spec, weights, include_top=False)
    family = family_of(spec)
    options = {"name": spec.name, **spec.builder_kwargs, **kwargs}
    body = family.build(spec.arch, spec.input, include_top=False, pooling=None, classes=spec.classes, **options)
    if resolved is not None:
        load_backbone(body, resolved, spec, family)
    return _outputs_model(body, stages)


def _outputs_model(body, stages: Sequence[FeatureInfo]):
    import keras

    outputs = [body.get_layer(stage.layer).output for stage in stages]
    inputs = body.inputs[0] if len(body.inputs) == 1 else body.inputs  # the body's own input structure
    # One stage selected: Keras returns a single-output model's map bare, not in a list of one
    return keras.Model(inputs, outputs, name=body.name)


# ---------------------------------------------------------------------------------------------------------------
# Weights: a classifier's file into the body, its head skipped


def head_layer_names(family, arch, channels: int, classes: int, model_name: str) -> set[str]:
    """The weighted layers the family's classifier head adds (`fc1`, `predictions`, ...): the head built on a 1x1
    map of the body's channels, which has the classifier's layer names at a fraction of its size."""
    import keras

    from .family import Head

    image = keras.Input((1, 1, channels))
    outputs = family.head(image, arch, Head(include_top=True, classes=classes, model_name=model_name))
    return {layer.name for layer in keras.Model(image, outputs).layers if layer.weights}


def load_backbone(body, weights, spec, family) -> None:
    """Load `weights` (a resolved zoo.pretrained.Weights) into the headless `body`, layer by layer by name.

    Every weighted layer of the body must be in the file with the same shapes, and the file may hold nothing else
    but the classifier head's layers: a file of another model is one line naming both (zoo.weights)."""
    if weights.keras_mapped:  # keras.applications' headless file, mapped by name with the biases folded
        weights.load_into(body)
        return
    from ..weights import WeightsLayout, first_difference, mismatch_line, model_layout

    path = os.fspath(weights.path)
    source, found = _read_weights(path)
    expected = model_layout(body)
    head = head_layer_names(family, spec.arch, body.output.shape[-1], weights.classes, spec.name)
    # the head's layers are expected where the file has them, with the file's shapes (they depend on the input)
    expected.update({name: found.layers[name] for name in head if name in found.layers})
    difference = first_difference(expected, WeightsLayout(found.layers, found.model))
    if difference:
        raise ValueError(mismatch_line(path, body, found, difference))
    for layer in body.layers:
        if layer.weights:
            source(layer)


def _read_weights(path: str):
    """(assign(layer), layout) for a weights file: `assign` loads the file's values of the layer of that name."""
    from ..weights import WeightsLayout, file_layout, model_layout

    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.endswith(".keras"):
        source = _keras_file_model(path)
        return (lambda layer: layer.set_weights(source.get_layer(layer.name).get_weights()),
                WeightsLayout(model_layout(source), source.name))
    found = file_layout(path)
    if found is None:
        raise ValueError(f"cannot read {path}: not a Keras weights file (.weights.h5 or .keras)")
    values = _h5_values(path)

    def assign(layer):
        stored = values[layer.name]
        # Keras 3's store is what layer.save_own_variables wrote: its inverse reads it back exactly
        layer.load_own_variables(stored) if isinstance(stored, dict) else layer.set_weights(stored)

    return assign, found


def _keras_file_model(path: str):
    import keras

    from ..weights import quiet_keras

    try:
        with quiet_keras():
            return keras.saving.load_model(path, compile=False)
    except Exception as e:  # zip/deserialization errors: the file and the reason, one line
        raise ValueError(f"cannot read {path}: {' '.join(str(e).split()) or type(e).__name__}") from None


def _h5_values(path: str) -> dict:
    """Layer name -> its stored values: Keras 3's `.weights.h5` keeps a `vars` group per layer, naming it, as
    `save_own_variables` wrote it ({"0": array, ...}); Keras 2's HDF5 a group per layer listing its `weight_names`
    (a list in `layer.weights` order)."""
    import h5py

    values: dict = {}
    with h5py.File(path, "r") as f:
        if "layers" in f:
            for key, group in f["layers"].items():
                if "vars" in group and len(group["vars"]):
                    variables = group["vars"]
                    values[str(variables.attrs.get("name") or key)] = {i: variables[i][()] for i in variables}
            return values
        root = f["model_weights"] if "model_weights" in f else f
        for raw in root.attrs["layer_names"]:
            name = raw.decode() if isinstance(raw, bytes) else str(raw)
            group = root[name]
            names = [w.decode() if isinstance(w, bytes) else w for w in group.attrs.get("weight_names", [])]
            if names:
                values[name] = [group[w][()] for w in names]
    return values


# ---------------------------------------------------------------------------------------------------------------
# The docs' table (docs/features.md), from feature_info

DOCS_START, DOCS_END = "<!-- feature-stages:start -->", "<!-- feature-stages:end -->"
DOCS_COMMAND = "python -m zoo.models.features docs/features.md"


def stages_markdown() -> str:
    """One table per family: a row per variant, a column per stage index, each cell `layer` channels / stride."""
    reg = registry()
    parts = []
    for family in reg.families:
        names = [name for name in reg.names() if reg.get(name).family == family]
        rows = {name: feature_info(name) for name in names}
        width = max(len(stages) for stages in rows.values())
        lines = [f"### {reg.families[family].title} (`{family}`)", "",
                 "| variant | " + " | ".join(str(i) for i in range(width)) + " |",
                 "|---|" + "---|" * width]
        for name, stages in rows.items():
            cells = [f"`{s.layer}` {s.channels} /{s.stride}" for s in stages] + [""] * (width - len(stages))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def update_docs(path) -> None:
    """Rewrite the generated table between the markers of `path` (atomically)."""
    from pathlib import Path

    from ..io import write_text_atomic

    text = Path(path).read_text()
    start, end = text.index(DOCS_START) + len(DOCS_START), text.index(DOCS_END)
    write_text_atomic(path, text[:start] + "\n" + stages_markdown() + text[end:])


if __name__ == "__main__":
    import sys

    update_docs(sys.argv[1] if len(sys.argv) > 1 else "docs/features.md")
