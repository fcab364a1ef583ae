"""What both training stages share: optimizers, schedules, callbacks, resumable work dirs,
and saving a model with the metadata that produced it.

A resumed run is the same run: the shuffle order of every epoch depends on (seed, epoch)
only (tfdata.make_dataset), Keras' BackupAndRestore restores weights and optimizer, and
`RunState` restores the counters of the callbacks that pick the saved epoch, stop early and
lower the learning rate, so a run killed at epoch k ends where an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
import pandas as pd

from stages.shared.cli import UserError
from stages.shared.distribute import worker_paths
from stages.shared.manifest import atomic_write_text, write_json
from stages.shared.paths import WORK_DIR
from stages.shared.seeding import seed_states

STAGES_DIR = Path(__file__).resolve().parents[1]  # the code every training run is keyed on
FINE_TUNE = "fine_tune"  # phase 2's folder inside a run's work dir
PHASE1 = "phase1.keras"  # phase 1's best model, where phase 2 starts

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


def code_hash() -> str:
    """A hash of every Python file of the pipeline: a code change means a fresh start."""
    digest = hashlib.sha256()
    for path in sorted(STAGES_DIR.rglob("*.py")):
        digest.update(path.relative_to(STAGES_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def work_dir(stage: str, *inputs: Any) -> Path:
    """A git-ignored folder for resumable state, keyed by params, data and code.

    DVC deletes a stage's outputs before running it, so BackupAndRestore state and the best
    checkpoint live here instead. A different key means a fresh start; the state of other
    keys (abandoned runs) is deleted.
    """
    text = json.dumps([inputs, code_hash()], sort_keys=True, default=str)
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    state = Path(worker_paths({"state": (WORK_DIR / stage / key).as_posix()})["state"])
    if state.parent.is_dir():
        for stale in state.parent.iterdir():
            if stale.name != key:
                shutil.rmtree(stale, ignore_errors=True)
    return state


def monitor_mode(monitor: str) -> str:
    """'max' for scores (accuracy, IoU), 'min' for losses."""
    return "max" if any(word in monitor for word in ("accuracy", "iou")) else "min"


def backup_epoch(phase_dir: Path) -> int:
    """The epoch BackupAndRestore resumes a phase at (0 when it has no backup)."""
    path = Path(phase_dir) / "backup" / "training_metadata.json"
    return int(json.loads(path.read_text())["epoch"]) if path.exists() else 0


def read_run_state(phase_dir: Path) -> dict:
    """What `RunState` recorded for a phase: snapshots by epoch, and whether it finished."""
    path = Path(phase_dir) / "run_state.json"
    return json.loads(path.read_text()) if path.exists() else {"epochs": {}, "finished": False}


def last_snapshot(phase_dir: Path) -> dict:
    """The latest snapshot of a phase (epochs run, best epoch, callback counters), or {}."""
    epochs = read_run_state(phase_dir)["epochs"]
    return epochs[max(epochs, key=int)] if epochs else {}


def _number(value):
    """A callback counter as JSON: numpy scalars as Python numbers, None kept."""
    if value is None or isinstance(value, int):
        return value
    return float(value)


class RunState(keras.callbacks.Callback):
    """Saves, at each epoch end, the counters of the checkpoint, early-stopping and LR
    callbacks, the layers' random-number states, the best epoch and the epochs run;
    restores them when a run resumes.

    It sits just before BackupAndRestore: its snapshot for epoch k+1 is written before the
    backup of epoch k+1, and the two latest are kept, so whichever backup a kill leaves
    behind has its snapshot.
    """

    KEPT: ClassVar[dict[str, tuple[str, ...]]] = {
        "checkpoint": ("best",),
        "early_stopping": ("wait", "best", "best_epoch"),
        "reduce_lr": ("wait", "best", "cooldown_counter"),
    }

    def __init__(self, phase_dir: Path, tracked: dict, resume_epoch: int, carried: dict):
        super().__init__()
        self.path = Path(phase_dir) / "run_state.json"
        self.tracked, self.resume_epoch, self.carried = tracked, resume_epoch, carried
        self.record = read_run_state(phase_dir)

    def _write(self) -> None:
        atomic_write_text(self.path, json.dumps(self.record))

    def on_train_begin(self, logs=None):
        # Runs after the tracked callbacks' own on_train_begin, which resets them.
        snapshot = self.record["epochs"].get(str(self.resume_epoch))
        if snapshot is None:
            return
        for name, callback in self.tracked.items():
            for attr, value in snapshot.get(name, {}).items():
                setattr(callback, attr, value)
        for variable, value in zip(seed_states(self.model), snapshot["seeds"], strict=True):
            variable.assign(value)

    def on_epoch_end(self, epoch, logs=None):
        before = self.record["epochs"].get(str(epoch)) or self.carried
        snapshot: dict[str, Any] = {
            name: {attr: _number(getattr(callback, attr)) for attr in self.KEPT[name]}
            for name, callback in self.tracked.items()
        }
        improved = snapshot["checkpoint"]["best"] != before.get("checkpoint", {}).get("best")
        snapshot["best_epoch"] = epoch + 1 if improved else before.get("best_epoch", 0)
        snapshot["epochs_run"] = epoch + 1
        snapshot["seeds"] = [
            keras.ops.convert_to_numpy(v).tolist() for v in seed_states(self.model)
        ]
        kept = {k: v for k, v in self.record["epochs"].items() if int(k) >= epoch}
        self.record["epochs"] = {**kept, str(epoch + 1): snapshot}
        self._write()

    def on_train_end(self, logs=None):
        self.record["finished"] = True
        self._write()


class AtomicCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint that writes beside the file and then renames it over the old one, so a
    kill while saving leaves the previous best model whole, never half a zip."""

    def _save_model(self, epoch, batch, logs):
        final = Path(self.filepath)
        partial = final.with_name(f"partial.{final.name}")  # keeps the .keras ending
        partial.unlink(missing_ok=True)  # left by a run killed while saving
        self.filepath = str(partial)
        try:
            super()._save_model(epoch, batch, logs)
        finally:
            self.filepath = str(final)
        if partial.exists():
            partial.replace(final)


class AtomicBackup(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose weights and epoch files are each replaced whole (written beside,
    then renamed): a kill while saving leaves the previous epoch's backup readable.

    Keras writes the weights in place: killed mid-write, the next run stopped on "bad object
    header version number" instead of resuming. The two renames follow each other with no
    work in between.
    """

    def _save_model(self):
        weights = Path(self._weights_path)
        weights.parent.mkdir(parents=True, exist_ok=True)
        partial = weights.with_name(f"partial.{weights.name}")  # keeps the .weights.h5 ending
        self.model.save_weights(str(partial), overwrite=True)
        metadata = json.dumps({"epoch": self._current_epoch, "batch": self._last_batch_seen})
        partial.replace(weights)
        atomic_write_text(Path(self._training_metadata_path), metadata)


def make_callbacks(cfg, phase_dir: Path, live, paths: dict, first: int, carried: dict):
    """The callbacks of one fit: the NaN guard, best checkpoint (one file across phases),
    early stop, LR, TensorBoard, DVCLive, the run's state, and its backup last, so that it
    saves what every other callback decided at the end of the epoch."""
    from dvclive.keras import DVCLiveCallback

    mode = monitor_mode(cfg.monitor)
    run_dir = phase_dir.parent if phase_dir.name == FINE_TUNE else phase_dir
    tracked = {
        "checkpoint": AtomicCheckpoint(
            str(run_dir / "best.keras"),
            monitor=cfg.monitor,
            mode=mode,
            save_best_only=True,
            initial_value_threshold=carried.get("checkpoint", {}).get("best"),
        ),
        "early_stopping": keras.callbacks.EarlyStopping(
            monitor=cfg.monitor, mode=mode, patience=cfg.early_stopping_patience
        ),
    }
    if cfg.reduce_lr.patience > 0:  # params allow it with the `constant` schedule only
        tracked["reduce_lr"] = keras.callbacks.ReduceLROnPlateau(
            monitor=cfg.monitor,
            mode=mode,
            factor=cfg.reduce_lr.factor,
            patience=cfg.reduce_lr.patience,
            min_lr=cfg.reduce_lr.min_lr,
        )
    return [
        paths["guard"],
        *tracked.values(),
        LearningRateLogger(),
        AlignLiveStep(live),
        keras.callbacks.TensorBoard(str(paths["tensorboard"]), histogram_freq=0, write_graph=False),
        DVCLiveCallback(live=live),
        RunState(phase_dir, tracked, first, carried),
        AtomicBackup(str(phase_dir / "backup"), delete_checkpoint=False),
    ]


def training_seed(base, cfg) -> int:
    """The seed of a training run: its own `seed`, or `base.seed`. The data (split, augment)
    follow `base.seed` only, so training seeds can vary over one fixed test split."""
    return base.seed if cfg.seed is None else cfg.seed


def prepare(base, cfg, paths: dict, section: str):
    """Set up a training stage: devices, strategy and precision first (before TensorFlow
    initialises), then seeds; (strategy, global batch, learning rate, this worker's paths,
    with the NaN guard of params `section` under "guard")."""
    from stages.shared import distribute
    from stages.shared.checks import NonFiniteGuard
    from stages.shared.seeding import seed_everything

    strategy = distribute.setup(base)
    seed_everything(training_seed(base, cfg), cfg.deterministic)
    replicas = strategy.num_replicas_in_sync
    batch, rate = distribute.scaled(
        cfg.batch_size, cfg.learning_rate, replicas, base.distribute.scale_learning_rate
    )
    guard = NonFiniteGuard(section, rate, base.mixed_precision)
    return strategy, batch, rate, {**distribute.worker_paths(paths), "guard": guard}


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
    """(train rows, data) from an augmented manifest's rows and the shards beside it:
    data["train"](epochs) is the shuffled training stream of those epochs, data["val"] the
    val batches, data["steps"] the batches of one training epoch. With `debug: fast`, an
    epoch is 2 batches and val 2 batches.

    `targets(rows)` turns manifest rows into the model's target arrays (a split's rows are
    in the order of its records); `batch_size` is the global batch (params' per-replica
    batch × replicas).
    """
    from stages.shared import shards
    from stages.shared.tfdata import load_image, make_dataset, steps_per_epoch

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
        pixels = np.stack([load_image(path, size) for path in originals["path"]])
        data["overfit_batch"] = (tf_constant(pixels), tf_constant(targets(originals)))
    return train_rows, data


def tf_constant(value):
    """Arrays (or a tuple of them) as tensors, the way a dataset yields them."""
    import tensorflow as tf

    return tf.nest.map_structure(tf.constant, value)


def debug_epochs(cfg) -> object:
    """The params a run really uses: `debug: fast` trains one epoch (and one of phase 2)."""
    if cfg.debug != "fast":
        return cfg
    update = {"epochs": 1}
    if hasattr(cfg, "fine_tune") and cfg.fine_tune.epochs:
        update["fine_tune"] = cfg.fine_tune.model_copy(update={"epochs": 1})
    return cfg.model_copy(update=update)


def first_batch(data: dict):
    """The first batch of epoch 0, as `fit` will receive it: streamed, so only its own images
    are decoded (a seeded shuffle of n elements is the same permutation whether it shuffles
    paths or decoded images)."""
    return next(iter(data["first"]()))


def resume_point(phase_dir: Path, start: int = 0) -> int:
    """The epoch a phase continues at: `start` for a fresh one, else its backup's epoch."""
    return max(start, backup_epoch(phase_dir))


def run_resume_point(state: Path) -> int:
    """The epoch a run continues at, in whichever phase it is: 0 for a fresh run."""
    if (state / PHASE1).exists():  # phase 1 is over: phase 2 goes on where it stopped
        return resume_point(state / FINE_TUNE, last_snapshot(state)["epochs_run"])
    return resume_point(state)


def fit_phase(model, data: dict, cfg, phase_dir: Path, live, paths: dict, epochs: int, start=0):
    """One resumable `model.fit` of epochs [start, epochs) with the standard callbacks (+
    `paths["extra_callbacks"]`, last); a phase that already finished is not run again."""
    if read_run_state(phase_dir)["finished"]:
        return
    first = resume_point(phase_dir, start)
    if first >= epochs:  # killed after its last epoch was backed up: nothing left to train
        return
    carried = last_snapshot(phase_dir.parent) if phase_dir.name == FINE_TUNE else {}
    callbacks = make_callbacks(cfg, phase_dir, live, paths, first, carried)
    model.fit(
        data["train"](range(first, epochs)),
        validation_data=data["val"],
        epochs=epochs,
        initial_epoch=first,
        steps_per_epoch=data["steps"],
        callbacks=[*callbacks, *paths.get("extra_callbacks", [])],
        class_weight=data.get("class_weight"),
        shuffle=False,  # the dataset is shuffled, seeded per epoch
        verbose=1 if sys.stdout.isatty() else 2,
    )


def trim_history(live_dir: Path, first: int) -> None:
    """Drop DVCLive rows of epochs ≥ `first`: an epoch logged but not backed up before a
    kill is trained again, and must be logged once. Kept rows keep their bytes."""
    for path in Path(live_dir).glob("plots/metrics/**/*.tsv"):
        header, *rows = path.read_text().splitlines()
        column = header.split("\t").index("step")
        kept = [row for row in rows if int(row.split("\t")[column]) < first]
        if len(kept) < len(rows):
            atomic_write_text(path, "\n".join([header, *kept]) + "\n")


def open_live(live_dir: str, first: int):
    """DVCLive for a training stage, resumed at epoch `first` (fresh when 0): no dvc.yaml
    edits, no experiment of its own."""
    from dvclive import Live

    if first:
        trim_history(Path(live_dir), first)
    return Live(live_dir, resume=first > 0, dvcyaml=False, save_dvc_exp=False)


def save_model(model: keras.Model, path: Path, metadata: dict[str, Any]) -> None:
    """Save a model and, beside it, the JSON that says what produced it.

    The `.keras` archive is written without Keras' save date or file times, so the same
    weights give the same bytes and DVC does not re-run the stages downstream for nothing.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    strip_save_times(path)
    write_json(path.with_suffix(".json"), metadata)


def strip_save_times(path: Path) -> None:
    """Rewrite a `.keras` zip with fixed entry times and no `date_saved` in metadata.json."""
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type, fixed.external_attr = info.compress_type, info.external_attr
            target.writestr(fixed, data)
    tmp.replace(path)


def run_epochs(state: Path) -> dict[str, int]:
    """Epochs run (all phases) and the best epoch (1-based) of a run, from its RunState."""
    for phase_dir in (state / FINE_TUNE, state):
        run = last_snapshot(phase_dir)
        if run:
            return {"epochs_run": run["epochs_run"], "best_epoch": run["best_epoch"]}
    return {"epochs_run": 0, "best_epoch": 0}


def finish_debug(model, data: dict, live, path: Path, metadata: dict, cfg) -> dict:
    """`debug: overfit`: train the fixed batch, save the model marked as a debug run (never
    to be mistaken for a trained model), and return the check's result."""
    from stages.shared.checks import overfit_one_batch

    result = overfit_one_batch(model, data["overfit_batch"], cfg.overfit.steps, cfg.overfit.loss)
    live.summary["debug"] = result
    save_model(model, path, {**metadata, "debug": result})
    log_cost(model, path, metadata["image_size"], live)
    return result


def finish_run(state: Path, data: dict, live, path: Path, metadata: dict, keys) -> dict:
    """Score the best checkpoint on val, log it to DVCLive, save it with its metadata (which
    epoch it is, how many ran; against `data["baseline"]`, whether it learned at all), and
    forget the run's resumable state; return the val scores (rounded, `val_<key>`) with the
    epoch counts."""
    from stages.shared.checks import learned_report

    best = keras.models.load_model(state / "best.keras")
    scores = best.evaluate(data["val"], verbose=0, return_dict=True)
    summary = {f"val_{key}": round(float(scores[key]), 4) for key in keys}
    summary.update(run_epochs(state))
    if "baseline" in data:  # {metric, baseline, name, higher}: what a constant answer scores
        found = data["baseline"]
        metadata["checks"]["learned"] = learned_report(**found, best=float(scores[found["metric"]]))
    live.summary["best"] = summary  # the saved model, beside the last epoch's scores
    save_model(best, path, {**metadata, **summary})
    log_cost(best, path, metadata["image_size"], live)
    shutil.rmtree(state, ignore_errors=True)
    return summary


def run_stage_training(
    section: str, model, data: dict, cfg, base, paths: dict, metadata: dict, keys, fit
) -> dict:
    """The common course of a training stage once its model is built: the resumable work
    dir, DVCLive continued from where the run stopped, the debug modes, `fit(state, live)`,
    then the best checkpoint saved with `metadata` and its val `keys`; returns what
    `finish_run` (or `finish_debug`) returns."""
    state = work_dir(section, cfg.model_dump(), base.model_dump(), metadata["manifest_md5"])
    live = open_live(paths["live_dir"], run_resume_point(state))
    live.summary["checks"] = metadata["checks"]
    path = Path(paths["model"])
    if cfg.debug == "overfit":
        return finish_debug(model, data, live, path, metadata, cfg)
    if cfg.debug == "fast":
        metadata["debug"] = {"mode": "fast", "batches_per_epoch": data["steps"]}
    fit(state, live)
    return finish_run(state, data, live, path, metadata, keys)


def log_cost(model, path: Path, size: int, live) -> None:
    """Parameters, file size and FLOPs per image into the stage's metrics (DVCLive summary),
    so `dvc metrics diff` shows a cost regression beside an accuracy gain."""
    from stages.shared.cost import model_cost

    live.summary["cost"] = model_cost(model, path, size)
    live.make_summary()
