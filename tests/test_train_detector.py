"""stages/train_detector.py: trains on a tiny labelme set and saves the model with its params."""

from __future__ import annotations

import json
import logging

import keras
import numpy as np
import pandas as pd
import pytest
import yaml

from stages import augment, split, train_detector
from stages.shared.params.sections import load_params
from stages.shared.training import loop
from tests.conftest import (
    ROOT,
    box_output,
    constant_box_bias,
    labelme,
    make_detection,
    refuses,
    run_paths,
    scripted_validation,
    usage,
    write_params,
)


def augmented_faces(workdir, positives: int, **train_detector) -> None:
    """A tiny labelme set (4 negatives), split and augmented at 32 px, with these params."""
    make_detection(workdir / "faces", positives=positives, negatives=4)
    write_params(
        workdir,
        data={"detection": "faces"},
        base={"seed": 3, "image_size": {"classification": 16, "detection": 32}},
        train_detector=train_detector,
    )
    split.main(["detection"])
    augment.main(["detection"])


def test_training_saves_a_loadable_model_and_its_metadata(workdir):
    augmented_faces(workdir, 16, epochs=2, batch_size=8, head_width=8)
    train_detector.main([])
    meta = json.loads((workdir / "models/detector.json").read_text())
    assert meta["task"] == "detection" and meta["image_size"] == 32
    assert meta["params"] == load_params("train_detector").model_dump()
    model = keras.models.load_model(workdir / "models/detector.keras")
    presence, box = model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    assert presence.shape == (2, 1) and box.shape == (2, 4)
    summary = json.loads((workdir / "reports/train/detector/metrics.json").read_text())
    assert summary["step"] == 1 and set(summary["eval"]) >= {"mean_iou", "box_loss", "loss"}
    assert not list((workdir / ".work/train_detector").iterdir())


class EpochWeights(keras.callbacks.Callback):
    """Every epoch's weights with its validation mean IoU, as the fit saw them."""

    def __init__(self, store: dict):
        super().__init__()
        self.store = store

    def on_epoch_end(self, epoch, logs=None):
        self.store[epoch] = (logs["val_mean_iou"], [w.copy() for w in self.model.get_weights()])


def test_the_saved_detector_is_the_epoch_with_the_highest_val_iou(workdir):
    """Epoch 3 of 5 is validated on boxes that cover the whole frame (IoU = the true box's
    area, > 0), every other epoch on a point (IoU 0): the best epoch is the third by
    construction, on any CPU, and the saved weights must be the ones epoch 3 trained."""
    augmented_faces(workdir, 24, epochs=5, batch_size=4, head_width=8,
                    early_stopping_patience=10)  # fmt: skip
    rows = pd.read_csv(workdir / "data/split/detection.csv")
    assert (rows.query("split == 'val'")["present"] == 1).any()  # a box to score: fixed by seed
    seen: dict = {}
    scripted = scripted_validation(
        box_output, lambda model, epoch: constant_box_bias(model, full=epoch == 2)
    )
    run = {**run_paths("detection"), "extra_callbacks": [scripted, EpochWeights(seen)]}
    loop.train(train_detector.Detector, load_params("train_detector"), load_params("base"), run)
    ious = {epoch: iou for epoch, (iou, _) in seen.items()}
    assert sorted(ious) == [0, 1, 2, 3, 4] and ious[2] > 0
    assert all(ious[epoch] == pytest.approx(0, abs=1e-6) for epoch in (0, 1, 3, 4))
    saved = keras.models.load_model(workdir / "models/run.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(saved, seen[2][1], strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(saved, seen[4][1], strict=True))
    meta = json.loads((workdir / "models/run.json").read_text())
    assert meta["best_epoch"] == 3
    history = pd.read_csv(workdir / "reports/train/run/plots/metrics/eval/mean_iou.tsv", sep="\t")
    assert history["mean_iou"].max() == pytest.approx(ious[2], abs=1e-6)


def test_a_detector_that_cannot_beat_the_mean_box_says_it_never_learned(workdir, caplog):
    """Every object has the same box and augmentation is off, so the mean train box is every
    val box (IoU 1): no detector can beat it, whatever it learns, on any CPU."""
    make_detection(workdir / "faces", positives=16, negatives=4)
    detection = yaml.safe_load((ROOT / "params.yaml").read_text())["augment"]["detection"]
    write_params(
        workdir,
        data={"detection": "faces"},
        base={"seed": 3, "image_size": {"classification": 16, "detection": 32}},
        augment={"detection": {**detection, "copies": 0}},
        train_detector={"epochs": 1, "batch_size": 8, "head_width": 8},
    )
    split.main(["detection"])
    augment.main(["detection"])
    with caplog.at_level(logging.WARNING):
        train_detector.main([])
    learned = json.loads((workdir / "models/detector.json").read_text())["checks"]["learned"]
    assert learned["learned"] is False and learned["metric"] == "mean_iou"
    assert learned["baseline"] == pytest.approx(1.0, abs=1e-4)
    assert learned["baseline_name"] == "the mean train box"
    lines = [r.getMessage() for r in caplog.records if "never learned" in r.getMessage()]
    assert len(lines) == 1 and "\n" not in lines[0], lines
    assert lines[0].startswith("never learned: the best val mean_iou ")
    summary = json.loads((workdir / "reports/train/detector/metrics.json").read_text())
    assert summary["checks"]["learned"] == learned


def detector_task(cfg, present=(1, 0, 0, 0)) -> train_detector.Detector:
    """The detector task on a manifest whose train rows hold these presences."""
    frame = pd.DataFrame({"present": list(present), "split": ["train"] * len(present)})
    return train_detector.Detector(cfg, frame)


def test_targets_are_presence_and_box_columns_as_float32():
    rows = pd.DataFrame({"present": [1, 0], "x1": [0.1, 0.0], "y1": [0.2, 0.0],
                         "x2": [0.6, 0.0], "y2": [0.9, 0.0], "path": ["a", "b"]})  # fmt: skip
    present, boxes = detector_task(load_params("train_detector", ROOT / "params.yaml")).targets(
        rows
    )
    assert present.dtype == boxes.dtype == np.float32
    assert present.tolist() == [[1.0], [0.0]]
    assert np.array_equal(boxes, np.array([[0.1, 0.2, 0.6, 0.9], [0.0] * 4], "float32"))


def test_the_detector_starts_at_the_presence_rate_with_the_params_backbone_setting():
    cfg = load_params("train_detector", ROOT / "params.yaml").model_copy(
        update={"head_width": 8, "trainable_backbone": False}
    )
    model = detector_task(cfg).build(32)
    assert model.built and not model.backbone.trainable
    bias = keras.ops.convert_to_numpy(model.presence_head.layers[-1].bias)
    assert bias == pytest.approx([np.log(0.25 / 0.75)], abs=1e-6)
    presence, box = model(np.zeros((2, 32, 32, 3), "float32"))
    assert presence.shape == (2, 1) and box.shape == (2, 4)
    trainable = detector_task(cfg.model_copy(update={"trainable_backbone": True}), (1, 0)).build(32)
    assert trainable.backbone.trainable


def test_the_detector_first_batch_check_and_saved_batch(tmp_path):
    cfg = load_params("train_detector", ROOT / "params.yaml").model_copy(update={"head_width": 8})
    task = detector_task(cfg)  # the presence rate: 0.25
    model = task.build(32)
    model.compile(optimizer="adam")
    images = np.full((4, 32, 32, 3), 260.0, "float32")
    images[0] = -1.0
    present = np.array([[1], [0], [1], [0]], "float32")
    boxes = np.array([[0.1, 0.2, 0.5, 0.9], [0.0] * 4, [0.3, 0.1, 0.4, 0.2], [0.0] * 4], "float32")
    report, saved = task.first_batch(model, images, (present, boxes))
    # Two objects in four (this batch), at the train prior of 0.25: −(2 log 0.25 + 2 log 0.75) / 4.
    by_hand = -(2 * np.log(0.25) + 2 * np.log(0.75)) / 4
    assert report["expected_from_prior"] == pytest.approx(by_hand, abs=1e-4)
    assert report["loss"] == "presence cross-entropy"
    assert saved["images"].dtype == np.uint8
    assert saved["images"][0].max() == 0 and saved["images"][1].min() == 255
    assert np.array_equal(saved["present"], present) and np.array_equal(saved["boxes"], boxes)


def test_the_command_line_says_what_the_stage_does_and_refuses_other_arguments(capsys):
    assert usage(train_detector.main) == (
        "[-h] [--manifest MANIFEST] [--model MODEL] [--batch BATCH] [--live-dir "
        "LIVE_DIR] [--throughput-dir THROUGHPUT_DIR] [--tensorboard TENSORBOARD] "
        "Stage `train-detector`: train the "
        "FaceTracker single-object detector on augmented data. options: -h, --help show "
        "this help message and exit --manifest MANIFEST --model MODEL --batch BATCH "
        "--live-dir LIVE_DIR --throughput-dir THROUGHPUT_DIR --tensorboard TENSORBOARD"
    )
    assert refuses(train_detector.main, ["--epochs", "3"], capsys).endswith(
        "unrecognized arguments: --epochs 3"
    )


def test_auto_size_augments_and_trains_where_the_small_objects_span_12_pixels(workdir):
    # Boxes 6 of 40 px wide (0.15) and 9 of 30 high: 12 px need an 80 px input.
    make_detection(workdir / "faces", positives=16, negatives=4)
    for label in (workdir / "faces/labels").glob("*.json"):
        label.write_text(json.dumps(labelme([[10, 5], [16, 14]])))
    write_params(
        workdir,
        data={"detection": "faces"},
        base={"seed": 3, "image_size": {"classification": 16, "detection": "auto"}},
        train_detector={"epochs": 1, "batch_size": 8, "head_width": 8},
    )
    split.main(["detection"])
    augment.main(["detection"])
    out = pd.read_csv(workdir / "data/augmented/detection/manifest.csv")
    copies = out[out["path"] != out["source"]]
    assert len(copies) > 0 and set(copies["width"]) == set(copies["height"]) == {80}
    train_detector.main([])
    meta = json.loads((workdir / "models/detector.json").read_text())
    model = keras.models.load_model(workdir / "models/detector.keras")
    assert meta["image_size"] == 80 and model.backbone.input_shape == (None, 80, 80, 3)
