"""Reproduced tables: the architectures (from the registry) and the training results (from the results store)
beside the papers' published numbers, as Markdown, CSV or JSON.

Imports no TensorFlow: it reads `registry.yaml` and the results store's JSON files only.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from . import formatting
from . import results as results_store
from .choices import TABLE_FORMATS
from .errors import ZooError
from .registry import Result, Spec, registry

__all__ = ["FORMATS", "TOP1_METRICS", "PAPER_METRICS", "TableError", "Column", "text_columns", "render",
           "rich_table", "giga_macs", "load", "results_dir",
           "best_runs", "accuracy_of", "published_top1", "published_beside", "headline_result", "describe",
           "is_multi_crop", "short_protocol", "run_protocol", "run_init", "dataset_label", "historic_order",
           "historic_rank",
           "architecture_rows", "render_architectures", "results_rows", "render_results", "ARCHITECTURES_COMMAND",
           "REGENERATE_ALL_COMMAND"]

FORMATS = TABLE_FORMATS  # md, csv, json (zoo.choices)
ARCHITECTURES_COMMAND = "zoo table architectures --output docs/architectures.md"
REGENERATE_ALL_COMMAND = "zoo table docs"

DATASET_LABELS = {"imagenet2012": "ImageNet", "cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "mnist": "MNIST",
                  "fashion_mnist": "Fashion-MNIST", "svhn": "SVHN"}
METRIC_LABELS = {"top1_error": "top-1 error", "top5_error": "top-5 error", "error": "error",
                 "top1_accuracy": "top-1 accuracy", "top5_accuracy": "top-5 accuracy"}
FINISHED = ("finished", "completed")  # run statuses that count; others (running, failed, ...) are left out
TOP1_METRICS = ("top1_error", "error", "top1_accuracy")
PAPER_METRICS = ("top1_error", "error")  # how the papers report; torchvision's numbers are top1_accuracy
# Protocols that average several crops/scales/models: our evaluation is one centre crop, so these compare less well.
CROP_COUNT = re.compile(r"\b([2-9]|\d{2,})-crops?\b|\b\d+ crops\b", re.I)  # '10-crop', '144 crops'
MULTI_VIEW = re.compile(r"\bmulti-?(crop|scale|view)|\bdense\b|\bensemble|\bfully[- ]conv", re.I)
SINGLE_CROP = re.compile(r"\bsingle[- ](\d+(px)?[- ])?(crop|view)\b|\b(1|one)[- ]crop\b|\bcent(er|re)[- ]crop\b",
                         re.I)
WITHOUT_AUGMENTATION = re.compile(r"\bno (augmentation|distortions?)\b|\bwithout (augmentation|distortions?)\b",
                                  re.I)


class TableError(ZooError):
    """A table that cannot be made as asked (unknown format, empty results store...)."""


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


# ---------------------------------------------------------------------------------------------------------------
# Generic rendering: a table is a list of row dicts and the columns to show.


@dataclass(frozen=True)
class Column:
    """One column: `key` names the row field (the CSV/JSON column, its raw value); `header` and `fmt` make its text
    cell (Markdown, terminal). `header=None`: a data-only column, left out of the text tables. `cell`: a text cell
    built from the whole row, for cells that join fields (bench's 'p10-p90'). `optional`: the text tables leave
    the column out when no row has a value (bench's GPU memory on a CPU). `whole`: the terminal table never
    shortens or wraps its cells (names a user copies into a command); the other columns give way."""

    key: str
    header: Optional[str]
    fmt: Callable[[Any], str] = str  # text of a (non-None) value
    align: str = "left"
    cell: Optional[Callable[[dict], str]] = None
    optional: bool = False
    whole: bool = False

    def text(self, row: dict) -> str:
        if row.get(self.key) is None:
            return ""
        return self.cell(row) if self.cell else self.fmt(row[self.key])


def text_columns(rows: list[dict], columns: list[Column]) -> list[Column]:
    """The columns a text table (Markdown, terminal) shows for these rows."""
    return [c for c in columns if c.header is not None
            and not (c.optional and all(row.get(c.key) is None for row in rows))]


def render(rows: list[dict], columns: list[Column], fmt: str, preamble: str = "") -> str:
    """`md`: preamble + a GitHub table of the text cells; `csv`/`json`: the raw values of every column."""
    if fmt not in FORMATS:
        raise TableError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "json":
        return json.dumps([{c.key: row.get(c.key) for c in columns} for row in rows], indent=2,
                          ensure_ascii=False) + "\n"
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([c.key for c in columns])
        for row in rows:
            writer.writerow(["" if row.get(c.key) is None else row.get(c.key) for c in columns])
        return out.getvalue()
    shown = text_columns(rows, columns)
    rule = {"left": "---", "right": "---:", "center": ":---:"}
    lines = ["| " + " | ".join(c.header for c in shown) + " |",
             "|" + "|".join(rule[c.align] for c in shown) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(c.text(row).replace("|", "\\|") for c in shown) + " |")
    return (preamble + "\n" if preamble else "") + "\n".join(lines) + "\n"


def rich_table(rows: list[dict], columns: list[Column], **options):
    """The terminal's table: the same text columns and cells as the Markdown one, as a rich Table (`options`:
    rich.table.Table's, e.g. a title). Cells are plain text (no rich markup)."""
    from rich.table import Table
    from rich.text import Text

    shown = text_columns(rows, columns)
    table = Table(box=None, header_style="bold", **options)
    for c in shown:
        widest = max([len(c.header)] + [len(c.text(row)) for row in rows]) if c.whole else None
        table.add_column(c.header, justify=c.align, no_wrap=c.whole, min_width=widest)
    for row in rows:
        table.add_row(*(Text(c.text(row)) for c in shown))
    return table


def giga_macs(giga: float) -> str:
    """The text of a value already in GMACs (rows hold GMACs, as their JSON/CSV give them; formatting.gmacs takes
    MACs)."""
    return formatting.gmacs(giga * 1e9)


# ---------------------------------------------------------------------------------------------------------------
# Published numbers


def accuracy_of(result: Result) -> float:
    """The published number as an accuracy in percent (errors are converted: accuracy = 100 - error)."""
    return result.value if result.metric.endswith("accuracy") else 100.0 - result.value


def is_multi_crop(protocol: Optional[str]) -> bool:
    """'10-crop', 'multi-scale dense', '144 crops' are; 'single 224 crop', 'centre crop' and no protocol aren't."""
    protocol = protocol or ""
    return bool(CROP_COUNT.search(protocol)) or (bool(MULTI_VIEW.search(protocol))
                                                 and not SINGLE_CROP.search(protocol))


def short_protocol(protocol: Optional[str]) -> str:
    """'10 crops (4 corners + center...)' -> '10-crop'; 'multi-scale dense evaluation' -> 'multi-scale'."""
    protocol = protocol or ""
    count = CROP_COUNT.search(protocol)
    if count:
        return re.match(r"\d+", count.group(0)).group(0) + "-crop"
    view = MULTI_VIEW.search(protocol)
    return view.group(0).lower() if view else protocol


def published_top1(spec: Spec, dataset: str, augmented: Optional[bool] = None,
                   metrics: tuple[str, ...] = TOP1_METRICS, protocol: Optional[str] = None) -> Optional[Result]:
    """The published top-1 number for `dataset` to set beside a run or plot.

    When `protocol` is given (the run's test protocol, zoo.choices.EVAL_PROTOCOLS), the numbers measured that
    way (the result's `eval_protocol`), where the registry has one. When `augmented` is known (the run's recipe
    augments its training data or not), results whose protocol matches it. Then single-crop numbers (a run's
    own test is one centre crop), the best of them; with only multi-crop/-scale/dense numbers, the least boosted
    one (the lowest accuracy: extra views only raise it).
    `metrics=PAPER_METRICS` keeps the papers' own error rates (torchvision's re-measured accuracies are
    recorded as top1_accuracy)."""
    candidates = [r for r in spec.published(dataset) if r.metric in metrics]
    if not candidates:
        return None
    if protocol is not None:
        same = [r for r in candidates if r.eval_protocol == protocol]
        candidates = same or candidates
    if augmented is not None:
        matching = [r for r in candidates if bool(WITHOUT_AUGMENTATION.search(r.protocol or "")) != augmented]
        candidates = matching or candidates
    single = [r for r in candidates if not is_multi_crop(r.protocol)]
    return max(single, key=accuracy_of) if single else min(candidates, key=accuracy_of)


def headline_result(spec: Spec) -> Optional[Result]:
    """The paper's headline number: its ImageNet top-1 error if it gives one, else its top-1 error on the
    variant's default dataset, else on the first dataset it reports; else the paper's top-5 error (GoogLeNet
    reports only that); else any top-1 number the registry holds (torchvision's, for variants that are not in a
    paper; a known benchmark row), else the first result."""
    datasets = ["imagenet2012", spec.dataset] + [r.dataset for r in spec.results]
    for metrics in (PAPER_METRICS, ("top5_error",), TOP1_METRICS):
        for dataset in datasets:
            best = published_top1(spec, dataset, metrics=metrics)
            if best is not None:
                return best
    return spec.results[0] if spec.results else None


def describe(result: Optional[Result]) -> Optional[str]:
    if result is None:
        return None
    protocol = f" ({result.protocol})" if result.protocol else ""
    value = formatting.general(result.value)
    return f"{dataset_label(result.dataset)} {METRIC_LABELS[result.metric]} {value}%{protocol}"


# ---------------------------------------------------------------------------------------------------------------
# zoo table architectures


ARCHITECTURE_COLUMNS = [
    Column("name", "model"), Column("family", "family"), Column("year", "year", align="right"),
    Column("input", "input"), Column("params", "params", formatting.integer, "right"),
    Column("gmacs", "GMACs", giga_macs, "right"),
    Column("depth", "depth", align="right"), Column("headline", "headline result"),
    Column("paper_source", "source"), Column("reference_source", "reference"),
    Column("reference_params", "reference params", formatting.integer, "right"), Column("check", "params = reference"),
]


def historic_order(names: list[str]) -> list[str]:
    """Families in the order they appeared (their earliest paper), each family's variants together."""
    reg = registry()
    first_year: dict[str, int] = {}
    for name in names:
        spec = reg.get(name)
        first_year[spec.family] = min(first_year.get(spec.family, spec.paper.year), spec.paper.year)
    position = {name: i for i, name in enumerate(reg.names())}  # natural order: resnet18 before resnet101
    return sorted(names, key=lambda n: (first_year[reg.get(n).family], reg.get(n).family, position[n]))


def historic_rank() -> dict[str, int]:
    """Every registered variant's position in historic order (see `historic_order`), to sort rows or points by."""
    return {name: i for i, name in enumerate(historic_order(registry().names()))}


def architecture_rows(names: Optional[list[str]] = None) -> list[dict]:
    reg = registry()
    rows = []
    for name in historic_order(names or reg.names()):
        spec = reg.get(name)
        headline = headline_result(spec)
        rows.append({
            "name": spec.name, "family": reg.families[spec.family].title, "year": spec.paper.year,
            "input": f"{spec.input.size}x{spec.input.size}x{spec.input.channels}", "params": spec.params,
            "gmacs": spec.macs / 1e9, "depth": spec.depth, "headline": describe(headline),
            "paper_source": headline.source if headline else None,
            "reference_source": spec.reference.source, "reference_params": spec.reference.params,
            "check": "✓" if spec.params == spec.reference.params
            else f"✗ ({spec.params - spec.reference.params:+,})",
        })
    return rows


def render_architectures(fmt: str = "md") -> str:
    preamble = "\n".join([
        "# Architectures",
        "",
        f"<!-- Generated by `{ARCHITECTURES_COMMAND}` from registry.yaml: do not edit by hand. "
        f"`{REGENERATE_ALL_COMMAND}` regenerates every generated document. -->",
        "",
        "Every variant in the registry: its paper's year, default input, trainable parameters and multiply-"
        "accumulates per image (conv and dense layers, `zoo.count_macs`), depth as the paper counts it, the "
        "headline result (the paper's top-1 error, single-crop where it gives one; torchvision's accuracy for "
        "variants no paper reports) and the published parameter count the "
        "build must equal (checked by tests/test_models.py).",
        "",
    ])
    return render(architecture_rows(), ARCHITECTURE_COLUMNS, fmt, preamble)


# ---------------------------------------------------------------------------------------------------------------
# The results store


def results_dir(store: Optional[str | os.PathLike] = None) -> Path:
    """--results DIR, else $ZOO_RESULTS_DIR, else ~/.zoo/results."""
    return results_store.store_dir(store)


def load(dataset: Optional[str] = None, model: Optional[str] = None,
         store: Optional[str | os.PathLike] = None) -> list[dict]:
    """Every run record in the results store (zoo.results.load), optionally one dataset's or model's; a store
    that does not exist is an error here (a table of nothing would hide a wrong --results path)."""
    root = results_dir(store)
    if not root.is_dir():
        raise TableError(f"results store {root} does not exist (train something with `zoo train`, or pass "
                         f"--results DIR)")
    return results_store.load(dataset=dataset, model=model, store=root)


def best_runs(runs: list[dict], include_partial: bool = False) -> list[dict]:
    """The finished run with the highest test accuracy for each (dataset, model, recipe, initialisation, training
    split, test protocol): runs that did their whole recipe only (zoo.results.is_complete) unless
    `include_partial`; a run on all training images and one that held validation images out are different
    protocols, so each has its row, as has a run of the paper's initialisation beside one of Keras'. Families in
    historic order, as docs/architectures.md lists them."""
    best: dict[tuple, dict] = {}
    for run in runs:
        if run.get("status") not in FINISHED or run.get("test_accuracy") is None:
            continue
        if not include_partial and not results_store.is_complete(run):
            continue
        key = (run.get("dataset"), run.get("model"), run.get("recipe"), run_init(run), run.get("train_split"),
               run_protocol(run))
        if key not in best or run["test_accuracy"] > best[key]["test_accuracy"]:
            best[key] = run
    order = historic_rank()  # as in architectures.md
    return sorted(best.values(), key=lambda r: (str(r.get("dataset")), order.get(r.get("model"), math.inf),
                                                str(r.get("model")), str(r.get("recipe")), run_init(r),
                                                str(r.get("train_split")), run_protocol(r)))


def run_init(run: dict) -> str:
    """The weight initialisation of a record's run (zoo.archs.INIT_NAMES): its `init`; older records (none) were
    all built with Keras' initialisers, the only ones the zoo had."""
    return run.get("init") or "keras"


def run_protocol(run: dict) -> str:
    """The test protocol of a record's accuracy: its `protocol`; older records (none) tested one centre crop. A
    record of the same run under another protocol (`zoo eval --protocol P --record`) is a row of its own."""
    return run.get("protocol") or "center"


def train_images(run: dict) -> Optional[str]:
    """How many images a run trained on, from its dataset and training split (the catalogue's sizes after its
    recipe's holdout): '60,000' (all), '54,000 (6,000 val)'; None when the record does not say."""
    from .data import catalogue

    split = run.get("train_split")
    if split not in ("train", "train_full"):
        return None
    try:
        recipe = registry().recipe(run["recipe"]) if run.get("recipe") else None
        info = catalogue.dataset_info(run["dataset"], holdout=recipe.validation if recipe else None)
    except (ZooError, KeyError, ValueError):
        return None
    count = formatting.integer(info.num_examples[split])
    held = info.num_examples.get("validation") if split == "train" else None
    return f"{count} ({formatting.integer(held)} val)" if held else count


RESULT_COLUMNS = [
    Column("model", "model"), Column("recipe", "recipe"), Column("init", "init"),
    Column("protocol", "test protocol"),  # the run's (zoo.choices.EVAL_PROTOCOLS): center unless zoo eval --record
    Column("accuracy", "top-1 acc. %", formatting.percent, "right"),
    Column("top5", "top-5 acc. %", formatting.percent, "right"),
    Column("epochs", "epochs", formatting.general, "right"),
    Column("partial", "partial", optional=True),  # only with --all: a run shorter than its recipe
    Column("train_images", "train images", align="right", optional=True),
    Column("wall_time_s", "wall time", formatting.duration, "right"),
    Column("cpu_hours", "CPU core-hours", formatting.hours, "right"),
    Column("images_per_s", "train images/s", formatting.rate, "right"), Column("device", "device"),
    Column("published", "published top-1 acc. %", formatting.percent, "right"),
    Column("difference", "difference", formatting.signed, "right"), Column("published_protocol", "published protocol"),
    Column("published_source", "where"), Column("run_id", "run"),
]


def _augmented(recipe_name: Optional[str]) -> Optional[bool]:
    try:
        return registry().recipe(recipe_name).augment != "none" if recipe_name else None
    except ZooError:
        return None


def published_beside(spec: Spec, dataset: str, augmented: Optional[bool] = None,
                     protocol: Optional[str] = None) -> Optional[Result]:
    """The published top-1 number to set beside a run of `spec` on `dataset` (tested with `protocol`): the
    variant's own, else that of the variant a study of this dataset names in `compare_with`, its `measured_on`
    saying which net it is."""
    own = published_top1(spec, dataset, augmented, protocol=protocol)
    if own is not None:
        return own
    reg = registry()
    for study in reg.studies.values():
        other = study.compare_with.get(spec.name) if study.dataset == dataset else None
        stand_in = published_top1(reg.models[other], dataset, augmented, protocol=protocol) if other else None
        if stand_in is not None:
            label = f"{other} ({stand_in.measured_on})" if stand_in.measured_on else other
            return stand_in.model_copy(update={"measured_on": label})
    return None


def cpu_core_hours(run: dict) -> Optional[float]:
    """The run's wall time times the cores of the CPU it trained on (its `device`, e.g. 'CPU: AMD EPYC (2 cores,
    AVX-512)'), in hours: what a row cost; None for a GPU run or a record without the figures."""
    match = re.match(r"CPU: .*\((\d+) cores?", run.get("device") or "")
    seconds = run.get("wall_time_s")
    return int(match.group(1)) * seconds / 3600 if match and seconds else None


def results_rows(dataset: str, store=None, runs: Optional[list[dict]] = None,
                 include_partial: bool = False) -> list[dict]:
    """One row per (model, recipe, training split): its best finished run on `dataset` (complete runs only,
    unless `include_partial`) beside the paper's top-1 number."""
    reg = registry()
    rows = []
    for run in best_runs(load(dataset=dataset, store=store) if runs is None else runs, include_partial):
        spec = reg.models.get(run.get("model"))
        paper = published_beside(spec, dataset, _augmented(run.get("recipe")), run_protocol(run)) if spec else None
        accuracy = 100 * run["test_accuracy"]
        top5 = run.get("test_top5")
        rows.append({
            "model": run.get("model"), "recipe": run.get("recipe"), "init": run_init(run),
            "protocol": run_protocol(run),
            "accuracy": accuracy,
            "top5": None if top5 is None else 100 * top5, "epochs": run.get("epochs"),
            "partial": None if results_store.is_complete(run) else "partial", "train_images": train_images(run),
            "wall_time_s": run.get("wall_time_s"), "cpu_hours": cpu_core_hours(run),
            "images_per_s": run.get("train_images_per_s"),
            "device": run.get("device"),
            "published": accuracy_of(paper) if paper else None,
            "difference": accuracy - accuracy_of(paper) if paper else None,
            "published_protocol": paper.protocol if paper else None,
            "published_source": paper.where() if paper else None, "run_id": run.get("run_id"),
        })
    return rows


def results_command(dataset: str) -> str:
    return f"zoo table results --dataset {dataset} --output docs/results-{dataset}.md"


def render_results(dataset: str, fmt: str = "md", store=None, runs: Optional[list[dict]] = None,
                   include_partial: bool = False) -> str:
    rows = results_rows(dataset, store, runs, include_partial)
    if not rows:
        partial = "" if include_partial else " (complete runs only; --all adds partial ones)"
        raise TableError(f"no finished run on {dataset!r} in the results store {results_dir(store)}{partial}")
    preamble = "\n".join([
        f"# Results on {dataset_label(dataset)}",
        "",
        f"<!-- Generated by `{results_command(dataset)}` from the results store: do not edit by hand. -->",
        "",
        "The best finished run of each model, recipe, initialisation, training split and test protocol (test-split "
        "accuracy; runs that did their whole recipe only) beside the published "
        "top-1 number the registry holds for this dataset, converted to accuracy (100 - error): the paper's, or a "
        "known benchmark row (`where` then names the network it was measured on when that is not exactly ours). "
        "The single-crop number is used where there is one, and the protocol matching the recipe's augmentation "
        "(or its absence). `difference` = ours - published, in percentage points. `train images`: all of the "
        "training split, or the rest once the validation images were held out (the default since runs validate "
        "every epoch); the two are different protocols and get a row each. `CPU core-hours`: the run's wall time "
        "times its CPU's cores (the whole run: training, validation and the test), blank on a GPU. `init`: the "
        "weight initialisation (`paper`, each paper's, the default of `zoo train --init`; `keras`, Keras' initialisers, which every run "
        "made before the option had). `test protocol`: how the test images were seen (`center`: one centre crop "
        "or the padded image, as a run tests; others from `zoo eval --protocol P --record`); the published number "
        "beside it is one measured the same way where the registry says how each was measured.",
        "",
    ])
    return render(rows, RESULT_COLUMNS, fmt, preamble)
