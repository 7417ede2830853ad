"""The classic accuracy-vs-compute chart: top-1 accuracy against GMACs per image (log scale), one bubble per model
(area ~ parameters), one colour per family. For the papers' ImageNet numbers (from the registry) or for a
dataset's runs in the results store (with the papers' numbers for the same models as hollow markers).
PNG and SVG, drawn headless (matplotlib's Agg canvas, no pyplot state). No TensorFlow.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .formatting import general
from .registry import registry
from .results import is_complete
from .tables import (PAPER_METRICS, TableError, accuracy_of, best_runs, dataset_label, historic_rank,
                     is_multi_crop, load, published_top1, short_protocol)

__all__ = ["Point", "paper_points", "result_points", "plot", "plot_papers", "plot_results"]


@dataclass(frozen=True)
class Point:
    name: str
    family: str
    gmacs: float
    accuracy: float  # top-1, percent
    params: int
    protocol: Optional[str] = None
    multi_crop: bool = False
    label: Optional[str] = None  # defaults to name


def paper_points(dataset: str = "imagenet2012") -> list[Point]:
    """Each variant's top-1 from its paper on `dataset` (error rates; torchvision's re-measured accuracies are
    left out): the single-crop number where the paper gives one, else its least boosted multi-crop/-scale one
    (flagged, and its protocol in the label)."""
    reg, points = registry(), []
    for name in reg.names():
        spec = reg.get(name)
        result = published_top1(spec, dataset, metrics=PAPER_METRICS)
        if result is None:
            continue
        multi = is_multi_crop(result.protocol)
        points.append(Point(name, reg.families[spec.family].title, spec.macs / 1e9, accuracy_of(result),
                            spec.params, result.protocol, multi,
                            f"{name} ({short_protocol(result.protocol)})" if multi else name))
    return points


def result_points(dataset: str, store=None, runs: Optional[list[dict]] = None,
                  include_partial: bool = False) -> list[Point]:
    """The best finished run per model, recipe and training split on `dataset` (complete runs only, unless
    `include_partial`; MACs and params as the run recorded them)."""
    reg, points = registry(), []
    chosen = best_runs(load(dataset=dataset, store=store) if runs is None else runs, include_partial)
    recipes_per_model: dict[str, int] = {}
    for run in chosen:
        recipes_per_model[run["model"]] = recipes_per_model.get(run["model"], 0) + 1
    splits_per_model = {model: len({r.get("train_split") for r in chosen if r["model"] == model})
                        for model in recipes_per_model}
    for run in chosen:
        spec = reg.models.get(run["model"])
        macs = run.get("macs") or (spec.macs if spec else None)
        params = run.get("params") or (spec.params if spec else None)
        if not macs or not params:
            continue
        family = reg.families[spec.family].title if spec else "other"
        label = run["model"] if recipes_per_model[run["model"]] == 1 else f"{run['model']} ({run.get('recipe')})"
        if splits_per_model[run["model"]] > 1 and run.get("train_split") == "train":
            label += ", val held out"  # the same model and recipe on all training images is the other bubble
        if not is_complete(run):
            label += " [partial]"
        points.append(Point(run["model"], family, macs / 1e9, 100 * run["test_accuracy"], params,
                            run.get("recipe"), False, label))
    return points


def _family_colours(points: list[Point]) -> dict[str, tuple]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    rank = historic_rank()
    ordered = sorted(points, key=lambda p: rank.get(p.name, len(rank)))  # legend in historic order, as the tables
    families = list(dict.fromkeys(p.family for p in ordered))
    return {family: palette(i % 10) for i, family in enumerate(families)}


def _area(params: int, largest: int) -> float:
    return 20 + 1200 * params / largest  # marker area in pt^2, proportional to the parameter count


def _label(ax, points: list[Point], largest: int, others: list[Point] = ()) -> None:
    """Name each bubble beside it: right, above, below or left, the first spot that stays inside the axes and
    overlaps no other bubble (`others`: unlabelled ones) and no label placed before (greedy, largest bubbles
    first; enough for a few dozen)."""
    from matplotlib.transforms import Bbox

    renderer = ax.figure.canvas.get_renderer()
    ax.set_xlim(ax.get_xlim())  # freeze the limits, so that the labels added below do not move the points
    ax.set_ylim(ax.get_ylim())
    to_pixels = ax.figure.dpi / 72
    frame = ax.get_window_extent(renderer)

    def radius(p: Point) -> float:  # marker half-width in points
        return _area(p.params, largest) ** 0.5 / 2

    def marker_box(p: Point) -> Bbox:
        x, y = ax.transData.transform((p.gmacs, p.accuracy))
        r = radius(p) * to_pixels
        return Bbox.from_extents(x - r, y - r, x + r, y + r)

    markers = {id(p): marker_box(p) for p in [*points, *others]}
    placed: list = []
    for p in sorted(points, key=lambda q: -q.params):
        obstacles = placed + [box for key, box in markers.items() if key != id(p)]
        gap = radius(p) + 2
        spots = [(gap, 0, "left", "center"), (0, gap, "center", "bottom"), (0, -gap, "center", "top"),
                 (-gap, 0, "right", "center")]
        for dx, dy, ha, va in spots:
            text = ax.annotate(p.label or p.name, (p.gmacs, p.accuracy), xytext=(dx, dy),
                               textcoords="offset points", ha=ha, va=va, fontsize=7.5, zorder=4)
            box = text.get_window_extent(renderer)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in obstacles):
                break
            text.remove()
        else:  # nowhere free: on the right after all
            text = ax.annotate(p.label or p.name, (p.gmacs, p.accuracy), xytext=(gap, 0),
                               textcoords="offset points", ha="left", va="center", fontsize=7.5, zorder=4)
            box = text.get_window_extent(renderer)
        placed.append(box)


def plot(points: list[Point], output_prefix: str | Path, title: str, references: Optional[list[Point]] = None,
         ylabel: str = "top-1 accuracy (%)") -> list[Path]:
    """Draw `points` (filled; square markers for multi-crop numbers) and optional `references` (hollow), write
    PREFIX.png and PREFIX.svg, and return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if not points:
        raise TableError(f"nothing to plot for {title!r}")
    references = references or []
    everything = points + references
    colours = _family_colours(everything)
    largest = max(p.params for p in everything)

    figure = Figure(figsize=(12, 7.5), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    for p in references:
        ax.scatter(p.gmacs, p.accuracy, s=_area(p.params, largest), facecolors="none", edgecolors=[colours[p.family]],
                   marker="s" if p.multi_crop else "o", linewidths=1.2, zorder=2)
    for p in points:
        ax.scatter(p.gmacs, p.accuracy, s=_area(p.params, largest), color=colours[p.family], alpha=0.7,
                   edgecolors="black", linewidths=0.5, marker="s" if p.multi_crop else "o", zorder=3)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: general(value)))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("GMACs per image (multiply-accumulates, log scale)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.margins(x=0.12, y=0.08)

    handles = [Line2D([], [], marker="o", linestyle="", markersize=8, color=c, label=f)
               for f, c in colours.items()]
    if any(p.multi_crop for p in everything):
        handles.append(Line2D([], [], marker="s", linestyle="", markersize=8, color="grey",
                              label="square: multi-crop, multi-scale\nor dense evaluation"))
    if references:
        handles.append(Line2D([], [], marker="o", linestyle="", markersize=8, markerfacecolor="none",
                              color="grey", label="hollow: the paper's number"))
    for millions in (5, 25, 100):
        if millions * 1e6 <= largest * 1.5:
            handles.append(ax.scatter([], [], s=_area(int(millions * 1e6), largest), color="lightgrey",
                                      edgecolors="grey", label=f"{millions}M parameters"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, labelspacing=1.6,
              borderpad=1, handletextpad=1.5)
    figure.draw_without_rendering()  # settle the layout first: labels are placed in display coordinates
    _label(ax, points, largest, references)

    prefix = Path(output_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    paths = [prefix.with_name(prefix.name + ".png"), prefix.with_name(prefix.name + ".svg")]
    with matplotlib.rc_context({"svg.hashsalt": "zoo", "svg.fonttype": "none"}):
        for path, options in zip(paths, ({"dpi": 150, "metadata": {"Software": None}},
                                         {"metadata": {"Date": None, "Creator": None}})):
            partial = path.with_name(f".{path.name}.partial{path.suffix}")  # same folder: rename is atomic
            figure.savefig(partial, format=path.suffix[1:], **options)
            os.replace(partial, path)
    return paths


def plot_papers(output_prefix="docs/imagenet-accuracy-vs-macs", dataset: str = "imagenet2012") -> list[Path]:
    points = paper_points(dataset)
    if not points:
        raise TableError(f"no variant in the registry has a published top-1 number on {dataset!r}")
    return plot(points, output_prefix, f"{dataset_label(dataset)}: the papers' top-1 accuracy vs compute "
                                       f"(single-crop where published)")


def plot_results(dataset: str, output_prefix=None, store=None, runs: Optional[list[dict]] = None,
                 include_partial: bool = False) -> list[Path]:
    points = result_points(dataset, store, runs, include_partial)
    if not points:
        partial = "" if include_partial else " (complete runs only; --all adds partial ones)"
        raise TableError(f"no finished run on {dataset!r} in the results store to plot{partial}")
    names = {p.name for p in points}
    references = [p for p in paper_points(dataset) if p.name in names]
    return plot(points, output_prefix or f"docs/{dataset}-accuracy-vs-macs",
                f"{dataset_label(dataset)}: our runs' top-1 accuracy vs compute", references)
