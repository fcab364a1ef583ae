"""Stage `train-classifier`: train a Keras 3 classifier on the augmented classification data.

In:  data/augmented/classification/manifest.csv (train + val rows) and the images it lists.
Out: models/classifier.keras + models/classifier.json (classes, resolved params, best epoch);
     reports/train/classifier/ (DVCLive: per-epoch loss, accuracy, learning rate, train/eval).
     TensorBoard logs go to reports/tensorboard/classifier/ (git-ignored, not a DVC output).
Params: base.seed, base.image_size.classification, train_classifier.*.
A killed run resumes from its last completed epoch (state in .work/, outside DVC outputs).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from stages.shared.cli import run_stage
from stages.shared.images import file_md5
from stages.shared.manifest import read_manifest
from stages.shared.params import load_params

DEFAULTS = {
    "manifest": "data/augmented/classification/manifest.csv",
    "model": "models/classifier.keras",
    "live_dir": "reports/train/classifier",
    "tensorboard": "reports/tensorboard/classifier",
}


def class_weights(labels: list[str], classes: list[str], mode: str) -> dict[int, float] | None:
    """sklearn's 'balanced' weights by class index, or None."""
    if mode == "none":
        return None
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.array(classes), y=np.array(labels))
    return {i: float(w) for i, w in enumerate(weights)}


def train(cfg, base, paths: dict) -> dict:
    """Train (or resume) a classifier; save the best model with its metadata; return a summary.

    With `fine_tune.layers`, phase 2 unfreezes the top backbone layers of phase 1's best
    model at `fine_tune.learning_rate`; the model saved is the best epoch of either phase.
    """
    import keras

    from stages.shared import backbones, classifiers, tfdata, training

    strategy, batch, learning_rate, paths = training.prepare(base, cfg, paths)
    frame = read_manifest(Path(paths["manifest"]), "classification")
    classes = sorted(frame["label"].unique())
    size = base.image_size.classification
    labels = lambda rows: tfdata.one_hot(rows["label"], classes)  # noqa: E731
    train_rows, data = training.train_val_data(
        frame, paths["manifest"], labels, size, cfg, training.training_seed(base, cfg), batch
    )
    data["class_weight"] = class_weights(list(train_rows["label"]), classes, cfg.class_weight)
    aug = cfg.in_model_augmentation
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)

    def compile_model(model, rate) -> None:
        model.compile(
            optimizer=training.make_optimizer(cfg.optimizer, rate),
            loss=loss,
            metrics=["accuracy"],
            jit_compile=base.jit_compile,
        )

    with strategy.scope():  # variables made here are mirrored on every replica
        model = classifiers.build_classifier(
            cfg.architecture,
            size=size,
            num_classes=len(classes),
            dropout=cfg.dropout,
            aug=classifiers.augmentation_layers(aug.flip, aug.rotation, aug.zoom),
            weights=cfg.weights,
            width=cfg.width,
        )
        steps = data["steps"]
        compile_model(
            model,
            training.make_schedule(cfg.schedule, learning_rate, steps, cfg.epochs, cfg.decay_rate),
        )
    manifest_md5 = file_md5(Path(paths["manifest"]))
    state = training.work_dir("train_classifier", cfg.model_dump(), base.model_dump(), manifest_md5)
    tune, phase1 = cfg.fine_tune, state / "phase1.keras"
    tuning = state / training.FINE_TUNE
    if phase1.exists():  # phase 1 is over: continue phase 2 where it stopped
        start = training.last_snapshot(state)["epochs_run"]
        live = training.open_live(paths["live_dir"], training.resume_point(tuning, start))
    else:
        live = training.open_live(paths["live_dir"], training.resume_point(state))
        training.fit_phase(model, data, cfg, state, live, paths, cfg.epochs)
        start = training.last_snapshot(state)["epochs_run"]
        if tune.layers:
            shutil.copy(state / "best.keras", state / "phase1.tmp")
            (state / "phase1.tmp").replace(phase1)
    if tune.layers:
        with strategy.scope():
            model = keras.models.load_model(phase1)
            backbones.unfreeze_top(model.get_layer("backbone"), tune.layers)
            compile_model(model, tune.learning_rate)
        training.fit_phase(model, data, cfg, tuning, live, paths, start + tune.epochs, start)
    metadata = {
        "task": "classification",
        "classes": classes,
        "image_size": size,
        "architecture": cfg.architecture,
        "params": cfg.model_dump(),
        "seed": training.training_seed(base, cfg),
        "manifest_md5": manifest_md5,
    }
    keys = ("loss", "accuracy")
    return training.finish_run(state, data, live, Path(paths["model"]), metadata, keys)


def main(argv: list[str]) -> None:
    from stages.shared.training import stage_paths

    paths = stage_paths(argv, DEFAULTS, __doc__.splitlines()[0])
    cfg, base = load_params("train_classifier"), load_params("base")
    summary = train(cfg, base, paths)
    print(f"train-classifier: best {summary} → {paths['model']}")


if __name__ == "__main__":
    run_stage(main)
