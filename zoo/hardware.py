"""Facts about the machine a run or a benchmark uses, shared by the training harness and `zoo bench`.
Light at import: TensorFlow only inside the functions that ask it about GPUs."""

from __future__ import annotations

import os
import platform


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_cores() -> int:
    """Cores this process may use (its affinity mask), which is what a benchmark gets."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def first_gpu():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return gpus[0] if gpus else None


def device_description() -> str:
    """'2x NVIDIA H100 80GB HBM3 (compute capability 9.0)' or 'CPU: AMD EPYC (2 cores)'."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        capability = details.get("compute_capability")
        cc = f" (compute capability {capability[0]}.{capability[1]})" if capability else ""
        count = f"{len(gpus)}x " if len(gpus) > 1 else ""
        return f"GPU: {count}{details.get('device_name', gpus[0].name)}{cc}"
    return f"CPU: {cpu_model()} ({cpu_cores()} cores)"
