"""tf.data input pipelines over the shards `augment` writes: native, parallel, seeded.

Records are read with TFRecordDataset (several shards interleaved), parsed and decoded by
TensorFlow ops in a parallel map: no Python runs per image, so on many cores the input keeps
up with the model. The pixels are those `images.model_pixels` gives (shards.py), which is
also what `load_image` returns for a user's file in prediction and export: one preparation.
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

from stages.shared.core.seeding import derive_seed
from stages.shared.data import shards
from stages.shared.data.images import model_pixels

AUTOTUNE = tf.data.AUTOTUNE
CACHE_BUDGET_BYTES = 2 * 1024**3  # decoded images (uint8) kept in RAM when they fit in this
CYCLE = 8  # shards read at once when shuffling
PARSE_BATCH = 256  # records parsed per call when filling the cache


def load_image(path: str | Path, size: int) -> np.ndarray:
    """One image file as a float32 (size, size, 3) array in [0, 255] (same for all stages)."""
    return model_pixels(Path(path), size)


def should_cache(count: int, size: int, mode: str) -> bool:
    """`auto` caches decoded images in memory when they fit in CACHE_BUDGET_BYTES."""
    if mode != "auto":
        return mode == "memory"
    return count * size * size * 3 <= CACHE_BUDGET_BYTES


def make_dataset(
    folder: str | Path,
    split: str,
    targets: np.ndarray | tuple[np.ndarray, ...],
    batch_size: int,
    shuffle_seed: int | None = None,
    cache: str = "auto",
    epochs: range = range(1),
    buffer: int = 8192,
) -> tf.data.Dataset:
    """Batches of (image, target) of one split of a shard folder; `targets[i]` is the
    target of the split's record i (its manifest row i). Without a `shuffle_seed`, in record
    order; with one, the batches of every epoch in `epochs`, back to back, each epoch in its
    own seeded order (a shuffle buffer of `buffer` records: all of them when they fit).

    Epoch e's order depends on (seed, e) only, never on how many epochs this dataset object
    served before, so a run resumed at epoch k sees exactly the batches an uninterrupted run
    sees from epoch k on; and it is the same whether decoded images are cached in memory or
    streamed from disk. Feed it to `fit` with `steps_per_epoch` (see `steps_per_epoch`).
    """
    spec = shards.read_spec(folder)
    size, fmt, count = spec["image_size"], spec["format"], spec["records"][split]
    files = shards.split_files(folder, split)
    tables = tf.nest.map_structure(tf.constant, targets)

    def labelled(images: tf.Tensor, index: tf.Tensor):
        picked = tf.nest.map_structure(lambda table: tf.gather(table, index), tables)
        return tf.cast(images, tf.float32), picked

    def read(serialized: tf.Tensor):
        return labelled(*shards.parse(serialized, size, fmt))

    def batches(data: tf.data.Dataset, decoded: bool, records: int = count) -> tf.data.Dataset:
        data = data.batch(batch_size)
        step = (lambda images, index: labelled(images, index)) if decoded else read
        data = data.map(step, num_parallel_calls=AUTOTUNE, deterministic=True)
        # Record files do not say how many records they hold; Keras, told, needs no
        # end-of-data probe (and warns of none) at the end of each validation pass.
        return data.apply(tf.data.experimental.assert_cardinality(-(-records // batch_size)))

    # One fixed sequence of records (shards interleaved when shuffling); every epoch
    # shuffles that sequence, so a cached epoch and a streamed one are the same permutation.
    stream = records(files, interleave=shuffle_seed is not None)
    cached = should_cache(count, size, cache)
    if cached:
        parsed = stream.batch(PARSE_BATCH).map(
            lambda s: shards.parse(s, size, fmt), num_parallel_calls=AUTOTUNE, deterministic=True
        )
        stream = parsed.unbatch().cache()
    if shuffle_seed is None:
        return finish(batches(stream, cached))

    def one_epoch(epoch: int) -> tf.data.Dataset:
        seed = derive_seed(shuffle_seed, "epoch", epoch)
        return batches(stream.shuffle(max(min(count, buffer), 1), seed=seed), cached)

    # Epochs chained in Python, each with its own seed: `shuffle` with a seed computed in
    # the graph trips over TF's seed handling when the global seed is 0.
    if not len(epochs):
        return finish(batches(stream.take(0), cached, records=0))
    return finish(functools.reduce(lambda a, b: a.concatenate(b), map(one_epoch, epochs)))


def records(files: Sequence[str], interleave: bool) -> tf.data.Dataset:
    """Serialised records of shard files: in file order, or `CYCLE` files read at once
    (a fixed, deterministic interleaving)."""
    if not interleave or len(files) < 2:
        return tf.data.TFRecordDataset(list(files))
    return tf.data.Dataset.from_tensor_slices(list(files)).interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), CYCLE),
        num_parallel_calls=AUTOTUNE,
        deterministic=True,
    )


def read_pixels(folder: str | Path, split: str, batch_size: int = 256) -> np.ndarray:
    """Every image of a split, in record order, as float32 (n, size, size, 3)."""
    spec = shards.read_spec(folder)
    count, size = spec["records"][split], spec["image_size"]
    data = make_dataset(folder, split, np.zeros(count, np.float32), batch_size, cache="none")
    parts = [images.numpy() for images, _ in data]
    return np.concatenate(parts) if parts else np.zeros((0, size, size, 3), np.float32)


def steps_per_epoch(count: int, batch_size: int) -> int:
    """Batches in one epoch of `count` images (the last one may be partial)."""
    return max(math.ceil(count / batch_size), 1)


def finish(data: tf.data.Dataset) -> tf.data.Dataset:
    """Prefetch, and shard by data across workers."""
    options = tf.data.Options()
    # Several workers (MultiWorkerMirroredStrategy) each take their share of every batch.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.prefetch(AUTOTUNE).with_options(options)


def one_hot(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Class names to one-hot float32 rows in `classes` order."""
    index = {name: i for i, name in enumerate(classes)}
    return np.eye(len(classes), dtype=np.float32)[[index[label] for label in labels]]
