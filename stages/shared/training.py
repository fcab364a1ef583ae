"""What both training stages share: optimizers, schedules, callbacks, resumable work dirs,
and saving a model with the metadata that produced it."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import keras
import pandas as pd

from stages.shared.cli import UserError
from stages.shared.distribute import worker_paths
from stages.shared.manifest import write_json
from stages.shared.paths import WORK_DIR

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9),
    "rmsprop": keras.optimizers.RMSprop,
}


def make_schedule(name: str, rate: float, steps_per_epoch: int, epochs: int, decay: float):
    """A learning rate or LearningRateSchedule (Keras 3 ignores the old `decay=` argument).

    `decay` is the share of the rate left after one epoch. `exponential`: rate · decay^epoch;
    `inverse_time`: rate / (1 + (1/decay − 1) · epoch), which is what the face-tracking
    tutorial's legacy `Adam(decay=(1/0.75 − 1)/steps)` did, per step; `cosine` anneals to zero
    over all epochs; `constant` leaves the rate to ReduceLROnPlateau.
    """
    schedules = keras.optimizers.schedules
    if name == "constant":
        return rate
    if name == "exponential":
        return schedules.ExponentialDecay(rate, decay_steps=steps_per_epoch, decay_rate=decay)
    if name == "inverse_time":
        return schedules.InverseTimeDecay(
            rate, decay_steps=steps_per_epoch, decay_rate=1.0 / decay - 1.0
        )
    if name == "cosine":
        return schedules.CosineDecay(rate, decay_steps=max(steps_per_epoch * epochs, 1))
    choices = "constant, exponential, inverse_time, cosine"
    raise UserError(f"unknown schedule {name!r}; choices: {choices}")


def make_optimizer(name: str, learning_rate) -> keras.optimizers.Optimizer:
    """Look up an optimizer by name."""
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {name!r}; choices: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](learning_rate=learning_rate)


class LearningRateLogger(keras.callbacks.Callback):
    """Put the current learning rate into the epoch logs (so DVCLive plots it)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(
                keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)
            )


class AlignLiveStep(keras.callbacks.Callback):
    """Keep DVCLive's step equal to the Keras epoch, also after a resume.

    `Live(resume=True)` continues at the logged step + 1, except when that step is 0, where
    it starts at 0 again and would log epoch 2 over epoch 1.
    """

    def __init__(self, live):
        super().__init__()
        self.live = live

    def on_epoch_begin(self, epoch, logs=None):
        self.live.step = epoch


def work_dir(stage: str, *inputs: Any) -> Path:
    """A git-ignored folder for resumable state, keyed by everything that shapes the run.

    DVC deletes a stage's outputs before running it, so BackupAndRestore state and the best
    checkpoint live here instead. A different params/data key means a fresh start.
    """
    key = hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()
    return Path(worker_paths({"state": (WORK_DIR / stage / key[:16]).as_posix()})["state"])


def monitor_mode(monitor: str) -> str:
    """'max' for scores (accuracy, IoU), 'min' for losses."""
    return "max" if any(word in monitor for word in ("accuracy", "iou")) else "min"


def best_so_far(live_dir: Path, monitor: str) -> float | None:
    """The best monitored value DVCLive logged before an interruption (None on a fresh run)."""
    name = monitor.replace("val_", "eval/") if monitor.startswith("val_") else f"train/{monitor}"
    path = live_dir / "plots" / "metrics" / f"{name}.tsv"
    if not path.exists():
        return None
    values = pd.read_csv(path, sep="\t")[name.split("/")[-1]]
    if not len(values):
        return None
    return float(values.max() if monitor_mode(monitor) == "max" else values.min())


def make_callbacks(cfg, state: Path, live, tensorboard_dir: Path, schedule: str) -> list:
    """The callbacks of one fit: backup, best checkpoint, early stop, LR, TensorBoard, DVCLive."""
    from dvclive.keras import DVCLiveCallback

    mode = monitor_mode(cfg.monitor)
    callbacks = [
        keras.callbacks.BackupAndRestore(str(state / "backup")),
        keras.callbacks.ModelCheckpoint(
            str(state / "best.keras"),
            monitor=cfg.monitor,
            mode=mode,
            save_best_only=True,
            initial_value_threshold=best_so_far(Path(live.dir), cfg.monitor),
        ),
        keras.callbacks.EarlyStopping(
            monitor=cfg.monitor, mode=mode, patience=cfg.early_stopping_patience
        ),
    ]
    if schedule == "constant" and cfg.reduce_lr.patience > 0:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=cfg.monitor,
                mode=mode,
                factor=cfg.reduce_lr.factor,
                patience=cfg.reduce_lr.patience,
                min_lr=cfg.reduce_lr.min_lr,
            )
        )
    callbacks += [
        LearningRateLogger(),
        AlignLiveStep(live),
        keras.callbacks.TensorBoard(str(tensorboard_dir), histogram_freq=0, write_graph=False),
        DVCLiveCallback(live=live),
    ]
    return callbacks


def prepare(base, cfg, paths: dict):
    """Set up a training stage: devices, strategy and precision first (before TensorFlow
    initialises), then seeds; (strategy, global batch, learning rate, this worker's paths)."""
    from stages.shared import distribute
    from stages.shared.seeding import seed_everything

    strategy = distribute.setup(base)
    seed_everything(base.seed, cfg.deterministic)
    replicas = strategy.num_replicas_in_sync
    batch, rate = distribute.scaled(
        cfg.batch_size, cfg.learning_rate, replicas, base.distribute.scale_learning_rate
    )
    return strategy, batch, rate, distribute.worker_paths(paths)


def stage_paths(argv: list[str], defaults: dict[str, str], description: str) -> dict:
    """A training stage's paths from the command line (`--manifest`, `--model`, ...)."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    for name, default in defaults.items():
        parser.add_argument(f"--{name.replace('_', '-')}", default=default)
    return vars(parser.parse_args(argv))


def train_val_data(
    frame: pd.DataFrame, manifest: str, targets, size: int, cfg, seed: int, batch_size: int
):
    """(train rows, {"train": shuffled dataset, "val": dataset}) from a manifest's rows.

    `targets(rows)` turns manifest rows into the model's target arrays; `batch_size` is the
    global batch (params' per-replica batch × replicas).
    """
    from stages.shared.tfdata import make_dataset

    train_rows, val_rows = frame[frame["split"] == "train"], frame[frame["split"] == "val"]
    if val_rows.empty:
        raise UserError(f"{manifest}: no val rows — set split.fractions.val above 0")
    data = {
        "train": make_dataset(
            train_rows["path"],
            targets(train_rows),
            size,
            batch_size,
            shuffle_seed=seed,
            cache=cfg.cache,
        ),
        "val": make_dataset(val_rows["path"], targets(val_rows), size, batch_size, cache=cfg.cache),
    }
    return train_rows, data


def fit_phase(model, data: dict, cfg, state: Path, live, paths: dict, epochs: int, initial_epoch=0):
    """One resumable `model.fit` with the standard callbacks (+ `paths["extra_callbacks"]`)."""
    callbacks = make_callbacks(cfg, state, live, Path(paths["tensorboard"]), cfg.schedule)
    callbacks += paths.get("extra_callbacks", [])
    return model.fit(
        data["train"],
        validation_data=data["val"],
        epochs=epochs,
        initial_epoch=initial_epoch,
        callbacks=callbacks,
        class_weight=data.get("class_weight"),
        shuffle=False,  # tf.data already shuffles, seeded
        verbose=1 if sys.stdout.isatty() else 2,
    )


def open_live(live_dir: str, resuming: bool):
    """DVCLive for a training stage: no dvc.yaml edits, no experiment of its own."""
    from dvclive import Live

    return Live(live_dir, resume=resuming, dvcyaml=False, save_dvc_exp=False)


def save_model(model: keras.Model, path: Path, metadata: dict[str, Any]) -> None:
    """Save a model and, beside it, the JSON that says what produced it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    write_json(path.with_suffix(".json"), metadata)


def finish_run(state: Path, data: dict, live, path: Path, metadata: dict, keys) -> dict:
    """Score the best checkpoint on val, log it to DVCLive, save it with its metadata, and
    forget the run's resumable state; return the val scores (rounded, `val_<key>`)."""
    best = keras.models.load_model(state / "best.keras")
    scores = best.evaluate(data["val"], verbose=0, return_dict=True)
    summary = {f"val_{key}": round(float(scores[key]), 4) for key in keys}
    live.summary["best"] = summary  # the saved model's scores, beside the last epoch's
    live.make_summary()
    save_model(best, path, {**metadata, **summary})
    shutil.rmtree(state, ignore_errors=True)
    return summary
