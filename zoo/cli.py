"""`zoo`: the command line of the model zoo (click); the installed `zoo` command is `zoo.cli:main`.

Thin on purpose: each command parses, calls one function of the `zoo` package, and renders. Commands of each area
live in `zoo/commands/<area>.py` (a `COMMANDS` list) and are registered here. Nothing imports TensorFlow at start-up:
`zoo list` and `zoo info` read only the registry. Nothing in the package imports this module (data flows down:
`import zoo` never loads the CLI); the repository's top-level cli.py re-exports it for `python cli.py ...`.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import sys

import click

import zoo
import zoo.errors
import zoo.registry as registry_module
from zoo import formatting


def console(stderr: bool = False):
    """A rich console that does not squeeze tables when output goes to a pipe or a file."""
    from rich.console import Console

    width = None if sys.stdout.isatty() else 120
    return Console(stderr=stderr, width=width, soft_wrap=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(zoo.__version__, "--version", prog_name="zoo")
def cli():
    """The historic-CNN model zoo: build, inspect, train, evaluate, benchmark and compare LeNet-5, AlexNet, ZFNet,
    VGG, GoogLeNet, ResNet and DenseNet in Keras 3 on TensorFlow."""


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--family", help="Only this family (e.g. resnet).")
@click.option("--exclude", multiple=True, help="fnmatch pattern to leave out (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--markdown", is_flag=True, help="A Markdown table (the README's model table is this output).")
@click.option("--weights", "weights", is_flag=True, help="The named weights (MODEL.TAG) instead of the variants.")
def list_models(pattern, family, exclude, as_json, markdown, weights):
    """List the variants (PATTERN: fnmatch wildcards, e.g. 'resnet*')."""
    if as_json and markdown:
        raise click.UsageError("--json and --markdown exclude each other: choose one output format")
    reg = registry_module.registry()
    names = reg.list(pattern or "*", list(exclude), family)
    rows = [reg.get(n) for n in names]
    if weights:
        list_weights(rows, as_json, markdown)
        return
    if markdown:
        click.echo(models_markdown(reg, rows), nl=False)
        return
    if as_json:
        click.echo(json.dumps([{"name": s.name, "family": s.family, "year": s.paper.year, "params": s.params,
                                "macs": s.macs, "input": [s.input.size, s.input.size, s.input.channels],
                                "classes": s.classes} for s in rows], indent=2))
        return
    if not rows:
        raise zoo.ZooError(f"no model matches {pattern!r}" + (f" in family {family!r}" if family else ""))
    from zoo.tables import rich_table

    console().print(rich_table([model_row(reg, s) for s in rows], list_columns()))


def weights_rows(specs) -> list[dict]:
    """One row per named weights entry (`zoo list --weights`), from the registry only."""
    rows = []
    for spec in specs:
        for tag, entry in spec.weights.items():
            full = next((a for a in entry.accuracy if a.dataset == entry.dataset), None)
            rows.append({"weights": f"{spec.name}.{tag}", "source": entry.source, "dataset": entry.dataset,
                         "classes": entry.classes, "input": f"{entry.preprocessing.size}x{entry.preprocessing.size}"
                         f"x{entry.preprocessing.channels}", "top1": full.top1 if full else None,
                         "size_mb": entry.size_bytes / 1e6 if entry.size_bytes else None, "file": entry.file,
                         "preprocessing": entry.preprocessing.short()})
    return rows


def list_weights(specs, as_json: bool, markdown: bool) -> None:
    from zoo.tables import Column, render, rich_table

    rows = weights_rows(specs)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        raise zoo.ZooError("no named weights for these models")
    optional = lambda fmt: lambda v: "" if v is None else fmt(v)  # noqa: E731
    columns = [Column("weights", "weights", whole=True), Column("source", "source", whole=True),
               Column("dataset", "dataset"), Column("classes", "classes", align="right"),
               Column("input", "input", align="right"),
               Column("top1", "top-1 %", optional(formatting.percent), "right"),
               Column("size_mb", "MB", optional(lambda v: f"{v:.2f}"), "right"),
               Column("preprocessing", "preprocessing")]
    if markdown:
        click.echo(render(rows, columns, "md"), nl=False)
    else:
        console().print(rich_table(rows, columns))


def model_row(reg, spec) -> dict:
    """One variant as `zoo list` shows it (the terminal table and the README's Markdown one)."""
    link = f"https://arxiv.org/abs/{spec.paper.arxiv}" if spec.paper.arxiv else spec.paper.url
    return {"name": spec.name, "family": spec.family, "family_title": reg.families[spec.family].title,
            "year": spec.paper.year, "params": spec.params, "macs": spec.macs,
            "input": f"{spec.input.size}x{spec.input.size}x{spec.input.channels}", "classes": spec.classes,
            "paper": f"[{spec.paper.title}]({link})" if link else spec.paper.title}


def list_columns(markdown: bool = False) -> list:
    """`zoo list`'s columns: the terminal names the family by its key (what --family takes), the README's
    Markdown table by its title, with the variant's name as code and its paper linked."""
    from zoo.tables import Column

    name = Column("name", "model", lambda n: f"`{n}`") if markdown else Column("name", "name")
    family = Column("family_title", "family") if markdown else Column("family", "family")
    paper = [Column("paper", "paper")] if markdown else []
    return [name, family, Column("year", "year", align="right"),
            Column("params", "params", formatting.integer, "right"),
            Column("macs", "GMACs", formatting.gmacs, "right"), Column("input", "input", align="right"),
            Column("classes", "classes", align="right"), *paper]


def models_markdown(reg, specs) -> str:
    from zoo.tables import render

    return render([model_row(reg, s) for s in specs], list_columns(markdown=True), "md")


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(name, as_json):
    """Everything the registry knows about NAME: architecture, sizes, paper, published results, recipe."""
    reg = registry_module.registry()
    spec = reg.get(name)
    recipe = reg.recipe(spec.recipe)
    data = spec.model_dump(exclude_none=True)
    data["recipe_details"] = recipe.model_dump(exclude_none=True)
    stages = zoo.feature_info(spec)  # the registry's arch only: no TensorFlow
    data["feature_stages"] = [stage.as_dict() for stage in stages]
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    from rich.table import Table

    out = console()
    out.print(f"[bold]{spec.name}[/bold]  ({reg.families[spec.family].title}, {spec.paper.year})")
    facts = Table(box=None, show_header=False)
    facts.add_column(style="bold")
    facts.add_column()
    facts.add_row("paper", f"{spec.paper.title} — {', '.join(spec.paper.authors)} ({spec.paper.year})")
    for key in ("venue", "arxiv", "url", "followed"):
        if getattr(spec.paper, key):
            facts.add_row(f"  {key}", str(getattr(spec.paper, key)))
    facts.add_row("input", f"{spec.input.size}x{spec.input.size}x{spec.input.channels} (minimum "
                           f"{spec.input.min_size}x{spec.input.min_size})")
    facts.add_row("classes", str(spec.classes))
    facts.add_row("params", f"{formatting.integer(spec.params)} trainable (reference: {spec.reference.source} "
                            f"{formatting.integer(spec.reference.params)})")
    facts.add_row("MACs", f"{formatting.integer(spec.macs)} ({formatting.gmacs(spec.macs)} G) per image")
    if spec.depth:
        facts.add_row("depth", str(spec.depth))
    facts.add_row("arch", json.dumps(spec.arch.model_dump(exclude_unset=True), separators=(", ", ": ")))
    evals = spec.eval.model_dump(exclude_none=True)
    facts.add_row("eval", ", ".join(f"{k}={v}" for k, v in evals.items()) or "dataset defaults")
    facts.add_row("dataset", spec.dataset)
    facts.add_row("recipe", f"{spec.recipe}: {recipe.description}")
    for dataset, other in spec.recipes.items():
        facts.add_row("", f"{other} (for {dataset})")
    if spec.notes:
        facts.add_row("notes", spec.notes)
    out.print(facts)
    out.print(feature_stages_table(stages))
    if spec.weights:
        from zoo.tables import Column, rich_table

        columns = [Column("tag", "tag"), Column("source", "source"), Column("detail", "dataset, accuracy, file, "
                                                                            "preprocessing, provenance")]
        rows = [{"tag": tag, "source": entry.source, "detail": weights_detail(entry)}
                for tag, entry in spec.weights.items()]
        out.print(rich_table(rows, columns, title="weights (weights=TAG)", title_justify="left"))
    if spec.results:
        from zoo.tables import Column, rich_table

        columns = [Column("dataset", "dataset"), Column("split", "split"), Column("metric", "metric"),
                   Column("value", "value", formatting.general), Column("protocol", "protocol"),
                   Column("source", "source")]
        rows = [{**r.model_dump(), "source": r.where()} for r in spec.results]
        out.print(rich_table(rows, columns, title="published results", title_justify="left"))


def feature_stages_table(stages):
    """What `zoo.build(NAME, features_only=True, out_indices=...)` outputs, stage by stage."""
    from zoo.tables import Column, rich_table

    columns = [Column("index", "index"), Column("layer", "layer"), Column("channels", "channels", formatting.integer),
               Column("stride", "stride")]
    return rich_table([stage.as_dict() for stage in stages], columns,
                      title="feature stages (features_only=True, out_indices)", title_justify="left")


def weights_detail(entry) -> str:
    """A weights entry as `zoo info` shows it: what it was trained on, how well it does, where it comes from."""
    lines = [f"{entry.dataset} ({entry.classes} classes), file {entry.file}"
             + (f" ({entry.size_bytes / 1e6:.2f} MB, sha256 {entry.sha256[:12]}...)" if entry.size_bytes else "")]
    for measured in entry.accuracy:
        lines.append(f"top-1 {formatting.percent(measured.top1)}% on {measured.dataset} {measured.split} "
                     f"({formatting.integer(measured.examples)} images): {measured.command}")
    lines.append(f"preprocessing: {entry.preprocessing.describe()}")
    lines.append(f"provenance: {entry.provenance}" + (f" at commit {entry.commit}" if entry.commit else ""))
    if entry.source == "train":
        lines.append(f"not shipped: {entry.train_command}, then weights=runs/.../model.weights.h5")
    return "\n".join(lines)


SHAPE_FLAG = "'--input-shape'"


def parse_shape(value):
    """--input-shape H,W,C (or HxWxC): three positive whole numbers."""
    if value is None:
        return None
    try:
        shape = tuple(int(v) for v in value.replace("x", ",").split(","))
    except ValueError:
        raise click.BadParameter(f"expected H,W,C such as 224,224,3, got {value!r}", param_hint=SHAPE_FLAG) from None
    if len(shape) != 3:
        raise click.BadParameter(f"expected three numbers H,W,C, got {value!r}", param_hint=SHAPE_FLAG)
    if min(shape) < 1:
        raise click.BadParameter(f"every side must be positive (H,W,C such as 224,224,3), got {value!r}",
                                 param_hint=SHAPE_FLAG)
    return shape


@cli.command()
@click.argument("name")
@click.option("--input-shape", help="H,W,C (default: the registry's input size).")
@click.option("--classes", type=click.IntRange(min=1), help="Number of classes (default: the registry's).")
def summary(name, input_shape, classes):
    """Build NAME and print the Keras layer summary, its parameter count and MACs."""
    spec = registry_module.get_spec(name)
    kwargs = {}
    if input_shape:
        kwargs["input_shape"] = parse_shape(input_shape)
    if classes is not None:
        kwargs["classes"] = classes
    model = zoo.build(spec.name, **kwargs)
    model.summary(line_length=110, print_fn=lambda line, **_: click.echo(line))
    params, macs = zoo.count_params(model), zoo.count_macs(model)
    click.echo(f"{spec.name}: {formatting.integer(params)} trainable parameters, {formatting.integer(macs)} MACs "
               f"({formatting.gmacs(macs)} G) per image "
               f"at {'x'.join(str(d) for d in model.input_shape[1:])}")


def register_area_commands(group: click.Group) -> None:
    """Add the commands of every zoo/commands/<area>.py module (each exports COMMANDS)."""
    import zoo.commands as commands

    for module_info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"zoo.commands.{module_info.name}")
        for command in getattr(module, "COMMANDS", []):
            group.add_command(command)


register_area_commands(cli)


def one_line(error: BaseException) -> str:
    """The error's message as one line: its first line (a message ending in a colon keeps the line after it, so
    the reason is not cut off), prefixed with the exception's type unless it is one of ours or an OS error."""
    text = str(error).strip() or type(error).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0]
    if first.endswith(":") and len(lines) > 1:
        first = f"{first} {lines[1]}"
    known = isinstance(error, (zoo.ZooError, ValueError, FileNotFoundError, KeyError, OSError))
    return first if known else f"{type(error).__name__}: {first}"


def named_cause(error: Exception) -> Exception:
    """TensorFlow's failure to decode an image names no file: when an image folder's stream met it, the zoo's
    one-line error naming the damaged file (found after the fact: zoo.data.folder.damaged_image_error), else
    `error` itself."""
    if "tensorflow" not in sys.modules:
        return error
    from zoo.data.folder import damaged_image_error

    return damaged_image_error(error) or error


# Commands that never need TensorFlow; every other command imports it first with TF's C++ start-up log lines
# (printed before absl logging is initialised, which TF_CPP_MIN_LOG_LEVEL does not reach) kept off stderr.
LIGHT_COMMANDS = {"list", "info", "datasets", "table", "plot", "runs", None}
LIGHT_WITH = {"reproduce": "--dry-run"}  # a command that is light with this flag (the plan only)


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and make its first device query with stderr's descriptor silenced: the import prints
    oneDNN and CUDA-stub lines, the first query 'failed call to cuInit' on a machine without a GPU; TF caches
    the answer, so later queries print nothing."""
    from zoo.io import quiet_stderr

    with quiet_stderr():
        import tensorflow as tf

        try:
            tf.config.list_physical_devices("GPU")
        except Exception:  # noqa: BLE001 - a broken driver: the command's own device query reports it
            pass


def main(argv=None) -> int:
    """Console entry point: errors become one line on stderr and a non-zero exit (ZOO_DEBUG=1 shows tracebacks)."""
    args = sys.argv[1:] if argv is None else list(argv)
    command = next((a for a in args if not a.startswith("-")), None)
    heavy = (command in cli.commands and command not in LIGHT_COMMANDS
             and LIGHT_WITH.get(command) not in args)
    from zoo.backend import uses_tensorflow  # light: reads KERAS_BACKEND and finds TF without importing it

    if heavy and uses_tensorflow() and not {"-h", "--help", "--version"} & set(args):
        try:
            import_tensorflow_quietly()
        except (ImportError, OSError):
            pass  # the command itself will report it
    try:
        cli.main(args=args, prog_name="zoo", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("zoo: aborted", err=True)
        return 130
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:  # a bad flag or value: one line naming it, as every other error
        click.echo(f"zoo: error: {e.format_message()}", err=True)
        return e.exit_code
    except zoo.errors.Stopped as e:  # SIGTERM/SIGINT during a run: what is kept and how to continue
        click.echo(f"zoo: {e}", err=True)
        return e.exit_code
    except KeyboardInterrupt:
        click.echo("zoo: interrupted", err=True)
        return 130
    except Exception as e:  # noqa: BLE001 - the user gets one line; ZOO_DEBUG=1 for the traceback
        if os.environ.get("ZOO_DEBUG"):
            raise
        e = named_cause(e)
        click.echo(f"zoo: error: {one_line(e)}", err=True)
        return getattr(e, "exit_code", 1) or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
