"""The callbacks of a training phase: best checkpoint, early stop, learning rate, logs, and
the run state and backup that make a killed run resume as the same run."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import keras

from stages.shared.core.seeding import seed_states
from stages.shared.data.manifest import atomic_write_text
from stages.shared.training.state import FINE_TUNE, read_run_state


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


# A training step costs about 3 forward passes: the forward, then the backward's gradient for
# the activations and one for the weights, each about a forward's FLOPs (the estimate of
# Kaplan et al. 2020, which nanoGPT's MFU uses). cost.count_flops counts the forward.
BACKWARD_FACTOR = 3
THROUGHPUT = ("images_per_second", "model_gflops_per_second")


class Throughput(keras.callbacks.Callback):
    """Training images per second and achieved model FLOP/s of every epoch, into their own
    DVCLive folder (speeds differ between machines and runs; the model's reports do not).

    An epoch's time runs from its start to the end of its last training batch: validation
    and the epoch-end callbacks (checkpoint, backup) are not training. Achieved FLOP/s =
    forward FLOPs per image × BACKWARD_FACTOR × images / that time. The summary keeps each
    series' median over the run's epochs (a resumed run's too) and the device's name.
    """

    def __init__(self, live, images_per_epoch: int, flops_per_image: int, device: str,
                 clock: Callable[[], float] = time.perf_counter):  # fmt: skip
        super().__init__()
        self.live, self.images, self.flops, self.device = (
            live, images_per_epoch, flops_per_image, device
        )  # fmt: skip
        self.clock = clock
        self.started = self.ended = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self.started = self.ended = self.clock()

    def on_train_batch_end(self, batch, logs=None):
        self.ended = self.clock()

    def on_epoch_end(self, epoch, logs=None):
        seconds = max(self.ended - self.started, 1e-9)
        rate = self.images / seconds
        self.live.step = epoch
        self.live.log_metric("train/images_per_second", round(rate, 2), plot=True)
        gflops = self.flops * BACKWARD_FACTOR * rate / 1e9
        self.live.log_metric("train/model_gflops_per_second", round(gflops, 3), plot=True)
        self.live.summary["median"] = {
            name: statistics.median(logged_series(self.live, f"train/{name}"))
            for name in THROUGHPUT
        }
        self.live.summary.update(
            device=self.device,
            flops_per_image=self.flops,
            images_per_epoch=self.images,
            backward_factor=BACKWARD_FACTOR,
        )
        self.live.make_summary()


def logged_series(live, name: str) -> list[float]:
    """The values DVCLive logged for metric `name` in this run (a resumed run's included)."""
    import pandas as pd

    path = Path(live.plots_dir) / "metrics" / f"{name}.tsv"
    return pd.read_csv(path, sep="\t")[name.rsplit("/", 1)[-1]].tolist()


def monitor_mode(monitor: str) -> str:
    """'max' for scores (accuracy, IoU), 'min' for losses."""
    return "max" if any(word in monitor for word in ("accuracy", "iou")) else "min"


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
    early stop, LR, throughput, TensorBoard, DVCLive, the run's state, and its backup last,
    so that it saves what every other callback decided at the end of the epoch."""
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
        paths["throughput"],
        keras.callbacks.TensorBoard(str(paths["tensorboard"]), histogram_freq=0, write_graph=False),
        DVCLiveCallback(live=live),
        RunState(phase_dir, tracked, first, carried),
        AtomicBackup(str(phase_dir / "backup"), delete_checkpoint=False),
    ]
