"""The GPU acceptance run (issue 17): the zoo on Keras' JAX backend on one GPU, with no TensorFlow, in <= 9 minutes.

    python3 scripts/gpu_acceptance.py            # on the GPU machine: bootstrap from build/gpu-kit, then every check
    python3 scripts/gpu_acceptance.py --smoke    # here, on the CPU: the same code paths with tiny iterations

Steps, each timed and written to the JSON as soon as it ends (a run cut short keeps what it measured):
  bootstrap  the carry kit (scripts/gpu_kit.py) installed offline; the process re-executes itself with
             KERAS_BACKEND=jax, the kit's site on PYTHONPATH and ZOO_DATA_DIR at the kit's data (--smoke: TensorFlow
             blocked instead, to be the GPU machine's twin)
  device     name, memory, driver/CUDA as JAX sees them; no GPU is a clear failure (exit 2), except in --smoke
  bench      zoo bench rows (float32, mixed_bfloat16, mixed_float16; infer and train) for resnet50, vgg16,
             densenet121, googlenet, alexnet at batch sizes that fill the GPU (OOM back-off halves them), beside
             the keras.applications twins where they exist, MFU against the measured matmul peak; in priority
             order within a time budget (what does not fit is listed as skipped)
  resnet20   zoo.train ResNet-20 on the full Fashion-MNIST, its recipe, mixed_bfloat16: wall time, final test
             accuracy against the 94% target
  lenet5     LeNet-5 training throughput beside the numpy input pipeline's own images/s (the GPU must not wait)
  precision  200 steps of ResNet-20 in bf16 and in fp32 from the same seed and batches: loss curves within
             PRECISION_TOLERANCE
  report     docs/gpu.md (tables, command, machine, versions, date) and the raw JSON in docs/runs/gpu/
             (--smoke: both under --out)
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(1, str(ROOT / "scripts"))

import gpu_kit  # noqa: E402  (scripts/gpu_kit.py: stdlib only)

ACTIVE = "ZOO_GPU_ACCEPTANCE_ACTIVE"  # set in the re-executed process
BUDGET_S = 9 * 60
# Loss curves of bf16 and fp32 (20-step moving averages) may differ by this fraction of fp32's at any step: bf16
# keeps 8 mantissa bits, so per-step losses differ by about 1%; a broken policy (overflow, fp32 master weights
# lost) shows as a divergence of tens of percent.
PRECISION_TOLERANCE = 0.10
ACCURACY_TARGET = 0.94


@dataclass
class Plan:
    """How big each step is: the GPU plan, or the smoke plan (tiny, CPU)."""

    smoke: bool
    bench_models: list = field(default_factory=lambda: ["resnet50", "vgg16", "densenet121", "googlenet",
                                                        "alexnet"])
    bench_batch: dict = field(default_factory=lambda: {
        "infer": {"resnet50": 1024, "vgg16": 512, "densenet121": 1024, "googlenet": 1024, "alexnet": 2048},
        "train": {"resnet50": 512, "vgg16": 256, "densenet121": 256, "googlenet": 512, "alexnet": 1024}})
    bench_precisions: tuple = ("mixed_bfloat16", "float32", "mixed_float16")  # priority order
    bench_image_size: int | None = None
    bench_warmup: int = 5
    bench_iters: int = 20
    bench_budget_s: float = 270.0
    dataset: str = "fashion_mnist"
    resnet20_steps: int | None = None  # None: the recipe's epochs
    lenet_batch: int = 1024
    lenet_steps: int | None = None
    lenet_epochs: float = 3.0
    precision_model: str = "resnet20"
    precision_steps: int = 200
    pipeline_batches: int = 200

    @classmethod
    def smoke_plan(cls) -> "Plan":
        # The same code paths at the smallest sizes: the CPU's bf16 matmul probe alone takes a minute, and every
        # model compiles once per precision, so the bench is LeNet-5 in float32 and the bf16/fp32 check LeNet-5's.
        # Its budget is no limit (the smoke run must take both bench paths): one row compiles in ~5 s on 2 idle
        # cores, but took 42 s at a load average of 10, and a 40 s budget then skipped the inference row.
        return cls(smoke=True, bench_models=["lenet5"], bench_batch={"infer": {"lenet5": 16}, "train": {"lenet5": 16}},
                   bench_precisions=("float32",), bench_warmup=1, bench_iters=2, bench_budget_s=300.0,
                   dataset="fashion_mnist_sample", resnet20_steps=4, lenet_batch=64, lenet_steps=20,
                   precision_model="lenet5", precision_steps=8, pipeline_batches=10)


# ---------------------------------------------------------------------------------------------------------------
# Bootstrap: the kit, then this script again in the kit's environment


def bootstrap(args) -> None:
    """Re-execute in the environment the checks need (returns only in that process)."""
    if os.environ.get(ACTIVE):
        return
    start = time.perf_counter()
    env = dict(os.environ, **{ACTIVE: "1", "TF_CPP_MIN_LOG_LEVEL": "3"})
    if args.smoke:
        from zoo import backend

        env = backend.block_tensorflow(Path(tempfile.mkdtemp(prefix="zoo-no-tf-")), env)
        env.update(KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join([env["PYTHONPATH"], str(ROOT)]))
        installed = {"note": "smoke: the packages of this environment, TensorFlow blocked"}
    else:
        installed = gpu_kit.install()
        env.update(gpu_kit.environment())
        env.setdefault("JAX_COMPILATION_CACHE_DIR", str(gpu_kit.KIT / "jax-cache"))  # a rerun compiles less
        env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.9")
    env["ZOO_GPU_BOOTSTRAP"] = json.dumps({"seconds": round(time.perf_counter() - start, 2), **installed})
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


# ---------------------------------------------------------------------------------------------------------------
# The report being built: written after every step


class Report:
    def __init__(self, args, plan: Plan):
        self.started = time.perf_counter()
        self.plan = plan
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        out = Path(args.out) if args.out else ROOT / "docs"
        self.markdown_path = out / "gpu.md"
        self.json_path = (out / "runs" / "gpu" if args.out else ROOT / "docs" / "runs" / "gpu") / \
            f"{'smoke-' if plan.smoke else ''}{now:%Y%m%d-%H%M%S}.json"
        self.data = {"command": shlex.join(["python3", "scripts/gpu_acceptance.py", *sys.argv[1:]]),
                     "smoke": plan.smoke, "date": now.isoformat(), "steps": {}, "targets": {},
                     "bootstrap": json.loads(os.environ.get("ZOO_GPU_BOOTSTRAP", "{}"))}

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def step(self, name: str, fn) -> None:
        """Run one step; its result (or its one-line error) goes into the JSON, which is rewritten."""
        t0 = time.perf_counter()
        try:
            result, status = fn(), "ok"
        except Exception as e:  # noqa: BLE001 - one step's failure must not lose the others' numbers
            result, status = {"error": f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e) else ''}",
                              "traceback": traceback.format_exc(limit=6)}, "failed"
        self.data["steps"][name] = {"status": status, "seconds": round(time.perf_counter() - t0, 2), **result}
        print(f"gpu acceptance: {name} {status} in {time.perf_counter() - t0:.1f}s "
              f"(total {self.elapsed():.0f}s)", flush=True)
        self.write_json()

    def write_json(self) -> None:
        from zoo.results import write_json_atomic

        self.data["total_seconds"] = round(self.elapsed() + self.data["bootstrap"].get("seconds", 0), 2)
        write_json_atomic(self.json_path, self.data)


# ---------------------------------------------------------------------------------------------------------------
# Steps


def device_step(plan: Plan) -> dict:
    import jax
    import keras

    from zoo import backend, hardware

    facts = hardware.gpu_facts()
    if facts is None and not plan.smoke:
        raise SystemExit("gpu acceptance: no GPU visible to JAX "
                         f"(devices: {', '.join(map(str, jax.devices()))}); is jax[cuda] installed?")
    return {"description": hardware.device_description(), "jax_devices": [str(d) for d in jax.devices()],
            "gpu": facts.__dict__ if facts else None, "versions": backend.versions(), "keras": keras.__version__,
            "python": platform.python_version(), "host": platform.node(),
            "tensorflow_importable": backend.tensorflow_available(), "input_path": backend.input_path()}


def bench_step(plan: Plan, report: Report) -> dict:
    """The rows in priority order (bf16 of every model first, then fp32, then fp16) until the budget runs out."""
    from zoo import bench

    rows, skipped = [], []
    deadline = time.perf_counter() + plan.bench_budget_s
    order = [(p, m, mode) for p in plan.bench_precisions for m in plan.bench_models
             for mode in ("train", "infer")]
    for precision, model, mode in order:
        label = f"{model} {mode} {precision}"
        if time.perf_counter() > deadline:
            skipped.append(label)
            continue
        options = dict(mode=mode, batch_size=plan.bench_batch[mode][model], image_size=plan.bench_image_size,
                       precision=precision, warmup=plan.bench_warmup, iters=plan.bench_iters,
                       on_retry=lambda m: print(f"  bench: {m}", flush=True))
        try:
            twin = precision == "mixed_bfloat16" and model in bench.KERAS_TWINS
            records = bench.compare_keras(model, **options) if twin else [bench.measure(model, **options)]
        except Exception as e:  # noqa: BLE001 - a row that fails is reported, the others still run
            skipped.append(f"{label} (failed: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")
            continue
        rows += [r.as_dict() for r in records]
        print(f"  bench: {label}: " + ", ".join(f"{r.model} {r.images_per_s:,.0f} img/s" for r in records),
              flush=True)
        report.data["steps"]["bench"] = {"status": "running", "rows": rows, "skipped": skipped}
        report.write_json()
    return {"rows": rows, "skipped": skipped}


def _train(name: str, plan: Plan, output: Path, **options):
    import zoo

    return zoo.train(name, dataset=plan.dataset, output=str(output), record=False, verbose=True, **options)


def resnet20_step(plan: Plan, work: Path) -> dict:
    result = _train("resnet20", plan, work / "resnet20-bf16", precision="mixed_bfloat16",
                    max_steps=plan.resnet20_steps)
    record = result.record
    return {"test_accuracy": result.test_accuracy, "wall_time_s": round(result.wall_time_s, 1),
            "epochs": result.epochs, "steps": result.steps, "train_images_per_s": result.train_images_per_s,
            "reached_target": result.test_accuracy >= ACCURACY_TARGET, "recipe": result.recipe,
            "device": record.get("device"), "history": result.history}


def pipeline_rate(run, batches: int) -> float:
    """Images/s of the numpy training stream alone, as the harness makes it for `run` (batches computed ahead by
    its threads, as in training)."""
    from zoo.training import inputs

    stream = inputs.train_stream(run, seed=1)
    stream[0]
    t0 = time.perf_counter()
    for i in range(1, batches + 1):
        stream[i]
    return batches * run.config.batch_size / (time.perf_counter() - t0)


def lenet5_step(plan: Plan, work: Path) -> dict:
    result = _train("lenet5", plan, work / "lenet5", batch_size=plan.lenet_batch, epochs=plan.lenet_epochs,
                    max_steps=plan.lenet_steps)
    pipeline = pipeline_rate(result.run, plan.pipeline_batches)
    training = result.train_images_per_s or 0.0
    return {"batch_size": plan.lenet_batch, "train_images_per_s": training, "pipeline_images_per_s": pipeline,
            "pipeline_headroom": pipeline / training if training else None, "test_accuracy": result.test_accuracy,
            "steps": result.steps}


def _losses(run, precision: str, steps: int) -> list[float]:
    """Per-step training losses of `run`'s model under `precision`, same seed and same batches."""
    import keras

    from zoo.training import devices, inputs, setup

    config = run.config
    keras.utils.set_random_seed(config.seed)
    with devices.dtype_policy(precision):
        model = setup.build_model(run)
        optimizer = setup.make_optimizer(config, run.recipe, model)
        setup.compile_model(model, config, run.recipe, optimizer)
        stream = inputs.train_stream(run, seed=config.seed)
        losses = []
        for i in range(steps):
            x, y = stream[i]
            losses.append(float(model.train_on_batch(x, y, return_dict=True)["loss"]))
    keras.backend.clear_session()
    return losses


def _moving_average(values: list[float], window: int) -> list[float]:
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v - (values[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def precision_step(plan: Plan) -> dict:
    from zoo.training.config import resolve_run
    from zoo.training.options import RunOptions

    from zoo.training import devices

    run = resolve_run(plan.precision_model, RunOptions.of(dataset=plan.dataset, max_steps=plan.precision_steps))
    run.config.xla = devices.default_xla()  # as zoo.train settles it (JAX: XLA)
    fp32 = _losses(run, "float32", plan.precision_steps)
    bf16 = _losses(run, "mixed_bfloat16", plan.precision_steps)
    window = max(1, min(20, plan.precision_steps // 4))
    a, b = _moving_average(fp32, window), _moving_average(bf16, window)
    worst = max(abs(x - y) / abs(x) for x, y in zip(a[window:], b[window:])) if len(a) > window else \
        max(abs(x - y) / abs(x) for x, y in zip(a, b))
    finite = all(math.isfinite(v) for v in fp32 + bf16)
    return {"model": plan.precision_model, "steps": plan.precision_steps, "window": window, "tolerance": PRECISION_TOLERANCE,
            "max_relative_gap": worst, "within_tolerance": finite and worst <= PRECISION_TOLERANCE,
            "fp32_losses": fp32, "bf16_losses": bf16}


# ---------------------------------------------------------------------------------------------------------------
# The Markdown report


def _fmt(value, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _target_rows(data: dict) -> list[str]:
    steps = data["steps"]
    rows = ["| target | measured | target | met |", "|---|---:|---:|---|"]

    def bench_rate(model, mode, precision="mixed_bfloat16"):
        for r in steps.get("bench", {}).get("rows", []):
            if (r["model"], r["mode"], r["precision"]) == (model, mode, precision):
                return r["images_per_s"]
        return None

    for mode, goal in (("train", 3000), ("infer", 10000)):
        rate = bench_rate("resnet50", mode)
        rows.append(f"| ResNet-50 bf16 {mode} images/s | {_fmt(rate)} | {goal:,} | "
                    f"{'yes' if rate and rate >= goal else 'no' if rate else 'not measured'} |")
    ratios = [r["vs_keras"] for r in steps.get("bench", {}).get("rows", []) if r.get("vs_keras")]
    if ratios:
        worst = min(ratios)
        rows.append(f"| ours / keras.applications (worst row) | {worst:.3f} | >= 0.98 | "
                    f"{'yes' if worst >= 0.98 else 'no'} |")
    r20 = steps.get("resnet20", {})
    if r20.get("status") == "ok":
        met = r20["reached_target"] and r20["wall_time_s"] <= 120
        rows.append(f"| ResNet-20 Fashion-MNIST: final test accuracy, run wall time | "
                    f"{100 * r20['test_accuracy']:.2f}%, {r20['wall_time_s']:.0f}s | 94%, < 120s | "
                    f"{'yes' if met else 'no'} |")
    total = data.get("total_seconds")
    rows.append(f"| whole acceptance run | {_fmt(total)}s | <= {BUDGET_S}s | "
                f"{'yes' if total and total <= BUDGET_S else 'no'} |")
    return rows


def markdown(data: dict) -> str:
    from zoo.bench import RECORD_COLUMNS
    from zoo.tables import render

    steps, device = data["steps"], data["steps"].get("device", {})
    versions = device.get("versions", {})
    lines = ["## The acceptance run: Keras 3 on JAX, no TensorFlow" + (" (CPU smoke run)" if data["smoke"] else ""),
             "", f"Generated by `{data['command']}` on {data['date']} (rerun it to regenerate this file; the raw "
             f"numbers are in `docs/runs/gpu/`).", "",
             f"- machine: {device.get('description', 'n/a')}, host `{device.get('host', '?')}`",
             f"- GPU facts: {json.dumps(device.get('gpu'))}",
             f"- software: Python {device.get('python')}, Keras {versions.get('keras')} on JAX "
             f"{versions.get('jax')}; TensorFlow importable: {device.get('tensorflow_importable')}; input path "
             f"{device.get('input_path')}",
             f"- bootstrap: {data['bootstrap'].get('seconds', 'n/a')}s; total {data.get('total_seconds')}s", "",
             "### Targets", "", *_target_rows(data), "", "### Steps", ""]
    for name, step in steps.items():
        lines.append(f"- **{name}**: {step['status']} in {step['seconds']}s"
                     + (f" — {step['error']}" if step.get("error") else ""))
    bench_rows = steps.get("bench", {}).get("rows", [])
    if bench_rows:
        lines += ["", "### Benchmarks (zoo bench, JAX, XLA)", "", render(bench_rows, RECORD_COLUMNS, "md")]
    if steps.get("bench", {}).get("skipped"):
        lines += ["", "Not measured (time budget or failure): " + "; ".join(steps["bench"]["skipped"])]
    r20, lenet, prec = steps.get("resnet20", {}), steps.get("lenet5", {}), steps.get("precision", {})
    if r20.get("status") == "ok":
        lines += ["", "### ResNet-20 on Fashion-MNIST, mixed_bfloat16", "",
                  f"Recipe {r20['recipe']}, {r20['epochs']:g} epochs ({r20['steps']:,} steps): final test accuracy "
                  f"{100 * r20['test_accuracy']:.2f}% in {r20['wall_time_s']:.0f}s of run wall time (build and "
                  f"compilation included), {_fmt(r20['train_images_per_s'])} training images/s. The recipe "
                  "evaluates the test split once, at the end, so the time to 94% is bounded by that wall time."]
    if lenet.get("status") == "ok":
        lines += ["", "### LeNet-5 throughput and the input pipeline", "",
                  f"Batch {lenet['batch_size']}: training {_fmt(lenet['train_images_per_s'])} images/s; the numpy "
                  f"input pipeline alone {_fmt(lenet['pipeline_images_per_s'])} images/s "
                  f"({_fmt(lenet['pipeline_headroom'], 1)}x the training rate"
                  + (": the GPU does not wait on data)." if (lenet['pipeline_headroom'] or 0) > 1.2 else
                     ": the pipeline is the bottleneck).")]
    if prec.get("status") == "ok":
        lines += ["", "### Mixed precision: bf16 against fp32", "",
                  f"{prec['steps']} steps of {prec['model']} from the same seed and batches: the largest gap between the "
                  f"{prec['window']}-step moving averages of the losses is {100 * prec['max_relative_gap']:.2f}% of "
                  f"fp32's (tolerance {100 * prec['tolerance']:.0f}%): "
                  f"{'within' if prec['within_tolerance'] else 'OUTSIDE'} tolerance. Final losses: fp32 "
                  f"{prec['fp32_losses'][-1]:.4f}, bf16 {prec['bf16_losses'][-1]:.4f}."]
    return "\n".join(lines) + "\n"


MARKERS = ("<!-- gpu-acceptance:start -->", "<!-- gpu-acceptance:end -->")


def placed(path: Path, generated: str) -> str:
    """The file's text with `generated` between its MARKERS (docs/gpu.md keeps its hand-written routes and
    setup around the report); the generated text alone for a file without them (the smoke run's)."""
    start, end = MARKERS
    old = path.read_text() if path.is_file() else ""
    if start not in old or end not in old:
        return generated
    return old[:old.index(start) + len(start)] + "\n" + generated + old[old.index(end):]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny iterations on the CPU (the test suite's run)")
    parser.add_argument("--out", help="folder for gpu.md and runs/gpu/*.json (default docs/; --smoke: required)")
    parser.add_argument("--skip", action="append", default=[], choices=["bench", "resnet20", "lenet5", "precision"],
                        help="leave a step out (repeatable)")
    args = parser.parse_args(argv)
    if args.smoke and not args.out:
        parser.error("--smoke writes its report under --out DIR (not into docs/)")
    try:
        bootstrap(args)
    except gpu_kit.KitError as e:
        print(f"gpu acceptance: bootstrap failed: {e}", file=sys.stderr)
        return 1
    plan = Plan.smoke_plan() if args.smoke else Plan(smoke=False)
    report = Report(args, plan)
    work = Path(tempfile.mkdtemp(prefix="zoo-gpu-runs-"))
    try:
        report.data["steps"]["device"] = {"status": "ok", "seconds": 0, **device_step(plan)}
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 2
    steps = {"bench": lambda: bench_step(plan, report), "resnet20": lambda: resnet20_step(plan, work),
             "lenet5": lambda: lenet5_step(plan, work), "precision": lambda: precision_step(plan)}
    for name, fn in steps.items():
        if name not in args.skip:
            report.step(name, fn)
    report.write_json()
    from zoo.results import write_text_atomic

    write_text_atomic(report.markdown_path, placed(report.markdown_path, markdown(report.data)))
    print(f"gpu acceptance: wrote {report.markdown_path} and {report.json_path} in {report.elapsed():.0f}s")
    failed = [n for n, s in report.data["steps"].items() if s["status"] != "ok"]
    if failed:
        print(f"gpu acceptance: failed steps: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
