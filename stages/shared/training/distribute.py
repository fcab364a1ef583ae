"""Where training runs, from `base` params: one device, several (MirroredStrategy), several
machines (MultiWorkerMirroredStrategy, configured by TF_CONFIG); mixed precision and XLA.

`batch_size` in params is per replica: the global batch is batch_size × replicas, and with
`scale_learning_rate` the learning rate grows by the same factor (the linear scaling rule of
Goyal et al. 2017, "Accurate, Large Minibatch SGD").
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import tensorflow as tf

from stages.shared.core.cli import UserError
from stages.shared.core.paths import WORK_DIR

log = logging.getLogger(__name__)
PATCHED_KERAS = "3.15."  # the Keras release whose internals patch_keras_for_multi_worker edits


def split_cpu(count: int) -> None:
    """Present the CPU as `count` logical devices (MirroredStrategy on a machine with no GPU).

    Must run before TensorFlow initialises its devices (before any op runs).
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        config = [tf.config.LogicalDeviceConfiguration() for _ in range(count)]
        tf.config.set_logical_device_configuration(cpu, config)
    except RuntimeError as err:  # TensorFlow had already initialised
        raise RuntimeError(f"base.distribute.logical_cpus must be set up first: {err}") from None


def set_precision(choice: str) -> str:
    """Set Keras' dtype policy from `base.mixed_precision`; returns the policy's name.

    `auto`: mixed_float16 on a GPU (Keras keeps float32 weights and scales the loss itself),
    float32 on a CPU. Measured on an AVX512-BF16 CPU (bench/LEVERS.md), mixed_bfloat16
    trained the detector 1.15× faster with its test metrics inside the float32 run's
    intervals, and the classifier 1.02× faster with its log-loss outside; `auto` leaves it
    off on CPUs: a default whose numbers depend on the CPU's bfloat16 units would give two
    users of the same params different models. An explicit choice is honoured; float16 on a
    CPU is emulated, so it is honoured with a warning.
    """
    import keras

    gpu = bool(tf.config.list_physical_devices("GPU"))
    policy = ("mixed_float16" if gpu else "float32") if choice == "auto" else choice
    if policy == "mixed_float16" and not gpu:
        log.warning("base.mixed_precision: mixed_float16 on a CPU is slow (no float16 units)")
    keras.mixed_precision.set_global_policy(policy)
    return policy


def tf_config() -> dict:
    """The TF_CONFIG environment variable (cluster and task of this process), or {}."""
    try:
        config = json.loads(os.environ.get("TF_CONFIG") or "{}")
    except json.JSONDecodeError as err:
        raise UserError(f"TF_CONFIG: not valid JSON ({err}) — see docs/scaling.md") from None
    return config if isinstance(config, dict) else {}


def task_of_this_worker() -> tuple[str, int]:
    """(type, index) of this process in TF_CONFIG; ("chief", 0) without one."""
    task = tf_config().get("task") or {}
    return task.get("type", "chief"), int(task.get("index", 0))


def is_chief() -> bool:
    """The process that writes outputs: the `chief`, else worker 0 (TensorFlow's convention)."""
    kind, index = task_of_this_worker()
    return kind == "chief" or (kind == "worker" and index == 0 and not has_chief())


def has_chief() -> bool:
    """Does TF_CONFIG name a separate `chief` task?"""
    return bool(tf_config().get("cluster", {}).get("chief"))


def make_strategy(name: str) -> tf.distribute.Strategy:
    """The tf.distribute strategy for `base.distribute.strategy`."""
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        return tf.distribute.MirroredStrategy() if len(gpus) > 1 else tf.distribute.get_strategy()
    if name == "mirrored":
        devices = None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise UserError(
                "base.distribute.strategy: multi_worker needs the TF_CONFIG environment variable"
                " (cluster and task of this process) — see docs/scaling.md"
            )
        patch_keras_for_multi_worker()
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise UserError(f"unknown strategy {name!r}; choices: auto, mirrored, multi_worker")


def setup(base) -> tf.distribute.Strategy:
    """Devices, precision and strategy from `base`; call before anything else touches TF."""
    if base.distribute.logical_cpus > 1:
        split_cpu(base.distribute.logical_cpus)
    set_precision(base.mixed_precision)
    strategy = make_strategy(base.distribute.strategy)
    replicas, name = strategy.num_replicas_in_sync, base.distribute.strategy
    log.info("training on %d replica(s): %s (%s)", replicas, name, type(strategy).__name__)
    return strategy


def scaled(batch_size: int, learning_rate: float, replicas: int, scale_rate: bool):
    """(global batch size, learning rate) for `replicas` replicas."""
    return batch_size * replicas, learning_rate * (replicas if scale_rate else 1)


def worker_paths(paths: dict) -> dict:
    """Outputs of a non-chief worker go to a scratch folder: only the chief writes results.

    Every worker must still run the same callbacks (checkpoints, backups), because saving a
    distributed model involves all of them.
    """
    if is_chief():
        return paths
    kind, index = task_of_this_worker()
    scratch = WORK_DIR / f"{kind}-{index}"
    moved = {
        key: (scratch / Path(value)).as_posix()
        for key, value in paths.items()
        if isinstance(value, str) and key != "manifest"
    }
    return {**paths, **moved}


def patch_keras_for_multi_worker() -> None:
    """Work around two Keras 3 bugs that stop `fit` under MultiWorkerMirroredStrategy.

    keras-team/keras#20585 (and tensorflow/tensorflow#72388): `fit` first reduces a sample
    batch across workers to build the model, which fails on the per-replica batch; a model
    built before `fit` only needs a local batch. And the per-step logs are scalars, which
    the multi-worker branch of `reduce_per_replica` reduces along an axis 0 they do not have.
    Both patches only change behaviour under MultiWorkerMirroredStrategy.
    """
    import keras

    if not keras.__version__.startswith(PATCHED_KERAS):
        raise UserError(
            f"base.distribute.strategy: multi_worker patches internals of Keras {PATCHED_KERAS}x"
            f" (keras-team/keras#20585), this is Keras {keras.__version__} — install the Keras"
            " of requirements.txt, or use strategy: mirrored on one machine"
        )
    from keras.src.backend.tensorflow import trainer

    if getattr(trainer, "_multi_worker_patched", False):
        return
    original_reduce = trainer.reduce_per_replica
    original_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and trainer._collective_all_reduce_multi_worker(strategy):
            return tf.nest.map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return original_reduce(values, strategy, reduction)

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if iterator is not None and trainer._collective_all_reduce_multi_worker(
            self.distribute_strategy
        ):
            for _, _, batches in iterator:
                batch = next(batches)
                local = tf.nest.map_structure(
                    lambda v: self.distribute_strategy.experimental_local_results(v)[0], batch
                )
                return original_build(self, data_batch=local)
        return original_build(self, iterator, data_batch)

    trainer.reduce_per_replica = reduce_per_replica
    trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    trainer._multi_worker_patched = True
