"""The `export` stage: SavedModel and TFLite agree with Keras; a disagreement stops it."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from stages import export
from stages.shared.cli import UserError
from stages.shared.manifest import write_manifest
from tests.conftest import save_tiny_classifier, save_tiny_detector, write_image, write_params


def write_test_split(root) -> None:
    """Test rows for both tasks, pointing at small random images."""
    rng = np.random.default_rng(0)
    rows = {"classification": [], "detection": []}
    for i in range(3):
        path = write_image(root / f"data/img_{i}.png", rng, (24, 18)).as_posix()
        rows["classification"].append([path, "red", f"c{i}", "test"])
        rows["detection"].append([path, 1, 0.1, 0.1, 0.5, 0.5, f"d{i}", "test"])
    columns = {
        "classification": ["path", "label", "md5", "split"],
        "detection": ["path", "present", "x1", "y1", "x2", "y2", "md5", "split"],
    }
    for task, data in rows.items():
        frame = pd.DataFrame(data, columns=columns[task])
        write_manifest(root / f"data/split/{task}.csv", frame, task)


@pytest.fixture
def models(workdir):
    write_test_split(workdir)
    save_tiny_classifier(workdir / "models/classifier.keras")
    save_tiny_detector(workdir / "models/detector.keras")
    return workdir


def test_export_writes_both_formats_that_agree_with_keras(models):
    export.main([])
    report = json.loads((models / "reports/export.json").read_text())
    for name in ("classifier", "detector"):
        assert (models / f"models/export/{name}/saved_model.pb").exists()
        assert (models / f"models/export/{name}.tflite").stat().st_size > 1000
        entry = report[name]
        assert entry["images_checked"] == 3
        for fmt in ("saved_model", "tflite"):
            assert entry[fmt]["max_abs_difference"] <= 1e-4 and entry[fmt]["bytes"] > 0
        assert entry["latency_ms_per_image"]["tflite"] > 0


def test_export_stops_when_an_export_disagrees(models):
    # TFLite's kernels differ from TensorFlow's in the last float bits: no tolerance of ~0 holds.
    write_params(models, export={"max_images": 3, "tolerance": 1e-30})
    with pytest.raises(
        UserError, match=r"tflite export differs from the Keras model by .*tolerance"
    ):
        export.main([])
