"""The `export` stage: SavedModel and TFLite agree with Keras; a disagreement stops it."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

from stages import export, predict
from stages.shared.core.cli import UserError
from stages.shared.data.manifest import write_manifest
from stages.shared.models import exporting
from tests.conftest import (
    refuses_choice,
    save_tiny_classifier,
    usage,
    write_image,
    write_params,
)

# A detector whose box head says x1 = 0.8 > x2 = 0.2 and y1 = 0.7 > y2 = 0.3 for any image.
UNORDERED = np.array([0.8, 0.7, 0.2, 0.3], "float32")


def save_unordered_detector(path):
    """A tiny detector whose raw box has its corners swapped, saved like training does."""
    from stages.shared.models.detectors import FaceTracker
    from stages.shared.models.store import save_model

    model = FaceTracker("plain_cnn", 32, head_width=8)
    model(np.zeros((1, 32, 32, 3), "float32"))
    last = model.box_head.layers[-1]
    last.set_weights([np.zeros_like(last.kernel), np.log(UNORDERED / (1 - UNORDERED))])
    save_model(model, path, {"task": "detection", "image_size": 32, "seed": 5})


def write_test_split(root) -> None:
    """Test rows for both tasks, pointing at small random images."""
    rng = np.random.default_rng(0)
    rows = {"classification": [], "detection": []}
    for i in range(3):
        path = write_image(root / f"data/img_{i}.png", rng, (24, 18)).as_posix()
        rows["classification"].append([path, "red", f"c{i}", 24, 18, f"g{i}", "test"])
        rows["detection"].append([path, 1, 0.1, 0.1, 0.5, 0.5, f"d{i}", 24, 18, f"g{i}", "test"])
    columns = {
        "classification": ["path", "label", "md5", "width", "height", "group", "split"],
        "detection": [
            *("path", "present", "x1", "y1", "x2", "y2", "md5", "width", "height", "group"),
            "split",
        ],
    }
    for task, data in rows.items():
        frame = pd.DataFrame(data, columns=columns[task])
        write_manifest(root / f"data/split/{task}.csv", frame, task)


@pytest.fixture
def models(workdir):
    write_test_split(workdir)
    save_tiny_classifier(workdir / "models/classifier.keras")
    save_unordered_detector(workdir / "models/detector.keras")
    return workdir


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Both tiny models exported once (paths are absolute: no test depends on the cwd)."""
    root = tmp_path_factory.mktemp("exported")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        write_params(root)
        write_test_split(root)
        save_tiny_classifier(root / "models/classifier.keras")
        save_unordered_detector(root / "models/detector.keras")
        for name in ("classifier", "detector"):
            export.main([name])
    return root


def test_export_writes_both_formats_that_agree_with_keras(exported):
    import keras

    models = exported
    rng = np.random.default_rng(11)
    for name, size in (("classifier", 16), ("detector", 32)):
        # Our own inputs, not the images the stage checked: the exports are read back here.
        pixels = rng.uniform(0, 255, (5, size, size, 3)).astype("float32")
        keras_model = keras.models.load_model(models / f"models/{name}.keras")
        expected = keras_model.predict_on_batch(pixels)
        runners = {
            "saved_model": exporting.SavedModelRunner(models / f"models/export/{name}"),
            "tflite": exporting.TFLiteRunner(models / f"models/export/{name}.tflite"),
        }
        for fmt, runner in runners.items():
            got = runner.predict_on_batch(pixels)  # a list: one array per named output
            if name == "classifier":
                (probabilities,) = got
                assert probabilities.shape == (5, 2), fmt
                np.testing.assert_allclose(probabilities, expected, atol=1e-4, err_msg=fmt)
                continue
            presence, box = got
            keras_presence, keras_box = (np.asarray(v) for v in expected)
            np.testing.assert_allclose(presence, keras_presence, atol=1e-4, err_msg=fmt)
            ordered = np.concatenate(  # the export puts corners in order; Keras's head does not
                [
                    np.minimum(keras_box[:, :2], keras_box[:, 2:]),
                    np.maximum(keras_box[:, :2], keras_box[:, 2:]),
                ],
                axis=1,
            )
            np.testing.assert_allclose(box, ordered, atol=1e-4, err_msg=fmt)
    for name in ("classifier", "detector"):
        entry = json.loads((models / f"reports/export/{name}.json").read_text())
        assert entry["images_checked"] == 3  # the three test rows
        keras_file = models / f"models/{name}.keras"
        assert entry["keras_bytes"] == keras_file.stat().st_size
        tflite = models / f"models/export/{name}.tflite"
        assert entry["tflite"]["bytes"] == tflite.stat().st_size
        saved = [p for p in (models / f"models/export/{name}").rglob("*") if p.is_file()]
        assert entry["saved_model"]["bytes"] == sum(p.stat().st_size for p in saved)
        assert entry["saved_model"]["bytes"] != entry["tflite"]["bytes"]
        for fmt in ("saved_model", "tflite"):
            assert 0 <= entry[fmt]["max_abs_difference"] <= 1e-4, (name, fmt)
        assert entry["latency_ms_per_image"]["tflite"] > 0


def test_exports_carry_their_metadata_and_order_the_box_corners(exported):
    models = exported
    pixels = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    runners = {
        "saved_model": exporting.SavedModelRunner(models / "models/export/detector"),
        "tflite": exporting.TFLiteRunner(models / "models/export/detector.tflite"),
    }
    for fmt, runner in runners.items():
        presence, box = runner.predict_on_batch(pixels)
        assert presence.shape == (3, 1), fmt
        np.testing.assert_allclose(box, np.tile([0.2, 0.3, 0.8, 0.7], (3, 1)), atol=1e-6)
        assert runner.meta["task"] == "detection" and runner.meta["image_size"] == 32
        assert "x1 <= x2" in runner.meta["outputs"]["box"] and runner.meta["seed"] == 5
    from tensorflow.lite.tools import flatbuffer_utils

    tflite = flatbuffer_utils.read_model(str(models / "models/export/detector.tflite"))
    names = [entry.name.decode() for entry in tflite.metadata]
    # the converter's own entries (the runtime version TFLite checks) stay beside ours
    assert names == ["min_runtime_version", "CONVERSION_METADATA", exporting.METADATA_NAME]
    classifier = exporting.TFLiteRunner(models / "models/export/classifier.tflite")
    assert classifier.meta["classes"] == ["blue", "red"]
    saved = exporting.SavedModelRunner(models / "models/export/classifier")
    assert saved.meta["classes"] == ["blue", "red"] and saved.meta["image_size"] == 16


def run_predict(args: list[str], capsys) -> pd.DataFrame:
    predict.main(args)
    out, _ = capsys.readouterr()
    return pd.read_csv(io.StringIO(out))


@pytest.mark.parametrize("name", ["classifier", "detector"])
def test_predict_gives_the_same_answers_with_an_export(exported, capsys, name):
    models = exported
    images = str(models / "data")
    by_format = {
        fmt: run_predict(["--model", str(models / path), "--threshold", "0", images], capsys)
        for fmt, path in {
            "keras": f"models/{name}.keras",
            "saved_model": f"models/export/{name}",
            "tflite": f"models/export/{name}.tflite",
        }.items()
    }
    reference = by_format.pop("keras")
    for fmt, frame in by_format.items():
        pd.testing.assert_frame_equal(frame, reference, atol=1e-4, obj=fmt)
    if name == "detector":  # pixels of each 24×18 image, corners in order
        assert (reference[["x1", "y1", "x2", "y2"]].iloc[0] == [4.8, 5.4, 19.2, 12.6]).all()


@pytest.mark.parametrize("fmt, runner", [("saved_model", "SavedModelRunner"),
                                         ("tflite", "TFLiteRunner")])  # fmt: skip
def test_export_stops_when_an_export_disagrees(models, monkeypatch, fmt, runner):
    # The disagreement is built, not hoped for from a runtime's last float bits: this format's
    # first output moved by 0.5, twice the tolerance; the other format still agrees.
    write_params(models, export={"max_images": 3, "tolerance": 0.25})
    original = getattr(exporting, runner).predict_on_batch

    def shifted(self, pixels):
        outputs = original(self, pixels)
        return [outputs[0] + 0.5, *outputs[1:]]

    monkeypatch.setattr(getattr(exporting, runner), "predict_on_batch", shifted)
    stops = rf"^classifier: {fmt} export differs from the Keras model by 5\.00e-01, "
    with pytest.raises(UserError, match=stops + r"more than export\.tolerance=0\.25 — "):
        export.main(["classifier"])


def test_a_difference_equal_to_the_tolerance_is_accepted(models, monkeypatch):
    write_params(models, export={"max_images": 3, "tolerance": 0.25})
    monkeypatch.setattr(exporting, "max_difference", lambda expected, got: 0.25)
    export.main(["classifier"])
    report = json.loads((models / "reports/export/classifier.json").read_text())
    assert report["tflite"]["max_abs_difference"] == 0.25
    assert not (models / "reports/export/detector.json").exists()  # one model per run


def test_export_stops_when_no_test_image_can_be_read(models):
    for image in (models / "data").glob("img_*.png"):
        image.write_bytes(b"not an image")
    with pytest.raises(
        UserError,
        match=r"^data/split/classification\.csv: no readable test image to check the export on$",
    ):
        export.main(["classifier"])


def test_the_command_line_says_what_the_stage_does_and_refuses_other_arguments(capsys):
    assert usage(export.main) == (
        "[-h] [--model SOURCE] [--out OUT] {classifier,detector} Stage `export@<model>`: a"
        " model as SavedModel (TF Serving) and TFLite, checked on test images. positional"
        " arguments: {classifier,detector} options: -h, --help show this help message and"
        " exit --model SOURCE a registered model: [repo:]name@version --out OUT with --model:"
        " the folder for its exports"
    )
    refuses_choice(export.main, "both", ("classifier", "detector"), capsys)


def test_a_version_to_export_must_name_the_stages_model_and_a_folder(workdir):
    with pytest.raises(UserError, match=r"--model detector@v1\.0\.0: not a registered classifier"):
        export.main(["classifier", "--model", "detector@v1.0.0", "--out", "served"])
    with pytest.raises(UserError, match=r"--model models/classifier\.keras: not a registered"):
        export.main(["classifier", "--model", "models/classifier.keras", "--out", "served"])
    with pytest.raises(UserError, match="--model needs --out: the folder for the exports"):
        export.main(["classifier", "--model", "classifier@prod"])


def test_the_largest_difference_over_every_output():
    expected = [np.array([[0.1, 0.9]]), np.array([[0.2, 0.3, 0.4, 0.5]])]
    got = [np.array([[0.1, 0.85]]), np.array([[0.2, 0.3, 0.47, 0.5]])]
    assert exporting.max_difference(expected, got) == pytest.approx(0.07)
    assert exporting.max_difference(got, expected) == pytest.approx(0.07)
    with pytest.raises(ValueError, match="zip"):  # an output missing is not skipped over
        exporting.max_difference(expected, got[:1])


def test_latency_is_the_median_per_image_after_a_warm_up(monkeypatch):
    clock = iter([0.0, 0.010, 1.0, 1.002, 2.0, 2.5])  # 10 ms, 2 ms, 500 ms
    monkeypatch.setattr(exporting.time, "perf_counter", lambda: next(clock))
    calls = []
    pixels = np.zeros((3, 4, 4, 3), "float32")
    assert exporting.median_ms(lambda batch: calls.append(len(batch)), pixels) == 10.0
    assert calls == [1, 1, 1, 1]  # one warm-up, then each image alone


def test_bytes_of_a_file_or_of_every_file_below_a_folder(tmp_path):
    (tmp_path / "a/b").mkdir(parents=True)
    (tmp_path / "a/x.bin").write_bytes(b"12345")
    (tmp_path / "a/b/y.bin").write_bytes(b"123")
    assert exporting.folder_bytes(tmp_path / "a") == 8
    assert exporting.folder_bytes(tmp_path / "a/x.bin") == 5


def test_export_metadata_says_how_to_feed_and_read_each_task():
    meta = exporting.export_metadata({"task": "detection", "image_size": 40, "seed": 3})
    assert meta["seed"] == 3 and list(meta["outputs"]) == ["presence", "box"]
    assert meta["outputs"]["presence"] == "(batch, 1) probability that the image holds the object"
    assert meta["input"].startswith("(batch, 40, 40, 3) float32 RGB pixels in [0, 255], resized")
    assert "40×40 (bilinear)" in meta["input"]
    classes = exporting.export_metadata({"task": "classification", "image_size": 8})
    assert list(classes["outputs"]) == ["probabilities"]
    assert classes["outputs"]["probabilities"] == "(batch, classes) softmax, in `classes` order"
