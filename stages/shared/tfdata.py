"""tf.data input pipelines over manifests: parallel decode, resize, cache, shuffle, prefetch.

Images are decoded by `images.read_rgb` (PIL) so training, evaluation and prediction share
one decoder that honours EXIF orientation and maps every mode (grey, RGBA, palette, 16-bit)
to RGB the same way; a large JPEG is decoded at reduced scale, never below the input size.
Pixels come out as float32 in [0, 255]; each model normalises them itself (a Rescaling
layer), so a saved model carries its own preprocessing.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from stages.shared.images import model_pixels
from stages.shared.seeding import derive_seed

AUTOTUNE = tf.data.AUTOTUNE
CACHE_BUDGET_BYTES = 2 * 1024**3  # decoded images kept in RAM when they fit in this


def load_image(path: str | Path, size: int) -> np.ndarray:
    """One image file as a float32 (size, size, 3) array in [0, 255] (same for all stages)."""
    return model_pixels(Path(path), size)


def _load_tensor(path: tf.Tensor, size: int) -> tf.Tensor:
    def load(p: bytes) -> np.ndarray:
        return load_image(p.decode(), size)

    image = tf.numpy_function(load, [path], tf.float32, stateful=False)
    image.set_shape((size, size, 3))
    return image


def should_cache(count: int, size: int, mode: str) -> bool:
    """`auto` caches decoded images in memory when they fit in CACHE_BUDGET_BYTES."""
    if mode != "auto":
        return mode == "memory"
    return count * size * size * 3 * 4 <= CACHE_BUDGET_BYTES


def make_dataset(
    paths: Sequence[str],
    targets: np.ndarray | tuple[np.ndarray, ...],
    size: int,
    batch_size: int,
    shuffle_seed: int | None = None,
    cache: str = "auto",
    epochs: range = range(1),
) -> tf.data.Dataset:
    """Batches of (image, target) from files, in manifest order; with a `shuffle_seed`, the
    batches of every epoch in `epochs`, back to back, each epoch in its own seeded order.

    Epoch e's order depends on (seed, e) only, never on how many epochs this dataset object
    served before, so a run resumed at epoch k sees exactly the batches an uninterrupted run
    sees from epoch k on. Feed it to `fit` with `steps_per_epoch` (see `steps_per_epoch`).
    """
    source = tf.data.Dataset.from_tensor_slices((list(paths), targets))
    cached = should_cache(len(paths), size, cache)
    decoded = decode(source, size).cache() if cached else None  # cache after decode + resize
    if shuffle_seed is None:
        return finish(decoded if cached else decode(source, size), batch_size)

    def one_epoch(epoch: int) -> tf.data.Dataset:
        seed = derive_seed(shuffle_seed, "epoch", epoch)
        if cached:
            return decoded.shuffle(len(paths), seed=seed).batch(batch_size)
        # Streaming: shuffle the file list, not decoded images, so memory does not grow
        # with the dataset (a buffer of every decoded image would).
        return decode(source.shuffle(len(paths), seed=seed), size).batch(batch_size)

    # Epochs chained in Python, each with its own seed: `shuffle` with a seed computed in
    # the graph trips over TF's seed handling when the global seed is 0.
    if not len(epochs):
        return finish(source.take(0).map(lambda p, t: (tf.zeros((size, size, 3)), t)), batch_size)
    chained = functools.reduce(lambda a, b: a.concatenate(b), map(one_epoch, epochs))
    return finish(chained, None)


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches in one epoch of `count` images (the last one may be partial)."""
    return max(math.ceil(count / batch_size), 1)


def decode(data: tf.data.Dataset, size: int) -> tf.data.Dataset:
    """(path, target) → (pixels, target), decoded in parallel, order kept."""
    return data.map(
        lambda p, t: (_load_tensor(p, size), t), num_parallel_calls=AUTOTUNE, deterministic=True
    )


def finish(data: tf.data.Dataset, batch_size: int | None) -> tf.data.Dataset:
    """Batch (unless batched already), prefetch, and shard by data across workers."""
    if batch_size is not None:
        data = data.batch(batch_size)
    options = tf.data.Options()
    # Several workers (MultiWorkerMirroredStrategy) each take their share of every batch:
    # there are no files to shard by, the source is a list of paths.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.prefetch(AUTOTUNE).with_options(options)


def one_hot(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Class names to one-hot float32 rows in `classes` order."""
    index = {name: i for i, name in enumerate(classes)}
    return np.eye(len(classes), dtype=np.float32)[[index[label] for label in labels]]
