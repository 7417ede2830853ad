#!/usr/bin/env python
"""Ship trained weights: copy a finished `zoo train` run's model.weights.h5 into zoo/pretrained/, measure it with
`zoo eval` (the full test split and the embedded sample's), and print the registry entry to paste under the model.

    ZOO_DATA_DIR=/work/zoo-data .venv/bin/zoo train lenet5 --dataset fashion_mnist --output /work/runs/lenet5-fm \\
        --results docs/runs
    .venv/bin/python scripts/make_weights.py lenet5=/work/runs/lenet5-fm [resnet20=/work/runs/resnet20-fm ...]
    .venv/bin/python scripts/make_weights.py --readme          # zoo/pretrained/README.md from the registry
    .venv/bin/python scripts/make_weights.py --strip --readme  # drop optimizer state older files still hold

A run is reused, never retrained here: train it first (the command above; its record lands in docs/runs, which
the entry names). Files over --max-mb are refused: those variants get a `source: train` entry instead.
The README is regenerated from registry.yaml's shipped entries (sha256, size, accuracy, provenance), so the
registry stays the one place the facts live.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import zoo  # noqa: E402
from zoo import pretrained  # noqa: E402
from zoo.io import atomic_path  # noqa: E402

RUNS = ROOT / "docs" / "runs"


def commit_at(started: str) -> str:
    """The checkout's commit when the run started (the last one before it): the code the weights were trained with
    (a record does not name it)."""
    return subprocess.run(["git", "log", "-1", "--format=%h", "--abbrev=12", f"--before={started}"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout.strip()


def measured(model: str, weights: "pretrained.Weights", dataset: str) -> dict:
    """`zoo eval MODEL --weights PATH --dataset D --json` on D's evaluation split, as the registry records it, with
    the preprocessing of the run the weights come from (not the one a bare file would be guessed to have: the
    sample's own statistics instead of the training set's)."""
    from zoo.training.evaluate import evaluate

    path = weights.path
    result = evaluate(model, weights, dataset=dataset)
    relative = path.relative_to(ROOT)
    return {"dataset": dataset, "split": result.split, "top1": round(100 * result.top1, 2),
            "top5": round(100 * result.top5, 2) if result.top5 is not None else None,
            "examples": result.examples,
            "command": f"zoo eval {model} --weights {relative} --dataset {dataset}"}


def copy_model_weights(source: Path, target: Path) -> None:
    """The run's weights file without its `optimizer` group: a compiled model's save_weights also writes the SGD
    momentum or Adam moments (as many floats again, or twice as many), which nobody loading the weights uses
    (DenseNet-BC-100's file: 7.3 MB with them, 4.0 MB without). Keras reads the rest as it wrote it."""
    import h5py

    with h5py.File(source, "r") as src, h5py.File(target, "w") as dst:
        for key in src:
            if key != "optimizer":
                src.copy(key, dst)
        for name, value in src.attrs.items():
            dst.attrs[name] = value


def layer_values(path: Path) -> dict:
    """Every model variable a weights file holds (its optimizer's aside), by its path in the file."""
    import h5py

    values = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, item: values.__setitem__(name, item[()])
                     if isinstance(item, h5py.Dataset) and not name.startswith("optimizer") else None)
    return values


def strip_shipped() -> list[str]:
    """Rewrite each shipped file that still holds its optimizer's state without it (copy_model_weights), once
    every model variable is checked to be the same bytes, and put the new sha256 and size into registry.yaml
    (a text edit of the entry's two lines). Returns what changed, a line a file."""
    import numpy as np

    from zoo.results import write_text_atomic

    changed, registry_path = [], ROOT / "registry.yaml"
    text = registry_path.read_text()
    reg = zoo.load_registry()
    for name in reg.names():
        for tag, entry in reg.models[name].weights.items():
            path = pretrained.PRETRAINED_DIR / (entry.file or "")
            if entry.source != "shipped" or "optimizer" not in _top_groups(path):
                continue
            with atomic_path(path) as tmp:
                copy_model_weights(path, tmp)
                before, after = layer_values(path), layer_values(Path(tmp))
                if before.keys() != after.keys() or not all(np.array_equal(before[k], after[k]) for k in before):
                    raise SystemExit(f"{path}: the copy's variables differ from the file's; nothing was changed")
            sha, size = pretrained.sha256_of(path), path.stat().st_size
            for old, new in ((f'sha256: "{entry.sha256}"', f'sha256: "{sha}"'),
                             (f"size_bytes: {entry.size_bytes}", f"size_bytes: {size}")):
                if text.count(old) != 1:
                    raise SystemExit(f"registry.yaml: {old!r} is not in exactly one place; fix {name}.{tag} by hand")
                text = text.replace(old, new)
            changed.append(f"{name}.{tag}: {entry.size_bytes / 1e6:.2f} MB -> {size / 1e6:.2f} MB, sha256 {sha}")
    write_text_atomic(registry_path, text)
    zoo.load_registry()  # validates the result
    return changed


def _top_groups(path: Path) -> list[str]:
    import h5py

    with h5py.File(path, "r") as f:
        return list(f.keys())


def ship(model: str, run_dir: Path, tag: str, max_mb: float) -> dict:
    config = json.loads((run_dir / "config.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    if config["model"] != model:
        raise SystemExit(f"{run_dir} is a run of {config['model']}, not {model}")
    record = RUNS / f"{metrics['run_id']}.json"
    if not record.is_file():
        raise SystemExit(f"{record} is missing: train with --results docs/runs (or `zoo train --resume`)")
    # The weights the run's record reports on: the best-validation epoch's where the run validated (its test
    # accuracy is that checkpoint's), else the last epoch's.
    source = run_dir / "best.weights.h5"
    if not source.is_file():
        source = run_dir / "model.weights.h5"
    target = pretrained.PRETRAINED_DIR / f"{model}.{tag}.weights.h5"
    with atomic_path(target) as tmp:
        copy_model_weights(source, tmp)
    size = target.stat().st_size
    if size > max_mb * 1e6:
        target.unlink()
        raise SystemExit(f"{source} holds {size / 1e6:.1f} MB of weights, over {max_mb} MB: give {model} a "
                         "`source: train` entry")
    spec = zoo.get_spec(model)
    prep = pretrained.pipeline_preprocessing(spec, config["dataset"], config["image_size"])
    weights = pretrained.Weights(model, None, target, config["dataset"], prep, config["classes"])
    accuracy = [measured(model, weights, config["dataset"]), measured(model, weights, f"{config['dataset']}_sample")]
    command = train_command(spec, config["dataset"], config["recipe"])
    return {
        "source": "shipped", "file": target.name, "sha256": pretrained.sha256_of(target), "size_bytes": size,
        "dataset": config["dataset"], "classes": config["classes"],
        "preprocessing": prep.model_dump(exclude_defaults=True), "accuracy": accuracy,
        "provenance": f"trained here: `{command}` (recipe {config['recipe']}, {metrics['epochs']:g} epochs, seed "
                      f"{metrics['seed']}), run {metrics['run_id']}",
        "recipe": config["recipe"], "commit": commit_at(config["started"]), "record": str(record.relative_to(ROOT)),
        "train_command": command,
    }


def train_command(spec, dataset: str, recipe: str) -> str:
    """The `zoo train` command that makes such a run: --recipe only where it is not the model's for the dataset."""
    named = "" if recipe == spec.recipe_for(dataset) else f" --recipe {recipe}"
    return f"zoo train {spec.name} --dataset {dataset}{named}"


def train_entry(model: str, dataset: str) -> dict:
    """A `source: train` entry for a variant not shipped (its file is too large, or its run not made yet): the
    command that makes the file, and the metadata `weights=PATH` then loads it with (the run zoo train resolves)."""
    from zoo.training.config import resolve_run
    from zoo.training.options import RunOptions

    spec = zoo.get_spec(model)
    config = resolve_run(spec, RunOptions.of(dataset=dataset, max_steps=1)).config
    prep = pretrained.pipeline_preprocessing(spec, dataset, config.image_size)
    command = f"zoo train {model} --dataset {dataset}"
    return {"source": "train", "file": "model.weights.h5", "dataset": dataset, "classes": config.classes,
            "preprocessing": prep.model_dump(exclude_defaults=True),
            "provenance": f"not shipped: `{command}` (recipe {config.recipe}) writes it to the run folder",
            "recipe": config.recipe, "train_command": command}


def as_yaml(model: str, tag: str, entry: dict) -> str:
    """The entry as registry.yaml writes it: one flow mapping per line where it is short."""
    def flow(value) -> str:
        return json.dumps(value, ensure_ascii=False).replace('"', "") if isinstance(value, dict) else json.dumps(value)

    lines = [f"  # {model}:", "    weights:", f"      {tag}:"]
    for key, value in entry.items():
        if key == "accuracy":
            lines.append("        accuracy:")
            for item in value:
                inner = ", ".join(f"{k}: {json.dumps(v) if isinstance(v, str) else v}" for k, v in item.items()
                                  if v is not None)
                lines.append(f"          - {{{inner}}}")
        elif key == "preprocessing":
            lines.append(f"        preprocessing: {flow(value)}")
        else:
            lines.append(f"        {key}: {json.dumps(value) if isinstance(value, str) else value}")
    return "\n".join(lines)


def write_entry(model: str, tag: str, block: str) -> None:
    """Put the entry into registry.yaml under `models.<model>.weights.<tag>` (replacing that tag's lines if
    present, else at the end of the model's entry): a text edit, so comments and layout elsewhere stay."""
    from zoo.results import write_text_atomic

    path = ROOT / "registry.yaml"
    lines = path.read_text().splitlines(keepends=True)
    start = lines.index(f"  {model}:\n", lines.index("models:\n"))  # the model's entry, not a family of that name
    end = next(i for i in range(start + 1, len(lines)) if lines[i].strip() and not lines[i].startswith("    "))
    while not lines[end - 1].strip():
        end -= 1
    body = block.splitlines(keepends=True)[1:]  # without the '# model:' comment line
    body = [line if line.endswith("\n") else line + "\n" for line in body]
    weights = next((i for i in range(start, end) if lines[i] == "    weights:\n"), None)
    if weights is None:
        lines[end:end] = body
    else:
        block_end = next((i for i in range(weights + 1, end) if not lines[i].startswith("      ")), end)
        tag_at = next((i for i in range(weights, block_end) if lines[i] == f"      {tag}:\n"), None)
        if tag_at is None:  # another tag's block: this one goes at its end, before the model's next key
            lines[block_end:block_end] = body[1:]
        else:
            stop = next((i for i in range(tag_at + 1, block_end) if not lines[i].startswith("        ")), block_end)
            lines[tag_at:stop] = body[1:]
    write_text_atomic(path, "".join(lines))
    zoo.load_registry()  # validates the result


README_HEAD = """# Shipped weights

Trained here on the Fashion-MNIST training split (all 60,000 images, or 54,000 where the run held 6,000 out to
validate, as every run now does: the record's `train_split` says which), by `zoo train` runs whose records are in
`docs/runs`; copied here by `scripts/make_weights.py`, which also measured the accuracies with `zoo eval`. Every file
is checked against its sha256 when it is loaded (`zoo.build(NAME, weights=TAG)`, `zoo predict NAME --weights TAG`).
Generated from registry.yaml by `scripts/make_weights.py --readme`: do not edit by hand.

| weights | file | size | sha256 | test top-1 (full) | sample test top-1 | recipe | commit | record |
|---|---|---:|---|---:|---:|---|---|---|
"""


def readme() -> str:
    rows = []
    reg = zoo.load_registry()
    for name in reg.names():
        for tag, entry in reg.models[name].weights.items():
            if entry.source != "shipped":
                continue
            full = next((a for a in entry.accuracy if not a.dataset.endswith("_sample")), None)
            sample = next((a for a in entry.accuracy if a.dataset.endswith("_sample")), None)
            cells = [f"`{name}.{tag}`", f"`{entry.file}`", f"{(entry.size_bytes or 0) / 1e6:.2f} MB",
                     f"`{entry.sha256}`", f"{full.top1:.2f}%" if full else "", f"{sample.top1:.2f}%" if sample else "",
                     entry.recipe or "", f"`{entry.commit}`" if entry.commit else "",
                     f"[{Path(entry.record).name}](../../{entry.record})" if entry.record else ""]
            rows.append("| " + " | ".join(cells) + " |")
    notes = ("\nProvenance per file and the preprocessing each expects: `zoo info NAME` or registry.yaml. Larger "
             "variants are not shipped; their entries give the `zoo train` command that makes the same file.\n")
    return README_HEAD + "\n".join(rows) + "\n" + notes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", metavar="MODEL=RUN_DIR")
    parser.add_argument("--tag", default="fashion_mnist")
    parser.add_argument("--max-mb", type=float, default=5.0)
    parser.add_argument("--readme", action="store_true", help="regenerate zoo/pretrained/README.md")
    parser.add_argument("--strip", action="store_true",
                        help="rewrite shipped files that still hold optimizer state without it (registry updated)")
    parser.add_argument("--write", action="store_true", help="write the entries into registry.yaml")
    parser.add_argument("--train-entry", nargs="*", default=[], metavar="MODEL",
                        help="write `source: train` entries (how to make the file) for these models")
    args = parser.parse_args()
    if args.strip:
        for line in strip_shipped() or ["every shipped file holds its model's variables alone"]:
            print(line)
    for item in args.runs:
        model, _, run_dir = item.partition("=")
        block = as_yaml(model, args.tag, ship(model, Path(run_dir), args.tag, args.max_mb))
        print(block)
        if args.write:
            write_entry(model, args.tag, block)
    for model in args.train_entry:
        block = as_yaml(model, args.tag, train_entry(model, args.tag))
        print(block)
        if args.write:
            write_entry(model, args.tag, block)
    if args.readme:
        from zoo.results import write_text_atomic

        write_text_atomic(pretrained.PRETRAINED_DIR / "README.md", readme())


if __name__ == "__main__":
    main()
