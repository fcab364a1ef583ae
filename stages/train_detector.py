"""Stage `train-detector`: train the FaceTracker single-object detector on augmented data.

In:  data/augmented/detection/manifest.csv (train + val rows) and the shards beside it.
Out: models/detector.keras + models/detector.json (resolved params, best scores, the
     first-batch check); models/detector_batch.npz (the first training batch, for `plot`);
     reports/train/detector/ (DVCLive: total / class / box loss, presence accuracy, mean IoU
     on positives, learning rate; train and eval). TensorBoard: reports/tensorboard/detector/.
Params: base.seed, base.image_size.detection, train_detector.*.
A killed run resumes from its last completed epoch (state in .work/, outside DVC outputs).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stages.shared.cli import run_stage
from stages.shared.images import file_md5
from stages.shared.manifest import BOX, input_size, read_manifest
from stages.shared.params import load_params

DEFAULTS = {
    "manifest": "data/augmented/detection/manifest.csv",
    "model": "models/detector.keras",
    "batch": "models/detector_batch.npz",
    "live_dir": "reports/train/detector",
    "tensorboard": "reports/tensorboard/detector",
}


def detection_targets(rows) -> tuple:
    """(presence [N, 1], box [N, 4]) float32 arrays from manifest rows."""
    present = rows["present"].to_numpy("float32").reshape(-1, 1)
    return present, rows[BOX].to_numpy("float32")


def build_model(cfg, size: int, rate: float):
    """The FaceTracker from params, built (BackupAndRestore needs its weights to exist), its
    presence output starting at the train presence rate."""
    from stages.shared import checks
    from stages.shared.detectors import FaceTracker

    model = FaceTracker(
        cfg.backbone,
        size,
        cfg.head_width,
        cfg.pooling,
        cfg.dropout,
        cfg.weights,
        cfg.bn_momentum,
        box_head=cfg.box_head,
    )
    model.backbone.trainable = cfg.trainable_backbone
    model(np.zeros((1, size, size, 3), "float32"))  # build: BackupAndRestore needs the weights
    checks.start_at_prior(model.presence_head.layers[-1], [checks.logit(rate)])
    return model


def val_baseline(train_rows, val_rows) -> dict | None:
    """The val mean IoU of the mean train box, measured as training measures its own
    (losses.box_iou): the yardstick of `checks.learned_report`; None when train or val has no
    object to measure."""
    from keras import ops

    from stages.shared.losses import box_iou

    train_present, train_boxes = detection_targets(train_rows)
    val_present, val_boxes = detection_targets(val_rows)
    objects = val_boxes[val_present.ravel() == 1]
    if not (train_present.any() and len(objects)):
        return None
    mean_box = train_boxes[train_present.ravel() == 1].mean(axis=0)
    ious = box_iou(objects, np.tile(mean_box, (len(objects), 1)))
    return {"metric": "mean_iou", "baseline": float(ops.mean(ious)),
            "name": "the mean train box", "higher": True}  # fmt: skip


def first_batch_checks(model, data: dict, rate: float, path: Path) -> dict:
    """The first-batch classification loss against the presence prior's, and the batch
    (images, presence, boxes) as the model sees it, saved for `plot`."""
    from stages.shared import checks, training

    images, (present, boxes) = training.first_batch(data)
    value = float(model.class_loss(present, model(images, training=False)[0]))
    pixels = np.clip(np.rint(np.asarray(images)), 0, 255).astype(np.uint8)
    checks.save_arrays(path, images=pixels, present=present, boxes=boxes)
    expected = checks.binary_cross_entropy(rate, np.asarray(present))
    return checks.first_batch_report(value, expected, "presence cross-entropy")


def train(cfg, base, paths: dict) -> dict:
    """Train (or resume) the detector; save the best model with its metadata; return scores."""
    from stages.shared import training

    cfg = training.debug_epochs(cfg)
    strategy, batch, learning_rate, paths = training.prepare(base, cfg, paths, "train_detector")
    frame = read_manifest(Path(paths["manifest"]), "detection")
    size = input_size(base.image_size.detection, frame)  # `auto`: as augment chose it
    seed = training.training_seed(base, cfg)
    train_rows, data = training.train_val_data(
        frame, paths["manifest"], detection_targets, size, cfg, seed, batch
    )
    rate = float(train_rows["present"].mean())
    found = val_baseline(train_rows, frame[frame["split"] == "val"])
    data.update({"baseline": found} if found else {})
    steps = data["steps"]
    with strategy.scope():  # variables made here are mirrored on every replica
        model = build_model(cfg, size, rate)
        schedule = training.make_schedule(
            cfg.schedule, learning_rate, steps, cfg.epochs, cfg.decay_rate
        )
        weights = (cfg.loss_weights.localization, cfg.loss_weights.classification)
        model.compile(
            optimizer=training.make_optimizer(cfg.optimizer, schedule),
            localization=cfg.localization_loss,
            loss_weights=weights,
            jit_compile=base.jit_compile,
        )
    manifest_md5 = file_md5(Path(paths["manifest"]))
    check = first_batch_checks(model, data, rate, Path(paths["batch"]))
    metadata = {
        "task": "detection",
        "image_size": size,
        "backbone": cfg.backbone,
        "params": cfg.model_dump(),
        "seed": seed,
        "manifest_md5": manifest_md5,
        "checks": {"first_batch": check},
    }
    return training.run_stage_training(
        "train_detector",
        model,
        data,
        cfg,
        base,
        paths,
        metadata,
        ("loss", "mean_iou", "presence_accuracy"),
        lambda state, live: training.fit_phase(model, data, cfg, state, live, paths, cfg.epochs),
    )


def main(argv: list[str]) -> None:
    from stages.shared.training import stage_paths

    paths = stage_paths(argv, DEFAULTS, __doc__.splitlines()[0])
    cfg, base = load_params("train_detector"), load_params("base")
    summary = train(cfg, base, paths)
    print(f"train-detector: best {summary} → {paths['model']}")


if __name__ == "__main__":
    run_stage(main)
