"""End-to-end runs of the harness on the embedded Fashion-MNIST sample: outputs, evaluation, resume after SIGKILL,
divergence, bad-input exit codes, GoogLeNet's auxiliary heads. Short runs (a few dozen steps) keep it fast."""

import csv
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cli
import zoo
from zoo import results

ROOT = Path(__file__).resolve().parents[1]
FAST = dict(xla=False, verbose=False)  # XLA compilation costs more than it saves in runs of a few steps


def zoo_cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def lenet_run(tmp_path_factory):
    """One epoch of 12 steps of LeNet-5 (a slice of the sample's 46 batches per pass)."""
    tmp = tmp_path_factory.mktemp("lenet")
    out, store = tmp / "run", tmp / "results"
    result = zoo.train("lenet5", epochs=1, steps_per_epoch=12, output=out, results=store, **FAST)
    return result, out, store


def test_run_writes_config_history_logs_weights_and_metrics(lenet_run):
    result, out, store = lenet_run
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == "lenet5" and config["recipe"] == "lenet_fmnist"
    assert (config["steps_per_epoch"], config["total_steps"], config["batch_size"]) == (12, 12, 128)
    assert config["run_id"] == result.run_id

    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1] and int(rows[0]["step"]) == 12
    assert {"loss", "accuracy", "top5", "lr", "images_per_s", "train_time_s", "val_loss", "val_accuracy"} <= set(
        rows[0])  # every recipe validates, on the holdout (600 of the sample's 6000 training images)
    assert 0.0 < float(rows[0]["accuracy"]) <= 1.0 and float(rows[0]["images_per_s"]) > 0
    assert float(rows[0]["val_accuracy"]) == pytest.approx(result.best_val_accuracy, abs=1e-6)
    if importlib.util.find_spec("tensorboard"):
        for side in ("train", "validation"):  # Keras' callback writes both sides, side by side
            assert list((out / "tensorboard" / side).glob("events.out.tfevents.*")), side
    assert (out / "model.weights.h5").is_file() and (out / "best.weights.h5").is_file()
    assert not (out / "checkpoints").exists() and not (out / "checkpoint").exists()  # gone once finished
    assert (config["train_split"], config["validation_split"], config["holdout"]) == ("train", "validation", 600)

    metrics = json.loads((out / "metrics.json").read_text())
    [record] = results.load(store=store)
    assert record == metrics == result.record
    assert set(results.FIELDS) <= set(record)
    assert list(metrics) == list(results.FIELDS)  # metrics.json: the RunRecord's fields, in their order
    assert (record["status"], record["steps"], record["epochs"], record["replicas"]) == ("finished", 12, 1.0, 1)
    assert (record["params"], record["macs"], record["image_size"]) == (61706, 416520, 32)
    assert record["test_accuracy"] == result.test_accuracy and 0.1 < record["test_accuracy"] <= 1.0
    assert record["test_top5"] >= record["test_accuracy"]
    assert record["best_val_accuracy"] == result.best_val_accuracy and record["best_epoch"] == 1
    assert record["complete"] is False  # 12 steps of the 840 lenet_fmnist takes on the sample
    assert record["train_split"] == "train" and record["warnings"] is None  # LeNet-5 has no BatchNorm
    assert record["strategy"] == "default" and record["precision"] == "float32" and record["xla"] is False
    assert record["wall_time_s"] > 0 and record["train_images_per_s"] > 0


def test_eval_of_the_saved_weights_reproduces_the_run(lenet_run, capsys):
    result, out, _ = lenet_run
    scores = zoo.evaluate("lenet5", out / "best.weights.h5")
    assert (scores.dataset, scores.split, scores.examples) == ("fashion_mnist_sample", "test", 1000)
    assert scores.top1 == pytest.approx(result.test_accuracy, abs=1e-6)
    assert scores.loss == pytest.approx(result.test_loss, rel=1e-5)
    code, text, _ = zoo_cli(capsys, "eval", "lenet5", "--weights", out)  # the run folder: its best checkpoint
    assert code == 0 and f"top-1 {100 * result.test_accuracy:.2f}%" in text
    assert f"{out / 'best.weights.h5'}" in text and "the best-validation checkpoint: epoch 1 of 1" in text


def test_output_dir_with_another_run_is_refused(lenet_run, capsys):
    _, out, store = lenet_run
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--output", out, "--epochs", 2, "--results", store)
    assert code == 1 and err.strip() == (f"zoo: error: {out} holds a different run (epochs: 1.0 there, 2.0 now); "
                                         "choose another --output")
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--output", out, "--epochs", 1, "--steps-per-epoch", 12,
                           "--no-xla")
    assert code == 1 and "already holds this run, finished" in err
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--output", out, "--resume", "--results", store)
    assert code == 1 and "has already finished; its record is in" in err


def test_resume_needs_a_checkpoint(lenet_run, tmp_path, capsys):
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--output", tmp_path / "empty", "--resume")
    assert (code, err.count("\n")) == (1, 1) and "holds no run (no config.json)" in err
    died_early = tmp_path / "died"  # a run that stopped before its first epoch ended: config, no checkpoint
    died_early.mkdir()
    (died_early / "config.json").write_text((lenet_run[1] / "config.json").read_text())
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--output", died_early, "--resume")
    assert code == 1 and f"--resume: no checkpoint in {died_early}" in err


@pytest.mark.parametrize("args, message", [
    (["train", "lenet6"], "unknown model 'lenet6'; did you mean lenet5"),
    (["train", "lenet5", "--dataset", "cifar100000"], "unknown dataset 'cifar100000'"),
    (["train", "lenet5", "--recipe", "nope"], "unknown recipe 'nope'"),
    (["train", "lenet5_original", "--image-size", "24"], "minimum input size is 32x32"),
    (["train", "lenet5", "--precision", "mixed_float16", "--output", "{tmp}"], "mixed_float16 needs a GPU"),
    (["eval", "lenet5", "--weights", "{tmp}/none.weights.h5"], "weights file not found"),
])
def test_bad_input_is_a_one_line_error(args, message, tmp_path, capsys):
    code, _, err = zoo_cli(capsys, *[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert code != 0 and message in err and err.count("\n") == 1


def test_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, capsys):
    """Adam at lr 1e6: the first step's loss (before any update) is finite, the second is not. With one step per
    epoch, epoch 1 is checkpointed and epoch 2 diverges."""
    out = tmp_path / "run"
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--lr", "1e6", "--steps-per-epoch", 1, "--epochs", 5,
                           "--no-xla", "--output", out, "--results", tmp_path / "results")
    assert code == 3
    assert "training diverged: loss" in err and "at epoch 2, step 2" in err
    assert f"--resume --output {out} --lr X" in err  # which checkpoint is good: tests/test_faults.py
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["epoch"] == 1 and (out / "checkpoints" / state["weights"]).is_file()
    assert (out / "checkpoints" / state["best_weights"]).is_file()
    assert not (out / "metrics.json").exists() and not (tmp_path / "results").exists()


def test_resume_after_sigkill(tmp_path):
    """A real `zoo train` process killed with SIGKILL mid-epoch resumes from its last checkpoint and finishes,
    repeating only the interrupted epoch."""
    out = tmp_path / "run"
    command = [sys.executable, str(ROOT / "cli.py"), "train", "lenet5", "--epochs", "4", "--steps-per-epoch", "30",
               "--no-xla", "--output", str(out), "--results", str(tmp_path / "results")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    state_path = out / "checkpoints" / "state.json"
    first_log = []
    for line in first.stdout:  # the first epoch's line is printed once its checkpoint is committed
        first_log.append(line)
        if line.startswith("epoch "):
            break
    first.send_signal(signal.SIGKILL)
    first_log += first.communicate(timeout=60)[0].splitlines(keepends=True)
    finished_before_kill = [line for line in first_log if line.startswith("epoch ")]
    assert finished_before_kill and not (out / "metrics.json").exists(), "".join(first_log)
    checkpointed = json.loads(state_path.read_text())["epoch"]
    assert len(finished_before_kill) <= checkpointed < 4  # every printed epoch was checkpointed; killed mid-run

    second = subprocess.run(command + ["--resume"], capture_output=True, text=True, env=env, timeout=240)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"from the checkpoint of epoch {checkpointed} (step {30 * checkpointed})" in second.stdout
    rerun = [int(line.split()[1].split("/")[0]) for line in second.stdout.splitlines() if line.startswith("epoch ")]
    assert rerun == list(range(checkpointed + 1, 5))  # only the interrupted epoch is done again
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["steps"], metrics["epochs"], metrics["status"]) == (120, 4.0, "finished")
    assert 0.1 < metrics["test_accuracy"] <= 1.0
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert [int(r["step"]) for r in rows] == [30, 60, 90, 120]
    lrs = [float(r["lr"]) for r in rows]  # the cosine schedule continued from the restored optimizer step
    assert lrs == sorted(lrs, reverse=True) and lrs[-1] == pytest.approx(0.0, abs=1e-9)
    assert len(results.load(store=tmp_path / "results")) == 1


def test_holdout_validation_mixed_precision_and_steps_per_execution(tmp_path):
    """resnet_cifar's recipe (any recipe fits any model) holds out 5000 of the sample's 6000 training images:
    validation every epoch, best_val_accuracy in the record. bf16 compute, two steps per tf.function call."""
    result = zoo.train("lenet5", recipe="resnet_cifar", precision="mixed_bfloat16", steps_per_execution=2,
                       steps_per_epoch=4, max_steps=8, output=tmp_path / "run", results=tmp_path / "results",
                       **FAST)
    assert [(r["epoch"], r["step"]) for r in result.history] == [(1, 4), (2, 8)]
    val = [r["val_accuracy"] for r in result.history]
    assert result.best_val_accuracy == result.record["best_val_accuracy"] == max(val)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (config["train_split"], config["train_examples"], config["weight_decay_mode"]) == ("train", 1000, "l2")
    assert result.record["precision"] == "mixed_bfloat16"
    assert result.model.dtype_policy.name == "mixed_bfloat16"
    assert result.model.get_layer("predictions").compute_dtype == "float32"  # logits stay float32


def test_googlenet_trains_its_auxiliary_heads_and_drops_them(tmp_path):
    """aux_weight 0.3: the training loss is the main cross-entropy plus 0.3 x each auxiliary head's; the saved,
    evaluated model has the main output only (65x65 is the smallest input the auxiliary pools take)."""
    recipe = zoo.load_registry().recipe("googlenet_fmnist")
    assert recipe.aux_weight == 0.3
    result = zoo.train("googlenet", dataset="fashion_mnist_sample", image_size=65, batch_size=8, max_steps=2,
                       steps_per_epoch=2, output=tmp_path / "run", results=tmp_path / "results", **FAST)
    [epoch] = result.history
    # loss = main cross-entropy (`xent`) + L2 penalty + 0.3 x (aux1 + aux2 cross-entropies). Near initialisation
    # each head's cross-entropy is about ln 10 = 2.3, so the aux terms add about 1.4 (their own kernels' share
    # of the L2 penalty, about 0.1, included); the main network's penalty, about 0.9 here, is taken out.
    main_l2 = recipe.weight_decay / 2 * sum(float(np.sum(np.square(v.numpy())))
                                            for v in result.model.trainable_variables if v.name.endswith("kernel"))
    assert 0.5 < main_l2 < 1.5
    assert 1.0 < epoch["loss"] - epoch["xent"] - main_l2 < 2.0
    assert len(result.model.outputs) == 1 and result.record["params"] == zoo.count_params(
        zoo.build("googlenet", input_shape=(65, 65, 3), classes=10))
    scores = zoo.evaluate("googlenet", tmp_path / "run" / "model.weights.h5")
    assert scores.top1 == pytest.approx(result.test_accuracy, abs=1e-6)


def named_files_exist(checkpoints: Path) -> list[str]:
    """The files every state in a checkpoints folder names that are missing (none, always)."""
    missing = []
    for state_file in [checkpoints / "state.json", *checkpoints.glob("epoch-*.json")]:
        state = json.loads(state_file.read_text())
        for key in ("weights", "best_weights"):
            if state.get(key) and not (checkpoints / state[key]).is_file():
                missing.append(f"{state_file.name}: {state[key]}")
    return missing


def test_best_checkpoint_is_chosen_by_validation_accuracy_and_survives_a_resume(tmp_path, monkeypatch):
    """Validation accuracies 0.5, 0.9, 0.7 (scripted into the epoch records): epoch 2 is the best. The run is
    interrupted after epoch 2, its checkpoints moved to the older layout's checkpoint/ folder, and resumed: the
    best epoch's weights then come back from their checkpoint file, are saved as best.weights.h5 and are the
    ones the test split measures; model.weights.h5 holds epoch 3's. Every file a state names exists throughout."""
    from zoo.errors import Interrupted
    from zoo.training.callbacks import EpochRecorder, StepMonitor

    scripted = {1: 0.5, 2: 0.9, 3: 0.7}
    original_end, original_begin = EpochRecorder.on_epoch_end, StepMonitor.on_epoch_begin

    def scripted_end(self, epoch, logs=None):
        return original_end(self, epoch, {**(logs or {}), "val_accuracy": scripted[epoch + 1]})

    def stop_before_epoch_3(self, epoch, logs=None):
        if epoch == 2:
            raise Interrupted("stopped by the test", signal.SIGTERM)
        return original_begin(self, epoch, logs)

    monkeypatch.setattr(EpochRecorder, "on_epoch_end", scripted_end)
    monkeypatch.setattr(StepMonitor, "on_epoch_begin", stop_before_epoch_3)
    out, store = tmp_path / "run", tmp_path / "results"
    options = dict(epochs=3, steps_per_epoch=4, output=out, results=store, xla=False)
    with pytest.raises(Interrupted):
        zoo.train("lenet5", verbose=False, **options)
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state["best_epoch"], state["best_weights"]) == (2, 2, "best-epoch-0002.weights.h5")
    assert not named_files_exist(out / "checkpoints")
    assert sorted(p.name for p in (out / "checkpoints").glob("*.weights.h5")) == [
        "best-epoch-0001.weights.h5", "best-epoch-0002.weights.h5", "epoch-0001.weights.h5",
        "epoch-0002.weights.h5"]  # epoch 1's state still names its own best file: a fallback keeps it

    (out / "checkpoints").rename(out / "checkpoint")  # the older layout
    monkeypatch.setattr(StepMonitor, "on_epoch_begin", original_begin)
    lines = []
    result = zoo.train("lenet5", resume=True, echo=lines.append, **options)
    assert any("is now" in line and "checkpoints" in line for line in lines), lines
    assert (result.record["best_epoch"], result.best_val_accuracy) == (2, 0.9)
    assert [float(r["val_accuracy"]) for r in csv.DictReader((out / "history.csv").open())] == [0.5, 0.9, 0.7]
    assert not (out / "checkpoints").exists() and not (out / "checkpoint").exists()
    best = zoo.evaluate("lenet5", out / "best.weights.h5")
    last = zoo.evaluate("lenet5", out / "model.weights.h5")
    assert best.top1 == pytest.approx(result.test_accuracy, abs=1e-6)
    assert best.loss == pytest.approx(result.test_loss, rel=1e-5)
    assert last.loss != pytest.approx(best.loss, rel=1e-4)  # epoch 3's weights are not epoch 2's
    assert "best-validation epoch 2" in "\n".join(lines)


def test_hparams_and_test_scores_are_in_the_event_files(lenet_run):
    """TensorBoard's HParams plugin finds the run as a session with its hyperparameters and the metrics to
    compare runs by (validation and train scalars, the test accuracy written at the end)."""
    pytest.importorskip("tensorboard")
    import tensorflow as tf
    from tensorboard.plugins.hparams import plugin_data_pb2

    result, out, _ = lenet_run
    plugin, scalars = [], {}
    for path in (out / "tensorboard").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "hparams":
                    plugin.append(plugin_data_pb2.HParamsPluginData.FromString(value.metadata.plugin_data.content))
                elif value.HasField("tensor"):
                    scalars[value.tag] = float(tf.make_ndarray(value.tensor))
    [session] = [p.session_start_info for p in plugin if p.HasField("session_start_info")]
    [experiment] = [p.experiment for p in plugin if p.HasField("experiment")]
    assert session.hparams["model"].string_value == "lenet5"
    assert session.hparams["recipe"].string_value == "lenet_fmnist"
    assert session.hparams["lr"].number_value == pytest.approx(result.record["lr"])
    assert session.hparams["batch_size"].number_value == 128 and session.group_name == result.run_id
    metrics = {(m.name.group, m.name.tag) for m in experiment.metric_infos}
    assert {("validation", "epoch_accuracy"), ("train", "epoch_accuracy"), ("", "test_accuracy")} <= metrics
    assert scalars["test_accuracy"] == pytest.approx(result.test_accuracy, abs=1e-6)


def test_a_batchnorm_net_at_chance_on_test_gets_a_warning():
    import keras

    from zoo.training.config import resolve
    from zoo.training.run import unsettled_batchnorm
    from zoo.training.state import RunState

    config = resolve("resnet20", "fashion_mnist_sample", max_steps=46)
    inputs = keras.Input((8, 8, 1))
    with_bn = keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Conv2D(2, 3)(inputs)))
    without = keras.Model(inputs, keras.layers.Conv2D(2, 3)(inputs))
    state = RunState(epoch=1, step=46, history=[{"accuracy": 0.45}])
    [warning] = unsettled_batchnorm(with_bn, config, state, 0.1)
    assert warning.startswith("test accuracy 10.00% is chance (1 in 10) while training accuracy is 45.00%")
    assert "after 46 steps (momentum 0.99)" in warning
    assert unsettled_batchnorm(with_bn, config, state, 0.62) == []  # settled enough
    assert unsettled_batchnorm(without, config, state, 0.1) == []  # no BatchNorm: something else is wrong
    assert unsettled_batchnorm(with_bn, config, RunState(history=[{"accuracy": 0.2}]), 0.1) == []  # not learning


def test_a_run_shorter_than_its_recipe_is_partial():
    from zoo.training import config as C

    full = C.resolve("lenet5")
    assert C.recipe_steps(full) == full.total_steps == 20 * (5400 // 128)
    assert C.recipe_steps(C.resolve("lenet5", batch_size=256)) == 20 * (5400 // 256)  # the recipe's epochs
    for short in (dict(epochs=1), dict(max_steps=100), dict(steps_per_epoch=10)):
        config = C.resolve("lenet5", **short)
        assert config.total_steps < C.recipe_steps(config), short
    assert C.resolve("lenet5", epochs=25).total_steps > C.recipe_steps(C.resolve("lenet5", epochs=25))


def test_progress_in_a_pipe_is_a_line_every_interval():
    from zoo.training.callbacks import Progress, StepMonitor
    from zoo.training.state import RunState

    state, lines = RunState(), []
    monitor = StepMonitor(state, steps_per_epoch=10, total_steps=20, batch_size=32)
    progress = Progress(state, monitor, total_epochs=2, echo=lines.append, interval=0.0)
    monitor.on_epoch_begin(0)
    progress.on_train_begin()
    for batch in range(2):
        monitor.epoch_steps = batch + 1
        progress.on_train_batch_end(batch, {"loss": 1.5, "accuracy": 0.25})
    assert len(lines) == 2 and lines[1].startswith("  epoch 1 step 2/10  loss 1.5000  acc 0.2500")
    assert "img/s  ETA" in lines[1]


def run_on_a_terminal(tmp_path: Path) -> str:
    """What `zoo train` prints with stdout and stderr a pseudo-terminal."""
    import pty

    command = [sys.executable, str(ROOT / "cli.py"), "train", "lenet5", *TINY, "--output", str(tmp_path / "tty")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TERM": "xterm", "COLUMNS": "160"}
    leader, follower = pty.openpty()
    proc = subprocess.Popen(command, stdout=follower, stderr=follower, env=env)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=300) == 0, b"".join(chunks).decode(errors="replace")
    os.close(leader)
    return b"".join(chunks).decode(errors="replace")


TINY = ["--steps-per-epoch", "5", "--max-steps", "10", "--no-xla", "--no-record"]


def test_progress_bar_on_a_terminal_and_plain_lines_in_a_pipe(tmp_path, capsys):
    import re

    raw = run_on_a_terminal(tmp_path)
    shown = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", raw)  # colours and cursor moves out
    assert re.search(r"\d+/5 steps", shown), shown  # the bar: steps of the epoch, then of the validation pass
    assert "\x1b[" in raw and "\r" in raw  # redrawn in place
    assert re.search(r"epoch 1/2 +loss \d", shown) and "run ETA" in shown and "validation" in shown
    code, piped, err = zoo_cli(capsys, "train", "lenet5", *TINY, "--output", tmp_path / "pipe")  # not a terminal
    assert code == 0, err
    assert "\x1b[" not in piped and "\r" not in piped and "/5 steps" not in piped
    assert [line.split()[:2] for line in piped.splitlines() if line.startswith("epoch ")] == [
        ["epoch", "1/2"], ["epoch", "2/2"]]
