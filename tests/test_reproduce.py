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
    assert done[0].status == "done" and lines[0].startswith("[lenet5] record:")
    assert results.load(dataset="fashion_mnist", store=store)[0]["run_id"] == "r1"
    assert reproduce.plan("fashion_mnist", families=["lenet"], runs_root=runs, results=store)[0].status == "done"
    # the same model with other epochs (another budget) is a different run
    assert reproduce.plan("fashion_mnist", "full", ["lenet"], runs_root=runs, results=store)[0].status == "new"


def test_interrupted_runs_resume(tmp_path):
    (run,) = reproduce.plan("fashion_mnist", families=["resnet20"], runs_root=tmp_path)
    (run.output / "checkpoint").mkdir(parents=True)
    (run.output / "checkpoint" / "state.json").write_text("{}")
    assert reproduce.plan("fashion_mnist", families=["resnet20"], runs_root=tmp_path)[0].status == "resume"


@pytest.mark.parametrize("args, message", [
    (("imagenet_zoo",), "unknown study 'imagenet_zoo' (known: fashion_mnist)"),
    (("fashion_mnist", "weekend"), "unknown budget 'weekend'"),
    (("fashion_mnist", "cpu", ["transformer"]), "--families: transformer not in this study"),
])
def test_bad_input(args, message):
    with pytest.raises(reproduce.ReproduceError, match=re.escape(message)):
        reproduce.plan(*args)


def test_cli_dry_run(tmp_path):
    code = "import sys, cli; sys.exit(cli.main())"
    proc = subprocess.run([sys.executable, "-c", code, "reproduce", "fashion_mnist", "--dry-run", "--families",
                           "resnet,densenet", "--runs", str(tmp_path), "--results", str(tmp_path / "s")],
                          capture_output=True, text=True, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        f"[resnet20] new: recipe resnet_fmnist, {registry().recipe('resnet_fmnist').epochs:g} epochs, "
        f"{tmp_path}/fashion_mnist-cpu/resnet20",
        f"[densenet_bc100_k12] new: recipe densenet_fmnist, {registry().recipe('densenet_fmnist').epochs:g} "
        f"epochs, {tmp_path}/fashion_mnist-cpu/densenet_bc100_k12"]
    assert not (tmp_path / "fashion_mnist-cpu").exists()
