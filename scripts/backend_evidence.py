"""The JAX path against the TensorFlow path on this CPU (issue 17, item 2): the same `zoo train` recipe run once
under TensorFlow (tf.data, TFDS) and once under Keras' JAX backend with TensorFlow blocked (the numpy PyDataset
path reading the IDX files), alternating backend per model, each in its own process. Writes one JSON per run
under docs/runs/backends/ and prints a markdown table (test accuracy, training images/s, wall time, load average).

    python scripts/backend_evidence.py                        # lenet5 (full recipe) and resnet20 (--epochs 2)
    python scripts/backend_evidence.py --model lenet5 --epochs 20 --out docs/runs/backends

Needs the prepared TFDS Fashion-MNIST (`zoo data prepare fashion_mnist --from /usr/share/datasets/fashion-mnist`)
and its raw IDX files in <data dir>/raw/fashion_mnist/ for the JAX path (docs/gpu.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from zoo import backend  # noqa: E402  (no TensorFlow: the blocker is for the child processes)

CURVES = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "images_per_s")
DEFAULT_RUNS = [("lenet5", None), ("resnet20", 2.0)]  # (model, epochs override): ResNet-20 under JAX on 2 cores
# runs at ~1/4 of TF's speed, so its full 15-epoch recipe (44 min under TF) would take ~3 h: 2 epochs of it here.


def train(model: str, kind: str, epochs, work: Path, data_dir: Path, seed: int) -> dict:
    """One `zoo train` in a fresh process; the record it writes to its own results store."""
    out, store = work / f"{model}-{kind}", work / f"store-{model}-{kind}"
    env = dict(os.environ, KERAS_BACKEND=kind, TF_CPP_MIN_LOG_LEVEL="3", ZOO_DATA_DIR=str(data_dir))
    if kind == "jax":
        env = backend.block_tensorflow(work / "no-tf", env)
    command = [sys.executable, "-m", "zoo.cli", "train", model, "--dataset", "fashion_mnist", "--seed", str(seed),
               "--output", str(out), "--results", str(store), "--quiet"]
    if epochs is not None:
        command += ["--epochs", str(epochs)]
    load_before = os.getloadavg()[0]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{model} under {kind} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    record = json.loads(next(store.rglob("*.json")).read_text())
    with open(out / "history.csv") as f:  # the per-epoch curves, to compare more than one final number
        history = [{key: float(value) for key, value in row.items() if value and key in CURVES}
                   for row in csv.DictReader(f)]
    return {"model": model, "backend": kind, "epochs": record.get("epochs"), "recipe": record.get("recipe"),
            "seed": seed, "train_split": record.get("train_split"), "complete": record.get("complete"),
            "test_accuracy": record.get("test_accuracy"), "best_val_accuracy": record.get("best_val_accuracy"),
            "train_images_per_s": record.get("train_images_per_s"), "process_wall_s": round(wall, 1),
            "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2),
            "device": record.get("device"), "tf_version": record.get("tf_version"),
            "keras_version": record.get("keras_version"), "command": "zoo " + " ".join(command[3:]),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "history": history}


def markdown(rows: list[dict]) -> str:
    lines = ["| model | epochs | backend | test accuracy | training images/s | process wall time | load avg |",
             "|---|---:|---|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['epochs']:g} | {r['backend']} | {100 * r['test_accuracy']:.2f}% | "
                     f"{r['train_images_per_s']:,.0f} | {r['process_wall_s']:,.0f} s | "
                     f"{r['load_average_before']:.1f}-{r['load_average_after']:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model (repeatable; default lenet5 and resnet20)")
    parser.add_argument("--epochs", type=float, help="epochs for every --model (default: per DEFAULT_RUNS)")
    parser.add_argument("--seed", type=int, action="append", help="seed (repeatable; default 0): the run-to-run "
                        "noise of one backend is the spread over seeds")
    parser.add_argument("--backend", action="append", choices=("tensorflow", "jax"),
                        help="only these backends (default both)")
    parser.add_argument("--data-dir", type=Path, default=Path(os.environ.get("ZOO_DATA_DIR", "~/tensorflow_datasets"))
                        .expanduser())
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "runs" / "backends")
    args = parser.parse_args()
    runs = [(m, args.epochs) for m in args.model] if args.model else DEFAULT_RUNS
    if not (args.data_dir / "raw" / "fashion_mnist").exists():
        raise SystemExit(f"{args.data_dir / 'raw' / 'fashion_mnist'}: missing (the JAX path reads the IDX files "
                         f"there: ln -s /usr/share/datasets/fashion-mnist {args.data_dir / 'raw' / 'fashion_mnist'})")
    args.out.mkdir(parents=True, exist_ok=True)
    rows, seeds = [], args.seed or [0]
    with tempfile.TemporaryDirectory(prefix="zoo-backends-") as tmp:
        for i, (model, epochs, seed) in enumerate((m, e, s) for m, e in runs for s in seeds):
            order = ("tensorflow", "jax") if i % 2 == 0 else ("jax", "tensorflow")  # alternate who runs first
            for kind in (k for k in order if not args.backend or k in args.backend):
                row = train(model, kind, epochs, Path(tmp) / f"seed{seed}", args.data_dir, seed)
                name = f"{model}-{kind}" + (f"-seed{seed}" if seed else "")
                (args.out / f"{name}.json").write_text(json.dumps(row, indent=2) + "\n")
                rows.append(row)
                print(markdown([row]).splitlines()[-1], flush=True)
    print(markdown(rows))


if __name__ == "__main__":
    main()
