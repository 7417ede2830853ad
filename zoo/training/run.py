"""`zoo.train`: one training run, from the registry's recipe to a results record.

    result = zoo.train("lenet5")                                  # embedded Fashion-MNIST sample, ~1 min on CPU
    result = zoo.train("resnet20", dataset="fashion_mnist", output="runs/r20")
    result = zoo.train("resnet20", output="runs/r20", resume=True)  # after an interruption

The run: the options (options.py: RunOptions, checked) -> the resolved run (config.py: a `Run` holding the config,
spec, recipe and dataset facts, looked up once, no TF) -> open the output folder (rundir.py: a different run there, or
--resume without a checkpoint, is a one-line error) -> strategy, model, optimizer under the dtype policy ->
restore the checkpoint when resuming -> fit (callbacks.py: step limit, non-finite loss, history, checkpoint,
progress) -> test evaluation of the aux-free model -> final weights, metrics.json, results record (chief only).
"""

from __future__ import annotations

import datetime
import importlib.util
import math
import os
import secrets
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .. import results as results_store
from ..formatting import duration
from ..registry import Spec, get_spec
from ..results import RunRecord
from . import config as config_module
from .callbacks import EpochRecorder, Progress, RunState, StepMonitor
from .config import Run, RunConfig, TrainError
from .options import REPLACE, RunOptions
from .rundir import RunDir, default_run_path, latest_run_path

__all__ = ["train", "RunResult", "DivergedError", "published", "summary_lines", "epoch_seed"]


class DivergedError(TrainError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3


@dataclass
class RunResult:
    """What a finished run reports; `record` is the results-store record, `model` the trained Keras model, `run`
    the resolved run (its config, spec, recipe and dataset facts)."""

    run_id: str
    model_name: str
    dataset: str
    recipe: str
    output_dir: str
    test_accuracy: float
    test_top5: Optional[float]
    test_loss: float
    best_val_accuracy: Optional[float]
    epochs: float
    steps: int
    wall_time_s: float
    train_images_per_s: Optional[float]
    history: list = field(default_factory=list, repr=False)
    record: dict = field(default_factory=dict, repr=False)
    model: Any = field(default=None, repr=False)
    run: Optional[Run] = field(default=None, repr=False)

    @classmethod
    def of(cls, record: RunRecord, *, output_dir: str, wall_time_s: float, history: list, model,
           run: Optional[Run] = None) -> "RunResult":
        """The result of a run whose record is `record` (the report's numbers are the record's; the wall time
        unrounded)."""
        return cls(run_id=record.run_id, model_name=record.model, dataset=record.dataset, recipe=record.recipe,
                   output_dir=output_dir, test_accuracy=record.test_accuracy, test_top5=record.test_top5,
                   test_loss=record.test_loss, best_val_accuracy=record.best_val_accuracy, epochs=record.epochs,
                   steps=record.steps, wall_time_s=wall_time_s, train_images_per_s=record.train_images_per_s,
                   history=list(history), record=record.to_dict(), model=model, run=run)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of the random streams (data order, augmentation, dropout) of a process that starts at `epoch`: a
    fresh run uses `seed` itself; a resumed one a seed of its own, so it does not replay epoch 0's batches."""
    return seed if epoch == 0 else (seed * 1_000_003 + 7919 * epoch) % (2**31 - 1)


def published(model: str | Spec, dataset: str) -> list[dict]:
    """The registry's published numbers for model (a spec, or its name) on dataset, each with its accuracy in
    percent."""
    spec = model if isinstance(model, Spec) else get_spec(model)
    out = []
    for r in spec.published(dataset):
        accuracy = 100.0 - r.value if r.metric.endswith("error") else r.value
        out.append({"metric": r.metric, "value": r.value, "accuracy": accuracy, "split": r.split,
                    "protocol": r.protocol, "source": r.source})
    return out


# ---------------------------------------------------------------------------------------------------------------
# Opening the run: the resolved run and its output folder


def _resume(name: str, options: RunOptions, output) -> tuple[Run, RunDir, dict]:
    """The interrupted run in `output` (or the newest under runs/), its saved config with the REPLACE options
    given now on top; a different run there (model, or an identifying option) is a one-line error."""
    spec = get_spec(name)
    dataset = options.dataset or spec.dataset
    path = Path(output) if output else latest_run_path(spec.name, dataset)
    if path is None:
        raise TrainError(f"--resume: no interrupted run of {spec.name} on {dataset} under runs/; pass --output DIR")
    run_dir = RunDir(path)
    saved = run_dir.check_resumable()
    config = RunConfig.from_dict(saved)
    conflict = (f"model {config.model!r} there, {spec.name!r} asked" if config.model != spec.name
                else config_module.overrides_conflict(config, options))
    if conflict:
        raise TrainError(f"{path} holds a different run ({conflict}); choose another --output")
    for key in RunOptions.on_resume(REPLACE):  # may change between interruption and resumption
        if getattr(options, key) is not None:
            setattr(config, key, getattr(options, key))
    meta = {"run_id": saved["run_id"], "started": saved["started"]}
    return config_module.run_of(config, spec), run_dir, meta


def _start(name: str, options: RunOptions, output) -> tuple[Run, RunDir, dict]:
    run = config_module.resolve_run(name, options)
    config = run.config
    path = Path(output) if output else default_run_path(config.model, config.dataset)
    run_dir = RunDir(path)
    run_dir.check_fresh_start(config)
    now = datetime.datetime.now().astimezone()
    meta = {"run_id": f"{config.model}-{config.dataset}-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(2)}",
            "started": now.isoformat(timespec="seconds")}
    return run, run_dir, meta


# ---------------------------------------------------------------------------------------------------------------
# The run


def train(name: str, options: Optional[RunOptions] = None, *, output=None, resume: bool = False, results=None,
          record: bool = True, verbose: bool = True, echo: Optional[Callable[[str], None]] = None,
          **given) -> RunResult:
    """Train registry model `name` with its recipe on its dataset; `options` (a RunOptions) and/or keywords
    (any RunOptions field: dataset=, recipe=, epochs=, batch_size=, lr=, ...; None: the recipe's / the measured
    default) override them. Returns a RunResult; writes the run folder (`output`, default
    runs/<model>-<dataset>-<time>) and, with `record`, a record in the results store (`results`, else
    $ZOO_RESULTS_DIR, else ~/.zoo/results). `resume`: continue the interrupted run in `output`."""
    process_start = time.perf_counter()
    echo = echo or (lambda line: print(line, flush=True))
    say = echo if verbose else (lambda line: None)
    options = RunOptions.of(options, **given)
    run, run_dir, meta = (_resume if resume else _start)(name, options, output)
    config = run.config

    import keras
    from . import devices, inputs

    strategy_obj = devices.make_strategy(config.strategy)
    replicas = strategy_obj.num_replicas_in_sync
    config_module.check_replicas(config.batch_size, replicas)
    chief = devices.is_chief(strategy_obj)
    if config.xla is None:
        config.xla = devices.default_xla()
    state, checkpoint_weights = run_dir.load_checkpoint() if resume else (RunState(), None)
    elapsed_before = state.elapsed_seconds

    model = _build(run, strategy_obj, checkpoint_weights)
    data_seed = epoch_seed(config.seed, state.epoch)
    keras.utils.set_random_seed(data_seed)  # dropout and other in-model randomness from here on
    train_data = inputs.train_stream(run, data_seed)
    val_data = inputs.eval_stream(run, config.validation_split) if config.validation_split else None
    if chief:
        run_dir.path.mkdir(parents=True, exist_ok=True)
        results_store.write_json_atomic(run_dir.config_path, {**meta, **config.to_dict(),
                                                              "output_dir": str(run_dir.path.resolve())})
    _announce(say, config, meta, run_dir, state, replicas, resume)

    monitor = _fit(model, run, run_dir, state, train_data, val_data, verbose, echo, say, chief)
    if monitor.diverged:
        raise _diverged(monitor.diverged, state, run_dir)

    final, test = _test(model, run, strategy_obj)
    wall = elapsed_before + (time.perf_counter() - process_start)
    run_record = _record(config, meta, run_dir, state, test, wall, final, strategy_obj, replicas)
    if chief:
        _write_final(run_dir, final, state, run_record, results if record else False)
    result = RunResult.of(run_record, output_dir=str(run_dir.path), wall_time_s=wall, history=state.history,
                          model=final, run=run)
    if verbose:
        for line in summary_lines(result):
            echo(line)
    return result


def _fit(model, run: Run, run_dir: RunDir, state: RunState, train_data, val_data, verbose: bool, echo, say,
         chief: bool) -> StepMonitor:
    """model.fit from the state's epoch to the run's last step; the monitor says how it ended."""
    config = run.config
    total_epochs = math.ceil(config.total_steps / config.steps_per_epoch)
    monitor = StepMonitor(state, config.steps_per_epoch, config.total_steps, config.batch_size)
    save = (lambda: run_dir.save_checkpoint(model, state)) if chief else None
    callbacks = [monitor, EpochRecorder(state, monitor, save)]
    if verbose:
        callbacks.append(Progress(state, monitor, total_epochs, echo))
    if chief:
        callbacks += _tensorboard(run_dir, say)
    if state.step < config.total_steps:
        model.fit(train_data, epochs=total_epochs, initial_epoch=state.epoch, steps_per_epoch=config.steps_per_epoch,
                  validation_data=val_data, callbacks=callbacks, verbose=0,
                  shuffle=False)  # the stream is shuffled already
    return monitor


def _diverged(where: dict, state: RunState, run_dir: RunDir) -> DivergedError:
    kept = (f"the last good checkpoint (epoch {state.epoch}) is kept in {run_dir.checkpoint_dir}"
            if state.epoch else "no epoch finished, so there is no checkpoint")
    return DivergedError(f"training diverged: loss {where['loss']} at epoch {where['epoch']}, step {where['step']}; "
                         f"{kept}; lower the learning rate (--lr)")


def _build(run: Run, strategy_obj, checkpoint_weights: Optional[Path]):
    """The compiled training model under the run's dtype policy and strategy; from the checkpoint (weights and
    optimizer state) when resuming."""
    import keras

    from . import devices, setup

    config, rec = run.config, run.recipe
    keras.utils.set_random_seed(config.seed)  # weight initialisation
    with devices.dtype_policy(config.precision), strategy_obj.scope():
        model = setup.build_model(run)
        optimizer = setup.make_optimizer(config, rec, model)
        setup.compile_model(model, config, rec, optimizer)
        devices.patch_multi_worker_build(model, strategy_obj)
        if checkpoint_weights is not None:
            optimizer.build(model.trainable_variables)  # so the file's optimizer variables have a place to go
            model.load_weights(checkpoint_weights)
    return model


def _tensorboard(run_dir: RunDir, say) -> list:
    import keras

    if not importlib.util.find_spec("tensorboard"):  # tf.summary needs the tensorboard package
        say("  note: the tensorboard package is not installed: no tensorboard/ logs")
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(run_dir.tensorboard), write_graph=False, update_freq="epoch",
                                        profile_batch=0)]


def _test(model, run: Run, strategy_obj):
    """The model as it is saved and evaluated (GoogLeNet without its auxiliary heads) and its test scores."""
    from . import devices, inputs, setup

    config, rec = run.config, run.recipe
    with strategy_obj.scope():
        final = setup.inference_model(model, run)
        if final is not model:
            setup.compile_model(final, config, rec, training=False)
            devices.patch_multi_worker_build(final, strategy_obj)
    test = final.evaluate(inputs.eval_stream(run, config.eval_split), verbose=0, return_dict=True)
    return final, test


def _write_final(run_dir: RunDir, final, state: RunState, record: RunRecord, store) -> None:
    """Final weights, history and metrics.json (last: it marks the run finished), the results record (unless
    `store` is False), then the checkpoint's weights go."""
    partial = run_dir.path / f"partial-{os.getpid()}.weights.h5"
    final.save_weights(partial)
    os.replace(partial, run_dir.weights_path)
    run_dir.write_history(state.history)
    results_store.write_json_atomic(run_dir.metrics_path, record.to_dict())
    if store is not False:
        results_store.save(record, store)
    run_dir.remove_checkpoint_weights()


def _announce(say, config: RunConfig, meta: dict, run_dir: RunDir, state: RunState, replicas: int, resume: bool):
    what = "resuming" if resume else "training"
    say(f"{what} {config.model} on {config.dataset} ({config.train_split}, {config.train_examples:,} images at "
        f"{config.image_size}x{config.image_size}) with recipe {config.recipe}")
    say(f"  {config.epochs:g} epochs = {config.total_steps:,} steps of batch {config.batch_size}"
        f"{f' over {replicas} replicas' if replicas > 1 else ''}; lr {config.lr:.4g} ({config.lr_rule}); "
        f"weight decay {config.weight_decay:g} ({config.weight_decay_mode}); {config.precision}"
        f"{', XLA' if config.xla else ''}; seed {config.seed}")
    for note in config.notes:
        say(f"  note: {note}")
    if resume:
        say(f"  from the checkpoint of epoch {state.epoch} (step {state.step:,})")
    say(f"  output: {run_dir.path}  (run {meta['run_id']})")


def _record(config: RunConfig, meta: dict, run_dir: RunDir, state: RunState, test: dict, wall: float, model,
            strategy_obj, replicas: int) -> RunRecord:
    """The run's record: built here only, from the config, the state, the test scores and the environment."""
    import keras
    import tensorflow as tf

    import zoo
    from . import devices

    return RunRecord(
        run_id=meta["run_id"], model=config.model, dataset=config.dataset, recipe=config.recipe,
        epochs=round(state.step / config.steps_per_epoch, 4), steps=state.step,
        batch_size=config.batch_size, lr=config.lr, precision=config.precision, xla=config.xla,
        strategy=devices.strategy_name(strategy_obj), replicas=replicas,
        device=devices.device_description(strategy_obj), seed=config.seed,
        test_accuracy=float(test["accuracy"]),
        test_top5=float(test["top5"]) if "top5" in test else None,
        test_loss=float(test["xent"]), best_val_accuracy=state.best_val_accuracy,
        wall_time_s=round(wall, 2),
        train_images_per_s=(round(state.images_seen / state.train_seconds, 1) if state.train_seconds else None),
        params=zoo.count_params(model), macs=zoo.count_macs(model), image_size=config.image_size,
        started=meta["started"],
        finished=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        zoo_version=zoo.__version__, tf_version=tf.__version__, keras_version=keras.__version__,
        hostname=socket.gethostname(), output_dir=str(run_dir.path.resolve()), status="finished",
        eval_split=config.eval_split, train_split=config.train_split)


def summary_lines(result: RunResult) -> list[str]:
    """The one-screen summary: test accuracy beside the paper's number for the same model and dataset."""
    r = result.record
    lines = ["", f"{result.model_name} on {result.dataset} ({result.recipe}): finished",
             f"  test accuracy   {100 * result.test_accuracy:.2f}%"
             + (f"   top-5 {100 * result.test_top5:.2f}%" if result.test_top5 is not None else "")
             + f"   loss {result.test_loss:.4f}   ({r.get('eval_split', 'test')} split)"]
    if result.best_val_accuracy is not None:
        lines.append(f"  best val acc    {100 * result.best_val_accuracy:.2f}%")
    papers = published(result.run.spec if result.run else result.model_name, result.dataset)
    if papers:
        for p in papers:
            kind = "top-5" if "top5" in p["metric"] else "top-1"
            lines.append(f"  published       {p['accuracy']:.2f}% {kind} ({p['metric']} {p['value']:g}%, "
                         f"{p['protocol'] or p['split']}; {p['source']})")
    else:
        lines.append(f"  published       none in the registry for {result.model_name} on {result.dataset}")
    rate = f"{result.train_images_per_s:,.0f} images/s" if result.train_images_per_s else "n/a"
    lines += [f"  wall time       {duration(result.wall_time_s)}   training {rate}   "
              f"{result.epochs:g} epochs, {result.steps:,} steps",
              f"  device          {r.get('device')}  ({r.get('precision')}{', XLA' if r.get('xla') else ''})",
              f"  output          {result.output_dir}"]
    return lines
