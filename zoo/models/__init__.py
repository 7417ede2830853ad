"""Builders. `build(name, **kwargs)` builds any registry variant; every variant is importable by name:

    from zoo.models import resnet50
    model = resnet50(classes=10, input_shape=(64, 64, 3))

The variant functions are made from the registry on first access (PEP 562), so the registry stays the single
source of truth and this package imports no TensorFlow until a model is built. Family modules are therefore never
named like a variant (`alexnet_zfnet.py`, `inception.py`): importing a submodule binds its name on this package,
which would shadow the variant function of the same name.
"""

from __future__ import annotations

import functools

from ..registry import RegistryError, registry


def build(name: str, **kwargs):
    """Build the registry variant `name` as a functional `keras.Model`.

    Keyword arguments follow keras.applications: include_top, weights (None; a tag of the variant's named weights,
    e.g. "fashion_mnist" or "imagenet", see `zoo list --weights`; or a path to a weights file), input_tensor,
    input_shape, pooling, classes, classifier_activation, name; plus the family's options (`family_of(name).options`,
    e.g. `aux_logits` for GoogLeNet, `dropout` for DenseNet).

    `init` says how the weights are drawn: "paper" (the default) as the variant's paper states it (`arch.init`,
    zoo/models/init.py): LeNet-5 (`lenet5_original`) U(+-2.4/F_i) on each unit's fan-in; its modern forms, and
    VGG, Glorot uniform; AlexNet N(0, 0.01^2) with biases 1 in conv2, conv4, conv5, fc6, fc7; ZFNet N(0, 0.01^2)
    and its filters renormalised to RMS 0.1 after each update; GoogLeNet the BVLC reproduction's Xavier with conv
    biases 0.2; ResNet and DenseNet He's N(0, 2/fan_in). "keras" keeps Keras' own initialisers (Glorot-uniform
    kernels, zero biases; LeNet-5's custom layers their own). With `weights` the file's values replace either draw.
    docs/training.md, "Initialisation", has the table and its sources.

    `features_only=True` builds the feature extractor instead (timm's): the same body, one output per feature stage,
    or per stage `out_indices` names (negative ones count from the end); `zoo.feature_info(name)` lists them.
    """
    return build_spec(registry().get(name), **kwargs)


def build_spec(spec, **kwargs):
    """`build` for a Spec already in hand (the harness passes the one it resolved; no second look-up).

    `weights` may be a tag of the variant's registry entry ("fashion_mnist", "imagenet"), a path or a
    zoo.pretrained.Weights: resolved by zoo.pretrained (sha256 checked, Keras' cache for "imagenet"); a file is
    passed down to the family's build, keras.applications' weights are mapped in memory after it."""
    features_only = kwargs.pop("features_only", False)
    if features_only or "out_indices" in kwargs:
        from .features import build_features

        return build_features(spec, features_only=features_only, **kwargs)
    options = {"classes": spec.classes, "name": spec.name, **spec.builder_kwargs, **kwargs}
    weights = options.pop("weights", None)
    resolved = None
    if weights is not None:
        from ..pretrained import resolve

        resolved = resolve(spec, weights, include_top=options.get("include_top", True))
        # the weights' class count unless the caller asked for one (then it must be theirs)
        options["classes"] = resolved.head_classes(options.get("include_top", True), kwargs.get("classes"))
        if not resolved.keras_mapped:
            options["weights"] = resolved.path
    model = family_of(spec).build(spec.arch, spec.input, **options)
    if resolved is not None and resolved.keras_mapped:
        resolved.load_into(model)
    return model


def family_of(spec_or_name):
    """The family contract (`zoo.models.family.Family`) of a registry variant or Spec, as registry.yaml's
    `families.<family>.builder` names it."""
    from .family import Family

    spec = registry().get(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
    contract = registry().builder(spec.family)
    if not isinstance(contract, Family):
        raise RegistryError(f"family '{spec.family}': field 'builder': {contract!r} is not a "
                            f"zoo.models.family.Family (point it at the module's FAMILY)")
    return contract


def _variant(name: str):
    spec = registry().get(name)

    @functools.wraps(build)
    def variant(**kwargs):
        return build(name, **kwargs)

    variant.__name__ = variant.__qualname__ = name
    variant.__doc__ = (f"{spec.paper.title} ({spec.paper.year}): `{name}`, {spec.params:,} parameters at "
                       f"{spec.input.size}x{spec.input.size}x{spec.input.channels}, {spec.classes} classes.\n\n"
                       + (build.__doc__ or ""))
    return variant


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    if name in registry().models:
        return _variant(name)
    raise AttributeError(f"module 'zoo.models' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + registry().names())
