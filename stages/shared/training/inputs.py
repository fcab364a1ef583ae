"""What a training run reads: the train stream and val batches of an augmented manifest's
shards, and the first batch exactly as `fit` will receive it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from stages.shared.core.cli import UserError


def train_val_data(
    frame: pd.DataFrame,
    manifest: str,
    targets,
    size: int,
    cfg,
    seed: int,
    batch_size: int,
    root: Path | str = "",
):
    """(train rows, data) from an augmented manifest's rows and the shards beside it:
    data["train"](epochs) is the shuffled training stream of those epochs, data["val"] the
    val batches, data["steps"] the batches of one training epoch. With `debug: fast`, an
    epoch is 2 batches and val 2 batches.

    `targets(rows)` turns manifest rows into the model's target arrays (a split's rows are
    in the order of its records); `batch_size` is the global batch (params' per-replica
    batch × replicas); `root`, the dataset folder the manifest's original paths start from
    (`debug: overfit` reads those files).
    """
    from stages.shared.data import shards
    from stages.shared.data.tfdata import load_image, make_dataset, steps_per_epoch

    folder = Path(manifest).parent
    written = shards.read_spec(folder)["image_size"]
    if written != size:
        raise UserError(
            f"{folder}: shards hold {written} px images, training expects {size} — re-run"
            " `dvc repro` so augment writes them at the current size"
        )
    train_rows, val_rows = frame[frame["split"] == "train"], frame[frame["split"] == "val"]
    if val_rows.empty:
        raise UserError(f"{manifest}: no val rows — set split.fractions.val above 0")
    train_targets = targets(train_rows)

    def train(epochs: range, cache: str = cfg.cache):
        return make_dataset(
            folder, "train", train_targets, batch_size, seed, cache, epochs, cfg.shuffle_buffer
        )

    data = {
        "train": train,
        "first": lambda: train(range(1), cache="none"),
        "val": make_dataset(folder, "val", targets(val_rows), batch_size, cache=cfg.cache),
        "steps": steps_per_epoch(len(train_rows), batch_size),
    }
    if cfg.debug == "fast":
        data.update(steps=min(data["steps"], 2), val=data["val"].take(2))
    if cfg.debug == "overfit":  # one fixed batch of original (not augmented) images
        originals = train_rows[train_rows["path"] == train_rows["source"]]
        count = min(cfg.overfit.batch, len(originals))
        originals = originals.sample(count, random_state=seed)
        # a kept image's record holds exactly these pixels (shards.py)
        files = [(Path(root) / path).as_posix() for path in originals["path"]]
        pixels = np.stack([load_image(file, size) for file in files])
        data["overfit_batch"] = (tf_constant(pixels), tf_constant(targets(originals)))
    return train_rows, data


def tf_constant(value):
    """Arrays (or a tuple of them) as tensors, the way a dataset yields them."""
    import tensorflow as tf

    return tf.nest.map_structure(tf.constant, value)


def first_batch(data: dict):
    """The first batch of epoch 0, as `fit` will receive it: streamed, so only its own images
    are decoded (a seeded shuffle of n elements is the same permutation whether it shuffles
    paths or decoded images)."""
    return next(iter(data["first"]()))
