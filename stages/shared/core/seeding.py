"""The one place seeds come from: the global seed, per-item seeds, framework seeding."""

from __future__ import annotations

import hashlib
import random

import numpy as np


def derive_seed(seed: int, *keys: object) -> int:
    """A 32-bit seed from the global seed and any identifying keys, stable across runs.

    Python's `hash()` is salted per process, so a cryptographic hash is used instead: the
    same (seed, keys) gives the same number in every process and on every machine.
    """
    text = "\x1f".join([str(seed), *map(str, keys)])
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def make_rng(seed: int, *keys: object) -> np.random.Generator:
    """A NumPy generator seeded from the global seed and keys."""
    return np.random.default_rng(derive_seed(seed, *keys))


def seed_everything(seed: int, deterministic_ops: bool = False) -> None:
    """Seed Python, NumPy, TensorFlow and Keras; optionally make TF ops deterministic."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    if deterministic_ops:
        tf.config.experimental.enable_op_determinism()


def seed_states(model) -> list:
    """The random-number states of a Keras model's layers (dropout, augmentation), in order:
    Keras' weights files leave them out, so a resumed run must save them itself."""
    return [v for v in model.variables if "seed_generator_state" in v.path]
