"""The model registry: `registry.yaml` loaded, validated and indexed.

This module must stay light: it imports no TensorFlow and no Keras, so `zoo list` and `zoo info` start fast.
Every fact about a variant (architecture as data, input sizes, parameter and MAC counts, the paper and its
published results, the evaluation protocol, the training recipe) lives in `registry.yaml`; code reads it here.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import importlib.util
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional

import yaml
from .errors import ZooError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "RegistryError", "UnknownModelError", "Spec", "Recipe", "Registry",
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
# Schema. `extra="forbid"` everywhere: a misspelt field is an error, not a silently ignored fact.


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InputSpec(_Strict):
    size: int = Field(gt=0, description="default (paper) input height = width")
    min_size: int = Field(gt=0, description="smallest input the architecture supports")
    channels: int = Field(gt=0)

    @model_validator(mode="after")
    def _min_le_size(self):
        if self.min_size > self.size:
            raise ValueError(f"min_size {self.min_size} is larger than size {self.size}")
        return self


class Paper(_Strict):
    title: str
    authors: list[str]
    year: int = Field(ge=1950, le=2100)
    arxiv: Optional[str] = None
    url: Optional[str] = None
    venue: Optional[str] = None
    followed: Optional[str] = Field(None, description="the table/figure/page the architecture follows")


class Result(_Strict):
    dataset: str
    split: str
    metric: Literal["top1_error", "top5_error", "error", "top1_accuracy", "top5_accuracy"]
    value: float
    protocol: Optional[str] = None
    source: str = Field(description="where in the paper: table/figure/section; or the benchmark table and row")
    measured_on: Optional[str] = Field(
        None, description="the network the number was measured on, where it is not exactly this variant "
                          "(known benchmark rows, e.g. the Fashion-MNIST benchmark table)")
    note: Optional[str] = None

    def where(self) -> str:
        """Where the number comes from, and the network it was measured on when that is not this variant."""
        return f"{self.source}; measured on {self.measured_on}" if self.measured_on else self.source


class EvalSpec(_Strict):
    resize: Optional[int] = Field(None, description="shorter side resized to this before the crop")
    crop: Optional[int] = Field(None, description="center crop size (defaults to the input size)")
    mean: Optional[list[float]] = Field(None, description="per-channel mean on the 0-255 scale; None: dataset's")
    std: Optional[list[float]] = Field(None, description="per-channel std on the 0-255 scale; None: dataset's")
    interpolation: Literal["bilinear", "bicubic", "nearest", "area"] = "bilinear"


class Reference(_Strict):
    source: Literal["paper", "torchvision", "keras.applications", "timm"]
    params: int
    note: Optional[str] = None


class Spec(_Strict):
    """One variant: everything the registry knows about it."""

    name: str
    family: str
    arch: dict[str, Any]
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

    def recipe_for(self, dataset: Optional[str] = None) -> str:
        return self.recipes.get(dataset or self.dataset, self.recipe)

    def published(self, dataset: Optional[str] = None) -> list[Result]:
        return [r for r in self.results if dataset is None or r.dataset == dataset]


class Schedule(_Strict):
    type: Literal["constant", "step", "cosine", "linear"] = "constant"
    unit: Literal["epochs", "steps"] = "epochs"
    boundaries: list[float] = Field([], description="step decay points in `unit`; fractions of the run when < 1")
    gamma: float = 0.1
    warmup: float = Field(0, description="linear warm-up length in `unit`")
    min_lr: float = 0.0


class Recipe(_Strict):
    """A training recipe: optimizer, schedule, regularisation, data. Learning rates are for `batch_size`."""

    name: str
    description: str
    source: Optional[str] = Field(None, description="the paper section the recipe follows")
    optimizer: Literal["sgd", "adam", "adamw", "rmsprop"] = "sgd"
    lr: float = Field(gt=0)
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = Field(0.0, ge=0)
    batch_size: int = Field(gt=0, description="reference (global) batch size the lr is quoted for")
    epochs: Optional[float] = Field(None, gt=0)
    max_steps: Optional[int] = Field(None, gt=0, description="stop after this many steps (overrides epochs)")
    schedule: Schedule = Schedule()
    augment: Literal["none", "flip", "pad_crop_flip", "inception_crop_flip", "scale_crop_flip"] = "none"
    mixup: float = Field(0.0, ge=0)
    cutmix: float = Field(0.0, ge=0)
    random_erasing: float = Field(0.0, ge=0, le=1)
    label_smoothing: float = Field(0.0, ge=0, lt=1)
    aux_weight: float = Field(0.0, ge=0, description="weight of auxiliary classifier losses (GoogLeNet: 0.3)")
    validation: Optional[int] = Field(None, ge=0, description="hold out this many training images for validation")
    dropout: Optional[float] = None
    image_size: Optional[int] = Field(None, gt=0, description="train and evaluate at this input size (e.g. an "
                                      "ImageNet net on 28x28 Fashion-MNIST); None: the model's input size")

    @model_validator(mode="after")
    def _length(self):
        if self.epochs is None and self.max_steps is None:
            raise ValueError("a recipe needs `epochs` or `max_steps`")
        return self


class Budget(_Strict):
    description: str
    epochs_scale: float = Field(1.0, gt=0, description="multiplies each recipe's epochs")


class Study(_Strict):
    """A reproduction plan: which variants to train on which dataset, each with its registry recipe."""

    name: str
    description: str
    dataset: str
    models: list[str] = Field(min_length=1)
    budgets: dict[str, Budget] = Field(min_length=1)
    compare_with: dict[str, str] = Field(
        {}, description="model -> the registry variant whose published number on this dataset stands beside it "
                        "(labelled as such) when the model has none of its own")


class Family(_Strict):
    title: str
    builder: str = Field(description="'module:function' that builds every variant of the family")

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


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """A safe YAML loader that refuses duplicate keys (plain YAML silently keeps the last one)."""


def _construct_unique_mapping(loader, node, deep=False):
    # Check the keys written in this mapping before merging `<<: *anchor` keys in: an explicit key may override
    # a merged one (that is what merge keys are for), but the same key written twice is a mistake.
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise RegistryError(
                f"duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                f"(first at line {seen[key] + 1})")
        seen[key] = key_node.start_mark.line
    loader.flatten_mapping(node)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _format_error(where: str, err: ValidationError) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(entry)"
    return f"{where}: field '{field}': {first['msg']}"


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
        try:
            doc = yaml.load(text, Loader=_UniqueKeyLoader)
        except RegistryError as e:
            raise RegistryError(f"{where}: {e}") from None
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark else ""
            raise RegistryError(f"{where}: not valid YAML{at}: {getattr(e, 'problem', e)}") from None
        if not isinstance(doc, dict):
            raise RegistryError(f"{where}: expected a mapping with 'families', 'recipes' and 'models'")
        unknown = set(doc) - {"families", "recipes", "models", "defaults", "studies"}
        if unknown:
            raise RegistryError(f"{where}: unknown top-level section {sorted(unknown)[0]!r}")
        for section in ("families", "recipes", "models"):
            if not isinstance(doc.get(section), dict):
                raise RegistryError(f"{where}: section '{section}' is missing or not a mapping")

        families = {k: cls._validate(Family, v, f"{where}: family '{k}'") for k, v in doc["families"].items()}
        recipes = {k: cls._validate(Recipe, {"name": k, **cls._mapping(v, f"{where}: recipe '{k}'")},
                                    f"{where}: recipe '{k}'")
                   for k, v in doc["recipes"].items()}
        models: dict[str, Spec] = {}
        for name, entry in doc["models"].items():
            what = f"{where}: model '{name}'"
            if not re.fullmatch(r"[a-z][a-z0-9_]*", str(name)):
                raise RegistryError(f"{what}: name must be lower-case letters, digits and '_'")
            spec = cls._validate(Spec, {"name": name, **cls._mapping(entry, what)}, what)
            if spec.family not in families:
                raise RegistryError(f"{what}: field 'family': unknown family {spec.family!r} "
                                    f"(known: {', '.join(sorted(families))})")
            for field, recipe in [("recipe", spec.recipe)] + [(f"recipes.{d}", r) for d, r in spec.recipes.items()]:
                if recipe not in recipes:
                    raise RegistryError(f"{what}: field '{field}': unknown recipe {recipe!r}")
            models[name] = spec
        studies = {}
        for name, entry in (doc.get("studies") or {}).items():
            what = f"{where}: study '{name}'"
            study = cls._validate(Study, {"name": name, **cls._mapping(entry, what)}, what)
            for i, model in enumerate(study.models):
                if model not in models:
                    raise RegistryError(f"{what}: field 'models.{i}': unknown model {model!r}")
            for model, other in study.compare_with.items():
                if model not in study.models:
                    raise RegistryError(f"{what}: field 'compare_with.{model}': not one of the study's models")
                if other not in models:
                    raise RegistryError(f"{what}: field 'compare_with.{model}': unknown model {other!r}")
            studies[name] = study
        return cls(models, families, recipes, path, studies)

    @staticmethod
    def _mapping(value, what: str) -> dict:
        if not isinstance(value, dict):
            raise RegistryError(f"{what}: expected a mapping, got {type(value).__name__}")
        return value

    @staticmethod
    def _validate(schema, value, what: str):
        try:
            return schema.model_validate(value)
        except ValidationError as e:
            raise RegistryError(_format_error(what, e)) from None

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


@functools.lru_cache(maxsize=None)
def _load(path: str, mtime: float) -> Registry:
    return Registry.from_file(path)


def load_registry(path: str | os.PathLike | None = None) -> Registry:
    p = Path(path) if path else registry_path()
    try:
        mtime = p.stat().st_mtime
    except OSError:
        raise RegistryError(f"{p}: cannot read the registry: no such file") from None
    return _load(str(p), mtime)


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
