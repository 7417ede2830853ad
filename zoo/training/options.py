"""The training options, declared once: `RunOptions`, one field per option with its type, constraint, help text
and what a resumed run does with it.

From this one declaration come the click options of `zoo train` (`click_options`), the validation of
`zoo.train(name, **options)` (`RunOptions.of`), what `config.resolve` reads, and the resume rule
(`config.overrides_conflict`: an option that identifies the run must match the saved one; a placement option
replaces it). Every option defaults to None: not given, the registry's recipe (or the measured default) decides.

Light on purpose (pydantic and click only, no TensorFlow): the CLI builds `zoo train` from it at start-up.
"""

from __future__ import annotations

import os
from typing import Any, Literal, Optional, Union, get_args, get_origin

from pydantic import Field, ValidationError, field_validator

from ..archs import InitName
from ..choices import Precision, Strategy, values
from ..errors import ZooError
from ..schema import Strict

__all__ = ["RunOptions", "click_options", "TrainError", "OptionError", "MATCH", "REPLACE", "KEEP"]

# What `--resume` does with an option given again: MATCH: it identifies the run, so it must equal the saved value
# (else the folder holds a different run); REPLACE: speed or placement, it may change between an interruption and
# the resumption; KEEP: the saved value stays (an epoch is a whole number of executions of the saved run's size).
MATCH, REPLACE, KEEP = "match", "replace", "keep"


def _option(help: str, on_resume: str, *, config: Optional[str] = None, path: bool = False, **constraints):
    """A RunOptions field: default None, `help` for click, the resume rule, and `config`: the RunConfig field a
    resumed run's value is compared with (default: the option's own name)."""
    extra = {"on_resume": on_resume, "config": config, "path": path}
    return Field(None, description=help, json_schema_extra=extra, **constraints)


class TrainError(ZooError, ValueError):
    """A training or evaluation request that cannot run as asked."""


class OptionError(TrainError):
    """A bad option value; the message is one line naming the option (`--batch-size must be positive, got 0`)."""


class RunOptions(Strict):
    """What a caller may set for one training run (CLI flags, `zoo.train` keywords); None: not given."""

    dataset: Optional[str] = _option("Dataset (default: the model's, from the registry).", MATCH)
    recipe: Optional[str] = _option(
        "Training recipe (default: the registry's recipe for the model and dataset).", MATCH)
    epochs: Optional[float] = _option("Epochs (default: the recipe's).", MATCH, gt=0, allow_inf_nan=False)
    max_steps: Optional[int] = _option("Stop after this many optimizer steps (overrides --epochs).", MATCH,
                                       config="total_steps", gt=0)
    steps_per_epoch: Optional[int] = _option(
        "Batches per epoch (default: one pass over the training images).", MATCH, gt=0)
    batch_size: Optional[int] = _option(
        "Global batch size (default: the recipe's; its lr scales with it).", MATCH, gt=0)
    lr: Optional[float] = _option(
        "Peak learning rate, used as given (default: the recipe's, batch-scaled; may change on --resume after a "
        "divergence).", MATCH, gt=0, allow_inf_nan=False)
    seed: Optional[int] = _option(
        "Random seed for initialisation, data order and augmentation (default 0).", MATCH, ge=0, lt=2**31)
    init: Optional[InitName] = _option(
        "Weight initialisation: paper (the default: each paper's, listed in docs/training.md) or keras (Keras' "
        "initialisers).", MATCH)
    precision: Optional[Precision] = _option("Keras dtype policy (default float32).", MATCH)
    xla: Optional[bool] = _option(
        "Compile the train step with XLA (default: on with a GPU, off on a CPU).", REPLACE)
    steps_per_execution: Optional[int] = _option("Train steps per tf.function call (default 1).", KEEP, gt=0)
    strategy: Optional[Strategy] = _option(
        "tf.distribute strategy; auto: multi-worker from TF_CONFIG, mirrored with several GPUs.", REPLACE)
    image_size: Optional[int] = _option(
        "Input side to train at (default: the recipe's or the model's).", MATCH, gt=0)
    data_dir: Optional[str] = _option("Prepared datasets (default $ZOO_DATA_DIR).", REPLACE, path=True)
    # Fine-tuning (zoo/training/finetune.py)
    weights: Optional[str] = _option(
        "Start from these weights: a tag of the model's named weights (`zoo list --weights`), imagenet, or a "
        ".weights.h5 / .keras file; the head is replaced where the class count differs (recipe: finetune).", MATCH)
    freeze_backbone: Optional[bool] = _option(
        "With --weights: train the head only (the backbone's layers frozen).", MATCH)
    head_epochs: Optional[float] = _option(
        "With --weights: train the head alone for this many epochs, then every layer (two phases).", MATCH, gt=0,
        allow_inf_nan=False)
    classes: Optional[int] = _option("Classes of the model's head (default: the dataset's).", MATCH, gt=0)

    @field_validator("data_dir", mode="before")
    @classmethod
    def _path_as_text(cls, value):
        return os.fspath(value) if isinstance(value, os.PathLike) else value

    @field_validator("dataset")
    @classmethod
    def _folder_by_its_name(cls, value):
        """An image folder given by its path stands for it by its name (registered for this process): the name
        its runs are called by (runs/<model>-<name>-*, what --resume without --output looks up), whichever path
        spelling (./pics, ~/pics, /abs/pics) is given. A folder that cannot be a dataset stays a path: resolving
        the run says what is wrong with it."""
        from ..data import folder
        from ..data.catalogue import load_catalogue

        if value is None or value in load_catalogue() or not folder.looks_like_path(value) or \
                not os.path.isdir(os.path.expanduser(value)):
            return value  # a catalogue name wins over a folder of the same name in the working directory
        try:
            return folder.folder_entry(value).name
        except folder.FolderError:
            return value

    @field_validator("weights", mode="before")
    @classmethod
    def _weights_file_absolute(cls, value):
        """A weights file or run folder as an absolute path (config.json then names it wherever the run is
        resumed); a tag as given."""
        value = os.fspath(value) if isinstance(value, os.PathLike) else value
        run_folder = isinstance(value, str) and os.path.isfile(os.path.join(value, "config.json"))
        return os.path.abspath(value) if isinstance(value, str) and (os.path.isfile(value) or run_folder) else value

    @classmethod
    def of(cls, options: Optional["RunOptions"] = None, **given: Any) -> "RunOptions":
        """`options` with `given` keywords on top (None values count as not given), validated: a bad value is an
        OptionError naming the option."""
        merged = {**(options.model_dump(exclude_none=True) if options else {}),
                  **{k: v for k, v in given.items() if v is not None}}
        try:
            return cls.model_validate(merged)
        except ValidationError as e:
            raise OptionError(_message(e)) from None

    def given(self) -> dict[str, Any]:
        """The options set explicitly."""
        return self.model_dump(exclude_none=True)

    @classmethod
    def on_resume(cls, rule: str) -> list[str]:
        """The options whose resume rule is `rule` (MATCH, REPLACE or KEEP), in declaration order."""
        return [name for name, field in cls.model_fields.items() if field.json_schema_extra["on_resume"] == rule]

    @classmethod
    def config_field(cls, name: str) -> str:
        """The RunConfig field that holds the resolved value of option `name`."""
        return cls.model_fields[name].json_schema_extra["config"] or name


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _message(err: ValidationError) -> str:
    first = err.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else "(options)"
    value = first.get("input")
    if first["type"] == "extra_forbidden":
        return f"unknown training option {name!r}"
    if first["type"] == "greater_than":
        return f"{flag(name)} must be positive, got {value}"
    if first["type"] == "finite_number":
        return f"{flag(name)} must be a finite number, got {value}"
    if first["type"] == "greater_than_equal":
        return f"{flag(name)} must be {first['ctx']['ge']} or more, got {value}"
    if first["type"] == "less_than":
        return f"{flag(name)} must be below {first['ctx']['lt']}, got {value}"
    if first["type"] == "literal_error":
        choices = values(_value_type(RunOptions.model_fields[name].annotation))
        return f"{name} must be one of {', '.join(choices)}, got {value!r}"
    return f"{flag(name)}: {first['msg']}, got {value!r}"


def _value_type(annotation):
    """X of Optional[X]."""
    if get_origin(annotation) is Union:
        return next(a for a in get_args(annotation) if a is not type(None))
    return annotation


# ---------------------------------------------------------------------------------------------------------------
# The click options of `zoo train`, generated from the fields


def _click_option(name: str, field):
    import click

    kind = _value_type(field.annotation)
    help = field.description
    if kind is bool:  # tri-state: --xla, --no-xla, or neither (None: the automatic choice)
        return click.option(f"{flag(name)}/--no-{flag(name)[2:]}", name, default=None, help=help)
    if get_origin(kind) is Literal:
        kind = click.Choice(values(kind))
    elif field.json_schema_extra["path"]:
        kind = click.Path(file_okay=False)
    return click.option(flag(name), name, type=kind, default=None, help=help)


def click_options(func):
    """Decorate a click command with one option per RunOptions field, listed in declaration order."""
    for name, field in reversed(list(RunOptions.model_fields.items())):
        func = _click_option(name, field)(func)
    return func
