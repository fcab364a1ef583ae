"""`python -m stages.predict`: same answers as the model on the training preprocessing,
boxes drawn where they are predicted, bad files skipped with a message."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages import predict
from stages.shared.core.cli import UserError
from stages.shared.data.tfdata import load_image
from stages.shared.models.store import load_model
from tests.conftest import save_tiny_classifier, save_tiny_detector, usage, write_image


def run_predict(args: list[str], capsys) -> tuple[pd.DataFrame, str]:
    predict.main(args)
    out, err = capsys.readouterr()
    return pd.read_csv(io.StringIO(out)), err


def test_predict_matches_the_model_on_training_preprocessing(tmp_path, capsys):
    model_path = save_tiny_classifier(tmp_path / "classifier.keras", classes=("a", "b", "c"))
    rng = np.random.default_rng(3)
    images = tmp_path / "images"
    paths = [
        write_image(images / "rgb.png", rng, (20, 14)),
        write_image(images / "grey.png", rng, (9, 30), mode="L"),
        write_image(images / "sub dir/rgba ü.png", rng, (16, 16), mode="RGBA"),
        write_image(images / "photo.JPG", rng, (40, 25), fmt="JPEG"),
    ]
    (images / "notes.txt").write_text("not an image")  # ignored: not an image extension
    frame, err = run_predict(["--model", str(model_path), "--top-k", "2", str(images)], capsys)
    assert sorted(frame["path"]) == sorted(p.as_posix() for p in paths)
    model, _ = load_model(model_path)
    pixels = np.stack([load_image(p, 16) for p in frame["path"]])
    proba = model.predict(pixels, verbose=0)
    assert list(frame["predicted"]) == list(np.array(["a", "b", "c"])[proba.argmax(1)])
    assert np.allclose(frame["confidence"], proba.max(1), atol=1e-4)
    assert (frame["top1"] == frame["predicted"]).all() and (frame["top2"] != frame["top1"]).all()
    assert "predict: 4 images, 0 skipped" in err


def test_predict_skips_bad_files_with_a_message(tmp_path, capsys):
    model_path = save_tiny_classifier(tmp_path / "classifier.keras")
    good = write_image(tmp_path / "in/good.png", np.random.default_rng(0))
    (tmp_path / "in/empty.png").write_bytes(b"")
    (tmp_path / "in/page.png").write_text("<html>not a png</html>")
    frame, err = run_predict(["--model", str(model_path), str(tmp_path / "in/*.png")], capsys)
    assert list(frame["path"]) == [good.as_posix()]
    assert "skipped " + (tmp_path / "in/empty.png").as_posix() in err
    assert "page.png: not an image file" in err
    assert "1 images, 2 skipped" in err


def test_predict_errors_are_one_line(tmp_path):
    with pytest.raises(UserError, match=r"nowhere/\*.jpg: no such file, folder or matching glob"):
        predict.main(["--model", "m.keras", str(tmp_path / "nowhere/*.jpg")])
    write_image(tmp_path / "a.png", np.random.default_rng(0))
    with pytest.raises(UserError, match=r"m.keras: not found — train the model first"):
        predict.main(["--model", str(tmp_path / "m.keras"), str(tmp_path / "a.png")])


def test_detector_box_is_drawn_where_the_prediction_says(tmp_path, capsys):
    model_path = save_tiny_detector(tmp_path / "detector.keras")
    source = tmp_path / "frames/white.png"
    source.parent.mkdir()
    Image.new("RGB", (120, 90), "white").save(source)
    drawn = tmp_path / "drawn"
    args = ["--model", str(model_path), "--threshold", "0", "--draw", str(drawn), str(source)]
    frame, _ = run_predict(args, capsys)
    row = frame.iloc[0]
    assert row["present"] == 1 and 0 <= row["x1"] < row["x2"] <= 120 and row["y2"] <= 90
    pixels = np.asarray(Image.open(drawn / "white.png").convert("RGB")).astype(int)
    assert pixels.shape == (90, 120, 3)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    x1, y1, x2, y2 = (round(row[k]) for k in ("x1", "y1", "x2", "y2"))
    middle_y, middle_x = (y1 + y2) // 2, (x1 + x2) // 2
    # The outline crosses the box's own edges, and nothing red is far outside it.
    assert red[middle_y, max(x1 - 1, 0) : x1 + 2].any() and red[middle_y, x2 - 2 : x2 + 1].any()
    assert red[max(y1 - 1, 0) : y1 + 2, middle_x].any() and red[y2 - 2 : y2 + 1, middle_x].any()
    ys, xs = np.nonzero(red)
    outside = (xs > x2 + 2) | (ys > y2 + 2) | ((xs < x1 - 2) & (ys > 16))  # text sits top-left
    assert not outside.any()


def test_classifier_rows_rank_the_top_k_and_break_ties_by_class_order():
    proba = np.array([[0.2, 0.5, 0.3], [0.4, 0.2, 0.4], [0.1, 0.1, 0.8]])
    frame = predict.classifier_rows(["x", "y", "z"], [proba], {"classes": ["a", "b", "c"]}, 5)
    assert frame.to_dict("list") == {
        "path": ["x", "y", "z"],
        "predicted": ["b", "a", "c"],
        "confidence": [0.5, 0.4, 0.8],
        "top1": ["b", "a", "c"],
        "top1_p": [0.5, 0.4, 0.8],
        "top2": ["c", "c", "a"],
        "top2_p": [0.3, 0.4, 0.1],
        "top3": ["a", "b", "b"],
        "top3_p": [0.2, 0.2, 0.1],
    }  # top-k capped at the 3 classes; a tie goes to the class listed first
    plain = predict.classifier_rows(["x"], [proba[:1]], {"classes": ["a", "b", "c"]}, 0)
    assert list(plain.columns) == ["path", "predicted", "confidence"]


def test_detector_rows_give_boxes_in_each_images_own_pixels(tmp_path):
    wide = tmp_path / "wide.png"
    Image.new("RGB", (200, 50)).save(wide)
    tall = tmp_path / "tall.png"
    Image.new("RGB", (40, 120)).save(tall)
    scores = np.array([[0.5], [0.9], [0.49]], "float32")
    # Corners in either order, and a box past the image's edge: clipped.
    boxes = np.array([[0.5, 0.6, 0.1, 0.2], [-0.1, 0.25, 0.5, 1.2], [0.1, 0.1, 0.2, 0.2]])
    paths = [wide.as_posix(), tall.as_posix(), wide.as_posix()]
    frame = predict.detector_rows(paths, [scores, boxes], threshold=0.5)
    assert list(frame.columns) == ["path", "present", "score", "x1", "y1", "x2", "y2"]
    assert frame["present"].tolist() == [1, 1, 0]  # a score at the threshold is present
    assert frame.iloc[0][["x1", "y1", "x2", "y2"]].tolist() == [20.0, 10.0, 100.0, 30.0]
    assert frame.iloc[1][["x1", "y1", "x2", "y2"]].tolist() == [0.0, 30.0, 20.0, 120.0]
    assert frame.iloc[2][["x1", "y1", "x2", "y2"]].isna().all()
    thirds = predict.detector_rows([wide.as_posix()], [scores[:1], boxes[:1] / 3], 0.5)
    assert thirds.iloc[0][["x1", "x2"]].tolist() == [6.7, 33.3]  # rounded to 0.1 px


def test_inputs_expand_folders_and_globs_once_each_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    for name in ("b/2.png", "b/1.jpg", "b/.hidden/3.png", "b/sub/4.png", "c/5.png", "c/6.png"):
        write_image(tmp_path / name, rng)
    (tmp_path / "b/notes.txt").write_text("")
    (tmp_path / "c/folder.png").mkdir()
    found = predict.expand_inputs(["c/6.png", "b", "c/*.png", "b/1.jpg"])
    assert found == ["c/6.png", "b/1.jpg", "b/2.png", "b/sub/4.png", "c/5.png"]
    with pytest.raises(UserError, match=r"^x/\*\.png: no such file, folder or matching glob$"):
        predict.expand_inputs(["x/*.png"])


def test_an_export_that_is_not_one_is_one_line(tmp_path):
    (tmp_path / "saved").mkdir()
    with pytest.raises(UserError, match=r"saved: not a SavedModel written by the export stage$"):
        predict.open_model(tmp_path / "saved")
    with pytest.raises(UserError, match=r"m\.tflite: not found — run the export stage \(`dvc"):
        predict.open_model(tmp_path / "m.tflite")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match=r"^no image files found in .*empty$"):
        predict.main(["--model", "m.keras", str(empty)])


def test_the_csv_goes_to_the_out_file_with_four_decimals(tmp_path, capsys):
    model_path = save_tiny_classifier(tmp_path / "classifier.keras")
    image = write_image(tmp_path / "a.png", np.random.default_rng(1))
    predict.main(["--model", str(model_path), "--out", str(tmp_path / "p.csv"), str(image)])
    out, err = capsys.readouterr()
    assert out == "" and err.strip() == "predict: 1 images, 0 skipped"
    header, row = (tmp_path / "p.csv").read_text().splitlines()
    assert header == "path,predicted,confidence"
    assert len(row.rsplit(",", 1)[1].split(".")[1]) == 4


def test_the_command_line_and_its_defaults(tmp_path, capsys):
    assert usage(predict.main).startswith(
        "[-h] [--model MODEL] [--out OUT] [--top-k TOP_K] [--threshold THRESHOLD] [--draw DRAW]"
        " [--batch-size BATCH_SIZE] images [images ...] `python -m stages.predict`: run a trained"
        " model on new images (not a pipeline stage). positional arguments: images image files,"
        " folders or globs options:"
    )
    assert usage(predict.main).endswith(
        "--threshold THRESHOLD detector: presence score --draw DRAW detector: folder for images"
        " with their box drawn --batch-size BATCH_SIZE"
    )
    model_path = save_tiny_detector(tmp_path / "detector.keras")
    rng = np.random.default_rng(5)
    paths = [str(write_image(tmp_path / f"f{i}.png", rng, (30, 20))) for i in range(3)]
    frame, _ = run_predict(["--model", str(model_path), "--batch-size", "2", *paths], capsys)
    assert frame["present"].tolist() == (frame["score"] >= 0.5).astype(int).tolist()
