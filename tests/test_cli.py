"""The `zoo` command line, run as a real subprocess."""

import json
import os
import subprocess
import sys
import time

import pytest

import zoo


def zoo_cli(*args, check=True, env=None):
    proc = subprocess.run([sys.executable, "-c", "import sys, cli; sys.exit(cli.main())", *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_list_table_and_json():
    out = zoo_cli("list").stdout
    assert "lenet5_original" in out and "60,000" in out and "61,706" in out
    rows = json.loads(zoo_cli("list", "lenet*", "--json").stdout)
    assert [r["name"] for r in rows] == zoo.list_models("lenet*")
    assert {"lenet5", "lenet5_original"} <= {r["name"] for r in rows}
    assert rows[0] == {"name": "lenet5", "family": "lenet", "year": 1998, "params": 61706, "macs": 416520,
                       "input": [32, 32, 1], "classes": 10}
    assert [r["name"] for r in json.loads(zoo_cli("list", "--family", "lenet", "--json").stdout)] == \
        zoo.list_models(family="lenet")


def test_list_weights_shows_every_name_whole_in_a_pipe():
    """The names are what a user copies into --weights: the 120-column table of a pipe wraps the preprocessing,
    never a name or its source."""
    entries = json.loads(zoo_cli("list", "--weights", "--json").stdout)
    lines = zoo_cli("list", "--weights").stdout.splitlines()
    firsts = [line.split()[:2] for line in lines[1:] if line.strip() and not line.startswith(" " * 10)]
    assert firsts == [[e["weights"], e["source"]] for e in entries]
    assert "resnet20.fashion_mnist_long" in {e["weights"] for e in entries}
    assert max(len(line) for line in lines) <= 120


def test_info_text_and_json():
    out = zoo_cli("info", "lenet5_original").stdout
    assert "Gradient-Based Learning Applied to Document Recognition" in out
    assert "60,000" in out and "0.95" in out and "sec. III.C" in out
    data = json.loads(zoo_cli("info", "lenet5_original", "--json").stdout)
    assert data["params"] == 60000 and data["macs"] == 326520
    assert data["results"][0]["value"] == 0.95
    assert data["recipe_details"]["name"] == data["recipe"]


def test_summary_prints_params_and_macs():
    out = zoo_cli("summary", "lenet5").stdout
    assert "conv1 (Conv2D)" in out
    assert "lenet5: 61,706 trainable parameters, 416,520 MACs" in out
    out = zoo_cli("summary", "lenet5", "--input-shape", "64,64,1", "--classes", "3").stdout
    assert "at 64x64x1" in out


@pytest.mark.parametrize("args, message, code", [
    (["info", "lenet6"], "zoo: error: unknown model 'lenet6'; did you mean lenet5", 1),
    (["summary", "lenet5_original", "--input-shape", "28,28,1"],
     "zoo: error: lenet5_original: input 28x28 is too small; the minimum input size is 32x32", 1),
    (["list", "nothing*"], "zoo: error: no model matches 'nothing*'", 1),
    (["summary", "lenet5", "--input-shape", "32,32"], "expected three numbers H,W,C", 2),
    (["frobnicate"], "No such command 'frobnicate'", 2),
    (["list", "--json", "--markdown"], "--json and --markdown exclude each other", 2),
])
def test_errors_are_one_line_with_nonzero_exit(args, message, code):
    proc = zoo_cli(*args, check=False)
    assert proc.returncode == code
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([l for l in proc.stderr.splitlines() if l.startswith("zoo: error")]) <= 1


def test_version_and_help_everywhere():
    assert zoo_cli("--version").stdout.strip() == f"zoo, version {zoo.__version__}"
    import cli

    for name in cli.cli.commands:
        assert "Usage: zoo" in zoo_cli(name, "--help").stdout


def test_list_and_info_do_not_import_tensorflow():
    code = ("import sys, cli\n"
            "for args in (['list'], ['list', '--json'], ['info', 'lenet5'], ['info', 'lenet5', '--json']):\n"
            "    assert cli.main(args) == 0\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_list_is_fast():
    zoo_cli("list")  # warm the file cache
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        zoo_cli("list")
        best = min(best, time.perf_counter() - start)
    # 0.24-0.33 s on a quiet 2-core machine, 1.0 s with both cores busy training; importing TensorFlow alone
    # takes longer than the bound (the import itself is checked exactly by test_list_and_info_do_not_import_tensorflow).
    assert best < 1.5, f"zoo list took {best:.2f}s"
