"""stages/train_detector.py: trains on a tiny labelme set and saves the model with its params."""

from __future__ import annotations

import json

import keras
import numpy as np
import pandas as pd
import pytest

from stages import augment, split, train_detector
from stages.shared.params import load_params
from tests.conftest import make_detection, run_paths, write_params


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
    augmented_faces(
        workdir,
        24,
        epochs=5,
        batch_size=4,
        head_width=8,
        early_stopping_patience=10,
        learning_rate=0.05,
    )
    seen: dict = {}
    run = {**run_paths("detection"), "extra_callbacks": [EpochWeights(seen)]}
    train_detector.train(load_params("train_detector"), load_params("base"), run)
    ious = {epoch: iou for epoch, (iou, _) in seen.items()}
    best, worst = max(ious, key=ious.get), min(ious, key=ious.get)
    assert ious[best] > ious[worst], "the test needs epochs that differ; pick other settings"
    assert best != max(ious), "the test needs a best epoch that is not the last one"
    saved = keras.models.load_model(workdir / "models/run.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(saved, seen[best][1], strict=True))
    meta = json.loads((workdir / "models/run.json").read_text())
    assert meta["best_epoch"] == best + 1
    history = pd.read_csv(workdir / "reports/train/run/plots/metrics/eval/mean_iou.tsv", sep="\t")
    assert history["mean_iou"].max() == pytest.approx(ious[best], abs=1e-6)
