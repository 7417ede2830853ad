"""The model registry: `registry.yaml` loaded, validated and indexed.

This module must stay light: it imports no TensorFlow and no Keras, so `zoo list` and `zoo info` start fast.
Every fact about a variant (architecture as data, input sizes, parameter and MAC counts, the paper and its
published results, the evaluation protocol, the training recipe) lives in `registry.yaml`; code reads it here.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.util
import os
import re
from pathlib import Path
from typing import Any, Optional

from pydantic import Field, field_validator, model_validator

from . import archs
from .choices import (Augment, EvalProtocol, Interpolation, OptimizerName, ReferenceSource, ResultMetric, ScheduleKind,
                      ScheduleUnit)
from .errors import ZooError
from .pretrained.entry import WeightsEntry
from .schema import Strict, cached_by_mtime, load_yaml, validate

__all__ = [
    "RegistryError", "UnknownModelError", "Spec", "Recipe", "Family", "Facts", "Registry",
    "load_registry", "registry", "get_spec", "list_models", "families", "registry_path",
]


class RegistryError(ZooError, ValueError):
    """A registry file that cannot be used; the message names the entry and the field."""


class UnknownModelError(ZooError, KeyError):
    """A model name that is not in the registry; the message suggests the closest names."""

    def __init__(self, name: str, suggestions: list[str]):
        self.name, self.suggestions = name, suggestions
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else "; `zoo list` shows them all"
        super().__init__(f"unknown model {name!r}{hint}")

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


# ---------------------------------------------------------------------------------------------------------------
# Schema. `Strict` (extra="forbid") everywhere: a misspelt field is an error, not a silently ignored fact.


class InputSpec(Strict):
    size: int = Field(gt=0, description="default (paper) input height = width")
    min_size: int = Field(gt=0, description="smallest input the architecture supports")
    channels: int = Field(gt=0)

    @model_validator(mode="after")
    def _min_le_size(self):
        if self.min_size > self.size:
            raise ValueError(f"min_size {self.min_size} is larger than size {self.size}")
        return self


class Paper(Strict):
    title: str
    authors: list[str]
    year: int = Field(ge=1950, le=2100)
    arxiv: Optional[str] = None
    url: Optional[str] = None
    venue: Optional[str] = None
    followed: Optional[str] = Field(None, description="the table/figure/page the architecture follows")


class Result(Strict):
    dataset: str
    split: str
    metric: ResultMetric
    value: float
    protocol: Optional[str] = Field(None, description="the paper's test conditions, in its own words")
    eval_protocol: Optional[EvalProtocol] = Field(None, description=(
        "the `zoo eval --protocol` that measures the number as the paper did (zoo/training/protocols.py); a run "
        "record's `protocol` is matched against it. None: no zoo protocol does (an ensemble, VGG's multi-crop)"))
    source: str = Field(description="where in the paper: table/figure/section; or the benchmark table and row")
    measured_on: Optional[str] = Field(
        None, description="the network the number was measured on, where it is not exactly this variant "
                          "(known benchmark rows, e.g. the Fashion-MNIST benchmark table)")
    note: Optional[str] = None

    def where(self) -> str:
        """Where the number comes from, and the network it was measured on when that is not this variant."""
        return f"{self.source}; measured on {self.measured_on}" if self.measured_on else self.source


class EvalSpec(Strict):
    resize: Optional[int] = Field(None, description="shorter side resized to this before the crop")
    crop: Optional[int] = Field(None, description="center crop size (defaults to the input size)")
    mean: Optional[list[float]] = Field(None, description="per-channel mean on the 0-255 scale; None: the "
                                        "dataset's (zoo/data/catalogue.yaml), the one place the statistics live")
    std: Optional[list[float]] = Field(None, description="per-channel std on the 0-255 scale; None: the dataset's")
    interpolation: Interpolation = "bilinear"
    # Optional, not False: unset on every variant but one, so dumps and `zoo info` show it only where it is said.
    fixed: Optional[bool] = Field(None, description=(
        "true: mean/std are a fixed input scaling the paper states (LeNet-5's background -0.1, ink 1.175), used on "
        "every dataset; unset: they are the statistics of the model's own dataset, used on it only"))

    @model_validator(mode="after")
    def _fixed_needs_values(self):
        if self.fixed and (self.mean is None or self.std is None):
            raise ValueError("fixed: true needs both mean and std (the scaling every dataset gets)")
        return self

    def normalisation(self, dataset: str, own_dataset: str) -> tuple[Optional[list[float]], Optional[list[float]]]:
        """The mean and std a model's inputs from `dataset` are normalised with, (None, None) for the dataset's own
        statistics (zoo/data/catalogue.yaml): the eval mean/std on the model's own dataset, or on every dataset
        when they are a fixed scaling. The one rule the pipeline (zoo.training.inputs) and the weights'
        recorded preprocessing (zoo.pretrained.pipeline_preprocessing) share."""
        if self.fixed or dataset == own_dataset:
            return self.mean, self.std
        return None, None


class Reference(Strict):
    source: ReferenceSource
    params: int = Field(description="the reference's count; in registry.yaml only where it differs from the "
                                    "entry's `params` (the loader fills it in from `params` otherwise)")
    note: Optional[str] = None


class Spec(Strict):
    """One variant: everything the registry knows about it."""

    name: str
    family: str
    arch: archs.Arch = Field(description="the architecture as data, typed by the family's schema (zoo/archs.py)")
    input: InputSpec
    classes: int = Field(gt=0)
    params: int = Field(ge=0, description="exact trainable parameter count at the default input and classes")
    macs: int = Field(ge=0, description="multiply-accumulates per image, conv + dense, at the default input")
    depth: Optional[int] = Field(None, description="weighted layers on the longest path, as the paper counts")
    paper: Paper
    results: list[Result] = []
    eval: EvalSpec = EvalSpec()
    dataset: str = Field(description="the dataset `zoo train NAME` uses by default")
    recipe: str = Field(description="the default training recipe")
    recipes: dict[str, str] = Field({}, description="dataset -> recipe overrides")
    reference: Reference
    builder_kwargs: dict[str, Any] = Field({}, description="extra keyword arguments for the family builder")
    notes: Optional[str] = None
    group: Optional[str] = Field(None, description="the family's group (regime) whose facts the entry takes")
    keras_twin: Optional[str] = Field(None, pattern=r"^[A-Z][A-Za-z0-9]*$", description=(
        "the keras.applications constructor with the same layers and layer names (its weights import by name)"))
    weights: dict[str, WeightsEntry] = Field({}, description="named weights: tag -> file, dataset, preprocessing, "
                                             "measured accuracy, provenance (zoo/pretrained)")

    @field_validator("weights")
    @classmethod
    def _weights_tags(cls, weights: dict) -> dict:
        for tag in weights:
            if not re.fullmatch(r"[a-z][a-z0-9_]*", tag):
                raise ValueError(f"weights tag {tag!r}: lower-case letters, digits and '_'")
        return weights

    @field_validator("family")
    @classmethod
    def _family_has_an_arch_schema(cls, family: str) -> str:
        if family not in archs.SCHEMAS:
            raise archs.invalid(f"unknown family {family!r} (known: {', '.join(sorted(archs.SCHEMAS))})")
        return family

    @field_validator("arch", mode="before")
    @classmethod
    def _arch_of_the_family(cls, arch, info):
        # The family picks the schema (the union's discriminator lives beside the arch, not in it); an error
        # keeps its place in the arch: "field 'arch.depths': ...". Unknown family: reported on 'family' above.
        family = info.data.get("family")
        return archs.parse_arch(family, arch) if family in archs.SCHEMAS else arch

    def recipe_for(self, dataset: Optional[str] = None) -> str:
        """The recipe for `dataset` (default: the entry's own): an exact `recipes` key, else the first key that
        matches as an fnmatch pattern (`fashion_mnist*` serves Fashion-MNIST and its sample), else `recipe`."""
        dataset = dataset or self.dataset
        if dataset in self.recipes:
            return self.recipes[dataset]
        matches = [recipe for pattern, recipe in self.recipes.items() if fnmatch.fnmatchcase(dataset, pattern)]
        return matches[0] if matches else self.recipe

    def published(self, dataset: Optional[str] = None) -> list[Result]:
        return [r for r in self.results if dataset is None or r.dataset == dataset]


class Schedule(Strict):
    type: ScheduleKind = "constant"
    unit: ScheduleUnit = "epochs"
    boundaries: list[float] = Field([], description="step decay points in `unit`; fractions of the run when < 1")
    gamma: float = 0.1
    warmup: float = Field(0, description="linear warm-up length in `unit`")
    min_lr: float = 0.0


class Distill(Strict):
    """Knowledge distillation (Hinton, Vinyals & Dean 2015): the run's model also learns a trained teacher's
    softened outputs (zoo/training/distill.py)."""

    teacher: str = Field(description="the teacher's named weights, MODEL.TAG (`zoo list --weights`), for the "
                                     "run's classes and input geometry (its mean/std may differ: converted)")
    temperature: float = Field(4.0, gt=0, description="T: both nets' logits are divided by it before the softmax")
    weight: float = Field(1.0, gt=0, description="the soft term's weight beside the cross-entropy (weight 1); the "
                                                  "soft term is T^2 KL(teacher || student) at temperature T")


class Recipe(Strict):
    """A training recipe: optimizer, schedule, regularisation, data. Learning rates are for `batch_size`."""

    name: str
    description: str
    source: Optional[str] = Field(None, description="the paper section the recipe follows")
    optimizer: OptimizerName = "sgd"
    lr: float = Field(gt=0)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(gt=0, description="reference (global) batch size the lr is quoted for")
    epochs: Optional[float] = Field(None, gt=0)
    max_steps: Optional[int] = Field(None, gt=0, description="stop after this many steps (overrides epochs)")
    schedule: Schedule = Schedule()
    augment: Augment = "none"
    mixup: float = Field(0.0, ge=0)
    cutmix: float = Field(0.0, ge=0)
    random_erasing: float = Field(0.0, ge=0, le=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    aux_weight: float = Field(0.0, ge=0, description="weight of auxiliary classifier losses (GoogLeNet: 0.3)")
    validation: Optional[int] = Field(None, ge=0, description="hold out this many training images for validation")
    dropout: Optional[float] = None
    image_size: Optional[int] = Field(None, gt=0, description="train and evaluate at this input size (e.g. an "
                                      "ImageNet net on 28x28 Fashion-MNIST); None: the model's input size")
    init: Optional[archs.InitName] = Field(None, description="the initialisation this recipe trains with (a "
                                           "measured reason in its description); None: the paper's")
    head_epochs: Optional[float] = Field(None, gt=0, description="fine-tuning (--weights) in two phases: the new "
                                         "head alone for this many epochs, then every layer; --head-epochs wins")
    distill: Optional[Distill] = Field(None, description="train against a teacher's soft outputs as well as the "
                                       "labels (knowledge distillation)")

    @model_validator(mode="after")
    def _length(self):
        if self.epochs is None and self.max_steps is None:
            raise ValueError("a recipe needs `epochs` or `max_steps`")
        if self.head_epochs is not None and self.epochs is not None and self.head_epochs >= self.epochs:
            raise ValueError(f"head_epochs {self.head_epochs:g} leaves nothing of the {self.epochs:g} epochs for "
                             "the second phase (every layer)")
        return self


class Budget(Strict):
    description: str
    epochs_scale: float = Field(1.0, gt=0, description="multiplies each recipe's epochs")


class Study(Strict):
    """A reproduction plan: which variants to train on which dataset, each with its registry recipe."""

    name: str
    description: str
    dataset: str
    models: list[str] = Field(min_length=1)
    budgets: dict[str, Budget] = Field(min_length=1)
    compare_with: dict[str, str] = Field(
        {}, description="model -> the registry variant whose published number on this dataset stands beside it "
                        "(labelled as such) when the model has none of its own")
    seconds: dict[str, float] = Field(
        {}, description="model -> the measured wall seconds of its run at epochs_scale 1 on `timed_on`: what "
                        "`zoo reproduce` adds up into the plan's estimates and its ETA")
    timed_on: Optional[str] = Field(None, description="where and how the `seconds` were measured")

    @model_validator(mode="after")
    def _timed_models(self):
        unknown = sorted(set(self.seconds) - set(self.models))
        if unknown:
            raise ValueError(f"seconds: {', '.join(unknown)} not in the study's models")
        return self


class Facts(Strict):
    """Facts a family states once for all its variants (`defaults:`) or for a group of them (`groups:`, e.g.
    the CIFAR and the ImageNet ResNets). Merged into each variant at load: family defaults, then the variant's
    group, then the variant's own values, the later winning; a mapping (paper, eval, input, recipes) merges key
    by key, so a variant's `paper: {followed: ...}` completes its family's paper. Each value here is complete."""

    paper: Optional[Paper] = None
    dataset: Optional[str] = None
    eval: Optional[EvalSpec] = None
    recipe: Optional[str] = None
    recipes: dict[str, str] = {}
    input: Optional[InputSpec] = None
    classes: Optional[int] = Field(None, gt=0)

    def written(self) -> dict[str, Any]:
        """The facts as written (validated), without the schema's defaults: what is merged into a variant."""
        return self.model_dump(exclude_unset=True)


class Family(Strict):
    title: str
    builder: str = Field(description="'module:function' that builds every variant of the family")
    defaults: Facts = Facts()
    groups: dict[str, Facts] = Field({}, description="named groups of variants with facts of their own")

    @field_validator("builder")
    @classmethod
    def _builder_ref(cls, ref: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", ref):
            raise ValueError(f"builder must look like 'package.module:function', got {ref!r}")
        module = ref.split(":")[0]
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ValueError(f"builder module {module!r} does not exist")
        return ref


# ---------------------------------------------------------------------------------------------------------------
# Loading

# Top-level sections: the three required ones, studies, and `anchors` (YAML anchors only, ignored here; `defaults`
# is its former name, still accepted).
REQUIRED_SECTIONS = ("families", "recipes", "models")
SECTIONS = REQUIRED_SECTIONS + ("studies", "anchors", "defaults")


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _mapping(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise RegistryError(f"{what}: expected a mapping, got {type(value).__name__}")
    return value


def _sections(doc: Any, where: str) -> dict:
    if not isinstance(doc, dict):
        raise RegistryError(f"{where}: expected a mapping with 'families', 'recipes' and 'models'")
    unknown = set(doc) - set(SECTIONS)
    if unknown:
        raise RegistryError(f"{where}: unknown top-level section {sorted(unknown)[0]!r}")
    for section in REQUIRED_SECTIONS:
        if not isinstance(doc.get(section), dict):
            raise RegistryError(f"{where}: section '{section}' is missing or not a mapping")
    return doc


def _named(schema, name: str, value: Any, what: str):
    """A section's entry validated with its YAML key as its `name` field."""
    return validate(schema, {"name": name, **_mapping(value, what)}, what, RegistryError)


def _check_recipes(what: str, prefix: str, recipe: Optional[str], per_dataset: dict[str, str],
                   known: dict[str, Recipe]) -> None:
    named = ([("recipe", recipe)] if recipe is not None else []) + [(f"recipes.{d}", r) for d, r in per_dataset.items()]
    for field, name in named:
        if name not in known:
            raise RegistryError(f"{what}: field '{prefix}{field}': unknown recipe {name!r}")


def _family(value: Any, recipes: dict[str, Recipe], what: str) -> Family:
    family = validate(Family, value, what, RegistryError)
    _check_recipes(what, "defaults.", family.defaults.recipe, family.defaults.recipes, recipes)
    for group, facts in family.groups.items():
        _check_recipes(what, f"groups.{group}.", facts.recipe, facts.recipes, recipes)
    return family


def _layered(*layers: dict) -> dict:
    """Later layers win; where both hold a mapping, it is merged key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            below = merged.get(key)
            merged[key] = {**below, **value} if isinstance(below, dict) and isinstance(value, dict) else value
    return merged


def _family_facts(entry: dict, families: dict[str, Family], what: str) -> list[dict]:
    """The facts the entry takes from its family: the family's defaults, then its group's."""
    name = entry.get("family")
    if not isinstance(name, str):
        return []  # missing or not a name: the schema says so
    family = families.get(name)
    if family is None:
        raise RegistryError(f"{what}: field 'family': unknown family {name!r} (known: {', '.join(sorted(families))})")
    group = entry.get("group")
    if group is None:
        return [family.defaults.written()]
    if not isinstance(group, str) or group not in family.groups:
        known = ", ".join(sorted(family.groups)) or "none"
        raise RegistryError(f"{what}: field 'group': unknown group {group!r} of family {name!r} (known: {known})")
    return [family.defaults.written(), family.groups[group].written()]


def _model(name: str, value: Any, families: dict[str, Family], recipes: dict[str, Recipe], what: str) -> Spec:
    if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
        raise RegistryError(f"{what}: name must be lower-case letters, digits and '_'")
    entry = _mapping(value, what)
    resolved = _layered(*_family_facts(entry, families, what), {"name": name, **entry})
    reference = resolved.get("reference")
    if isinstance(reference, dict) and "params" not in reference and "params" in resolved:
        resolved["reference"] = {**reference, "params": resolved["params"]}  # stated once, as `params`
    spec = validate(Spec, resolved, what, RegistryError)
    _check_recipes(what, "", spec.recipe, spec.recipes, recipes)
    return spec


def _study(name: str, value: Any, models: dict[str, Spec], what: str) -> Study:
    study = _named(Study, name, value, what)
    for i, model in enumerate(study.models):
        if model not in models:
            raise RegistryError(f"{what}: field 'models.{i}': unknown model {model!r}")
    for model, other in study.compare_with.items():
        if model not in study.models:
            raise RegistryError(f"{what}: field 'compare_with.{model}': not one of the study's models")
        if other not in models:
            raise RegistryError(f"{what}: field 'compare_with.{model}': unknown model {other!r}")
    return study


class Registry:
    """The validated registry: models, families and recipes, by name."""

    def __init__(self, models: dict[str, Spec], families: dict[str, Family], recipes: dict[str, Recipe],
                 path: Optional[Path] = None, studies: Optional[dict[str, Study]] = None):
        self.models, self.families, self.recipes, self.path = models, families, recipes, path
        self.studies = studies or {}

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Registry":
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise RegistryError(f"{path}: cannot read the registry: {e.strerror}") from None
        return cls.from_text(text, path)

    @classmethod
    def from_text(cls, text: str, path: Optional[Path] = None) -> "Registry":
        where = str(path or "registry")
        doc = _sections(load_yaml(text, where, RegistryError), where)
        recipes = {k: _named(Recipe, k, v, f"{where}: recipe '{k}'") for k, v in doc["recipes"].items()}
        families = {k: _family(v, recipes, f"{where}: family '{k}'") for k, v in doc["families"].items()}
        models = {k: _model(k, v, families, recipes, f"{where}: model '{k}'") for k, v in doc["models"].items()}
        studies = {k: _study(k, v, models, f"{where}: study '{k}'") for k, v in (doc.get("studies") or {}).items()}
        return cls(models, families, recipes, path, studies)

    # -- queries ------------------------------------------------------------------------------------------------

    def get(self, name: str) -> Spec:
        try:
            return self.models[name]
        except KeyError:
            normalized = name.lower().replace("-", "_")
            if normalized in self.models:
                return self.models[normalized]
            close = difflib.get_close_matches(normalized, list(self.models), n=3, cutoff=0.6)
            if not close:  # a prefix is a good hint too: 'resnet' -> resnet18, resnet20, ...
                close = [m for m in self.names() if m.startswith(normalized)][:3]
            raise UnknownModelError(name, close) from None

    def names(self) -> list[str]:
        return sorted(self.models, key=_natural_key)

    def list(self, include: str | list[str] | None = None, exclude: str | list[str] | None = None,
             family: str | None = None) -> list[str]:
        includes = [include] if isinstance(include, str) else list(include or ["*"])
        excludes = [exclude] if isinstance(exclude, str) else list(exclude or [])
        if family is not None and family not in self.families:
            raise RegistryError(f"unknown family {family!r} (known: {', '.join(sorted(self.families))})")
        return [n for n in self.names()
                if any(fnmatch.fnmatchcase(n, p) for p in includes)
                and not any(fnmatch.fnmatchcase(n, p) for p in excludes)
                and (family is None or self.models[n].family == family)]

    def recipe(self, name: str) -> Recipe:
        try:
            return self.recipes[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self.recipes), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise RegistryError(f"unknown recipe {name!r}{hint}") from None

    def builder(self, family: str):
        """The family's build function (imports the family module, and with it Keras)."""
        module_name, func = self.families[family].builder.split(":")
        module = importlib.import_module(module_name)
        try:
            return getattr(module, func)
        except AttributeError:
            raise RegistryError(f"family '{family}': field 'builder': {module_name} has no {func!r}") from None


def registry_path() -> Path:
    """`ZOO_REGISTRY` if set; else the repository's top-level file (source checkout, editable install); else the
    copy an installed wheel carries inside the package."""
    if os.environ.get("ZOO_REGISTRY"):
        return Path(os.environ["ZOO_REGISTRY"])
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "registry.yaml", here / "registry.yaml"):
        if candidate.is_file():
            return candidate
    raise RegistryError(f"registry.yaml not found next to {here} or in its parent")


_load = cached_by_mtime(Registry.from_file, RegistryError, "registry")


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    """The registry at `path` (default: registry_path()), parsed once per version of the file."""
    return _load(path or registry_path())


def registry() -> Registry:
    return load_registry()


def get_spec(name: str) -> Spec:
    return registry().get(name)


def list_models(include: str | list[str] | None = None, exclude: str | list[str] | None = None,
                family: str | None = None) -> list[str]:
    """Variant names matching fnmatch patterns (`include="resnet*"`), naturally sorted."""
    return registry().list(include, exclude, family)


def families() -> list[str]:
    return sorted(registry().families)
