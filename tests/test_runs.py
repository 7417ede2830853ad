"""`zoo runs`: the results store listed (table and JSON, filtered) and `zoo runs rm` (atomic, unknown ids named
with the close ones), without TensorFlow."""

import json
import subprocess
import sys

import pytest

from zoo import results

RUNS = [  # run_id, model, dataset, complete, accuracy
    ("lenet5-fashion_mnist-20260101-000001-aaaa", "lenet5", "fashion_mnist", True, 0.9143),
    ("lenet5-fashion_mnist-20260102-000001-bbbb", "lenet5", "fashion_mnist", False, 0.7012),
    ("resnet20-cifar10-20260103-000001-cccc", "resnet20", "cifar10", True, 0.9159),
]


@pytest.fixture
def store(tmp_path):
    folder = tmp_path / "results"
    for i, (run_id, model, dataset, complete, accuracy) in enumerate(RUNS):
        run_dir = tmp_path / "runs" / run_id
        if i != 2:
            run_dir.mkdir(parents=True)  # the third run's folder is gone
        results.save({"run_id": run_id, "model": model, "dataset": dataset, "recipe": "r", "epochs": 1,
                      "test_accuracy": accuracy, "status": "finished", "complete": complete,
                      "finished": f"2026-01-0{i + 1}T10:00:00+00:00", "output_dir": str(run_dir)}, folder)
    return folder


def zoo(*args, cwd=None):
    """The real CLI in a fresh interpreter; returns (exit code, stdout, stderr, whether TF/Keras got imported)."""
    script = ("import sys, cli\ncode = cli.main(sys.argv[1:])\n"
              "print('HEAVY', sorted(m for m in ('tensorflow', 'keras') if m in sys.modules), file=sys.stderr)\n"
              "sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, cwd=cwd)
    err, heavy = proc.stderr.rsplit("HEAVY ", 1)
    return proc.returncode, proc.stdout, err, heavy.strip() != "[]"


def test_list_table_json_and_filters(store, root):
    code, out, err, heavy = zoo("runs", "--results", store, cwd=root)
    assert code == 0 and not heavy, err
    lines = out.splitlines()
    assert lines[0].split() == ["id", "model", "dataset", "recipe", "complete", "test", "acc.", "%", "date", "folder"]
    assert [line.split()[0] for line in lines[1:]] == [r[0] for r in RUNS]  # oldest first
    assert lines[1].split()[4:7] == ["yes", "91.43", "2026-01-01"] and lines[2].split()[4] == "partial"
    assert lines[3].rstrip().endswith("(gone)")
    code, out, _, heavy = zoo("runs", "--results", store, "--model", "lenet5", "--json", cwd=root)
    rows = json.loads(out)
    assert code == 0 and not heavy and [r["id"] for r in rows] == [RUNS[0][0], RUNS[1][0]]
    assert set(rows[0]) == {"id", "model", "dataset", "recipe", "complete", "accuracy", "date", "folder",
                            "folder_exists"}
    assert rows[1]["complete"] is False and rows[0]["accuracy"] == pytest.approx(91.43)
    code, out, _, _ = zoo("runs", "--results", store, "--dataset", "cifar10", "--json", cwd=root)
    assert [r["id"] for r in json.loads(out)] == [RUNS[2][0]]
    code, out, err, _ = zoo("runs", "--results", store, "--dataset", "mnist", cwd=root)
    assert code == 0 and out == "" and err.strip() == f"zoo: no runs on mnist in the results store {store}"
    code, _, err, _ = zoo("runs", "--results", store.parent / "nowhere", cwd=root)
    assert code == 1 and err.count("\n") == 1 and "does not exist" in err


def test_rm_removes_one_record_and_names_close_ids(store, root):
    gone = RUNS[1][0]
    code, out, err, heavy = zoo("runs", "rm", gone, "--results", store, cwd=root)
    assert code == 0 and not heavy and f"removed {gone}" in out, err
    assert [r["run_id"] for r in results.load(store=store)] == [RUNS[0][0], RUNS[2][0]]
    assert not list(store.glob(".*"))  # nothing half-removed or temporary left
    code, _, err, _ = zoo("runs", "--results", store, "rm", gone, cwd=root)  # --results before the subcommand
    assert code == 1 and err.count("\n") == 1
    assert f"no run {gone!r} in the results store {store}; did you mean {RUNS[0][0]}" in err
    code, _, err, _ = zoo("runs", "rm", "resnet20-cifar10", "--results", store, cwd=root)
    assert code == 1 and f"did you mean {RUNS[2][0]}?" in err
    with pytest.raises(results.UnknownRunError, match="the store is empty"):
        results.remove("x", store.parent / "empty")
    with pytest.raises(results.UnknownRunError):
        results.remove("../results/" + RUNS[0][0], store)  # never a path outside the store
    assert len(results.load(store=store)) == 2
