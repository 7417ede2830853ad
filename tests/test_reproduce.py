"""`zoo reproduce`: the plan is read from the registry, resumable and idempotent."""

import json
import re
import os
import subprocess
import sys

import pytest

from zoo import reproduce, results
from zoo.registry import registry

STUDY = registry().studies["fashion_mnist"]


def test_plan_follows_the_registry(tmp_path):
    planned = reproduce.plan("fashion_mnist", runs_root=tmp_path, results=tmp_path / "store")
    assert [p.model for p in planned] == STUDY.models
    for p in planned:
        spec = registry().get(p.model)
        assert p.recipe == spec.recipe_for("fashion_mnist")
        assert p.epochs == registry().recipe(p.recipe).epochs
        assert p.status == "new"
        assert p.output == tmp_path / "fashion_mnist-cpu" / p.model
    full = reproduce.plan("fashion_mnist", budget="full", families=["resnet"], runs_root=tmp_path)
    assert [(p.model, p.epochs) for p in full] == [("resnet20", 4 * registry().recipe("resnet_fmnist").epochs)]


def test_finished_runs_are_recorded_then_skipped(tmp_path):
    store, runs = tmp_path / "store", tmp_path / "runs"
    (first,) = reproduce.plan("fashion_mnist", families=["lenet5"], runs_root=runs, results=store)
    first.output.mkdir(parents=True)
    record = {"run_id": "r1", "model": "lenet5", "dataset": "fashion_mnist", "recipe": first.recipe,
              "epochs": first.epochs, "status": "finished", "test_accuracy": 0.91}
    (first.output / "metrics.json").write_text(json.dumps(record))
    assert reproduce.plan("fashion_mnist", families=["lenet5"], runs_root=runs, results=store)[0].status == "record"
    lines = []
    done = reproduce.reproduce("fashion_mnist", families=["lenet5"], runs_root=runs, results=store,
                               echo=lines.append)
    assert done[0].status == "done" and lines[2].startswith("[1/1] lenet5 record:")
    assert "run 1 of 1: lenet5: its finished folder's record added" in lines[3]
    assert results.load(dataset="fashion_mnist", store=store)[0]["run_id"] == "r1"
    assert reproduce.plan("fashion_mnist", families=["lenet"], runs_root=runs, results=store)[0].status == "done"
    # the same model with other epochs (another budget) is a different run
    assert reproduce.plan("fashion_mnist", "full", ["lenet"], runs_root=runs, results=store)[0].status == "new"


def test_interrupted_runs_resume_and_count_what_is_left(tmp_path):
    (run,) = reproduce.plan("fashion_mnist", families=["resnet20"], runs_root=tmp_path)
    assert run.remaining_s == STUDY.seconds["resnet20"]
    (run.output / "checkpoints").mkdir(parents=True)
    (run.output / "checkpoints" / "state.json").write_text(json.dumps({"epoch": 5, "step": 2105}))
    (resumed,) = reproduce.plan("fashion_mnist", families=["resnet20"], runs_root=tmp_path)
    assert resumed.status == "resume" and resumed.done_epochs == 5
    assert resumed.remaining_s == pytest.approx(STUDY.seconds["resnet20"] * (1 - 5 / run.epochs))
    (run.output / "checkpoints").rename(run.output / "checkpoint")  # a run folder of the older layout
    assert reproduce.plan("fashion_mnist", families=["resnet20"], runs_root=tmp_path)[0].status == "resume"


def test_estimates_add_up_to_the_study_eta():
    planned = reproduce.plan("fashion_mnist", budget="full")  # four times the epochs
    assert set(STUDY.seconds) == set(STUDY.models) and STUDY.timed_on
    seconds, unknown = reproduce.remaining_seconds(planned)
    assert unknown == [] and seconds == pytest.approx(4 * sum(STUDY.seconds.values()))
    assert reproduce.remaining_seconds(planned, speed=0.5)[0] == pytest.approx(seconds / 2)


@pytest.mark.parametrize("args, message", [
    (("imagenet_zoo",), "unknown study 'imagenet_zoo' (known: fashion_mnist)"),
    (("fashion_mnist", "weekend"), "unknown budget 'weekend'"),
    (("fashion_mnist", "cpu", ["transformer"]), "--families: transformer not in this study"),
])
def test_bad_input(args, message):
    with pytest.raises(reproduce.ReproduceError, match=re.escape(message)):
        reproduce.plan(*args)


def test_cli_dry_run_shows_the_estimates_without_tensorflow(tmp_path):
    from zoo.formatting import duration

    code = ("import sys, cli\ncode = cli.main()\n"
            "assert not {'tensorflow', 'keras'} & set(sys.modules), 'TensorFlow imported'\nsys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", code, "reproduce", "fashion_mnist", "--dry-run", "--families",
                           "resnet,densenet", "--runs", str(tmp_path), "--results", str(tmp_path / "s")],
                          capture_output=True, text=True, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    total = duration(STUDY.seconds["resnet20"] + STUDY.seconds["densenet_bc100_k12"])
    assert lines[0].startswith(f"fashion_mnist (cpu): 2 runs, 2 to train, 0 done or only to record; study ETA "
                               f"{total} (about ")
    assert lines[1] == f"  estimates: the registry's, measured on {STUDY.timed_on}"
    assert lines[2:] == [
        f"[1/2] resnet20 new: recipe resnet_fmnist, {registry().recipe('resnet_fmnist').epochs:g} epochs, about "
        f"{duration(STUDY.seconds['resnet20'])}, {tmp_path}/fashion_mnist-cpu/resnet20",
        f"[2/2] densenet_bc100_k12 new: recipe densenet_fmnist, {registry().recipe('densenet_fmnist').epochs:g} "
        f"epochs, about {duration(STUDY.seconds['densenet_bc100_k12'])}, "
        f"{tmp_path}/fashion_mnist-cpu/densenet_bc100_k12"]
    assert not (tmp_path / "fashion_mnist-cpu").exists()


def test_a_reproduction_says_run_k_of_n_with_the_study_eta(tmp_path, monkeypatch):
    """The training itself is stubbed out here (tests/test_training.py trains for real): what is checked is the
    announcement of each run and the ETA that follows the measured speed."""
    import zoo.training

    trained = []
    monkeypatch.setattr(zoo.training, "train", lambda model, **kw: trained.append((model, kw["resume"])))
    lines = []
    done = reproduce.reproduce("fashion_mnist", families=["lenet5", "resnet20"], runs_root=tmp_path,
                               results=tmp_path / "s", echo=lines.append, verbose=False)
    assert trained == [("lenet5", False), ("resnet20", False)] and all(run.status == "done" for run in done)
    announced = [line for line in lines if line.startswith("run ")]
    assert [line.split(";")[0] for line in announced] == ["run 1 of 2: lenet5 (new)", "run 2 of 2: resnet20 (new)"]
    assert "study ETA" in announced[0] and "study ETA" in announced[1]
    assert lines[-1].startswith("fashion_mnist (cpu): all 2 runs done (this machine took")
