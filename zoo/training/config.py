"""A run's resolved configuration: the registry's defaults (model -> dataset -> recipe) plus the caller's
options (RunOptions), checked and turned into concrete numbers (image size, global batch, scaled lr, steps), and
the resolved `Run`: that configuration with the spec, recipe and dataset facts it came from, looked up once and
passed down to the harness.

No TensorFlow here: every bad request is caught, with a one-line message, before anything heavy starts.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Optional

from .. import registry as registry_module
from ..data import catalogue
from ..data.catalogue import DatasetInfo
from ..registry import Recipe, Spec
from .options import KEEP, MATCH, REPLACE, RunOptions, TrainError

__all__ = ["TrainError", "RunConfig", "Run", "resolve", "resolve_run", "run_of", "recipe_of",
           "resolve_image_size", "scaled_lr", "check_replicas", "overrides_conflict", "recipe_steps", "DEFAULTS",
           "MAX_UPSCALE"]

# Resizing a dataset's images by more than this factor (28x28 Fashion-MNIST to 224x224 for VGG) costs 64x the
# compute for no information: refused unless the caller asks for that size explicitly.
MAX_UPSCALE = 4
# Speed knobs. xla None = auto: on with a GPU, off on a CPU, where XLA's convolutions are 2-4x slower than
# oneDNN's (measured on a 2-core AMD EPYC, LeNet-5 and ResNet-20 training, interleaved in one process).
DEFAULTS = {"precision": "float32", "xla": None, "steps_per_execution": 1, "strategy": "auto", "seed": 0,
            "init": "paper"}


@dataclass
class RunConfig:
    """Everything that defines a run (saved as config.json); `identity()` is what a resume must match."""

    model: str
    dataset: str
    recipe: str
    recipe_details: dict
    image_size: int
    classes: int
    train_split: str
    validation_split: Optional[str]
    holdout: Optional[int]
    eval_split: str
    train_examples: int
    batch_size: int
    lr: float
    lr_rule: str
    weight_decay: float
    weight_decay_mode: str
    epochs: float
    steps_per_epoch: int
    total_steps: int
    seed: int
    precision: str
    xla: Optional[bool]  # None until the run knows its device (auto)
    steps_per_execution: int
    strategy: str
    # A config.json from before these fields: the models were all built with Keras' initialisers and trained
    # with softmax cross-entropy (None).
    init: str = "keras"
    loss: Optional[dict] = None  # {"name": "crossentropy"} or {"name": "map", "rubbish_penalty": j} (losses.py)
    data_dir: Optional[str] = None
    notes: list = field(default_factory=list)
    dataset_path: Optional[str] = None  # an image folder's path (then `dataset` is the folder's name)
    class_names: Optional[list] = None  # an image folder's classes in label order (zoo predict's labels)
    # an image folder's evaluation preprocessing (zoo.preprocess.Preprocessing, its mean/std measured on the
    # folder): what its weights need in zoo export/explain/predict, even once the folder has moved or changed
    preprocessing: Optional[dict] = None
    weights: Optional[str] = None  # what the run started from (fine-tuning), None: a random initialisation
    freeze_backbone: bool = False
    head_epochs: Optional[float] = None

    # Speed and placement knobs may change between an interrupted run and its resumption (the options RunOptions
    # does not MATCH on resume), and so may the notes; the rest may not.
    VOLATILE = tuple(RunOptions.on_resume(REPLACE) + RunOptions.on_resume(KEEP)) + ("notes",)

    def identity(self) -> dict:
        return {k: v for k, v in self.to_dict().items() if k not in self.VOLATILE}

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def scaled_lr(recipe_lr: float, recipe_batch: int, batch_size: int) -> float:
    """The linear scaling rule (Goyal et al. 2017): the recipe's lr is for its batch; k times the batch, k times
    the lr."""
    return recipe_lr * batch_size / recipe_batch


def check_replicas(batch_size: int, replicas: int) -> None:
    """The global batch is split evenly across the replicas (devices x workers)."""
    if batch_size % replicas:
        raise TrainError(f"batch size {batch_size} does not divide across {replicas} replicas; use a multiple of "
                         f"{replicas}")


def resolve_image_size(spec, recipe, image_shape, override: Optional[int] = None) -> tuple[int, Optional[str]]:
    """The square input side to train at, and a note when it is not the model's own size.

    `override` (the caller's) wins, then the recipe's `image_size`, then the model's input size; a model size far
    larger than the dataset's images (more than MAX_UPSCALE times) falls back to the smallest size the model
    accepts that holds the images (at least 32)."""
    name, native, smallest = spec.name, image_shape[0], spec.input.min_size
    if native and smallest > MAX_UPSCALE * native:
        raise TrainError(f"{name} needs at least {smallest}x{smallest} input, over {MAX_UPSCALE}x the "
                         f"{native}x{native} images of this dataset; train it on a dataset with larger images")
    size = override or recipe.image_size or spec.input.size
    note = None
    if override is None and recipe.image_size is None and native and size > MAX_UPSCALE * native:
        fallback = max(smallest, 32, -(-native // 16) * 16)
        note = (f"image size {fallback}: {name}'s {size}x{size} is over {MAX_UPSCALE}x the {native}x{native} "
                f"images (--image-size sets it)")
        size = fallback
    if size < smallest:
        raise TrainError(f"{name}: input {size}x{size} is too small; the minimum input size is "
                         f"{smallest}x{smallest}")
    return size, note


def _length(recipe, steps_per_epoch: int, epochs: Optional[float], max_steps: Optional[int]) -> tuple[float, int]:
    """(epochs, total steps): explicit max_steps, else explicit epochs, else the recipe's max_steps, else its
    epochs."""
    if max_steps is not None:
        steps = max_steps
    elif epochs is not None:
        steps = int(round(epochs * steps_per_epoch))
    elif recipe.max_steps is not None:
        steps = recipe.max_steps
    else:
        steps = int(round(recipe.epochs * steps_per_epoch))
    steps = max(1, steps)
    return steps / steps_per_epoch, steps


def _loss(spec: Spec) -> dict:
    """The criterion the variant's outputs are made for (zoo.training.losses makes it)."""
    if getattr(spec.arch, "loss", "crossentropy") == "map":
        return {"name": "map", "rubbish_penalty": spec.arch.rubbish_penalty}
    return {"name": "crossentropy"}


def _decay_mode(recipe: Recipe) -> str:
    if recipe.weight_decay == 0:
        return "none"
    if recipe.optimizer == "adamw":
        return "decoupled"  # AdamW: w -= lr * wd * w, apart from the gradient (Loshchilov & Hutter)
    return "l2"  # the papers' SGD weight decay: wd * w added to the gradient of every kernel


def _peak_lr(recipe: Recipe, batch: int, lr: Optional[float]) -> tuple[float, str]:
    """The peak lr and how it was chosen: --lr as given, else the recipe's scaled to the batch."""
    if lr is not None:
        return lr, f"--lr {lr:g} as given (no batch scaling)"
    return (scaled_lr(recipe.lr, recipe.batch_size, batch),
            f"recipe lr {recipe.lr:g} at batch {recipe.batch_size} x {batch}/{recipe.batch_size}")


def _steps_per_epoch(examples: int, batch: int, options: RunOptions) -> tuple[int, int, Optional[str]]:
    """(steps per epoch, steps per execution, a note): an epoch is a whole number of executions (Keras runs whole
    ones); more steps per execution than an epoch has would stretch the "epoch" to several passes, so they are
    clamped to the epoch, with a note."""
    per_execution = options.steps_per_execution or DEFAULTS["steps_per_execution"]
    per_epoch = options.steps_per_epoch or max(1, examples // batch)  # 0 only for an evaluation's run
    note = None
    if per_execution > per_epoch:
        note = (f"--steps-per-execution {per_execution} is more than an epoch's {per_epoch} steps: "
                f"{per_epoch} used")
        per_execution = per_epoch
    if per_epoch % per_execution:
        per_epoch = -(-per_epoch // per_execution) * per_execution
    return per_epoch, per_execution, note


def resolve_run(name: str | Spec, options: Optional[RunOptions] = None, evaluating: bool = False) -> "Run":
    """The run of registry model `name` (or its spec) with `options` (None: the defaults), resolved once.
    `evaluating`: the run only describes the pipeline an evaluation shares (it takes no training step, so its batch
    need not fit in the training images: a small image folder is evaluated at the default batch size)."""
    options = options or RunOptions()
    spec = name if isinstance(name, Spec) else registry_module.get_spec(name)
    from . import finetune

    dataset = options.dataset or spec.dataset
    if options.data_dir:  # a folder imported there (zoo data prepare --from PATH --name NAME) is found by name
        from ..data.folder import look_in

        look_in(options.data_dir)
    recipe_name = options.recipe or (finetune.FINETUNE_RECIPE if options.weights else spec.recipe_for(dataset))
    rec = registry_module.registry().recipe(recipe_name)
    info = catalogue.dataset_info(dataset, holdout=rec.validation)
    folder = info.entry.folder  # an image folder: recorded by path, named by its name (run ids, tables)
    if options.weights:
        finetune.resolve_weights(spec, options.weights)  # a bad tag or file: one line now, before any TF
    from .inputs import require_data  # the input path this backend uses (tf.data: TFDS; numpy: raw files)

    require_data(dataset, options.data_dir)  # now, not after the model is built

    size, size_note = resolve_image_size(spec, rec, info.image_shape, options.image_size)
    # Every run validates each epoch on training images held out (the recipe's count, else the dataset's: the
    # paper's split, else 10%, stratified) and trains on the rest, or on a validation split of the dataset's own
    # that is not the one it reports on; the test split is touched once, at the end.
    validate = _validates(info)
    train_split = "train" if validate else "train_full"
    examples = info.num_examples[train_split]
    batch = options.batch_size or rec.batch_size
    if batch > examples and not evaluating:
        raise TrainError(f"batch size {batch} is larger than the {examples} training images of {dataset}")
    per_epoch, per_execution, execution_note = _steps_per_epoch(examples, batch, options)
    run_epochs, total = _length(rec, per_epoch, options.epochs, options.max_steps)
    finetune.check_options(options, run_epochs, rec)
    peak, rule = _peak_lr(rec, batch, options.lr)
    from . import distill

    distill_note = None if evaluating else distill.check(spec, rec, info.name, info.class_names, size)

    config = RunConfig(
        model=spec.name, dataset=info.name, recipe=recipe_name, recipe_details=rec.model_dump(exclude_none=True),
        image_size=size, classes=finetune.head_classes(options, info.num_classes, info.name),
        train_split=train_split,
        validation_split="validation" if validate else None, holdout=info.validation_holdout if validate else None,
        eval_split=info.eval_split, train_examples=examples, batch_size=batch, lr=peak, lr_rule=rule,
        weight_decay=rec.weight_decay, weight_decay_mode=_decay_mode(rec), epochs=run_epochs,
        steps_per_epoch=per_epoch, total_steps=total,
        seed=DEFAULTS["seed"] if options.seed is None else options.seed,
        init=options.init or rec.init or DEFAULTS["init"], loss=_loss(spec),
        precision=options.precision or DEFAULTS["precision"],
        xla=DEFAULTS["xla"] if options.xla is None else options.xla, steps_per_execution=per_execution,
        strategy=options.strategy or DEFAULTS["strategy"], data_dir=options.data_dir,
        notes=[note for note in (size_note, execution_note, _no_validation_note(rec, info),
                                 info.entry.obtain.note if folder else None,
                                 finetune.recipe_head_note(options, rec), distill_note) if note],
        dataset_path=folder, class_names=info.class_names if folder else None,
        preprocessing=_folder_preprocessing(spec, info.name, size) if folder else None, weights=options.weights,
        freeze_backbone=bool(options.freeze_backbone), head_epochs=finetune.head_epochs_of(options, rec)[0])
    return Run(config, spec, rec, info)


def _folder_preprocessing(spec: Spec, dataset: str, size: int) -> dict:
    """The preprocessing the run's evaluation pipeline applies to an image folder (zoo.pretrained's, which
    tests/test_pretrained.py checks against the pipeline), recorded in config.json."""
    from ..pretrained import pipeline_preprocessing

    return pipeline_preprocessing(spec, dataset, size).model_dump(exclude_none=True)


def _validates(info: DatasetInfo) -> bool:
    """Whether runs on this dataset (after the recipe's holdout) have a validation split that is not the one the
    test evaluation reports on."""
    return bool(info.validation_holdout) or ("validation" in info.num_examples and info.eval_split != "validation")


def _no_validation_note(recipe: Recipe, info: DatasetInfo) -> Optional[str]:
    """Why a run does not validate, when it does not."""
    if _validates(info):
        return None
    if recipe.validation == 0:
        return (f"recipe {recipe.name!r} holds out no validation images (validation: 0): all training images "
                f"train, no per-epoch validation, no best checkpoint")
    return (f"no per-epoch validation: {info.name}'s only held-out split is its {info.eval_split} split, which the "
            f"test evaluation reports once at the end")


def recipe_steps(config: RunConfig) -> int:
    """The steps the run's recipe takes at the run's batch size over the whole training split: a run that did
    fewer (--epochs, --max-steps or --steps-per-epoch cut it short) is partial."""
    natural, _, _ = _steps_per_epoch(config.train_examples, config.batch_size,
                                     RunOptions(steps_per_execution=config.steps_per_execution))
    return _length(recipe_of(config), natural, None, None)[1]


def resolve(name: str | Spec, dataset: Optional[str] = None, recipe: Optional[str] = None,
            **options) -> RunConfig:
    """The configuration alone: `resolve_run(name, RunOptions.of(dataset=..., recipe=..., **options)).config`."""
    return resolve_run(name, RunOptions.of(dataset=dataset, recipe=recipe, **options)).config


def recipe_of(config: RunConfig) -> Recipe:
    """The recipe as the run resolved it (config.json), so a resumed run keeps it even if the registry moved on."""
    return Recipe.model_validate({"name": config.recipe, **config.recipe_details})


@dataclass(frozen=True)
class Run:
    """One run, resolved: its configuration and the spec, recipe and dataset facts it came from. The harness
    (setup, inputs, evaluate, the run itself) takes this instead of looking them up again by name."""

    config: RunConfig
    spec: Spec
    recipe: Recipe
    data: DatasetInfo  # the dataset's facts, split sizes after the recipe's holdout

    @property
    def channels(self) -> int:
        """The pipeline serves the model's own channel count (grey images copied to RGB for RGB nets)."""
        return self.spec.input.channels


def run_of(config: RunConfig, spec: Optional[Spec] = None) -> Run:
    """The Run of a saved configuration (a resumed run, the run folder of a weights file): the recipe as that run
    resolved it, the spec from the registry (or `spec`, already looked up)."""
    spec = spec or registry_module.get_spec(config.model)
    recipe = recipe_of(config)
    from ..data import folder

    folder.look_in(config.data_dir)  # an imported folder: found in the run's data dir
    if config.dataset_path:  # an image folder: its name stands for its path again in this process
        folder.register(config.dataset, config.dataset_path)
    return Run(config, spec, recipe, catalogue.dataset_info(config.dataset, holdout=recipe.validation))


def differs(saved, asked) -> bool:
    if isinstance(asked, float):
        return not math.isclose(asked, saved, rel_tol=1e-9)
    return asked != saved


def overrides_conflict(saved: RunConfig, options: RunOptions, allowed: tuple[str, ...] = ()) -> Optional[str]:
    """On --resume: the first explicitly given option that identifies a run (RunOptions' MATCH rule, `allowed`
    aside) and differs from the saved run's, as 'name: a there, b asked'."""
    for name in RunOptions.on_resume(MATCH):
        asked = getattr(options, name)
        there = getattr(saved, RunOptions.config_field(name))
        if name == "dataset" and asked is not None and saved.dataset_path:  # a folder: its path or its name
            asked = saved.dataset if asked == saved.dataset else catalogue.get_dataset(asked).name
        if name not in allowed and asked is not None and differs(there, asked):
            shown = (f"{there:g} there, {asked:g}" if isinstance(asked, float) else f"{there!r} there, {asked!r}")
            return f"{name} {shown} asked"
    return None
