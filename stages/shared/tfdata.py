"""tf.data input pipelines over manifests: parallel decode, resize, cache, shuffle, prefetch.

Images are decoded by `images.read_rgb` (PIL) so training, evaluation and prediction share
one decoder that honours EXIF orientation and maps every mode (grey, RGBA, palette, 16-bit)
to RGB the same way. Pixels come out as float32 in [0, 255]; each model normalises them
itself (a Rescaling layer), so a saved model carries its own preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from stages.shared.images import ImageError, read_rgb

AUTOTUNE = tf.data.AUTOTUNE
CACHE_BUDGET_BYTES = 2 * 1024**3  # decoded images kept in RAM when they fit in this


def load_image(path: str | Path, size: int) -> np.ndarray:
    """One image file as a float32 (size, size, 3) array in [0, 255] (same for all stages)."""
    try:
        rgb = read_rgb(Path(path))
    except ImageError as err:
        raise ImageError(f"{path}: {err}") from None
    if rgb.shape[:2] != (size, size):
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return rgb.astype(np.float32)


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
) -> tf.data.Dataset:
    """Batches of (image, target) from files; shuffled (seeded) only if a seed is given."""

    def shuffled(data: tf.data.Dataset) -> tf.data.Dataset:
        if shuffle_seed is None:
            return data
        return data.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)

    data = tf.data.Dataset.from_tensor_slices((list(paths), targets))
    cached = should_cache(len(paths), size, cache)
    if not cached:
        # Streaming: shuffle the file list, not decoded images, so memory does not grow
        # with the dataset (a buffer of every decoded image would).
        data = shuffled(data)
    # deterministic=True keeps element order fixed while decoding in parallel.
    data = data.map(
        lambda p, t: (_load_tensor(p, size), t), num_parallel_calls=AUTOTUNE, deterministic=True
    )
    if cached:
        data = shuffled(data.cache())  # cache after the expensive decode + resize
    options = tf.data.Options()
    # Several workers (MultiWorkerMirroredStrategy) each take their share of every batch:
    # there are no files to shard by, the source is a list of paths.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.batch(batch_size).prefetch(AUTOTUNE).with_options(options)


def one_hot(labels: Sequence[str], classes: Sequence[str]) -> np.ndarray:
    """Class names to one-hot float32 rows in `classes` order."""
    index = {name: i for i, name in enumerate(classes)}
    return np.eye(len(classes), dtype=np.float32)[[index[label] for label in labels]]
