"""Where a run executes: the tf.distribute strategy, the chief, the dtype policy and a one-line device name.

Under Keras' JAX or PyTorch backend there is no tf.distribute: a run uses one device (the backend's default, the
GPU where there is one) through `SingleDevice`, which answers what the harness asks of a strategy."""

from __future__ import annotations

import contextlib
import json
import os

from .. import backend
from .config import TrainError

__all__ = ["SingleDevice", "make_strategy", "strategy_name", "default_xla", "patch_multi_worker_build", "is_chief", "worker_index",
           "dtype_policy", "device_description", "cluster_size"]


def _tf_config() -> dict:
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise TrainError(f"TF_CONFIG is not valid JSON: {e}") from None


def cluster_size() -> int:
    """Machines named in TF_CONFIG (chief and workers); 0 without TF_CONFIG."""
    cluster = _tf_config().get("cluster", {})
    return len(cluster.get("chief", [])) + len(cluster.get("worker", []))


class SingleDevice:
    """The strategy of a run outside TensorFlow: one replica, the backend's default device, nothing to enter."""

    num_replicas_in_sync = 1
    cluster_resolver = None

    def scope(self):
        return contextlib.nullcontext()


def make_strategy(kind: str = "auto"):
    """auto: MultiWorkerMirroredStrategy when TF_CONFIG names several machines, MirroredStrategy when several
    GPUs are visible, else the default (single-device) strategy. Outside TensorFlow: SingleDevice."""
    if not backend.uses_tensorflow():
        if kind in ("mirrored", "multi-worker"):
            raise TrainError(f"--strategy {kind} is tf.distribute's and needs the TensorFlow backend; under "
                             f"{backend.name()} a run uses one device")
        return SingleDevice()
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if kind == "auto":
        kind = "multi-worker" if cluster_size() > 1 else "mirrored" if len(gpus) > 1 else "default"
    if kind == "multi-worker":
        if cluster_size() < 1:
            raise TrainError("--strategy multi-worker needs TF_CONFIG describing the cluster and this task")
        # NCCL between GPUs; between CPU-only workers the ring all-reduce over gRPC.
        implementation = (tf.distribute.experimental.CommunicationImplementation.NCCL if gpus
                          else tf.distribute.experimental.CommunicationImplementation.RING)
        options = tf.distribute.experimental.CommunicationOptions(implementation=implementation)
        patch_keras_step_reduction()
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def strategy_name(strategy) -> str:
    """'default', 'mirrored' or 'multi-worker': the --strategy name of a strategy object."""
    if isinstance(strategy, SingleDevice):
        return "default"
    import tensorflow as tf

    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return "multi-worker"
    if isinstance(strategy, tf.distribute.MirroredStrategy):
        return "mirrored"
    return "default"


def default_xla() -> bool:
    """TensorFlow: XLA when a GPU is visible; on CPUs oneDNN's kernels are faster than XLA's (see
    config.DEFAULTS). JAX: always (jit_compile is XLA; without it every op runs eagerly). PyTorch: never."""
    from ..hardware import first_gpu

    kind = backend.name()
    return kind == "jax" or (kind == "tensorflow" and first_gpu() is not None)


def patch_multi_worker_build(model, strategy) -> None:
    """Work around Keras 3's fit()/evaluate() under MultiWorkerMirroredStrategy (keras-team/keras#20585): before
    the first step they average a data batch across all replicas (`_maybe_symbolic_build`) to build the model
    symbolically, an eager cross-worker reduce the collective strategy rejects ("Attempt to convert a value
    (PerReplica...) to a Tensor"). The build only needs the batch's shapes: take this worker's own first replica
    batch instead."""
    if isinstance(strategy, SingleDevice):
        return
    import tensorflow as tf
    from keras import tree

    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return

    def local(value):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def symbolic_build(iterator=None, data_batch=None):
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tree.map_structure(local, next(batches))
                break
        with strategy.scope():
            model._symbolic_build(data_batch=data_batch)

    model._maybe_symbolic_build = symbolic_build


def patch_keras_step_reduction() -> None:
    """Work around Keras 3's train/test step under MultiWorkerMirroredStrategy (keras-team/keras#20585): it
    averages the step's logs across workers with `strategy.reduce("MEAN", v, axis=0)`, which fails on the scalar
    loss and metrics ("Invalid reduction dimension 0 for input with 0 dimensions"). A scalar is averaged over the
    replicas as it is (axis=None); everything else goes to Keras unchanged. Idempotent."""
    import tensorflow as tf
    from keras import tree
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer.reduce_per_replica, "zoo_patched", False):
        return
    keras_reduce = trainer.reduce_per_replica

    def rank(value) -> int:
        if isinstance(value, tf.distribute.DistributedValues):
            value = value._values[0]
        return len(value.shape)

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tree.map_structure(
                lambda v: strategy.reduce("MEAN", v, axis=None if rank(v) == 0 else 0), values)
        return keras_reduce(values, strategy, reduction)

    reduce_per_replica.zoo_patched = True
    trainer.reduce_per_replica = reduce_per_replica


def worker_index(strategy) -> tuple[str | None, int]:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return None, 0
    return resolver.task_type, int(resolver.task_id or 0)


def is_chief(strategy) -> bool:
    """The task that writes files: the `chief` task, or worker 0 in a cluster without one (Keras' convention)."""
    task_type, task_id = worker_index(strategy)
    if task_type in (None, "chief"):
        return True
    has_chief = bool(_tf_config().get("cluster", {}).get("chief"))
    return task_type == "worker" and task_id == 0 and not has_chief


@contextlib.contextmanager
def dtype_policy(precision: str):
    """Build and compile under `precision`'s Keras dtype policy; restores the previous global policy after."""
    import keras

    from ..hardware import first_gpu

    if precision == "mixed_float16" and first_gpu() is None:
        raise TrainError("mixed_float16 needs a GPU (on a CPU it is emulated and slow); use mixed_bfloat16")
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def device_description(strategy=None) -> str:
    """The device (zoo.hardware), prefixed with the worker count when the run spans several machines."""
    from ..hardware import device_description as describe

    workers = cluster_size()
    return f"{workers} workers x {describe()}" if workers > 1 else describe()
