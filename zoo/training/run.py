"""`zoo.train`: one training run, from the registry's recipe to a results record.

    result = zoo.train("lenet5")                                  # embedded Fashion-MNIST sample, ~1 min on CPU
    result = zoo.train("resnet20", dataset="fashion_mnist", output="runs/r20")
    result = zoo.train("resnet20", output="runs/r20", resume=True)  # after an interruption

The run: the options (options.py: RunOptions, checked) -> the resolved run (config.py: a `Run` holding the config,
spec, recipe and dataset facts, looked up once, no TF) -> open and lock the output folder (rundir.py: another live
process there, a different run, a folder of other files, or --resume without a checkpoint, is a one-line error) ->
strategy, model, optimizer under the dtype policy -> restore the newest checkpoint that loads when resuming -> fit
(callbacks.py: step limit, non-finite loss, history, checkpoint, progress) -> test evaluation of the aux-free model
-> final weights, the results record, then metrics.json (chief only). SIGTERM/SIGINT: zoo.errors.Interrupted.
Every file goes through zoo.io (temporary file, fsync, rename; a full disk is one line naming the file).
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import math
import signal
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from .. import results as results_store
from ..data.folder import naming_damaged_images
from ..errors import Interrupted
from ..formatting import duration
from ..io import WriteError, quiet_stderr, write_json_atomic
from ..registry import Spec, get_spec
from ..results import RunRecord
from . import config as config_module
from .callbacks import EpochRecorder, Progress, RunState, StepMonitor, write_hparams, write_test_scalars
from .config import Run, RunConfig, TrainError
from .options import REPLACE, RunOptions
from .rundir import Checkpoint, RunDir, default_run_path, latest_run_path, new_run_id

__all__ = ["train", "RunResult", "DivergedError", "published", "summary_lines", "epoch_seed"]


class DivergedError(TrainError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""

    exit_code = 3


@dataclass
class RunResult:
    """What a finished run reports; `record` is the results-store record, `model` the trained Keras model with
    the weights the test split measured (the best validation epoch's, when the run validated: best.weights.h5;
    the last epoch's are model.weights.h5), `run` the resolved run (its config, spec, recipe and dataset facts)."""

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


@dataclass
class Opened:
    """The run about to train: resolved, its folder (locked once the process knows it is the chief) and its
    identity (run_id, start time); `finished` holds the record of a run found already finished by --resume."""

    run: Optional[Run]
    run_dir: RunDir
    meta: dict
    resume: bool
    force: bool = False
    finished: Optional[dict] = None
    lr_override: Optional[str] = None

    def check(self) -> None:
        """The folder checks, once this process holds the folder's lock (so no other run can slip in between)."""
        if self.resume:
            self.run_dir.check_resumable()
        elif self.run is not None:
            self.run_dir.check_fresh_start(self.run.config, self.force)


def _resume_path(name: str, options: RunOptions, output) -> Path:
    spec = get_spec(name)
    dataset = options.dataset or spec.dataset
    path = Path(output) if output else latest_run_path(spec.name, dataset)
    if path is None:
        raise TrainError(f"--resume: no interrupted run of {spec.name} on {dataset} under runs/; pass --output DIR")
    return path


def _resume(name: str, options: RunOptions, run_dir: RunDir) -> Opened:
    """The interrupted run in the folder, its saved config with the REPLACE options given now on top (and --lr,
    after a divergence); a different run there (model, or an identifying option) is a one-line error. A finished
    run comes back with its record (`finished`), so a record missing from the store can still be written."""
    spec = get_spec(name)
    saved = run_dir.check_resumable()
    config = RunConfig.from_dict(saved)
    diverged = run_dir.divergence()
    allowed = ("lr",) if diverged is not None else ()
    conflict = (f"model {config.model!r} there, {spec.name!r} asked" if config.model != spec.name
                else config_module.overrides_conflict(config, options, allowed))
    if conflict:
        hint = "; --lr may change on --resume only after the run diverged" if conflict.startswith("lr ") else ""
        raise TrainError(f"{run_dir.path} holds a different run ({conflict}){hint}; choose another --output")
    meta = {"run_id": saved["run_id"], "started": saved["started"]}
    if run_dir.finished():
        return Opened(None, run_dir, meta, resume=True, finished=run_dir.finished_record())
    for key in RunOptions.on_resume(REPLACE):  # may change between interruption and resumption
        if getattr(options, key) is not None:
            setattr(config, key, getattr(options, key))
    override = None
    if diverged is not None and options.lr is not None and config_module.differs(config.lr, options.lr):
        where = f" at epoch {diverged['epoch']}" if diverged.get("epoch") else ""
        override = f"--lr {options.lr:g} set on --resume after the divergence{where} (was {config.lr:g})"
        config.lr, config.lr_rule = options.lr, override
        config.notes = [*config.notes, override]
    return Opened(config_module.run_of(config, spec), run_dir, meta, resume=True, lr_override=override)


def _start(name: str, options: RunOptions, output, force: bool) -> Opened:
    run = config_module.resolve_run(name, options)
    config = run.config
    run_id = new_run_id(config.model, config.dataset)
    if output:
        run_dir = RunDir(output)
    else:
        while True:  # the id's random part makes a clash in the same second unlikely; the exclusive mkdir, impossible
            try:
                run_dir = RunDir(default_run_path(run_id))
                run_dir.created = True
                break
            except FileExistsError:
                run_id = new_run_id(config.model, config.dataset)
    meta = {"run_id": run_id, "started": datetime.datetime.now().astimezone().isoformat(timespec="seconds")}
    return Opened(run, run_dir, meta, resume=False, force=force)


def _open(name: str, options: RunOptions, output, resume: bool, force: bool) -> Opened:
    """Resolve the run and its folder. A single process (no TF_CONFIG cluster) takes the folder's lock at once,
    before any check; in a cluster only the chief writes, and it takes the lock once the strategy names it."""
    from .devices import cluster_size

    if resume and force:
        raise TrainError("--resume and --force exclude each other: --resume continues the run in the folder, "
                         "--force starts a new one in a folder that holds none")
    single = cluster_size() <= 1
    if resume:
        run_dir = RunDir(_resume_path(name, options, output))
        opened = None
    else:
        opened = _start(name, options, output, force)
        run_dir = opened.run_dir
    if not single:
        return opened or _resume(name, options, run_dir)
    run_dir.lock()
    try:
        if opened is None:
            return _resume(name, options, run_dir)
        opened.check()
        return opened
    except BaseException:
        run_dir.unlock()
        raise


class SignalFlag:
    """The signal that asked the run to stop, if any. The handler only records it: Python runs handlers between
    any two bytecodes, inside destructors and gc callbacks too (TF's, JAX's), where a raised exception is dropped
    with a traceback. The run raises Interrupted at its own points: after each training or test batch, each
    epoch, and between its phases."""

    def __init__(self):
        self.signum: Optional[int] = None

    def handler(self, signum, frame):
        self.signum = signum

    def check(self, *args, **kwargs) -> None:
        if self.signum is not None:
            raise Interrupted("terminated", self.signum)

    def callback(self):
        return keras_callback(on_train_batch_end=self.check, on_epoch_end=self.check)


def keras_callback(**hooks):
    """A Keras callback running `hooks` (on_train_batch_end=f, ...)."""
    import keras

    callback = keras.callbacks.Callback()
    for name, hook in hooks.items():
        setattr(callback, name, hook)
    return callback


@contextlib.contextmanager
def _signals_interrupt(flag: SignalFlag, run_dir_of: Callable[[], Optional[RunDir]]):
    """SIGTERM (schedulers, `docker stop`) and SIGINT (Ctrl-C) end a run alike: an Interrupted error whose one
    line says what is kept; the epoch checkpoints are atomic, so whatever the signal cut short is a temporary
    file, removed by the next start."""
    main_thread = threading.current_thread() is threading.main_thread()
    signals = (signal.SIGTERM, signal.SIGINT) if main_thread else ()
    previous = {signum: signal.signal(signum, flag.handler) for signum in signals}
    try:
        yield
    except KeyboardInterrupt as e:
        signum = getattr(e, "signum", signal.SIGINT)
        raise Interrupted(_interrupted_line(signum, run_dir_of()), signum) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupted_line(signum: int, run_dir: Optional[RunDir]) -> str:
    """What an interruption leaves, read from the folder (a checkpoint the signal cut short does not count)."""
    what = f"interrupted by {signal.Signals(signum).name}"
    if run_dir is None or run_dir.finished():
        return what
    try:
        newest = run_dir.sound_checkpoints()[0].state
    except (TrainError, IndexError):
        return f"{what} before the first epoch ended: no checkpoint to resume from in {run_dir.path}"
    return (f"{what}; the checkpoint of epoch {newest.epoch} (step {newest.step:,}) is kept in "
            f"{run_dir.checkpoint_dir}: continue with --resume --output {run_dir.path}")


# ---------------------------------------------------------------------------------------------------------------
# The run


def train(name: str, options: Optional[RunOptions] = None, *, output=None, resume: bool = False, results=None,
          record: bool = True, verbose: bool = True, echo: Optional[Callable[[str], None]] = None,
          force: bool = False, live: Optional[bool] = None, **given) -> RunResult:
    """Train registry model `name` with its recipe on its dataset; `options` (a RunOptions) and/or keywords
    (any RunOptions field: dataset=, recipe=, epochs=, batch_size=, lr=, ...; None: the recipe's / the measured
    default) override them. Returns a RunResult; writes the run folder (`output`, default runs/<run id>) and,
    with `record`, a record in the results store (`results`, else $ZOO_RESULTS_DIR, else ~/.zoo/results).
    `resume`: continue the interrupted run in `output` (a finished one whose record is missing from the store
    gets it). `force`: write into an `output` folder that holds files but no run. `live`: a progress bar inside
    each epoch (None: when stdout is a terminal; otherwise a status line every 30 s, through `echo`).

    The folder is the run's alone while it trains (an OS lock: another process gets a LockedError naming this
    one); SIGTERM and SIGINT raise zoo.errors.Interrupted, the last checkpoint kept."""
    process_start = time.perf_counter()
    echo = echo or (lambda line: print(line, flush=True))
    say = echo if verbose else (lambda line: None)
    options = RunOptions.of(options, **given)
    opened, flag = None, SignalFlag()
    with _signals_interrupt(flag, lambda: opened.run_dir if opened else None):
        opened = _open(name, options, output, resume, force)
        try:
            if opened.finished is not None:
                return _record_finished(opened, results if record else False, say, verbose, echo)
            live = verbose and (_is_terminal() if live is None else live)
            with naming_damaged_images():
                return _train(opened, flag, process_start, results if record else False, verbose, echo, say, live)
        finally:
            opened.run_dir.unlock()


def _is_terminal() -> bool:
    """Whether stdout is a terminal a progress bar can redraw (not a pipe, a log file or a dumb terminal)."""
    import os

    return sys.stdout.isatty() and os.environ.get("TERM", "") not in ("", "dumb")


def _train(opened: Opened, flag: SignalFlag, process_start: float, store, verbose: bool, echo, say,
           live: bool = False) -> RunResult:
    """The run proper, in its opened (and, single-process, locked) folder."""
    import keras
    from . import devices, inputs

    run, run_dir, meta, resume = opened.run, opened.run_dir, opened.meta, opened.resume
    config = run.config
    with quiet_stderr():  # the first device query prints CUDA's 'failed call to cuInit' on CPU-only machines
        strategy_obj = devices.make_strategy(config.strategy)
    replicas = strategy_obj.num_replicas_in_sync
    config_module.check_replicas(config.batch_size, replicas)
    chief = devices.is_chief(strategy_obj)
    if chief and devices.cluster_size() > 1:
        run_dir.lock()
        opened.check()
    if config.xla is None:
        config.xla = devices.default_xla()

    model, state = _build(run, strategy_obj, run_dir.sound_checkpoints() if resume else [], say)
    flag.check()
    elapsed_before = state.elapsed_seconds
    data_seed = epoch_seed(config.seed, state.epoch)
    keras.utils.set_random_seed(data_seed)  # dropout and other in-model randomness from here on
    train_data = inputs.train_stream(run, data_seed)
    val_data = _validation_stream(run) if config.validation_split else None
    if chief:
        write_json_atomic(run_dir.config_path, {**meta, **config.to_dict(), "output_dir": str(run_dir.path.resolve())})
    _announce(say, config, meta, run_dir, state, replicas, resume)
    tensorboard = _tensorboard(run_dir, say) if chief else []
    if tensorboard and not resume:  # one HParams session per run, written when it starts
        write_hparams(run_dir.tensorboard, hparams(config), meta["run_id"])

    best = BestWeights(model)
    monitor = _fit(model, run, run_dir, state, train_data, val_data, verbose, echo, chief, flag.callback(),
                   tensorboard, best, live)
    flag.check()
    if monitor.diverged:
        good = _last_good_epoch(monitor.diverged, state, run, run_dir)
        where = {**monitor.diverged, "lr": config.lr, "resume_from": good}
        if chief:
            run_dir.mark_diverged(where)
        raise _diverged(where, state, run_dir)

    final = _inference_model(model, run, strategy_obj)
    if chief:  # the last epoch's weights, then the best validation epoch's, which the test split evaluates
        _write_weights(run_dir, final, state, run_dir.weights_path)
    if best.restore(run_dir, state) and chief:
        _write_weights(run_dir, final, state, run_dir.best_weights_path)
    flag.check()
    test = _test(final, run, flag)
    if tensorboard:
        write_test_scalars(run_dir.tensorboard, test, state.step)
    wall = elapsed_before + (time.perf_counter() - process_start)
    run_record = _record(config, meta, run_dir, state, test, wall, final, strategy_obj, replicas)
    if chief:
        _write_final(run_dir, state, run_record, store)
    result = RunResult.of(run_record, output_dir=str(run_dir.path), wall_time_s=wall, history=state.history,
                          model=final, run=run)
    if verbose:
        for line in summary_lines(result):
            echo(line)
    return result


def _record_finished(opened: Opened, store, say, verbose: bool, echo) -> RunResult:
    """--resume of a finished run: its record goes to the store if it is not there (the run was stopped, or the
    store unwritable, between the two); otherwise there is nothing to do, which is an error to a caller who
    asked to continue."""
    record = opened.finished
    path = results_store.store_dir(store or None) / f"{record['run_id']}.json"
    if store is False or path.is_file():
        where = f"; its record is in {path}" if path.is_file() else ""
        raise TrainError(f"--resume: the run in {opened.run_dir.path} has already finished{where}")
    results_store.save(record, store)
    say(f"the run in {opened.run_dir.path} had finished; its record was missing from the results store and is "
        f"now {path}")
    fields = {k: record.get(k) for k in RunRecord.__dataclass_fields__}
    result = RunResult.of(RunRecord(**fields), output_dir=str(opened.run_dir.path),
                          wall_time_s=float(record.get("wall_time_s") or 0.0), history=[], model=None)
    if verbose:
        for line in summary_lines(result):
            echo(line)
    return result


def _weights_bytes(model) -> int:
    """About what model.save_weights writes: every variable of the model and its optimizer, as stored."""
    import numpy as np

    variables = list(model.weights) + list(getattr(model.optimizer, "variables", None) or [])
    return sum(int(np.prod(v.shape)) * np.dtype(str(v.dtype).replace("mixed_", "")).itemsize for v in variables)


class BestWeights:
    """The best validation epoch's weights. `view` shares the model's layers without its optimizer: what the best
    checkpoint file holds. Kept in memory when that epoch trained in this process (so every worker of a cluster
    restores the same weights, whoever wrote the file), else read back from its checkpoint file (an epoch before
    a resumption)."""

    def __init__(self, model):
        import keras

        self.model, self.values = model, None
        self.view = keras.Model(model.inputs, model.outputs, name=model.name)

    def keep(self) -> None:
        self.values = self.view.get_weights()

    def restore(self, run_dir: RunDir, state: RunState) -> bool:
        """Put the best epoch's weights back into the model; False when the run did not validate."""
        if state.best_epoch is None:
            return False
        if state.best_epoch == state.epoch:
            return True  # the last epoch is the best: its weights are the model's
        if self.values is not None:
            self.view.set_weights(self.values)
            return True
        path = run_dir.best_checkpoint(state.best_epoch)
        if not path.is_file():
            raise TrainError(f"the best-validation checkpoint of epoch {state.best_epoch}, {path}, is missing; "
                             f"the last epoch's weights are in {run_dir.weights_path}")
        self.view.load_weights(path)
        return True


def _fit(model, run: Run, run_dir: RunDir, state: RunState, train_data, val_data, verbose: bool, echo, chief: bool,
         stop_check, tensorboard: list, best: BestWeights, live: bool = False) -> StepMonitor:
    """model.fit from the state's epoch to the run's last step; the monitor says how it ended. Each epoch that
    improves the validation accuracy is kept (`best`) and checkpointed beside the epoch's own. A checkpoint that
    cannot be written (full disk) stops the run with one line, the previous checkpoint kept."""
    config = run.config
    total_epochs = math.ceil(config.total_steps / config.steps_per_epoch)
    monitor = StepMonitor(state, config.steps_per_epoch, config.total_steps, config.batch_size)
    kept = {"epoch": state.epoch}

    def save():
        needed = max(run_dir.newest_checkpoint_bytes() or 0, _weights_bytes(model))
        improved = best.view if state.best_epoch == state.epoch else None
        try:
            run_dir.save_checkpoint(model, state, needed=needed, best=improved)
        except WriteError as e:
            raise WriteError(f"{e}; {_kept(kept['epoch'], run_dir)}") from None
        kept["epoch"] = state.epoch

    callbacks = [monitor, EpochRecorder(state, monitor, save if chief else None, on_best=best.keep), stop_check]
    validation_steps = -(-run.data.num_examples.get(config.validation_split, 0) // config.batch_size) or None
    progress = (Progress(state, monitor, total_epochs, echo, live=live, validation_steps=validation_steps)
                if verbose else None)
    callbacks += ([progress] if progress else []) + tensorboard
    try:
        if state.step < config.total_steps:
            model.fit(train_data, epochs=total_epochs, initial_epoch=state.epoch,
                      steps_per_epoch=config.steps_per_epoch, validation_data=val_data, callbacks=callbacks,
                      verbose=0, shuffle=False)  # the stream is shuffled already
    finally:
        if progress:
            progress.close()  # the terminal's bar goes, however fit ended
    return monitor


def _validation_stream(run: Run):
    """The validation pass of the model being trained (fit validates that one): the evaluation stream of the
    validation split, its labels once per output when the recipe trains auxiliary heads."""
    from . import inputs, setup

    stream = inputs.eval_stream(run, run.config.validation_split)
    if not setup.uses_aux(run.recipe):
        return stream
    if inputs.input_path() == "numpy":  # a zoo.data.arrays.ArrayBatches: its targets shape the labels
        one = stream.targets
        stream.targets = (lambda y: (one(y),) * 3) if one else (lambda y: (y, y, y))
        return stream
    return stream.map(lambda x, y: (x, (y, y, y)))


def _kept(epoch: int, run_dir: RunDir) -> str:
    if not epoch:
        return "no epoch had finished, so there is no checkpoint"
    return (f"the checkpoint of epoch {epoch} is kept in {run_dir.checkpoint_dir}: free some space and continue "
            f"with --resume --output {run_dir.path}")


def _last_good_epoch(where: dict, state: RunState, run: Run, run_dir: RunDir) -> int:
    """The epoch whose checkpoint a diverged run continues from. A loss already non-finite at the epoch's first
    report was computed on the weights the epoch started from: its checkpoint holds the update that diverged (one
    huge step leaves finite but useless weights, so its epoch's own loss looked fine), and the checkpoint before it
    is the last good one; 0 means the initial weights, which the seed rebuilds. A later NaN spares the checkpoint."""
    first_report = where["step"] - state.step <= run.config.steps_per_execution
    if not first_report or not state.epoch:
        return state.epoch
    try:
        return max((c.state.epoch for c in run_dir.checkpoints() if c.state.epoch < state.epoch), default=0)
    except TrainError:  # no checkpoint readable here (a worker that is not the chief)
        return 0


def _diverged(where: dict, state: RunState, run_dir: RunDir) -> DivergedError:
    good, resume = where["resume_from"], f"--resume --output {run_dir.path} --lr X"
    spoilt = f"the checkpoint of epoch {state.epoch} already gives that loss"
    if not state.epoch:
        kept, fix = "no epoch finished, so there is no checkpoint", "start again with a lower one (--lr)"
    elif good == state.epoch:
        kept = f"the last good checkpoint (epoch {good}) is kept in {run_dir.checkpoint_dir}"
        fix = f"continue from it with a lower one: {resume}"
    elif good:
        kept = f"{spoilt}; the last good one (epoch {good}) is kept in {run_dir.checkpoint_dir}"
        fix = f"continue from it with a lower one: {resume}"
    else:
        kept = f"{spoilt} and none before it is kept"
        fix = f"start over from the initial weights with a lower one: {resume}"
    return DivergedError(f"training diverged: loss {where['loss']} at epoch {where['epoch']}, step {where['step']}; "
                         f"{kept}; lower the learning rate: {fix}")


def _build(run: Run, strategy_obj, checkpoints: list[Checkpoint], say) -> tuple[Any, RunState]:
    """The compiled training model under the run's dtype policy and strategy, and the state it starts from: when
    resuming, the newest checkpoint that loads (weights and optimizer state); one that does not (cut short by a
    crash, a full disk) is named in one line and the one before it used."""
    import keras

    from . import devices, setup

    config, rec = run.config, run.recipe
    keras.utils.set_random_seed(config.seed)  # weight initialisation
    with devices.dtype_policy(config.precision), strategy_obj.scope():
        model = setup.build_model(run)
        optimizer = setup.make_optimizer(config, rec, model)
        setup.compile_model(model, config, rec, optimizer)
        devices.patch_multi_worker_build(model, strategy_obj)
        if not checkpoints:
            return model, RunState()
        optimizer.build(model.trainable_variables)  # so the file's optimizer variables have a place to go
        problems = []
        for checkpoint in checkpoints:
            problem = _load_checkpoint(model, checkpoint)
            if problem is None:
                return model, checkpoint.state
            problems.append(problem)
            later = [c for c in checkpoints if c.state.epoch < checkpoint.state.epoch]
            say(f"  note: {problem}; " + (f"resuming from the previous one (epoch {later[0].state.epoch})"
                                          if later else "no earlier checkpoint is left"))
    raise TrainError(f"--resume: no checkpoint in {checkpoints[0].weights.parent} loads ({problems[0]}); start "
                     f"the run again without --resume")


def _load_checkpoint(model, checkpoint: Checkpoint) -> Optional[str]:
    """None when the checkpoint's weights loaded into `model`; else why not, in a few words naming the file."""
    if not checkpoint.weights.is_file():
        return f"checkpoint {checkpoint.weights} is missing"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.load_weights(checkpoint.weights)
    except Exception as e:  # noqa: BLE001 - h5py's truncation/corruption errors: the file is unusable either way
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        return f"checkpoint {checkpoint.weights} (epoch {checkpoint.state.epoch}) is unreadable ({reason})"
    return None


def _tensorboard(run_dir: RunDir, say) -> list:
    import keras

    if not importlib.util.find_spec("tensorboard"):  # tf.summary needs the tensorboard package
        say("  note: the tensorboard package is not installed: no tensorboard/ logs")
        return []
    from .. import backend

    if not backend.tensorflow_available():  # Keras' TensorBoard callback writes through tf.summary
        say("  note: TensorFlow is not installed: no tensorboard/ logs (history.csv has the curves)")
        return []
    return [keras.callbacks.TensorBoard(log_dir=str(run_dir.tensorboard), write_graph=False, update_freq="epoch",
                                        profile_batch=0)]


def _inference_model(model, run: Run, strategy_obj):
    """The model as it is saved and evaluated (GoogLeNet without its auxiliary heads; its layers are the
    trained model's, so restoring weights into one restores the other)."""
    from . import devices, setup

    config, rec = run.config, run.recipe
    with strategy_obj.scope():
        final = setup.inference_model(model, run)
        if final is not model:
            setup.compile_model(final, config, rec, training=False)
            devices.patch_multi_worker_build(final, strategy_obj)
    return final


def _test(final, run: Run, flag: SignalFlag) -> dict:
    """The test scores: the one pass over the evaluation split, at the end of the run."""
    from . import inputs

    stop_check = keras_callback(on_test_batch_end=flag.check)
    test = final.evaluate(inputs.eval_stream(run, run.config.eval_split), verbose=0, return_dict=True,
                          callbacks=[stop_check])
    flag.check()
    return test


def _write_weights(run_dir: RunDir, final, state: RunState, path: Path) -> None:
    """model.weights.h5 or best.weights.h5, atomically; a full disk is one line, the checkpoint kept."""
    try:
        run_dir.write_weights(final, needed=max(run_dir.newest_checkpoint_bytes() or 0, _weights_bytes(final)),
                              path=path)
    except WriteError as e:
        raise WriteError(f"{e}; {_kept(state.epoch, run_dir)}") from None


def _write_final(run_dir: RunDir, state: RunState, record: RunRecord, store) -> None:
    """History, the results record (unless `store` is False), then metrics.json (last: it marks the run
    finished), then the checkpoints go (the weights files are written already). A record that cannot be written
    stops here, loud, with the checkpoints kept: `--resume` evaluates again and writes it."""
    try:
        run_dir.write_history(state.history)
    except WriteError as e:
        raise WriteError(f"{e}; {_kept(state.epoch, run_dir)}") from None
    if store is not False:
        try:
            results_store.save(record, store)
        except OSError as e:
            raise WriteError(f"the run finished but its results record could not be written: {e}; the checkpoint "
                             f"is kept: make the store writable (--results, $ZOO_RESULTS_DIR) and add it with "
                             f"--resume --output {run_dir.path}") from None
    write_json_atomic(run_dir.metrics_path, record.to_dict())
    run_dir.remove_checkpoints()


def hparams(config: RunConfig) -> dict:
    """What runs are compared by in TensorBoard's HParams view: the model, data and recipe, and the numbers that
    differ between runs of them."""
    recipe = config.recipe_details
    return {"model": config.model, "dataset": config.dataset, "recipe": config.recipe,
            "train_split": config.train_split, "train_examples": config.train_examples,
            "epochs": float(config.epochs), "steps": config.total_steps, "batch_size": config.batch_size,
            "lr": float(config.lr), "optimizer": recipe.get("optimizer"),
            "schedule": (recipe.get("schedule") or {}).get("type"), "weight_decay": float(config.weight_decay),
            "augment": recipe.get("augment"), "label_smoothing": float(recipe.get("label_smoothing", 0.0)),
            "image_size": config.image_size, "precision": config.precision, "seed": config.seed}


def _announce(say, config: RunConfig, meta: dict, run_dir: RunDir, state: RunState, replicas: int, resume: bool):
    what = "resuming" if resume else "training"
    say(f"{what} {config.model} on {config.dataset} ({config.train_split}, {config.train_examples:,} images at "
        f"{config.image_size}x{config.image_size}) with recipe {config.recipe}")
    say(f"  {config.epochs:g} epochs = {config.total_steps:,} steps of batch {config.batch_size}"
        f"{f' over {replicas} replicas' if replicas > 1 else ''}; lr {config.lr:.4g} ({config.lr_rule}); "
        f"weight decay {config.weight_decay:g} ({config.weight_decay_mode}); {config.precision}"
        f"{', XLA' if config.xla else ''}; seed {config.seed}")
    if config.validation_split:
        held = f"{config.holdout:,} held-out training images" if config.holdout else f"the {config.validation_split} split"
        say(f"  validation every epoch on {held}; the best epoch's weights are kept and tested once, at the end")
    for note in config.notes:
        say(f"  note: {note}")
    if run_dir.renamed_legacy:
        say(f"  note: the older layout's {run_dir.path / 'checkpoint'}/ is now {run_dir.checkpoint_dir}/ (TensorFlow "
            f"reads a file named checkpoint as its own)")
    if resume and state.epoch:
        say(f"  from the checkpoint of epoch {state.epoch} (step {state.step:,})")
    elif resume:  # after a divergence whose only checkpoints already held the diverging update
        say("  from the initial weights (no checkpoint before the divergence is sound)")
    say(f"  output: {run_dir.path}  (run {meta['run_id']})")


def _record(config: RunConfig, meta: dict, run_dir: RunDir, state: RunState, test: dict, wall: float, model,
            strategy_obj, replicas: int) -> RunRecord:
    """The run's record: built here only, from the config, the state, the test scores and the environment."""
    import keras
    from .. import backend

    import zoo
    from . import devices

    complete = state.step >= config_module.recipe_steps(config)
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
        zoo_version=zoo.__version__, tf_version=backend.versions()["tensorflow"], keras_version=keras.__version__,
        hostname=socket.gethostname(), output_dir=str(run_dir.path.resolve()), init=config.init, status="finished",
        eval_split=config.eval_split, train_split=config.train_split, notes=list(config.notes) or None,
        complete=complete, best_epoch=state.best_epoch,
        warnings=unsettled_batchnorm(model, config, state, float(test["accuracy"])) or None)


def _layers(model) -> list:
    """Every layer of a model, those of nested models included."""
    found = []
    for layer in model.layers:
        found += [layer, *(_layers(layer) if hasattr(layer, "layers") else [])]
    return found


def unsettled_batchnorm(model, config: RunConfig, state: RunState, test_accuracy: float) -> list[str]:
    """A warning when BatchNorm's moving statistics plainly have not settled: the model has BatchNorm, its test
    accuracy is at chance (under 1.5/classes) while its training accuracy is not (over 3/classes). Evaluation
    uses the moving averages, which a run of few steps has barely moved from their start (momentum 0.99: about
    460 steps to forget 99% of it); training uses each batch's own statistics."""
    import keras

    norms = [layer for layer in _layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    train_accuracy = (state.history[-1].get("accuracy") if state.history else None)
    chance = 1.0 / config.classes
    if not norms or train_accuracy is None or not (test_accuracy < 1.5 * chance and train_accuracy > 3 * chance):
        return []
    momentum = norms[0].momentum
    return [f"test accuracy {100 * test_accuracy:.2f}% is chance (1 in {config.classes}) while training accuracy "
            f"is {100 * train_accuracy:.2f}%: BatchNorm's moving statistics have not settled after {state.step:,} "
            f"steps (momentum {momentum:g}); train longer (the recipe's full length) before trusting this number"]


def summary_lines(result: RunResult) -> list[str]:
    """The one-screen summary: test accuracy beside the paper's number for the same model and dataset."""
    r = result.record
    status = "finished"
    if r.get("complete") is False:
        planned = config_module.recipe_steps(result.run.config) if result.run else None
        status += (f", partial: {result.steps:,} of the {planned:,} steps its recipe takes" if planned else
                   ", partial: shorter than its recipe") + " (left out of zoo table results and zoo plot)"
    tested = (f"best-validation epoch {r['best_epoch']}" if r.get("best_epoch") else "last epoch")
    lines = ["", f"{result.model_name} on {result.dataset} ({result.recipe}): {status}",
             f"  test accuracy   {100 * result.test_accuracy:.2f}%"
             + (f"   top-5 {100 * result.test_top5:.2f}%" if result.test_top5 is not None else "")
             + f"   loss {result.test_loss:.4f}   ({r.get('eval_split', 'test')} split, {tested})"]
    if result.best_val_accuracy is not None:
        lines.append(f"  best val acc    {100 * result.best_val_accuracy:.2f}% (epoch {r.get('best_epoch')}; its "
                     f"weights are best.weights.h5, the last epoch's model.weights.h5)")
    lines += [f"  warning         {warning}" for warning in r.get("warnings") or []]
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
