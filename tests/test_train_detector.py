"""stages/train_detector.py: trains on a tiny labelme set and saves the model with its params."""

from __future__ import annotations

import json

import keras
import numpy as np

from stages import augment, split, train_detector
from stages.shared.params import load_params
from tests.conftest import make_detection, write_params


def test_training_saves_a_loadable_model_and_its_metadata(workdir):
    make_detection(workdir / "faces", positives=16, negatives=4)
    write_params(
        workdir,
        data={"detection": "faces"},
        base={"seed": 3, "image_size": {"classification": 16, "detection": 32}},
        train_detector={"epochs": 2, "batch_size": 8, "head_width": 8},
    )
    split.main(["detection"])
    augment.main(["detection"])
    train_detector.main([])
    meta = json.loads((workdir / "models/detector.json").read_text())
    assert meta["task"] == "detection" and meta["image_size"] == 32
    assert meta["params"] == load_params("train_detector").model_dump()
    model = keras.models.load_model(workdir / "models/detector.keras")
    presence, box = model.predict(np.zeros((2, 32, 32, 3), "float32"), verbose=0)
    assert presence.shape == (2, 1) and box.shape == (2, 4)
    summary = json.loads((workdir / "reports/train/detector/metrics.json").read_text())
    assert summary["step"] == 1 and set(summary["eval"]) >= {"mean_iou", "box_loss", "loss"}
    assert summary["best"]["val_mean_iou"] == meta["val_mean_iou"]
    assert not list((workdir / ".work/train_detector").iterdir())
