"""inference.py: batched prediction over files, unreadable files reported, models loaded.

A stand-in `run` (the mean pixel of each image, and its index) replaces the model, so the
outputs can be checked row by row against the files they came from.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stages.shared.core.cli import UserError
from stages.shared.data.images import ImageError, decode
from stages.shared.models.inference import predict_files, read_batch
from stages.shared.models.store import load_model, load_model_file


def files(tmp_path, shades: list[int | None]) -> list[str]:
    """PNG files of one grey shade each (10 × 6 px); None is a broken file."""
    paths = []
    for i, shade in enumerate(shades):
        path = tmp_path / f"img_{i}.png"
        if shade is None:
            path.write_bytes(b"not a png")
        else:
            Image.new("L", (10, 6), shade).save(path)
        paths.append(str(path))
    return paths


def test_outputs_follow_the_readable_files_across_batches(tmp_path):
    paths = files(tmp_path, [10, None, 30, 40, None, 60, 70])
    batches = []

    def run(pixels):
        batches.append(len(pixels))
        means = pixels.mean(axis=(1, 2, 3))
        return means[:, None].astype(np.float64), np.full((len(pixels), 2), 7)

    found = predict_files(None, paths, size=8, batch_size=3, run=run)
    assert batches == [2, 2, 1]  # [10, x, 30], [40, x, 60], [70]
    assert found.index == [0, 2, 3, 5, 6]
    assert len(found.outputs) == 2
    assert found.outputs[0].dtype == np.float32 and found.outputs[1].dtype == np.float32
    assert found.outputs[0][:, 0].tolist() == pytest.approx([10, 30, 40, 60, 70], abs=0.5)
    assert found.outputs[1].shape == (5, 2)
    assert [s["path"] for s in found.skipped] == [paths[1], paths[4]]
    assert all(not s["reason"].startswith(s["path"]) for s in found.skipped)  # no path twice
    assert all(s["reason"] for s in found.skipped)


def test_a_single_output_and_a_batch_of_only_unreadable_files(tmp_path):
    paths = files(tmp_path, [None, None, 50])
    found = predict_files(None, paths, 8, batch_size=2, run=lambda p: p.mean(axis=(1, 2, 3)))
    assert found.index == [2] and len(found.outputs) == 1
    assert found.outputs[0].tolist() == pytest.approx([50], abs=0.5)
    nothing = predict_files(None, paths[:2], 8, batch_size=2, run=lambda p: p[:, 0, 0, 0])
    assert nothing.index == [] and nothing.outputs == [] and len(nothing.skipped) == 2


def test_read_batch_of_unreadable_files_is_an_empty_batch_of_the_right_shape(tmp_path):
    kept, pixels, skipped = read_batch([*files(tmp_path, [None]), str(tmp_path / "gone")], 5)
    assert kept == [] and pixels.shape == (0, 5, 5, 3) and pixels.dtype == np.float32
    assert [s["path"] for s in skipped] == [str(tmp_path / "img_0.png"), str(tmp_path / "gone")]
    kept, pixels, _ = read_batch(files(tmp_path, [20, 90]), 4)
    assert kept == [0, 1] and pixels.shape == (2, 4, 4, 3)
    assert pixels[1].mean() == pytest.approx(90, abs=0.5)


def test_model_files_that_are_missing_or_broken_are_one_line(tmp_path):
    with pytest.raises(UserError) as error:
        load_model_file(tmp_path / "m.keras")
    assert (
        str(error.value)
        == f"{tmp_path / 'm.keras'}: not found — train the model first (`dvc repro`)"
    )
    (tmp_path / "m.keras").write_bytes(b"not a zip")
    with pytest.raises(UserError) as error:
        load_model_file(tmp_path / "m.keras")
    message = str(error.value)
    assert message.startswith(f"{tmp_path / 'm.keras'}: cannot load the model (")
    assert message.endswith(") — re-run its training") and "\n" not in message


def test_a_model_without_its_metadata_is_one_line(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.save(tmp_path / "m.keras")
    with pytest.raises(UserError) as error:
        load_model(tmp_path / "m.keras")
    assert (
        str(error.value)
        == f"{tmp_path / 'm.json'}: not found — train the model first (`dvc repro`)"
    )
    (tmp_path / "m.json").write_text(json.dumps({"image_size": 8}))
    loaded, meta = load_model(tmp_path / "m.keras")
    assert meta == {"image_size": 8} and loaded.count_params() == 3


def test_an_unsafe_model_is_refused_with_keras_reason_cut_to_one_line(tmp_path):
    import keras

    model = keras.Sequential([keras.Input((2,)), keras.layers.Lambda(lambda x: x * 2)])
    model.save(tmp_path / "m.keras")  # a Python lambda inside: arbitrary code on loading
    with pytest.raises(UserError) as error:
        load_model_file(tmp_path / "m.keras")
    message = str(error.value)
    head = f"{tmp_path / 'm.keras'}: cannot load the model ("
    tail = ") — re-run its training"
    assert message.startswith(head + "Requested the deserialization of a `Lambda` layer")
    assert message.endswith(tail) and "\n" not in message and "  " not in message
    assert len(message) == len(head) + 200 + len(tail)  # Keras's reason, cut at 200 characters


def test_the_default_batch_is_64_files_and_reasons_are_the_decoders(tmp_path):
    paths = files(tmp_path, [5] * 65 + [None])
    batches = []
    predict_files(None, paths, 4, run=lambda p: batches.append(len(p)) or p[:, 0, 0, 0])
    assert batches == [64, 1]
    _, _, skipped = read_batch(paths[-1:], 4)
    with pytest.raises(ImageError) as error:
        decode(Path(paths[-1]))
    assert skipped == [{"path": paths[-1], "reason": str(error.value)}]


class Recorder:
    """A model stub: `predict_on_batch` answers (sum, max) per image and records batch sizes."""

    def __init__(self):
        self.sizes = []

    def predict_on_batch(self, pixels):
        self.sizes.append(len(pixels))
        return pixels.sum(axis=(1, 2, 3)), pixels.max(axis=(1, 2, 3)).astype(np.float64)


def test_predict_pixels_runs_fixed_batches_and_joins_each_output_in_order():
    from stages.shared.models.inference import predict_pixels

    pixels = np.arange(150 * 2 * 2 * 3, dtype=np.float32).reshape(150, 2, 2, 3)
    model = Recorder()
    sums, peaks = predict_pixels(model, pixels)
    assert model.sizes == [64, 64, 22]  # batches of 64 unless told, the last the rest
    assert np.array_equal(sums, pixels.sum(axis=(1, 2, 3)))
    assert peaks.dtype == np.float32 and np.array_equal(peaks, pixels.max(axis=(1, 2, 3)))
    calls = []
    only = predict_pixels(model, pixels, batch_size=100, run=lambda x: calls.append(len(x)) or x)
    assert calls == [100, 50] and model.sizes == [64, 64, 22]  # `run` replaces the model
    assert len(only) == 1 and np.array_equal(only[0], pixels)


def test_inference_speed_leaves_out_the_first_call_which_traces():
    from stages.shared.models import inference

    # batches of 8, 8, 8 and a short 4: the first 8 and the 4 trace, the other two are timed
    times = iter([0.0, 5.0, 5.0, 6.0, 6.0, 6.5, 6.5, 9.5])
    timed = inference.Timed(lambda pixels: pixels * 2, lambda: next(times))
    out = inference.predict_pixels(None, np.ones((28, 1)), 8, timed)
    assert out[0].shape == (28, 1) and float(out[0].sum()) == 56.0  # outputs passed through
    assert timed.report() == {
        "images_per_second": 10.7,  # 16 images in 1.5 s
        "images_timed": 16,
        "batches_timed": 2,
        "first_batch_seconds": 5.0,
    }
    alone = inference.Timed(lambda pixels: pixels)
    alone(np.ones((4, 1)))
    with pytest.raises(ValueError, match="no batch size was called twice"):
        alone.report()
    alone(np.ones((4, 1)))
    assert alone.report()["images_timed"] == 4
