"""`python -m stages.predict`: same answers as the model on the training preprocessing,
boxes drawn where they are predicted, bad files skipped with a message."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages import predict
from stages.shared.cli import UserError
from stages.shared.inference import load_model
from stages.shared.tfdata import load_image
from tests.conftest import save_tiny_classifier, save_tiny_detector, write_image


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
