"""Exporting a Keras model for serving: TensorFlow SavedModel (TF Serving) and TFLite, and
checking that each export computes what the Keras model computes."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from stages.shared.inference import as_list


def export_saved_model(model, directory: Path, size: int) -> None:
    """A SavedModel with a `serve` endpoint taking (batch, size, size, 3) float32 pixels."""
    model(np.zeros((1, size, size, 3), np.float32))  # a loaded subclassed model must be called
    model.export(str(directory), format="tf_saved_model", verbose=False)


def convert_tflite(saved_model: Path, path: Path) -> None:
    """A float32 TFLite flatbuffer converted from the SavedModel (no quantisation)."""
    path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert())


def run_saved_model(directory: Path, pixels: np.ndarray) -> list[np.ndarray]:
    """Outputs of the SavedModel's `serve` endpoint on a batch."""
    loaded = tf.saved_model.load(str(directory))  # kept alive: `serve` uses its variables
    return as_list(loaded.serve(tf.constant(pixels)))


def tflite_interpreter(path: Path):
    """A TFLite interpreter for the file (TF's bundled one; LiteRT is its successor)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the deprecation notice of tf.lite
        interpreter = tf.lite.Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter


def run_tflite(interpreter, pixels: np.ndarray, shapes: list[tuple]) -> list[np.ndarray]:
    """Outputs image by image, reordered to match the Keras outputs by their shapes.

    TFLite numbers its outputs by graph order, not by the model's output order.
    """
    entry = interpreter.get_input_details()[0]["index"]
    details = interpreter.get_output_details()
    order = [next(d["index"] for d in details if d["shape"][-1] == s[-1]) for s in shapes]
    rows: list[list[np.ndarray]] = []
    for image in pixels:
        interpreter.set_tensor(entry, image[None])
        interpreter.invoke()
        rows.append([interpreter.get_tensor(i)[0] for i in order])
    return [np.stack(column) for column in zip(*rows, strict=True)]


def max_difference(expected: list[np.ndarray], got: list[np.ndarray]) -> float:
    """Largest absolute difference over all outputs."""
    return float(max(np.abs(e - g).max() for e, g in zip(expected, got, strict=True)))


def median_ms(run, pixels: np.ndarray) -> float:
    """Median wall time of `run(one_image_batch)` per image, in milliseconds (after a warm-up)."""
    run(pixels[:1])
    times = []
    for image in pixels:
        started = time.perf_counter()
        run(image[None])
        times.append(time.perf_counter() - started)
    return round(1000 * float(np.median(times)), 3)


def folder_bytes(path: Path) -> int:
    """Total size of a file or of every file below a folder."""
    path = Path(path)
    return (
        path.stat().st_size
        if path.is_file()
        else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    )
