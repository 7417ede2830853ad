"""Facts about the machine a run or a benchmark uses, shared by the training harness and `zoo bench`.
Light at import: TensorFlow only inside the functions that ask it about GPUs."""

from __future__ import annotations

import os
import platform


def _cpuinfo_field(key: str, cpuinfo: str = "/proc/cpuinfo") -> str | None:
    """The value of the first `key` line of /proc/cpuinfo (the first CPU's); None where there is none."""
    try:
        with open(cpuinfo) as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith(key)), None)
    except OSError:
        return None


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


# The widest vector extensions decide CPU conv/matmul speed (and whether TensorFlow turns oneDNN on by default),
# and a CPU model name such as "AMD EPYC" covers hosts with and without them: records name them.
_ISA_FLAGS = (("amx_tile", "AMX"), ("avx512_bf16", "AVX-512 BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2"))


def cpu_isa(cpuinfo: str = "/proc/cpuinfo") -> str:
    """The CPU's widest vector extensions, e.g. 'AVX-512, AVX-512 BF16' or 'AVX2'; '' where unknown."""
    flags = set((_cpuinfo_field("flags", cpuinfo) or "").split())
    found = [label for flag, label in _ISA_FLAGS if flag in flags]
    if "AVX-512" in found and "AVX2" in found:
        found.remove("AVX2")  # implied
    return ", ".join(reversed(found))


def cpu_cores() -> int:
    """Cores this process may use (its affinity mask), which is what a benchmark gets."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def onednn_state() -> str:
    """Whether TensorFlow runs its CPU kernels through oneDNN in this process, and why: 'on (TF default)',
    'off (TF_ENABLE_ONEDNN_OPTS=0)'. TensorFlow decides per CPU (on with AVX-512 VNNI/BF16 or AMX, off on AVX2-only
    parts), and it changes CPU speed by tens of percent, so benchmark records carry it."""
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    why = f"TF_ENABLE_ONEDNN_OPTS={setting}" if setting is not None else "TF default"
    try:
        from tensorflow.python.util import _pywrap_util_port  # no public API tells; fall back to the setting

        enabled = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return f"unknown ({why})"
    return f"{'on' if enabled else 'off'} ({why})"


def first_gpu():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return gpus[0] if gpus else None


def device_description() -> str:
    """'GPU: 2x NVIDIA H100 80GB HBM3 (compute capability 9.0)' or 'CPU: AMD EPYC (2 cores, AVX-512, AVX-512 BF16)'."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability")
        cc = f" (compute capability {capability[0]}.{capability[1]})" if capability else ""
        count = f"{len(gpus)}x " if len(gpus) > 1 else ""
        return f"GPU: {count}{details.get('device_name', gpus[0].name)}{cc}"
    isa = cpu_isa()
    return f"CPU: {cpu_model()} ({cpu_cores()} cores{', ' + isa if isa else ''})"
