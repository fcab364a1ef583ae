"""The course of a training stage, owned here from start to end.

A stage script describes its task as a `Task` (which params, which targets, which model, how
it is compiled and checked) and calls `main`; this module runs the sequence:

  prepare (devices, seeds) → data (train stream, val batches) → build (+ pretrained backbone)
  → compile → first-batch check → phases (fit; with `fine_tune`, a second phase from the
  first's best model) → finish (the best epoch scored on val, saved with its metadata).

A resumed run is the same run: the shuffle order of every epoch depends on (seed, epoch)
only (tfdata.make_dataset), Keras' BackupAndRestore restores weights and optimizer, and
`callbacks.RunState` restores the counters of the callbacks that pick the saved epoch, stop
early and lower the learning rate, so a run killed at epoch k ends where an uninterrupted one
would.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path
from typing import Any, ClassVar

import keras
import pandas as pd

from stages.shared.core import paths as project
from stages.shared.core.config import BaseParams, dataset_root, load_params
from stages.shared.data.images import file_md5
from stages.shared.data.manifest import input_size, read_manifest
from stages.shared.models import store
from stages.shared.models.backbones import unfreeze_top
from stages.shared.training import checks, distribute, execution, inputs, optim
from stages.shared.training.callbacks import Throughput, make_callbacks
from stages.shared.training.state import (
    FINE_TUNE,
    PHASE1,
    last_snapshot,
    open_live,
    read_run_state,
    resume_point,
    run_epochs,
    run_resume_point,
    work_dir,
)

log = logging.getLogger(__name__)


class Task:
    """What a training stage trains. The loop calls, in this order: `Task(cfg, frame)`,
    `targets`, `class_weight`, `baseline`, `build`, `compile`, `first_batch`, `metadata`."""

    model: ClassVar[str]  # "classifier" | "detector": core.paths names its files
    params: ClassVar[type]  # its params section (a core.config.Section with SECTION)
    keys: ClassVar[tuple[str, ...]]  # the val metrics the saved model is summarised by

    def __init__(self, cfg, frame: pd.DataFrame):
        self.cfg = cfg
        self.train_rows = frame[frame["split"] == "train"]

    def targets(self, rows: pd.DataFrame):
        """The model's target arrays for manifest rows."""
        raise NotImplementedError

    def class_weight(self) -> dict[int, float] | None:
        return None

    def baseline(self, val_rows: pd.DataFrame) -> dict | None:
        """What a constant answer scores on val in a metric the model reports
        ({metric, baseline, name, higher}): the yardstick of `checks.learned_report`."""
        return None

    def build(self, size: int) -> keras.Model:
        raise NotImplementedError

    def compile(self, model: keras.Model, learning_rate, jit_compile: bool) -> None:
        raise NotImplementedError

    def first_batch(self, model: keras.Model, images, targets) -> tuple[dict, dict]:
        """(checks.first_batch_report, the arrays saved for `plot`) of the first batch."""
        raise NotImplementedError

    def metadata(self) -> dict[str, Any]:
        """What the saved model's JSON records besides image size, params, seed and checks."""
        return {}


def training_seed(base, cfg) -> int:
    """The seed of a training run: its own `seed`, or `base.seed`. The data (split, augment)
    follow `base.seed` only, so training seeds can vary over one fixed test split."""
    return base.seed if cfg.seed is None else cfg.seed


def xla_note(base, cfg, section: str) -> str | None:
    """Why `base.jit_compile` will not compile, if it will not: Keras runs no XLA while
    TensorFlow's op determinism is on (`model_supports_jit`), and says nothing."""
    if base.jit_compile and cfg.deterministic:
        return (
            f"base.jit_compile is off while {section}.deterministic is true (Keras runs no XLA"
            f" under op determinism): set {section}.deterministic: false to compile"
        )
    return None


def prepare(base, cfg, paths: dict, section: str):
    """Set up a training stage: devices, strategy and precision first (before TensorFlow
    initialises), then seeds; (strategy, global batch, learning rate, this worker's paths,
    with the NaN guard of params `section` under "guard")."""
    from stages.shared.core.seeding import seed_everything

    strategy = distribute.setup(base)
    seed_everything(training_seed(base, cfg), cfg.deterministic)
    if note := xla_note(base, cfg, section):
        log.warning(note)
    replicas = strategy.num_replicas_in_sync
    batch, rate = distribute.scaled(
        cfg.batch_size, cfg.learning_rate, replicas, base.distribute.scale_learning_rate
    )
    mixed = keras.mixed_precision.global_policy().name != "float32"  # set by distribute.setup
    guard = checks.NonFiniteGuard(section, rate, mixed)
    return strategy, batch, rate, {**distribute.worker_paths(paths), "guard": guard}


def run_dir(section: str, cfg, base, manifest_md5: str) -> Path:
    """The resumable state of a run: one per section, params, `base` and data (and code)."""
    return work_dir(section, cfg.model_dump(), base.model_dump(), manifest_md5)


def stage_paths(argv: list[str], defaults: dict[str, str], description: str) -> dict:
    """A training stage's paths from the command line (`--manifest`, `--model`, ...)."""
    parser = argparse.ArgumentParser(description=description)
    for name, default in defaults.items():
        parser.add_argument(f"--{name.replace('_', '-')}", default=default)
    return vars(parser.parse_args(argv))


def debug_epochs(cfg) -> object:
    """The params a run really uses: `debug: fast` trains one epoch (and one of phase 2)."""
    if cfg.debug != "fast":
        return cfg
    update = {"epochs": 1}
    if hasattr(cfg, "fine_tune") and cfg.fine_tune.epochs:
        update["fine_tune"] = cfg.fine_tune.model_copy(update={"epochs": 1})
    return cfg.model_copy(update=update)


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


def run_phases(task: Task, model, data: dict, state: Path, live, paths: dict, recompile) -> None:
    """Phase 1, then (with `fine_tune.layers`) phase 2 from phase 1's best model, each
    resumable; phase 2 continues the epoch count where phase 1 stopped, its top backbone
    layers unfrozen, at `fine_tune.learning_rate`."""
    cfg = task.cfg
    tune = getattr(cfg, "fine_tune", None)
    layers = tune.layers if tune is not None else 0
    phase1 = state / PHASE1
    if not phase1.exists():
        fit_phase(model, data, cfg, state, live, paths, cfg.epochs)
        if layers:
            shutil.copy(state / "best.keras", state / "phase1.tmp")
            (state / "phase1.tmp").replace(phase1)
    if layers:
        start = last_snapshot(state)["epochs_run"]
        steps = model.steps_per_execution  # phase 1's, for phase 2's recompiled model
        model = keras.models.load_model(phase1)
        unfreeze_top(model.get_layer("backbone"), layers)
        recompile(model, tune.learning_rate)
        execution.set_steps(model, steps)
        fit_phase(model, data, cfg, state / FINE_TUNE, live, paths, start + tune.epochs, start)


def finish_debug(model, data: dict, live, path: Path, metadata: dict, cfg) -> dict:
    """`debug: overfit`: train the fixed batch, save the model marked as a debug run (never
    to be mistaken for a trained model), and return the check's result."""
    result = checks.overfit_one_batch(
        model, data["overfit_batch"], cfg.overfit.steps, cfg.overfit.loss
    )
    live.summary["debug"] = result
    store.save_model(model, path, {**metadata, "debug": result})
    log_cost(model, path, metadata["image_size"], live)
    return result


def finish_run(state: Path, data: dict, live, path: Path, metadata: dict, keys) -> dict:
    """Score the best checkpoint on val, log it to DVCLive, save it with its metadata (which
    epoch it is, how many ran; against `data["baseline"]`, whether it learned at all), and
    forget the run's resumable state; return the val scores (rounded, `val_<key>`) with the
    epoch counts."""
    best = keras.models.load_model(state / "best.keras")
    scores = best.evaluate(data["val"], verbose=0, return_dict=True)
    summary = {f"val_{key}": round(float(scores[key]), 4) for key in keys}
    summary.update(run_epochs(state))
    if "baseline" in data:  # {metric, baseline, name, higher}: what a constant answer scores
        found = data["baseline"]
        metadata["checks"]["learned"] = checks.learned_report(
            **found, best=float(scores[found["metric"]])
        )
    live.summary["best"] = summary  # the saved model, beside the last epoch's scores
    store.save_model(best, path, {**metadata, **summary})
    log_cost(best, path, metadata["image_size"], live)
    shutil.rmtree(state, ignore_errors=True)
    return summary


def log_cost(model, path: Path, size: int, live) -> None:
    """Parameters, file size and FLOPs per image into the stage's metrics (DVCLive summary),
    so `dvc metrics diff` shows a cost regression beside an accuracy gain."""
    from stages.shared.models.cost import model_cost

    live.summary["cost"] = model_cost(model, path, size)
    live.make_summary()


def throughput(model, size: int, images_per_epoch: int, live) -> Throughput:
    """The callback that logs each epoch's images/s and model FLOP/s to `live`."""
    from stages.shared.core.machine import device
    from stages.shared.models.cost import count_flops

    return Throughput(live, images_per_epoch, count_flops(model, size), device())


def train(task_class: type[Task], cfg, base, paths: dict) -> dict:
    """Train (or resume) the task's model; save the best epoch with its metadata; return
    its val scores and epoch counts (or, with `debug: overfit`, the check's result)."""
    section = task_class.params.SECTION
    kind = project.MODELS[task_class.model]
    cfg = debug_epochs(cfg)
    strategy, batch, rate, paths = prepare(base, cfg, paths, section)
    frame = read_manifest(Path(paths["manifest"]), kind)
    size = input_size(getattr(base.image_size, kind), frame)  # `auto`: as augment chose it
    seed = training_seed(base, cfg)
    task = task_class(cfg, frame)
    root = dataset_root(kind)
    train_rows, data = inputs.train_val_data(
        frame, paths["manifest"], task.targets, size, cfg, seed, batch, root
    )
    data["class_weight"] = task.class_weight()
    found = task.baseline(frame[frame["split"] == "val"])
    data.update({"baseline": found} if found else {})

    def recompile(model, learning_rate) -> None:
        with strategy.scope():
            task.compile(model, learning_rate, base.jit_compile)

    with strategy.scope():  # variables made here are mirrored on every replica
        model = task.build(size)
        store.copy_pretrained(model, getattr(cfg, "weights", None))
    recompile(model, optim.make_schedule(cfg.schedule, rate, data["steps"], cfg.epochs,
                                         cfg.decay_rate))  # fmt: skip
    images, targets = inputs.first_batch(data)
    report, arrays = task.first_batch(model, images, targets)
    checks.save_arrays(Path(paths["batch"]), **arrays)
    calls = execution.choose_steps(base.steps_per_execution, model, images, targets, data["steps"])
    execution.set_steps(model, calls["steps"])
    metadata = {
        "task": kind,
        **task.metadata(),
        "image_size": size,
        "params": cfg.model_dump(),
        "seed": seed,
        "manifest_md5": file_md5(Path(paths["manifest"])),
        "checks": {"first_batch": report},
    }
    state = run_dir(section, cfg, base, metadata["manifest_md5"])
    live = open_live(paths["live_dir"], run_resume_point(state))
    speed = open_live(paths["throughput_dir"], run_resume_point(state))  # a debug run's: empty
    live.summary["checks"] = metadata["checks"]
    path = Path(paths["model"])
    if cfg.debug == "overfit":
        return finish_debug(model, data, live, path, metadata, cfg)
    if cfg.debug == "fast":
        metadata["debug"] = {"mode": "fast", "batches_per_epoch": data["steps"]}
    per_epoch = min(data["steps"] * batch, len(train_rows))
    paths["throughput"] = throughput(model, size, per_epoch, speed)
    speed.summary["steps_per_execution"] = calls  # how fast, not what: beside the speeds
    run_phases(task, model, data, state, live, paths, recompile)
    return finish_run(state, data, live, path, metadata, task.keys)


def main(task_class: type[Task], argv: list[str], description: str) -> None:
    """A training stage's entry point: its paths (flags override core.paths), its params
    and `base`, then `train`."""
    paths = stage_paths(argv, project.training_paths(task_class.model), description)
    cfg, base = load_params(task_class.params), load_params(BaseParams)
    summary = train(task_class, cfg, base, paths)
    print(f"train-{task_class.model}: best {summary} → {paths['model']}")
