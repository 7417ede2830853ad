"""Throughput benchmark of registry variants (and their keras.applications twins) on synthetic data.

Protocol (after timm's benchmark.py): build the model under the requested dtype policy, make one compiled step
(inference: the forward pass compiled by the backend: a `tf.function` under TensorFlow, `jax.jit` of the model's
stateless call under JAX, where `jit_compile` is XLA and always on, eager under PyTorch; training: `model.compile`
with SGD + sparse cross-entropy and `train_on_batch`), run `warmup` untimed steps, then `iters` timed steps, each synchronised on its result (the
outputs are copied to the host, so no step is counted before the device has finished it). Reported: the median
images/s with its 10th/90th percentiles over the steps, ms per step, the model's parameters and MACs at that image
size (zoo.count_macs), the achieved GFLOP/s (2 x MACs per image for inference, 3 x that for training: forward plus
two backward matmuls), the device's measured matmul peak (a short probe of large matmuls on the same device in
the policy's compute dtype, the best of a few seconds) and the fraction of it (MFU), and the peak memory (host
RSS sampled during the run; GPU memory from the backend's allocator where a GPU exists: TensorFlow's and PyTorch's
peak over the run, JAX's peak since the process started, as JAX cannot reset it).

Out of memory (ResourceExhausted, CUDA out of memory) at a batch size: the batch is halved and the run repeated;
the record says so. The backend's framework is imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gc
import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Optional

from . import backend, formatting
from .choices import BENCH_MODES, PRECISIONS
from .errors import ZooError
from .hardware import (cpu_cores, cpu_model, device_description, first_gpu as _gpu,  # noqa: F401 (re-exported)
                       onednn_state)
from .tables import Column, giga_macs, render
from .weights import KERAS_APPLICATIONS as KERAS_TWINS

__all__ = ["BenchRecord", "measure", "compare_keras", "backoff_on_oom", "is_out_of_memory", "matmul_peak",
           "rescale_to_best_peak", "record_rows", "write_csv", "write_json", "markdown_report",
           "device_description", "KERAS_TWINS", "COLUMNS", "RECORD_COLUMNS"]

# FLOPs per MAC: a multiply and an add. Training does the forward pass plus the gradients with respect to the
# activations and to the weights, each as costly as the forward pass: 3x.
FLOPS_PER_MAC = 2
TRAIN_FACTOR = 3


class BenchError(ZooError):
    """A benchmark that cannot run as asked (bad option, out of memory even at batch 1)."""


@dataclass
class BenchRecord:
    """One benchmark measurement; the field order is the CSV column order."""

    model: str
    implementation: str  # "zoo" or "keras.applications"
    mode: str  # one of zoo.choices.BENCH_MODES
    batch_size: int  # the batch actually measured
    requested_batch_size: int
    image_size: int
    channels: int
    precision: str  # the Keras dtype policy, one of zoo.choices.PRECISIONS
    compute_dtype: str
    jit: bool  # XLA (jit_compile)
    warmup: int
    iters: int
    images_per_s: float  # batch / median step time over the timed steps
    images_per_s_p10: float
    images_per_s_p90: float
    ms_per_step: float  # median
    ms_per_step_p10: float
    ms_per_step_p90: float
    params: int  # trainable, of the model as built at this image size
    gmacs: float  # per image at this image size
    gflops_per_s: float  # achieved: FLOPs per image x median images/s
    peak_gflops_per_s: float  # the device's measured matmul peak in `peak_dtype`
    peak_dtype: str
    mfu: float  # gflops_per_s / peak_gflops_per_s
    peak_rss_mb: float  # host resident memory, the highest sampled during build + warm-up + timing
    start_rss_mb: float  # host resident memory before the model was built (TF runtime, earlier models' caches)
    gpu_peak_mb: Optional[float]  # the backend's allocator peak on the first GPU; None without a GPU
    backend: str
    device: str
    onednn_opts: str  # oneDNN on/off in this process and why, e.g. "on (TF default)" (zoo.hardware.onednn_state)
    load_avg: Optional[float]  # the host's 1-minute load average at the end of the run: > cores means contention
    tf_version: Optional[str]  # None where TensorFlow is not the backend (and not loaded)
    keras_version: str
    zoo_version: str
    date: str  # UTC, ISO 8601
    host: str
    vs_keras: Optional[float] = None  # our images/s / keras.applications' images/s, interleaved runs only
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


COLUMNS = [f.name for f in dataclasses.fields(BenchRecord)]


def _megabytes(mb: float) -> str:
    return formatting.integer(round(mb))


def _rate_range(row: dict) -> str:
    return f"{formatting.rate(row['images_per_s_p10'])}-{formatting.rate(row['images_per_s_p90'])}"


def _rss_range(row: dict) -> str:
    return f"{_megabytes(row['start_rss_mb'])} → {_megabytes(row['peak_rss_mb'])}"


# The fields the text tables show (the --markdown report, the terminal), with their headers and cells; the other
# fields are in the CSV/JSON only.
_TEXT_COLUMNS = {column.key: column for column in [
    Column("model", "model"), Column("implementation", "implementation"), Column("mode", "mode"),
    Column("batch_size", "batch", align="right"), Column("image_size", "size", align="right"),
    Column("images_per_s", "images/s (median)", formatting.rate, "right"),
    Column("images_per_s_p10", "p10-p90", align="right", cell=_rate_range),
    Column("ms_per_step", "ms/step", formatting.fixed, "right"),
    Column("gmacs", "GMACs/image", giga_macs, "right"),
    Column("gflops_per_s", "GFLOP/s", formatting.fixed, "right"),
    Column("mfu", "MFU", formatting.share, "right"),
    Column("peak_rss_mb", "RSS MB start → peak", align="right", cell=_rss_range),
    Column("gpu_peak_mb", "GPU peak MB", _megabytes, "right", optional=True),
    Column("vs_keras", "ours/keras", lambda ratio: formatting.fixed(ratio, 2), "right", optional=True),
    Column("note", "note"),
]}
# One column per record field, in record order: CSV/JSON headers are the field names (COLUMNS).
RECORD_COLUMNS = [_TEXT_COLUMNS.get(name) or Column(name, None) for name in COLUMNS]


# ---------------------------------------------------------------------------------------------------------------
# Out-of-memory back-off


def is_out_of_memory(error: BaseException) -> bool:
    """TensorFlow's ResourceExhaustedError, PyTorch's OutOfMemoryError (also when Keras re-raises them wrapped), or
    an allocator OOM message (XLA's RESOURCE_EXHAUSTED under JAX)."""
    for e in _chain(error):
        if type(e).__name__ in ("ResourceExhaustedError", "OutOfMemoryError"):
            return True
        text = str(e)
        if ("OOM when allocating" in text or "RESOURCE_EXHAUSTED" in text or "Out of memory" in text
                or "out of memory" in text):
            return True
    return False


def _chain(error: BaseException):
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        yield error
        error = error.__cause__ or error.__context__


def backoff_on_oom(run: Callable[[int], Any], batch_size: int, on_retry: Callable[[str], None] = None):
    """`run(batch)`, halving the batch on out-of-memory until it fits; records the back-off in `.note`.

    `run` returns a BenchRecord (or a list of them, for interleaved runs). Other errors pass through.
    """
    if batch_size < 1:
        raise BenchError(f"batch size must be at least 1, got {batch_size}")
    batch, failed = batch_size, []
    while True:
        try:
            result = run(batch)
            break
        except Exception as e:  # noqa: BLE001 - only out-of-memory is retried
            if not is_out_of_memory(e):
                raise
            failed.append(batch)
            _release_memory()
            if batch == 1:
                raise BenchError("out of memory even at batch size 1") from None
            batch //= 2
            if on_retry:
                on_retry(f"out of memory at batch {failed[-1]}; retrying at batch {batch}")
    for record in result if isinstance(result, list) else [result]:
        record.requested_batch_size = batch_size
        if failed:
            oom = f"out of memory at batch {', '.join(map(str, failed))}: measured at batch {batch}"
            record.note = "; ".join(filter(None, [oom, record.note]))
    return result


def _release_memory():
    import keras

    keras.backend.clear_session()
    gc.collect()
    if backend.name() == "torch":
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# ---------------------------------------------------------------------------------------------------------------
# Device facts


_PEAKS: dict[tuple[str, str], float] = {}


def matmul_peak(dtype: str = "float32", seconds: float = 3.0, refresh: bool = False) -> float:
    """The device's best measured matmul rate in GFLOP/s for `dtype`: square matmuls large enough to be
    compute-bound, repeated for about `seconds`; the best single timing counts (on a shared machine the best is
    the one least disturbed). Cached per device and dtype; `refresh` probes again and keeps the higher value."""
    on_gpu = _gpu() is not None
    key = ("GPU" if on_gpu else "CPU", dtype)
    if key in _PEAKS and not refresh:
        return _PEAKS[key]
    product_sum, operand = _matmul_probe(dtype)

    # Measured on the 2-core CPU here (quiet): 512 -> 180, 1024 -> 200, 1536 -> 216, 3072 -> 220 GFLOP/s, and
    # VGG-16's 3x3 convs reached 216: small sizes understate the peak (MFU above 100%). GPUs need large ones too.
    sizes = (4096, 8192) if on_gpu else (1024, 2048, 3072)
    best = _PEAKS.get(key, 0.0)
    for n in sizes:
        a, b = operand(n, 0), operand(n, 1)
        float(product_sum(a, b))  # trace and warm up
        start = time.perf_counter()
        while time.perf_counter() - start < seconds / len(sizes):
            t0 = time.perf_counter()
            float(product_sum(a, b))  # to the host: synchronised
            best = max(best, 2 * n ** 3 / (time.perf_counter() - t0) / 1e9)
    _PEAKS[key] = best
    return best


def _matmul_probe(dtype: str):
    """(product_sum(a, b) -> a device scalar, compiled by the backend; operand(n, seed) -> an n x n `dtype` matrix
    on the device). The sum is O(n^2) next to the O(n^3) product, and keeps the product alive."""
    import keras
    from keras import ops

    def product_sum(x, y):
        return ops.sum(ops.cast(ops.matmul(x, y), "float32"))

    def operand(n: int, seed: int):
        return ops.cast(keras.random.uniform((n, n), dtype="float32", seed=seed), dtype)

    kind = backend.name()
    if kind == "jax":
        import jax

        return jax.jit(product_sum), operand
    if kind == "tensorflow":
        import tensorflow as tf

        return tf.function(product_sum), operand
    return product_sum, operand  # torch: eager kernels are the compiled ones (cuBLAS / oneDNN)


def rescale_to_best_peak(records: list["BenchRecord"]) -> None:
    """Restate every record's peak and MFU against the best probe of its device and dtype seen in this process
    (probes are repeated after each measurement; a busy moment must not inflate the MFU of earlier rows)."""
    for record in records:
        best = _PEAKS.get(("GPU" if record.device.startswith("GPU") else "CPU", record.peak_dtype))
        if best and best > record.peak_gflops_per_s:
            record.peak_gflops_per_s = best
            record.mfu = record.gflops_per_s / best


class _MemorySampler:
    """The highest host RSS seen while active (a thread sampling every 10 ms; TF releases the GIL in ops)."""

    def __init__(self, interval: float = 0.01):
        import psutil

        self._process, self._interval = psutil.Process(), interval
        self.start = self.peak = self._process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self._stop.wait(self._interval):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)


@contextlib.contextmanager
def _gpu_memory():
    """Yields a dict whose 'peak_mb' is the first GPU's allocator peak over the block (None without a GPU; under JAX
    the peak since the process started: JAX has no reset)."""
    result: dict[str, Optional[float]] = {"peak_mb": None}
    gpu = _gpu()
    if gpu is None:
        yield result
        return
    kind = backend.name()
    if kind == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")
    elif kind == "torch":
        import torch

        torch.cuda.reset_peak_memory_stats(gpu)
    try:
        yield result
    finally:
        if kind == "tensorflow":
            result["peak_mb"] = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2 ** 20
        elif kind == "torch":
            result["peak_mb"] = torch.cuda.max_memory_allocated(gpu) / 2 ** 20
        else:
            peak = (gpu.memory_stats() or {}).get("peak_bytes_in_use")
            result["peak_mb"] = peak / 2 ** 20 if peak else None


@contextlib.contextmanager
def _dtype_policy(precision: str):
    import keras

    if precision not in PRECISIONS:
        raise BenchError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield keras.config.dtype_policy().compute_dtype
    finally:
        keras.config.set_dtype_policy(previous)


# ---------------------------------------------------------------------------------------------------------------
# One model, ready to step


@dataclass
class _Subject:
    label: str
    implementation: str
    step: Callable[[], None]
    params: int
    macs: int
    times: list


def _build_zoo(name: str, image_size: int, channels: int):
    import zoo

    return zoo.build(name, input_shape=(image_size, image_size, channels))


def _build_keras(name: str, image_size: int, channels: int, classes: int):
    import keras

    constructor = getattr(keras.applications, KERAS_TWINS[name])
    return constructor(weights=None, input_shape=(image_size, image_size, channels), classes=classes)


def _compiled_forward(model, jit: bool):
    """forward(x) -> the outputs of `model` in inference mode, compiled as the backend compiles."""
    kind = backend.name()
    if kind == "jax":
        import jax

        # Keras' own predict step under JAX: the stateless call, jitted, with the variables passed in.
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]
        stateless = jax.jit(lambda tv, ntv, x: model.stateless_call(tv, ntv, x, training=False)[0])
        return lambda x: stateless(trainable, non_trainable, x)
    if kind == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda x: model(x, training=False), jit_compile=jit)
    import torch

    def forward(x):
        with torch.no_grad():
            return model(x, training=False)

    return forward


def _prepare(model, mode: str, batch: int, classes: int, jit: bool, label: str, implementation: str) -> _Subject:
    """A synchronised step function for `model` on a synthetic batch."""
    import keras
    from keras import ops, tree

    import zoo

    shape = (batch, *model.input_shape[1:])
    images = keras.random.uniform(shape, dtype="float32", seed=0)
    outputs = model.outputs if isinstance(model.outputs, list) else [model.outputs]
    if mode == "infer":
        forward = _compiled_forward(model, jit)

        def step():
            for y in tree.flatten(forward(images)):
                ops.convert_to_numpy(y)  # to the host: synchronised
    elif mode == "train":
        labels = keras.random.randint((batch,), 0, classes, dtype="int32", seed=1)
        many = len(outputs) > 1  # GoogLeNet with auxiliary classifiers: the same labels for every head
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss=[keras.losses.SparseCategoricalCrossentropy()] * len(outputs) if many
                      else keras.losses.SparseCategoricalCrossentropy(), jit_compile=jit)
        targets = [labels] * len(outputs) if many else labels

        def step():
            model.train_on_batch(images, targets)  # returns the loss as a host float: synchronised
    else:
        raise BenchError(f"mode must be one of {', '.join(BENCH_MODES)}, got {mode!r}")
    return _Subject(label, implementation, step, zoo.count_params(model), zoo.count_macs(model), [])


def _timed(step: Callable[[], None], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return times


def _percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100] (numpy's default method)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _default_jit(xla: Optional[bool]) -> bool:
    """Keras' own default: under TensorFlow XLA on accelerators, not on the CPU; under JAX always (jit_compile is
    XLA, and without it every op runs eagerly); under PyTorch never (torch.compile is not what Keras' jit means).
    --no-xla under JAX is refused rather than measuring an op-by-op loop."""
    kind = backend.name()
    if kind == "jax":
        if xla is False:
            raise BenchError("--no-xla: under the JAX backend every step is XLA-compiled (jit_compile is XLA); "
                             "use the TensorFlow backend to time without XLA")
        return True
    if kind == "torch":
        if xla:
            raise BenchError("--xla: the PyTorch backend has no XLA; use the JAX or TensorFlow backend")
        return False
    return (_gpu() is not None) if xla is None else bool(xla)


def _record(subject: _Subject, *, mode, batch, image_size, channels, precision, compute_dtype, jit, warmup,
            peak, peak_dtype, rss: "_MemorySampler", gpu_mb) -> BenchRecord:
    import keras

    import zoo

    times = subject.times
    p10, p50, p90 = (_percentile(times, q) for q in (10, 50, 90))
    # Rates from step-time percentiles (slow steps give low rates): images/s is exactly batch / median step time
    # whatever the number of steps, where the median of per-step rates would interpolate differently.
    ips = batch / p50
    flops_per_image = FLOPS_PER_MAC * subject.macs * (TRAIN_FACTOR if mode == "train" else 1)
    achieved = flops_per_image * ips / 1e9
    return BenchRecord(
        model=subject.label, implementation=subject.implementation, mode=mode, batch_size=batch,
        requested_batch_size=batch, image_size=image_size, channels=channels, precision=precision,
        compute_dtype=compute_dtype, jit=jit, warmup=warmup, iters=len(times),
        images_per_s=ips, images_per_s_p10=batch / p90, images_per_s_p90=batch / p10,
        ms_per_step=p50 * 1e3, ms_per_step_p10=p10 * 1e3, ms_per_step_p90=p90 * 1e3,
        params=subject.params, gmacs=subject.macs / 1e9, gflops_per_s=achieved,
        peak_gflops_per_s=peak, peak_dtype=peak_dtype, mfu=achieved / peak,
        peak_rss_mb=rss.peak / 2 ** 20, start_rss_mb=rss.start / 2 ** 20, gpu_peak_mb=gpu_mb,
        backend=keras.backend.backend(),
        device=device_description(), onednn_opts=onednn_state(),
        load_avg=os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        tf_version=backend.versions()["tensorflow"], keras_version=keras.__version__, zoo_version=zoo.__version__,
        date=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        host=socket.gethostname())


def _check(mode: str, warmup: int, iters: int):
    if mode not in BENCH_MODES:
        raise BenchError(f"mode must be one of {', '.join(BENCH_MODES)}, got {mode!r}")
    if iters < 1 or warmup < 0:
        raise BenchError(f"need iters >= 1 and warmup >= 0, got iters={iters}, warmup={warmup}")


def _peak_for(compute_dtype: str) -> tuple[float, str]:
    # Mixed policies compute in bf16/fp16: their MFU is against that dtype's matmul peak.
    dtype = compute_dtype if compute_dtype in ("bfloat16", "float16") else "float32"
    return matmul_peak(dtype), dtype


# ---------------------------------------------------------------------------------------------------------------
# Public entry points


def measure(name: str, mode: str = "infer", batch_size: int = 32, image_size: Optional[int] = None,
            precision: str = "float32", xla: Optional[bool] = None, warmup: int = 3, iters: int = 10,
            on_retry: Callable[[str], None] = None) -> BenchRecord:
    """Benchmark registry variant `name` in `mode` ('infer' or 'train'); halves the batch on out-of-memory.

    image_size: default the registry's input size. xla: None = Keras' default (XLA on GPU, not on CPU).
    """
    from .registry import registry

    spec = registry().get(name)
    _check(mode, warmup, iters)
    size = image_size or spec.input.size

    def at(batch: int) -> BenchRecord:
        return _measure_at(spec, mode, batch, size, precision, xla, warmup, iters)

    return backoff_on_oom(at, batch_size, on_retry)


def _measure_at(spec, mode, batch, size, precision, xla, warmup, iters) -> BenchRecord:
    _release_memory()
    jit = _default_jit(xla)
    with _dtype_policy(precision) as compute_dtype:
        peak, peak_dtype = _peak_for(compute_dtype)
        with _MemorySampler() as rss, _gpu_memory() as gpu:
            model = _build_zoo(spec.name, size, spec.input.channels)
            subject = _prepare(model, mode, batch, spec.classes, jit, spec.name, "zoo")
            _timed(subject.step, warmup)
            subject.times = _timed(subject.step, iters)
    peak = max(peak, matmul_peak(peak_dtype, seconds=1.0, refresh=True))
    return _record(subject, mode=mode, batch=batch, image_size=size, channels=spec.input.channels,
                   precision=precision, compute_dtype=compute_dtype, jit=jit, warmup=warmup, peak=peak,
                   peak_dtype=peak_dtype, rss=rss, gpu_mb=gpu["peak_mb"])


def compare_keras(name: str, mode: str = "infer", batch_size: int = 32, image_size: Optional[int] = None,
                  precision: str = "float32", xla: Optional[bool] = None, warmup: int = 3, iters: int = 10,
                  rounds: int = 5, on_retry: Callable[[str], None] = None) -> list[BenchRecord]:
    """Our `name` and its keras.applications twin in one process under the same settings, timed interleaved
    (`rounds` rounds, iters split between them, ours first in even rounds and theirs first in odd ones), so that
    drifts of a shared machine (other load, clocks, caches) fall on both alike. Returns [ours, theirs];
    ours.vs_keras = our / their median images/s."""
    from .registry import registry

    spec = registry().get(name)
    if spec.name not in KERAS_TWINS:
        raise BenchError(f"{spec.name} has no keras.applications twin; those with one: {', '.join(KERAS_TWINS)}")
    _check(mode, warmup, iters)
    size = image_size or spec.input.size

    def at(batch: int) -> list[BenchRecord]:
        return _compare_at(spec, mode, batch, size, precision, xla, warmup, iters, rounds)

    return backoff_on_oom(at, batch_size, on_retry)


def _compare_at(spec, mode, batch, size, precision, xla, warmup, iters, rounds) -> list[BenchRecord]:
    _release_memory()
    jit = _default_jit(xla)
    channels = spec.input.channels
    with _dtype_policy(precision) as compute_dtype:
        peak, peak_dtype = _peak_for(compute_dtype)
        with _MemorySampler() as rss, _gpu_memory() as gpu:
            ours = _prepare(_build_zoo(spec.name, size, channels), mode, batch, spec.classes, jit, spec.name,
                            "zoo")
            twin = KERAS_TWINS[spec.name]
            theirs = _prepare(_build_keras(spec.name, size, channels, spec.classes), mode, batch, spec.classes,
                              jit, f"keras.applications.{twin}", "keras.applications")
            for subject in (ours, theirs):
                _timed(subject.step, warmup)
            rounds = max(1, min(rounds, iters))
            for r in range(rounds):  # iters spread over the rounds as evenly as they go; who goes first alternates
                n = iters // rounds + (1 if r < iters % rounds else 0)
                for subject in (ours, theirs) if r % 2 == 0 else (theirs, ours):
                    subject.times += _timed(subject.step, n)
    peak = max(peak, matmul_peak(peak_dtype, seconds=1.0, refresh=True))
    shared = dict(mode=mode, batch=batch, image_size=size, channels=channels, precision=precision,
                  compute_dtype=compute_dtype, jit=jit, warmup=warmup, peak=peak, peak_dtype=peak_dtype,
                  rss=rss, gpu_mb=gpu["peak_mb"])
    records = [_record(s, **shared) for s in (ours, theirs)]
    records[0].vs_keras = records[0].images_per_s / records[1].images_per_s
    for record, other in zip(records, reversed(records)):
        record.note = f"interleaved with {other.model} over {rounds} rounds; peak memory is of both models"
    return records


# ---------------------------------------------------------------------------------------------------------------
# Writers (no TensorFlow needed)


def write_json(records: list[BenchRecord], path) -> None:
    from .results import write_json_atomic

    write_json_atomic(path, [r.as_dict() for r in records])


def record_rows(records: list[BenchRecord]) -> list[dict[str, Any]]:
    """The records as the rows zoo.tables renders (RECORD_COLUMNS)."""
    return [r.as_dict() for r in records]


def write_csv(records: list[BenchRecord], path) -> None:
    """Every record field, headers = the field names (COLUMNS), raw values; None as an empty cell."""
    from .results import write_text_atomic

    write_text_atomic(path, render(record_rows(records), RECORD_COLUMNS, "csv"))


def software_line(record: BenchRecord) -> str:
    """'TensorFlow 2.21.0, Keras 3.15.1 (tensorflow backend)' or 'Keras 3.15.1 (jax backend)'."""
    tf = f"TensorFlow {record.tf_version}, " if record.tf_version else ""
    return f"{tf}Keras {record.keras_version} ({record.backend} backend)"


def markdown_report(records: list[BenchRecord], command: str) -> str:
    """docs/benchmarks.md: how it was run (command, machine, versions, date), the method, and the table."""
    if not records:
        raise BenchError("no benchmark records to write")
    first = records[0]
    peaks = sorted({(r.peak_dtype, round(r.peak_gflops_per_s, 1)) for r in records})
    loads = [r.load_avg for r in records if r.load_avg is not None]
    return "\n".join([
        "# Benchmarks",
        "",
        f"Generated by `{command}` (rerun it to regenerate this file).",
        "",
        f"- machine: {first.device}, host `{first.host}`",
        f"- software: {software_line(first)}, zoo {first.zoo_version}; oneDNN {first.onednn_opts}",
        f"- settings: precision {first.precision}, XLA {'on' if first.jit else 'off'}, {first.warmup} warm-up "
        f"steps, {first.iters} timed steps per row",
        "- measured matmul peak of this device: "
        + ", ".join(f"{d} {formatting.fixed(p)} GFLOP/s" for d, p in peaks),
        f"- date: {first.date}",
        f"- host load (1-minute load average at the end of each row, {cpu_cores()} cores): "
        + (f"{formatting.fixed(min(loads))} to {formatting.fixed(max(loads))}" if loads else "unknown"),
        "",
        "Method: synthetic inputs; inference is the forward pass compiled by the backend (a `tf.function` under "
        "TensorFlow, `jax.jit` of the stateless call under JAX), training is `model.compile` "
        "(SGD with momentum, sparse cross-entropy) and `train_on_batch`; every timed step waits for its result "
        "on the host. images/s is the batch over the median step time, with the 10th-90th percentiles (the batch over "
        "the 90th and 10th percentile step times). "
        "GFLOP/s counts 2 FLOPs per MAC (zoo.count_macs at that image size), x3 for training; MFU is that "
        "over the measured matmul peak. RSS is the host process's resident memory before the model was built "
        "and its peak during build, warm-up and timing (rows run in order in one process, so the start includes "
        "TensorFlow and what earlier rows left cached). "
        "`ours/keras` is the images/s ratio to the keras.applications twin timed interleaved in the same process "
        "(>1: ours faster).",
        "",
        render(record_rows(records), RECORD_COLUMNS, "md"),
    ])
