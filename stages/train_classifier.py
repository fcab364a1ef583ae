"""Stage `train-classifier`: train a Keras 3 classifier on the augmented classification data.

In:  data/augmented/classification/manifest.csv (train + val rows) and the shards beside it.
Out: models/classifier.keras + models/classifier.json (classes, resolved params, best epoch,
     the first-batch check); models/classifier_batch.npz (the first training batch as the
     model sees it, for `plot`);
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
from stages.shared.manifest import input_size, read_manifest
from stages.shared.params import load_params

DEFAULTS = {
    "manifest": "data/augmented/classification/manifest.csv",
    "model": "models/classifier.keras",
    "batch": "models/classifier_batch.npz",
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


def build_model(cfg, size: int, classes: list[str], prior: np.ndarray):
    """The classifier from params, its output bias at the train class prior; (model, its
    in-model augmentation layers). `debug: overfit` builds it without augmentation."""
    from stages.shared import checks, classifiers

    aug = cfg.in_model_augmentation
    layers = [] if cfg.debug == "overfit" else classifiers.augmentation_layers(**aug.model_dump())
    model = classifiers.build_classifier(
        cfg.architecture,
        size=size,
        num_classes=len(classes),
        dropout=cfg.dropout,
        aug=layers,
        weights=cfg.weights,
        width=cfg.width,
    )
    # Start at the data's prior: softmax(log p) = p, so the first steps need not learn it.
    checks.start_at_prior(checks.output_layer(model), np.log(prior))
    return model, layers


def first_batch_checks(model, data: dict, cfg, prior, layers, path: Path) -> dict:
    """The first-batch loss against the prior's, and the batch as the model sees it, saved."""
    import keras

    from stages.shared import checks, training

    images, targets = training.first_batch(data)
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)
    value = float(loss(targets, model(images, training=False)))
    expected = checks.prior_cross_entropy(prior, cfg.label_smoothing, np.asarray(targets))
    seen = checks.seen_by_model(model, images, layers)
    checks.save_arrays(
        path, images=np.clip(np.rint(seen), 0, 255).astype(np.uint8), targets=targets
    )
    return checks.first_batch_report(value, expected, "categorical cross-entropy")


def run_phases(model, data: dict, cfg, state: Path, live, paths: dict, recompile) -> None:
    """Phase 1, then (with `fine_tune.layers`) phase 2 from phase 1's best model, each
    resumable; phase 2 continues the epoch count where phase 1 stopped."""
    import keras

    from stages.shared import backbones, training

    tune, phase1 = cfg.fine_tune, state / training.PHASE1
    if not phase1.exists():
        training.fit_phase(model, data, cfg, state, live, paths, cfg.epochs)
        if tune.layers:
            shutil.copy(state / "best.keras", state / "phase1.tmp")
            (state / "phase1.tmp").replace(phase1)
    if tune.layers:
        start = training.last_snapshot(state)["epochs_run"]
        model = keras.models.load_model(phase1)
        backbones.unfreeze_top(model.get_layer("backbone"), tune.layers)
        recompile(model, tune.learning_rate)
        tuning = state / training.FINE_TUNE
        training.fit_phase(model, data, cfg, tuning, live, paths, start + tune.epochs, start)


def val_baseline(cfg, prior: np.ndarray, val_targets: np.ndarray) -> dict:
    """What answering the train prior scores on val, in the monitored metric: the yardstick
    of `checks.learned_report`."""
    from stages.shared import checks

    if cfg.monitor == "val_accuracy":
        majority = float((val_targets.argmax(axis=1) == prior.argmax()).mean())
        return {"metric": "accuracy", "baseline": majority, "name": "the majority class",
                "higher": True}  # fmt: skip
    loss = checks.prior_cross_entropy(prior, cfg.label_smoothing, val_targets)
    return {"metric": "loss", "baseline": loss, "name": "the train prior", "higher": False}


def train(cfg, base, paths: dict) -> dict:
    """Train (or resume) a classifier; save the best model with its metadata; return a summary.

    With `fine_tune.layers`, phase 2 unfreezes the top backbone layers of phase 1's best
    model at `fine_tune.learning_rate`; the model saved is the best epoch of either phase.
    """
    import keras

    from stages.shared import checks, tfdata, training

    cfg = training.debug_epochs(cfg)
    strategy, batch, rate, paths = training.prepare(base, cfg, paths, "train_classifier")
    frame = read_manifest(Path(paths["manifest"]), "classification")
    classes = sorted(frame["label"].unique())
    size = input_size(base.image_size.classification, frame)  # `auto`: as augment chose it
    seed = training.training_seed(base, cfg)
    labels = lambda rows: tfdata.one_hot(rows["label"], classes)  # noqa: E731
    train_rows, data = training.train_val_data(
        frame, paths["manifest"], labels, size, cfg, seed, batch
    )
    data["class_weight"] = class_weights(list(train_rows["label"]), classes, cfg.class_weight)
    prior = checks.class_prior(labels(train_rows))
    data["baseline"] = val_baseline(cfg, prior, labels(frame[frame["split"] == "val"]))

    def recompile(model, learning_rate) -> None:
        with strategy.scope():
            model.compile(
                optimizer=training.make_optimizer(cfg.optimizer, learning_rate),
                loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
                metrics=["accuracy"],
                jit_compile=base.jit_compile,
            )

    with strategy.scope():  # variables made here are mirrored on every replica
        model, layers = build_model(cfg, size, classes, prior)
    steps = data["steps"]
    recompile(model, training.make_schedule(cfg.schedule, rate, steps, cfg.epochs, cfg.decay_rate))
    manifest_md5 = file_md5(Path(paths["manifest"]))
    metadata = {
        "task": "classification",
        "classes": classes,
        "image_size": size,
        "architecture": cfg.architecture,
        "params": cfg.model_dump(),
        "seed": seed,
        "manifest_md5": manifest_md5,
        "checks": {
            "first_batch": first_batch_checks(model, data, cfg, prior, layers, Path(paths["batch"]))
        },
    }
    return training.run_stage_training(
        "train_classifier",
        model,
        data,
        cfg,
        base,
        paths,
        metadata,
        ("loss", "accuracy"),
        lambda state, live: run_phases(model, data, cfg, state, live, paths, recompile),
    )


def main(argv: list[str]) -> None:
    from stages.shared.training import stage_paths

    paths = stage_paths(argv, DEFAULTS, __doc__.splitlines()[0])
    cfg, base = load_params("train_classifier"), load_params("base")
    summary = train(cfg, base, paths)
    print(f"train-classifier: best {summary} → {paths['model']}")


if __name__ == "__main__":
    run_stage(main)
