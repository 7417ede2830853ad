"""Fault injection (issue 13): nothing lost, nothing mixed. Two processes on one run folder, signals, a full disk
(a small tmpfs, as root), an unwritable results store, a corrupt checkpoint, files of another model, every bad
option; the slow part kills a run with SIGKILL at random points many times and validates every output.

Tiny runs of LeNet-5 on the embedded sample (a few steps each) keep every default case to seconds."""

import contextlib
import csv
import io
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import cli
import zoo
from zoo import io as zio
from zoo import results

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "0"}  # what a user has: TF's own log level, not the tests' quiet one
TINY = ["--steps-per-epoch", "2", "--no-xla"]


def zoo_cli(capsys, *args) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def zoo_process(*args, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(ROOT / "cli.py"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=ENV, **kwargs)


def run_zoo(*args, timeout=240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True, text=True,
                          env=ENV, timeout=timeout)


def wait_for_line(proc: subprocess.Popen, prefix: str, timeout=180) -> list[str]:
    """Read the process's stdout until a line starting with `prefix` (the run is then past that point)."""
    seen, deadline = [], time.monotonic() + timeout
    for line in proc.stdout:
        seen.append(line)
        if line.startswith(prefix):
            return seen
        assert time.monotonic() < deadline, "".join(seen)
    raise AssertionError(f"exited before {prefix!r}: {''.join(seen)}{proc.stderr.read()}")


def one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def checkpoint_folder(out: Path) -> Path:
    """The run's checkpoint folder, whichever name this layout gives it (checkpoints/, or the older checkpoint/)."""
    return next((out / name for name in ("checkpoints", "checkpoint") if (out / name).is_dir()), out / "checkpoint")


def state(out: Path) -> dict:
    return json.loads((checkpoint_folder(out) / "state.json").read_text())


# ---------------------------------------------------------------------------------------------------------------
# Mixed runs: one process per folder, folders that cannot collide


def test_a_live_run_owns_its_folder_and_sigterm_leaves_it_resumable(tmp_path, capsys):
    """A second train or --resume on a folder in use: one line naming the holder, exit 1, nothing touched.
    SIGTERM (schedulers, docker stop): one line, the checkpoint kept, exit 143; --resume continues from it."""
    out, store = tmp_path / "run", tmp_path / "results"
    command = ["train", "lenet5", "--epochs", 10_000, *TINY, "--output", out, "--results", store]
    first = zoo_process(*command)
    try:
        wait_for_line(first, "epoch ")
        config_before = (out / "config.json").read_bytes()
        for extra in ([], ["--resume"], ["--seed", 2]):
            code, _, err = zoo_cli(capsys, *command[:-4], "--output", out, *extra)
            line = one_line(err)
            assert code == 1 and f"{out} is in use by pid {first.pid} since " in line, line
        assert (out / "config.json").read_bytes() == config_before
        first.send_signal(signal.SIGTERM)
        _, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 143
    kept = state(out)
    line = one_line(err)  # also: no cuInit or oneDNN chatter on stderr, with TF's default log level
    assert line.startswith("zoo: interrupted by SIGTERM; the checkpoint of epoch ")
    assert f"epoch {kept['epoch']} (step {kept['step']})" in line and "--resume" in line
    assert (checkpoint_folder(out) / kept["weights"]).is_file() and not (out / "metrics.json").exists()

    second = zoo_process(*command, "--resume")
    try:
        seen = wait_for_line(second, "epoch ")
        assert f"  from the checkpoint of epoch {kept['epoch']} (step {kept['step']})\n" in seen
        assert int(seen[-1].split()[1].split("/")[0]) == kept["epoch"] + 1  # it continues where it stopped
        second.send_signal(signal.SIGTERM)
        _, err = second.communicate(timeout=60)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 143 and one_line(err).startswith("zoo: interrupted by SIGTERM")


def test_default_run_folders_cannot_collide(tmp_path, monkeypatch):
    from zoo.training import rundir

    ids = {rundir.new_run_id("lenet5", "mnist") for _ in range(200)}  # the same second, 200 times
    assert len(ids) == 200
    monkeypatch.setattr(rundir.secrets, "token_hex", lambda n: "abcdabcd")
    first = rundir.default_run_path(rundir.new_run_id("lenet5", "mnist"), tmp_path)
    with pytest.raises(FileExistsError):  # the exclusive mkdir: the caller draws another id
        rundir.default_run_path(first.name, tmp_path)


def test_a_folder_that_holds_no_run_is_refused_unless_forced(tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "model.weights.h5").write_bytes(b"my own weights")
    (out / "history.csv").write_text("mine\n")
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--max-steps", 2, *TINY, "--output", out, "--no-record")
    assert code == 1 and one_line(err) == (f"zoo: error: {out} is not empty and holds no run (history.csv, "
                                           f"model.weights.h5); choose another --output, or add --force to write "
                                           f"the run into it")
    assert (out / "model.weights.h5").read_bytes() == b"my own weights"
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--max-steps", 2, *TINY, "--output", out, "--resume",
                           "--force")
    assert code == 1 and "--resume and --force exclude each other" in one_line(err)
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--max-steps", 2, *TINY, "--output", out, "--no-record",
                           "--results", tmp_path / "r")
    assert code == 2 and "--no-record and --results exclude each other" in one_line(err)
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--max-steps", 2, *TINY, "--output", out, "--no-record",
                           "--force")
    assert code == 0, err
    assert (out / "metrics.json").is_file() and (out / "model.weights.h5").read_bytes() != b"my own weights"


# ---------------------------------------------------------------------------------------------------------------
# Lost data: atomic writes, the record before "finished"


def test_an_atomic_write_that_fails_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "kept.json"
    target.write_text("old\n")
    with pytest.raises(RuntimeError, match="cut short"):
        with zio.atomic_path(target) as tmp:
            tmp.write_text("half a fi")
            raise RuntimeError("cut short")
    assert target.read_text() == "old\n" and sorted(p.name for p in tmp_path.iterdir()) == ["kept.json"]
    old = os.umask(0o027)
    try:
        zio.write_text_atomic(target, "new\n")
        assert target.stat().st_mode & 0o777 == 0o640  # the user's umask, not mkstemp's 0600
    finally:
        os.umask(old)


def test_convert_of_another_models_file_names_both_and_keeps_the_old_output(tmp_path, capsys):
    import keras

    densenet = tmp_path / "densenet121.weights.h5"
    keras.applications.DenseNet121(weights=None).save_weights(densenet)
    output = tmp_path / "resnet50.weights.h5"
    output.write_bytes(b"a good earlier conversion")
    code, _, err = zoo_cli(capsys, "convert", "resnet50", "--keras-weights", densenet, "--output", output)
    line = one_line(err)  # no Keras warning flood before it, not cut at a colon
    assert code == 1 and "holds weights of densenet121, not resnet50: layer 'conv2_block1_2_bn'" in line, line
    assert output.read_bytes() == b"a good earlier conversion"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".partial")] == []


def test_eval_with_weights_of_another_model_is_one_line_naming_both(tmp_path):
    other = tmp_path / "resnet20.weights.h5"
    subprocess.run([sys.executable, "-c", "import sys, zoo; zoo.build('resnet20', input_shape=(32, 32, 1), "
                    "classes=10).save_weights(sys.argv[1])", str(other)], check=True, env=ENV, capture_output=True)
    proc = run_zoo("eval", "lenet5", "--weights", other)
    assert proc.returncode == 1
    assert one_line(proc.stderr) == (f"zoo: error: {other} holds weights of resnet20, not lenet5 (layer 'conv1' "
                                     f"(and 3 more) is not in the file)")


def test_an_unwritable_store_loses_no_record(tmp_path, capsys):
    """The record is written before metrics.json says finished; when it cannot be, the run says so in one line,
    keeps its checkpoint, and --resume writes the record. A finished run without its record gets it too."""
    out, blocked, store = tmp_path / "run", tmp_path / "not-a-folder", tmp_path / "results"
    blocked.write_text("a file where the store should be\n")
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--max-steps", 4, *TINY, "--output", out, "--results",
                           blocked / "store")
    line = one_line(err)
    assert code == 1 and "the run finished but its results record could not be written: cannot write " in line
    assert f"--resume --output {out}" in line
    assert not (out / "metrics.json").exists() and state(out)["epoch"] == 2

    code, text, _ = zoo_cli(capsys, "train", "lenet5", "--output", out, "--resume", "--results", store)
    assert code == 0 and "finished" in text
    [record] = results.load(store=store)
    assert record == json.loads((out / "metrics.json").read_text()) and record["steps"] == 4
    for path in (out / "config.json", out / "metrics.json", out / "history.csv", out / "model.weights.h5",
                 store / f"{record['run_id']}.json"):
        assert path.stat().st_mode & 0o777 == zio.file_mode(), path  # one mode: the user's umask
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--max-steps", 4, *TINY, "--output", out)
    assert code == 1 and "already holds this run, finished" in err

    unrecorded = tmp_path / "unrecorded"
    code, _, _ = zoo_cli(capsys, "train", "lenet5", "--max-steps", 2, *TINY, "--output", unrecorded, "--no-record")
    assert code == 0 and (unrecorded / "metrics.json").is_file()
    code, text, _ = zoo_cli(capsys, "train", "lenet5", "--output", unrecorded, "--resume", "--results", store)
    assert code == 0 and "its record was missing from the results store and is now" in text
    assert len(results.load(store=store)) == 2
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--output", unrecorded, "--resume", "--results", store)
    assert code == 1 and "has already finished; its record is in" in one_line(err)


# ---------------------------------------------------------------------------------------------------------------
# Full disk


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    path.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize("size, epochs, failing", [
    ("3M", 5, r"checkpoints?/(best-)?epoch-(?P<epoch>\d{4})\.weights\.h5"),  # a later epoch's checkpoint
    ("2500K", 1, r"(model|best)\.weights\.h5"),  # the final weights
])
def test_a_full_disk_is_one_line_and_keeps_the_last_checkpoint(tmp_path, size, epochs, failing):
    """A LeNet-5 checkpoint is 0.78 MB (weights and Adam's moments) beside the best epoch's weights, 0.28 MB, and
    each write wants 1.8 MB free with its margin: a 3 MB disk holds one or two checkpoints and refuses the next, a
    2.5 MB one a single checkpoint and no final weights."""
    with tmpfs(tmp_path / "disk", size) as disk:
        out = disk / "run"
        proc = run_zoo("train", "lenet5", "--epochs", epochs, *TINY, "--output", out, "--results",
                       tmp_path / "results")
        line = one_line(proc.stderr)  # never a segfault, never an h5py traceback
        assert proc.returncode == 1, proc.stderr
        refused = re.match(rf"zoo: error: cannot write {re.escape(str(out))}/{failing}: ", line)
        assert refused, line
        assert " free there" in line and "--resume" in line
        kept = state(out)
        failed_epoch = refused.groupdict().get("epoch")  # None: the final weights, after the last checkpoint
        assert kept["epoch"] == (int(failed_epoch) - 1 if failed_epoch else epochs) >= 1
        assert (checkpoint_folder(out) / kept["weights"]).is_file() and not (out / "metrics.json").exists()
        assert not [p for p in out.rglob("*") if "partial" in p.name]


# Past the free-space check (a disk filled by someone else meanwhile) HDF5 is left holding a file it could not
# flush; unless atomic_path lets go of it, h5py's destructor prints a traceback for each later try to close it and
# the library's clean-up at exit crashes (rc 139). The case runs in a child process that exits normally, so both
# would show: in its stderr and its exit status.
FULL_DISK_ANYWAY = """
import os, sys
from zoo import io as zio

with zio.quiet_stderr():  # TensorFlow's start-up lines, which are not what this checks
    import keras
model = keras.Sequential([keras.Input((512,)), keras.layers.Dense(1024)])  # 2 MB of weights
disk = sys.argv[1]
try:
    with zio.atomic_path(os.path.join(disk, "big.weights.h5")) as tmp:
        model.save_weights(tmp)
    print("WROTE")
except zio.WriteError as e:
    print("WRITE_ERROR", e)
print("LEFT", sorted(os.listdir(disk)))
"""


def test_a_write_that_hits_a_full_disk_anyway_is_one_write_error_and_nothing_else(tmp_path):
    """HDF5's ENOSPC is one WriteError naming the file and the free space; the partial file is gone; no h5py
    destructor traceback follows, and the process exits cleanly."""
    with tmpfs(tmp_path / "disk", "1M") as disk:
        proc = subprocess.run([sys.executable, "-c", FULL_DISK_ANYWAY, str(disk)], capture_output=True, text=True,
                              timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert lines[0].startswith(f"WRITE_ERROR cannot write {disk}/big.weights.h5: no space left on the device; "), lines
    assert lines[0].endswith(" free there") and lines[1] == "LEFT []"


# ---------------------------------------------------------------------------------------------------------------
# Checkpoints, divergence, leftovers


def interrupted_run(out: Path, monkeypatch, *, epochs: int, stop_after: int):
    """A run Ctrl-C'd right after the checkpoint of epoch `stop_after`."""
    from zoo.training.rundir import RunDir

    original = RunDir.save_checkpoint

    def save_then_interrupt(self, model, run_state, *args, **kwargs):
        original(self, model, run_state, *args, **kwargs)
        if run_state.epoch == stop_after:
            raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "save_checkpoint", save_then_interrupt)
    with pytest.raises(zoo.errors.Interrupted) as caught:
        zoo.train("lenet5", epochs=epochs, steps_per_epoch=2, xla=False, output=out, record=False, verbose=False)
    monkeypatch.setattr(RunDir, "save_checkpoint", original)
    return caught.value


def test_a_corrupt_latest_checkpoint_is_named_and_the_previous_one_used(tmp_path, monkeypatch, capsys):
    out = tmp_path / "run"
    stopped = interrupted_run(out, monkeypatch, epochs=4, stop_after=3)
    assert stopped.exit_code == 130 and str(stopped).startswith("interrupted by SIGINT; the checkpoint of epoch 3")
    folder = checkpoint_folder(out)
    checkpoints = sorted(p.name for p in folder.iterdir() if not p.name.startswith("best-"))  # best-val weights
    assert checkpoints == ["epoch-0002.json", "epoch-0002.weights.h5", "epoch-0003.json", "epoch-0003.weights.h5",
                           "state.json"]  # the last two
    newest = folder / "epoch-0003.weights.h5"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # cut short, as by a crash
    leftovers = [out / ".partial-1-abcdef-model.weights.h5", folder / "partial-7.weights.h5"]
    for path in leftovers:
        path.write_bytes(b"killed mid-write")

    code, _, err = zoo_cli(capsys, "train", "lenet5", "--output", out, "--resume", "--lr", "0.001", "--no-record")
    assert code == 1 and "--lr may change on --resume only after the run diverged" in one_line(err)
    code, text, _ = zoo_cli(capsys, "train", "lenet5", "--output", out, "--resume", "--no-record")
    assert code == 0
    assert f"checkpoint {newest} (epoch 3) is unreadable (" in text and "resuming from the previous one (epoch 2)" in text
    assert "from the checkpoint of epoch 2 (step 4)" in text
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4]
    assert not any(p.exists() for p in leftovers)


def test_after_a_divergence_resume_with_a_lower_lr_is_allowed_recorded_and_finishes(tmp_path, capsys):
    """Adam at lr 1e6: epoch 1's loss is computed before its one update, so it looks fine, but that update leaves
    weights of about 1e6 and epoch 2's first loss is inf. The epoch-1 checkpoint is therefore no good point to
    continue from (it re-diverged at any lr): the message says so, and --resume --lr X starts over from the
    initial weights (the seed rebuilds them), trains at the new lr and finishes, the override recorded."""
    out, store = tmp_path / "run", tmp_path / "results"
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--lr", "1e6", "--steps-per-epoch", 1, "--epochs", 4,
                           "--no-xla", "--output", out, "--results", store)
    line = one_line(err)
    assert code == 3 and "loss inf at epoch 2, step 2; the checkpoint of epoch 1 already gives that loss" in line
    assert f"start over from the initial weights with a lower one: --resume --output {out} --lr X" in line
    assert json.loads((out / "diverged.json").read_text())["lr"] == 1e6
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--output", out, "--resume", "--lr", "1e-4", "--epochs", 5)
    assert code == 1 and "epochs 4 there, 5 asked" in one_line(err)  # only --lr is freed, nothing else
    code, text, err = zoo_cli(capsys, "train", "lenet5", "--output", out, "--resume", "--lr", "1e-3",
                              "--results", store)
    assert code == 0, err
    note = "--lr 0.001 set on --resume after the divergence at epoch 2 (was 1e+06)"
    assert f"lr 0.001 ({note})" in text and f"note: {note}" in text and "from the initial weights" in text
    config = json.loads((out / "config.json").read_text())
    assert config["lr"] == 1e-3 and note in config["notes"] and config["lr_rule"] == note
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4] and max(float(r["lr"]) for r in rows) <= 1e-3
    [record] = results.load(store=store)
    assert record["lr"] == 1e-3 and note in record["notes"] and record["steps"] == 4
    assert not (out / "diverged.json").exists()


def test_a_nan_mid_epoch_resumes_from_the_last_checkpoint_at_the_new_lr(tmp_path, monkeypatch, capsys):
    """A NaN later in an epoch spares the checkpoint the epoch started from: --resume --lr continues from it."""
    from zoo.training.callbacks import StepMonitor

    original = StepMonitor.on_train_batch_end

    def nan_in_epoch_2(self, batch, logs=None):  # the loss of epoch 2's second batch comes out NaN
        if self.epoch == 1 and batch == 1:
            logs = {**(logs or {}), "loss": float("nan")}
        return original(self, batch, logs)

    out = tmp_path / "run"
    monkeypatch.setattr(StepMonitor, "on_train_batch_end", nan_in_epoch_2)
    code, _, err = zoo_cli(capsys, "train", "lenet5", "--epochs", 3, *TINY, "--output", out, "--no-record")
    assert code == 3 and "loss nan at epoch 2, step 4; the last good checkpoint (epoch 1) is kept" in one_line(err)
    assert json.loads((out / "diverged.json").read_text())["resume_from"] == 1
    monkeypatch.setattr(StepMonitor, "on_train_batch_end", original)
    code, text, err = zoo_cli(capsys, "train", "lenet5", "--output", out, "--resume", "--lr", "1e-4",
                              "--no-record")
    assert code == 0, err
    assert "from the checkpoint of epoch 1 (step 2)" in text
    rows = list(csv.DictReader((out / "history.csv").open()))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert float(rows[0]["lr"]) > 1e-4 >= float(rows[1]["lr"]) > 0  # epoch 1 at the recipe's lr, 2 at the new one


def test_stale_staging_folders_are_removed_and_live_ones_kept(tmp_path):
    from zoo.data.prepare import remove_stale_staging

    stale, live = tmp_path / ".zoo-prepare-mnist-old", tmp_path / ".zoo-prepare-mnist-live"
    for folder in (stale, live):
        (folder / "mnist").mkdir(parents=True)
        os.utime(folder, (time.time() - 3600,) * 2)
    with zio.FolderLock(live):
        os.utime(live, (time.time() - 3600,) * 2)
        assert remove_stale_staging(tmp_path) == [stale]
    assert not stale.exists() and live.is_dir()


# ---------------------------------------------------------------------------------------------------------------
# Options: nan, inf, zero, negatives; clamps; quiet commands


@pytest.mark.parametrize("args, message", [
    (["train", "lenet5", "--epochs", "nan"], "--epochs must be a finite number, got nan"),
    (["train", "lenet5", "--epochs", "inf"], "--epochs must be a finite number, got inf"),
    (["train", "lenet5", "--epochs", "0"], "--epochs must be positive, got 0"),
    (["train", "lenet5", "--epochs", "-1"], "--epochs must be positive, got -1"),
    (["train", "lenet5", "--lr", "nan"], "--lr must be a finite number, got nan"),
    (["train", "lenet5", "--lr", "inf"], "--lr must be a finite number, got inf"),
    (["train", "lenet5", "--lr", "0"], "--lr must be positive, got 0"),
    (["train", "lenet5", "--lr", "-0.1"], "--lr must be positive, got -0.1"),
    (["train", "lenet5", "--batch-size", "0"], "--batch-size must be positive, got 0"),
    (["train", "lenet5", "--batch-size", "-8"], "--batch-size must be positive, got -8"),
    (["train", "lenet5", "--max-steps", "0"], "--max-steps must be positive, got 0"),
    (["train", "lenet5", "--steps-per-epoch", "-3"], "--steps-per-epoch must be positive, got -3"),
    (["train", "lenet5", "--steps-per-execution", "0"], "--steps-per-execution must be positive, got 0"),
    (["train", "lenet5", "--image-size", "0"], "--image-size must be positive, got 0"),
    (["train", "lenet5", "--seed", "-1"], "--seed must be 0 or more, got -1"),
    (["eval", "lenet5", "--weights", "w.weights.h5", "--limit", "0"], "'--limit': 0 is not in the range x>=1"),
    (["eval", "lenet5", "--weights", "w.weights.h5", "--limit", "-1"], "'--limit': -1 is not in the range x>=1"),
    (["eval", "lenet5", "--weights", "w.weights.h5", "--batch-size", "0"], "'--batch-size': 0 is not in the range"),
    (["eval", "lenet5", "--weights", "w.weights.h5", "--image-size", "0"], "'--image-size': 0 is not in the range"),
    (["summary", "lenet5", "--input-shape", "32,32,0"], "'--input-shape': every side must be positive"),
    (["summary", "lenet5", "--classes", "0"], "'--classes': 0 is not in the range x>=1"),
])
def test_bad_numbers_are_one_line_naming_the_option(args, message, capsys):
    code, _, err = zoo_cli(capsys, *args)
    assert code != 0 and message in one_line(err), err


def test_the_python_api_checks_the_same(tmp_path):
    with pytest.raises(zoo.training.OptionError, match="--limit must be a positive whole number, got -1"):
        zoo.evaluate("lenet5", tmp_path / "w.weights.h5", limit=-1)
    with pytest.raises(zoo.training.OptionError, match="--epochs must be a finite number, got nan"):
        zoo.train("lenet5", epochs=float("nan"))


def test_steps_per_execution_above_an_epoch_is_clamped_with_a_note():
    from zoo.training.config import resolve

    config = resolve("lenet5", steps_per_execution=1000)  # the sample: a pass is a few dozen batches of 128
    per_pass = config.train_examples // config.batch_size
    assert per_pass < 1000 and (config.steps_per_epoch, config.steps_per_execution) == (per_pass, per_pass)
    assert f"--steps-per-execution 1000 is more than an epoch's {per_pass} steps: {per_pass} used" in config.notes


def test_cpu_only_commands_print_nothing_on_stderr():
    proc = run_zoo("summary", "lenet5")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def small_idx_release(folder: Path, n_train=6400, n_test=100) -> Path:
    """A Fashion-MNIST release in the official IDX format, small (the recipe holds 6,000 training images out for
    validation): what `zoo data prepare --from` imports."""
    from zoo.data import sources

    rng = np.random.default_rng(13)
    folder.mkdir()
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, magic, array in (("images-idx3", sources.IMAGES_MAGIC, rng.integers(0, 256, (n, 28, 28))),
                                   ("labels-idx1", sources.LABELS_MAGIC, np.arange(n) % 10)):
            array = array.astype(np.uint8)
            header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
            (folder / f"{prefix}-{kind}-ubyte").write_bytes(header + array.tobytes())
    return folder


def test_commands_that_read_tfds_print_nothing_into_a_pipe(tmp_path):
    """prepare, train, eval and data bench on a real TFDS dataset, stderr a pipe, TF's log level as a user has it
    (not set): no progress-bar escape codes, no cuInit or oneDNN line, no AutoGraph warning; nothing at all."""
    raw, data, out = small_idx_release(tmp_path / "raw"), tmp_path / "data", tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}

    def quietly(*args):
        proc = subprocess.run([sys.executable, str(ROOT / "cli.py"), *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert "\x1b" not in proc.stderr and "cuInit" not in proc.stderr, proc.stderr
        assert proc.stderr == "", proc.stderr

    quietly("data", "prepare", "fashion_mnist", "--from", raw, "--data-dir", data)
    quietly("train", "lenet5", "--dataset", "fashion_mnist", "--data-dir", data, "--max-steps", 2, "--batch-size",
            32, "--no-xla", "--output", out, "--no-record")
    quietly("eval", "lenet5", "--weights", out / "model.weights.h5", "--data-dir", data)
    quietly("data", "bench", "fashion_mnist", "--seconds", 1, "--batch-size", 32, "--data-dir", data)


@pytest.mark.parametrize("terminal", [False, True])
def test_tfds_progress_bars_show_only_on_a_terminal(terminal, monkeypatch):
    from tensorflow_datasets.core.utils import tqdm_utils

    from zoo.data.pipeline import import_tfds

    class Stderr(io.StringIO):
        def isatty(self):
            return terminal

    tfds = import_tfds()
    tfds.enable_progress_bar()  # TFDS' own default
    monkeypatch.setattr(sys, "stderr", Stderr())
    try:
        import_tfds()
        assert isinstance(tqdm_utils.tqdm(range(2)), tqdm_utils.EmptyTqdm) is not terminal
    finally:
        tfds.enable_progress_bar()


# ---------------------------------------------------------------------------------------------------------------
# SIGKILL at random points, many times (slow)


def committed_epoch(out: Path) -> int:
    """The epoch of the checkpoint state.json commits (0: none yet)."""
    try:
        return json.loads((checkpoint_folder(out) / "state.json").read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        return 0


def partials(folder: Path, containing: str = "") -> list[str]:
    """Temporary files of atomic writes in progress (or cut short) in `folder`."""
    try:
        return [n for n in os.listdir(folder) if n.startswith(zio.PARTIAL_PREFIX) and containing in n]
    except OSError:
        return []


class Watched:
    """A `zoo train` process and what can be seen of its progress: its output lines (read by threads, with the
    time each arrived) and its run folder."""

    def __init__(self, *args):
        self.proc = zoo_process(*args)
        self.spawned = time.monotonic()
        self.lines: list[tuple[float, str]] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self._read, args=(self.proc.stdout, self.lines, True), daemon=True),
                        threading.Thread(target=self._read, args=(self.proc.stderr, self.err, False), daemon=True)]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, into: list, timed: bool):
        for line in stream:
            into.append((time.monotonic(), line) if timed else line)

    def saw(self, pattern: str) -> bool:
        return any(re.match(pattern, line) for _, line in list(self.lines))

    def when(self, pattern: str) -> float | None:
        return next((t for t, line in list(self.lines) if re.match(pattern, line)), None)

    def finish(self, timeout=300) -> str:
        self.proc.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout=30)
        return "".join(line for _, line in self.lines)


STARTED = r"  output: "  # the announcement's last line: training (or the final evaluation) begins


def epoch_line(epoch: int) -> str:
    return rf"epoch\s+{epoch}/"


def kill_when(watched: Watched, ready, delay: float = 0.0, until=lambda: False, timeout: float = 300) -> bool:
    """SIGKILL the process `delay` seconds after `ready()` holds, or sooner once `until()` does (the phase aimed at
    is ending), both polled every 2 ms; False when the process ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if watched.proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "".join(line for _, line in watched.lines) + "".join(watched.err)
        time.sleep(0.002)
    due = time.monotonic() + delay
    while time.monotonic() < due and not until():
        time.sleep(0.002)
    if watched.proc.poll() is not None:
        return False
    watched.proc.send_signal(signal.SIGKILL)
    return True


def where_it_died(out: Path, store: Path, watched: Watched, epochs: int) -> str:
    """Where a killed run was, judged from what it left (the process is dead, so the folder holds still)."""
    committed = committed_epoch(out)
    if (out / "metrics.json").exists():
        return "after metrics.json"
    if list(store.glob("*.json")):
        return "between the results record and metrics.json"
    if partials(out, "weights.h5"):
        return "writing the final weights"
    if partials(checkpoint_folder(out)):
        return "writing a checkpoint"
    if partials(out):
        return "writing history.csv or config.json"
    if not watched.saw(STARTED):
        return "start-up (before training or the final evaluation began)"
    if committed == epochs:
        return "final evaluation" if not list(out.glob("*.weights.h5")) else "after the final weights"
    rows = len(list(csv.DictReader((out / "history.csv").open()))) if (out / "history.csv").exists() else 0
    if rows < committed:
        return "between a checkpoint's commit and history.csv"
    return "inside an epoch (training or validation)"


def plan_kill(rng: random.Random, committed: int, epochs: int, finals: list[str]) -> tuple[str, int]:
    """The next kill: a phase and, while epochs remain, the epoch it aims at (one or two past the committed one)."""
    if committed < epochs:
        phase = rng.choices(["start-up", "mid-epoch", "checkpoint write", "right after a commit"], [1, 3, 3, 2])[0]
        return phase, min(epochs, committed + rng.randint(1, 2))
    return (finals.pop(0) if finals else "none"), epochs


def trigger(phase: str, target: int, start: int, out: Path, store: Path, watched: Watched, timings: dict,
            rng: random.Random) -> dict:
    """kill_when's arguments to kill `watched` in `phase` (aimed at epoch `target`): what to wait for, a random
    delay after it, drawn from the uninterrupted run's timings, and the sign that the phase is ending."""
    folder = lambda: checkpoint_folder(out)  # noqa: E731 - the folder's name may change at the first lock
    recorded = lambda: bool(list(store.glob("*.json"))) or (out / "metrics.json").exists()  # noqa: E731
    final_write = lambda: bool(partials(out, "weights.h5")) or recorded()  # noqa: E731
    if phase == "start-up":
        return dict(ready=lambda: True, delay=rng.uniform(0.2, 1.0) * timings["start-up"],
                    until=lambda: watched.saw(STARTED))
    if phase == "mid-epoch":
        began = STARTED if target == start + 1 else epoch_line(target - 1)
        return dict(ready=lambda: watched.saw(began), delay=rng.uniform(0.05, 0.95) * timings["epoch"],
                    until=lambda: bool(partials(folder(), f"epoch-{target:04d}")) or committed_epoch(out) >= target)
    if phase == "checkpoint write":
        stem = f"epoch-{target:04d}"
        return dict(ready=lambda: bool(partials(folder(), stem)) or committed_epoch(out) >= target,
                    delay=rng.uniform(0, 0.02))
    if phase == "right after a commit":
        return dict(ready=lambda: committed_epoch(out) >= target)
    if phase == "final evaluation":  # a resumed process evaluates once it has started; a training one, after
        # its last commit
        began = (lambda: watched.saw(STARTED)) if start == target else (lambda: committed_epoch(out) >= target)
        return dict(ready=began, delay=rng.uniform(0, 1.0) * timings["final evaluation"], until=final_write)
    if phase == "final weights":
        return dict(ready=final_write, delay=rng.uniform(0, 0.02))
    if phase == "results record":
        return dict(ready=recorded)
    if phase == "metrics.json":
        return dict(ready=lambda: (out / "metrics.json").exists())
    return dict(ready=lambda: False)  # "none": let it finish


def clean_timings(watched: Watched, out: Path, epochs: int) -> dict:
    """How long the phases of the uninterrupted run took: the kills' random delays are drawn from these."""
    marks = {}
    while watched.proc.poll() is None:
        now = time.monotonic()
        if committed_epoch(out) == epochs and "committed" not in marks:
            marks["committed"] = now
        if partials(out, "weights.h5") and "final weights" not in marks:
            marks["final weights"] = now
        time.sleep(0.002)
    watched.finish()
    started = watched.when(STARTED)
    ends = [watched.when(epoch_line(e)) for e in range(1, epochs + 1)]
    return {"start-up": started - watched.spawned, "epoch": (ends[-1] - started) / epochs,
            "final evaluation": marks.get("final weights", time.monotonic()) - marks.get("committed", ends[-1])}


def validate_finished(out: Path, steps: int, store: Path) -> dict:
    """Every output of a finished run: metrics.json, history.csv (one row per epoch, consecutive), the one results
    record equal to metrics.json, config.json of the same run, every weights file loadable and the evaluated one
    reproducing the record, no partial file, no divergence mark, no checkpoint weights left."""
    metrics = json.loads((out / "metrics.json").read_text())
    assert (metrics["steps"], metrics["status"]) == (steps, "finished")
    rows = list(csv.DictReader((out / "history.csv").open()))
    per_epoch = steps // len(rows)
    assert [int(r["epoch"]) for r in rows] == list(range(1, len(rows) + 1))
    assert [int(r["step"]) for r in rows] == list(range(per_epoch, steps + 1, per_epoch))
    assert all(float(r["loss"]) < 10 for r in rows)
    [record] = results.load(store=store)
    assert record == metrics and json.loads((out / "config.json").read_text())["run_id"] == metrics["run_id"]
    weights = sorted(out.glob("*.weights.h5"))
    evaluated = out / "best.weights.h5" if (out / "best.weights.h5").exists() else out / "model.weights.h5"
    assert evaluated in weights
    for path in weights:  # each loads into the model (zoo.evaluate builds it and loads the file)
        scores = zoo.evaluate("lenet5", path)
        if path == evaluated:
            assert scores.top1 == pytest.approx(metrics["test_accuracy"], abs=1e-6)
    assert not [p for p in out.rglob("*") if p.name.startswith(zio.PARTIAL_PREFIX) or "partial-" in p.name]
    assert not (out / "diverged.json").exists()
    left = list(checkpoint_folder(out).glob("*.weights.h5"))
    assert not left, left
    return metrics


@pytest.mark.slow
def test_sigkill_at_random_points_then_resume(tmp_path):
    """Kill `zoo train` with SIGKILL over and over, each kill timed by the process's own progress (its output and
    its run folder, polled every 2 ms): at start-up, inside an epoch, while a checkpoint is written, right after
    its commit, during the final evaluation, while the final weights are written, between the results record and
    metrics.json, right at metrics.json; `--resume` after each. The finished run must be whole (every output
    validated), have lost no committed epoch, follow the uninterrupted run's schedule step for step, and match
    its test accuracy within noise. Prints the figures docs/testing.md reports."""
    epochs, per_epoch = 20, 10
    args = ["train", "lenet5", "--epochs", epochs, "--steps-per-epoch", per_epoch, "--no-xla"]
    clean_out, clean_store = tmp_path / "clean", tmp_path / "clean-results"
    began = time.monotonic()
    timings = clean_timings(Watched(*args, "--output", clean_out, "--results", clean_store), clean_out, epochs)
    clean_wall = time.monotonic() - began
    clean = validate_finished(clean_out, epochs * per_epoch, clean_store)

    rng = random.Random(13)
    out, store = tmp_path / "killed", tmp_path / "killed-results"
    finals = ["final evaluation", "start-up", "final weights", "final evaluation", "results record",
              "final weights", "final evaluation", "metrics.json"]
    rounds = []  # (phase aimed at, epoch, committed before, committed after, where it died)
    kills, landed, lost, resumes = 0, {}, 0, 0
    began = time.monotonic()
    while not (out / "metrics.json").exists():
        start = committed_epoch(out)
        resume = ["--resume"] if (out / "config.json").exists() and list(checkpoint_folder(out).glob("*.json")) else []
        phase, target = plan_kill(rng, start, epochs, finals)
        watched = Watched(*args, "--output", out, "--results", store, *resume)
        killed = kill_when(watched, **trigger(phase, target, start, out, store, watched, timings, rng))
        log = watched.finish()
        assert watched.proc.returncode == (-signal.SIGKILL if killed else 0), log + "".join(watched.err)
        if resume:
            resumes += 1
            resumed_from = re.search(r"from the checkpoint of epoch (\d+)", log)
            lost += start - (int(resumed_from.group(1)) if resumed_from else start)  # committed, then trained again
        where = where_it_died(out, store, watched, epochs) if killed else "finished"
        rounds.append((phase, target, start, epochs if (out / "metrics.json").exists() else committed_epoch(out),
                       where))
        if killed:
            kills += 1
            landed[where] = landed.get(where, 0) + 1
        assert kills < 100, "the run never finished"
    killed_wall = time.monotonic() - began
    cut_short = ("inside an epoch (training or validation)", "writing a checkpoint")
    epoch_starts = sum(after - before + (where in cut_short) for _, _, before, after, where in rounds)
    if landed.get("after metrics.json"):  # the checkpoints may be left: the next process to take the folder clears
        again = run_zoo(*args, "--output", out, "--results", store, "--resume")
        assert again.returncode == 1 and "has already finished" in one_line(again.stderr)
    killed_run = validate_finished(out, epochs * per_epoch, store)
    clean_lr = [r["lr"] for r in csv.DictReader((clean_out / "history.csv").open())]
    assert [r["lr"] for r in csv.DictReader((out / "history.csv").open())] == clean_lr  # the schedule, exactly

    print(f"\nSIGKILL figures ({epochs} epochs x {per_epoch} steps of LeNet-5 on the embedded sample): {kills} kills, "
          f"{resumes} resumes, {epoch_starts - epochs} epochs started again (each kill inside an epoch repeats at "
          f"most that one), {lost} committed epochs lost; test accuracy {100 * killed_run['test_accuracy']:.2f}% "
          f"killed vs {100 * clean['test_accuracy']:.2f}% uninterrupted (same seed); wall {killed_wall:.0f} s vs "
          f"{clean_wall:.0f} s")
    for where, count in sorted(landed.items(), key=lambda item: -item[1]):
        print(f"  {count:3d} x {where}")
    for phase, target, before, after, where in rounds:
        print(f"    aimed: {phase} (epoch {target}); committed {before} -> {after}; died: {where}")
    assert kills >= 25 and lost == 0
    assert len(landed) >= 6  # kills really landed in many different places
    assert abs(killed_run["test_accuracy"] - clean["test_accuracy"]) < 0.05
