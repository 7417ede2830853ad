"""`zoo.evaluate`: top-1/top-5 accuracy and loss of saved weights under the registry's evaluation protocol.

The input size and recipe come from the run folder the weights sit in (its config.json) when there is one, so
`zoo eval lenet5 --weights runs/.../model.weights.h5` measures exactly what the run reported; otherwise from the
registry, as `zoo train` would resolve them.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ..registry import get_spec
from . import config as config_module
from .config import Run, RunConfig, TrainError
from ..io import quiet_stderr
from .options import OptionError, RunOptions

__all__ = ["evaluate", "EvalResult"]


@dataclass
class EvalResult:
    model: str
    dataset: str
    split: str
    weights: str
    top1: float
    top5: Optional[float]
    loss: float
    examples: int
    image_size: int
    seconds: float
    images_per_s: float


def _run_config(weights: Path) -> Optional[dict]:
    path = weights.parent / "config.json"
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, json.JSONDecodeError):
        return None


def _run(name: str, weights: Path, dataset, recipe, batch_size, data_dir, image_size, precision, xla) -> Run:
    """The run the weights came from (their folder's config.json, with the placement options given now), when it
    is a run of this model on this dataset; else the run `zoo train` would resolve."""
    spec = get_spec(name)
    saved = _run_config(weights)
    if not (saved and saved.get("model") == spec.name and dataset in (None, saved.get("dataset"))):
        options = RunOptions.of(dataset=dataset, recipe=recipe, image_size=image_size, batch_size=batch_size,
                                data_dir=data_dir, precision=precision, xla=xla, max_steps=1)
        return config_module.resolve_run(spec, options)
    config = RunConfig.from_dict(saved)
    if image_size and image_size != config.image_size:
        config.image_size = image_size
    if data_dir:
        config.data_dir = str(data_dir)
    if precision:
        config.precision = precision
    if xla is not None:
        config.xla = xla
    return config_module.run_of(config, spec)


def _check_counts(**counts) -> None:
    """`zoo eval`'s counts: None (not given) or a positive whole number; 0 or -1 is a mistake, not 'all'."""
    for name, value in counts.items():
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionError(f"--{name.replace('_', '-')} must be a positive whole number, got {value!r}")


def evaluate(name: str, weights, dataset: Optional[str] = None, split: Optional[str] = None,
             batch_size: Optional[int] = None, data_dir=None, image_size: Optional[int] = None,
             recipe: Optional[str] = None, precision: Optional[str] = None, xla: Optional[bool] = None,
             limit: Optional[int] = None) -> EvalResult:
    """Evaluate registry model `name` with `weights` (.weights.h5 or .keras) on `split` (default: the dataset's
    evaluation split, e.g. test) of `dataset` (default: the run's, else the model's). `limit`: only the first N
    images (a quick check)."""
    _check_counts(batch_size=batch_size, image_size=image_size, limit=limit)
    weights = Path(weights)
    if not weights.is_file():
        raise TrainError(f"weights file not found: {weights}")
    run = _run(name, weights, dataset, recipe, batch_size, data_dir, image_size, precision, xla)
    config = run.config
    split = split or config.eval_split
    examples = run.data.num_examples.get(split.split("[")[0])
    if limit:
        split, examples = f"{split}[:{limit}]", min(limit, examples or limit)

    from . import devices, inputs, setup

    if config.xla is None:
        with quiet_stderr():  # the first device query prints CUDA's 'failed call to cuInit' on CPU-only machines
            config.xla = devices.default_xla()
    with devices.dtype_policy(config.precision):
        model = setup.build_model(run, for_training=False)
        from ..models.common import load_weights

        load_weights(model, weights)
        setup.compile_model(model, config, run.recipe, training=False)
    data = inputs.eval_stream(run, split, batch_size=batch_size or config.batch_size)
    start = time.perf_counter()
    result = model.evaluate(data, verbose=0, return_dict=True)
    seconds = time.perf_counter() - start
    return EvalResult(model=run.spec.name, dataset=config.dataset, split=split, weights=str(weights),
                      top1=float(result["accuracy"]), top5=float(result["top5"]) if "top5" in result else None,
                      loss=float(result["xent"]), examples=int(examples or 0), image_size=config.image_size,
                      seconds=seconds, images_per_s=(examples or 0) / seconds if seconds else 0.0)
