"""Facts about the machine a run or a benchmark uses, shared by the training harness and `zoo bench`.
Light at import: the backend's framework (TensorFlow, JAX or PyTorch: zoo.backend) only inside the functions that
ask it about GPUs."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from typing import Optional

from . import backend


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
    if not backend.uses_tensorflow():
        return f"n/a ({backend.name()} backend)"
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    why = f"TF_ENABLE_ONEDNN_OPTS={setting}" if setting is not None else "TF default"
    try:
        from tensorflow.python.util import _pywrap_util_port  # no public API tells; fall back to the setting

        enabled = bool(_pywrap_util_port.IsMklEnabled())
    except (ImportError, AttributeError):
        return f"unknown ({why})"
    return f"{'on' if enabled else 'off'} ({why})"


def _tf_gpus() -> list:
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def _jax_gpus() -> list:
    import jax

    try:
        return jax.devices("gpu")
    except RuntimeError:  # no GPU backend in this jaxlib, or no device
        return []


def _torch_gpus() -> list:
    import torch

    return [torch.device("cuda", i) for i in range(torch.cuda.device_count())]


def gpus() -> list:
    """The GPUs the active Keras backend sees (its own device objects)."""
    kind = backend.name()
    if kind == "jax":
        return _jax_gpus()
    if kind == "torch":
        return _torch_gpus()
    return _tf_gpus()


def first_gpu():
    found = gpus()
    return found[0] if found else None


@dataclass
class GpuFacts:
    """One GPU as the backend reports it; memory in MiB, None where the backend does not say."""

    name: str
    count: int
    compute_capability: Optional[str] = None
    memory_mb: Optional[float] = None
    driver: Optional[str] = None  # NVIDIA driver (nvidia-smi)
    cuda: Optional[str] = None


def _nvidia_driver() -> Optional[str]:
    """The NVIDIA driver version from nvidia-smi, where it is installed (JAX and PyTorch do not report it)."""
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else None


def _jax_cuda_version() -> Optional[str]:
    """The CUDA runtime jaxlib loaded, as 'major.minor' (a private module: None when it moves)."""
    try:
        from jax._src.lib import cuda_versions

        raw = int(cuda_versions.cuda_runtime_get_version())
        return f"{raw // 1000}.{raw % 1000 // 10}"
    except Exception:  # noqa: BLE001 - a fact for the report, not worth failing over
        return None


def _jax_facts(devices) -> GpuFacts:
    first = devices[0]
    stats = first.memory_stats() or {}
    capability = getattr(first, "compute_capability", None)
    limit = stats.get("bytes_limit")
    return GpuFacts(first.device_kind, len(devices), str(capability) if capability else None,
                    limit / 2 ** 20 if limit else None, _nvidia_driver(), _jax_cuda_version())


def _torch_facts(devices) -> GpuFacts:
    import torch

    props = torch.cuda.get_device_properties(devices[0])
    return GpuFacts(props.name, len(devices), f"{props.major}.{props.minor}", props.total_memory / 2 ** 20,
                    _nvidia_driver(), torch.version.cuda)


def _tf_facts(devices) -> GpuFacts:
    import tensorflow as tf

    details = tf.config.experimental.get_device_details(devices[0])
    capability = details.get("compute_capability")
    build = tf.sysconfig.get_build_info()
    return GpuFacts(details.get("device_name", devices[0].name), len(devices),
                    f"{capability[0]}.{capability[1]}" if capability else None, None, _nvidia_driver(),
                    build.get("cuda_version"))


def gpu_facts() -> Optional[GpuFacts]:
    """The first GPU's facts (name, count, capability, memory, driver/CUDA where known); None without a GPU."""
    found = gpus()
    if not found:
        return None
    kind = backend.name()
    return (_jax_facts if kind == "jax" else _torch_facts if kind == "torch" else _tf_facts)(found)


def device_description() -> str:
    """'GPU: 2x NVIDIA H100 80GB HBM3 (compute capability 9.0)' or 'CPU: AMD EPYC (2 cores, AVX-512, AVX-512 BF16)'."""
    facts = gpu_facts()
    if facts:
        cc = f" (compute capability {facts.compute_capability})" if facts.compute_capability else ""
        count = f"{facts.count}x " if facts.count > 1 else ""
        return f"GPU: {count}{facts.name}{cc}"
    isa = cpu_isa()
    return f"CPU: {cpu_model()} ({cpu_cores()} cores{', ' + isa if isa else ''})"
