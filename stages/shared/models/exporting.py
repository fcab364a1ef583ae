"""Exporting a Keras model for serving: TensorFlow SavedModel (TF Serving) and TFLite, each
carrying the metadata that says how to use it, and checking that each computes what the
Keras model computes.

Both exports take (batch, size, size, 3) float32 RGB pixels in [0, 255] and give named
outputs: `probabilities` (classifier), or `presence` and `box` (detector), the box as
(x1, y1, x2, y2) in [0, 1] with x1 ≤ x2 and y1 ≤ y2, ordered inside the exported graph. The
metadata (task, classes, input size, outputs, params) travels inside each export: in the
SavedModel as `assets.extra/metadata.json` (TF Serving's folder for extra files) and in the
TFLite file as a named entry of the flatbuffer's `metadata` table, which TFLite runtimes
ignore and tools can read without TensorFlow's Python API.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

OUTPUTS = {"classification": ("probabilities",), "detection": ("presence", "box")}
METADATA_NAME = "vision_pipeline"  # the TFLite metadata entry holding our JSON
SAVED_MODEL_METADATA = Path("assets.extra") / "metadata.json"


def export_metadata(meta: dict) -> dict:
    """The model's metadata JSON plus what a server needs to feed it and read it."""
    task, size = meta["task"], meta["image_size"]
    outputs = {
        "probabilities": "(batch, classes) softmax, in `classes` order",
        "presence": "(batch, 1) probability that the image holds the object",
        "box": "(batch, 4) x1, y1, x2, y2 in [0, 1] of the image, x1 <= x2, y1 <= y2",
    }
    return {
        **meta,
        "input": f"(batch, {size}, {size}, 3) float32 RGB pixels in [0, 255], resized to"
        f" {size}×{size} (bilinear); the model normalises them itself",
        "outputs": {name: outputs[name] for name in OUTPUTS[task]},
    }


def ordered_box(box: tf.Tensor) -> tf.Tensor:
    """(x1, y1, x2, y2) with the corners put in order (the box head predicts each freely)."""
    low = tf.minimum(box[:, :2], box[:, 2:])
    high = tf.maximum(box[:, :2], box[:, 2:])
    return tf.concat([low, high], axis=1)


def export_saved_model(model, directory: Path, meta: dict) -> None:
    """A SavedModel whose `serve` endpoint (also `serving_default`) takes `pixels` and
    returns the named outputs, with the metadata in assets.extra/."""
    import keras

    size, task = meta["image_size"], meta["task"]
    model(np.zeros((1, size, size, 3), np.float32))  # a loaded subclassed model must be called

    def serve(pixels):
        outputs = model(pixels, training=False)
        if task == "detection":
            presence, box = outputs
            return {"presence": presence, "box": ordered_box(box)}
        return {"probabilities": outputs}

    archive = keras.export.ExportArchive()
    archive.track(model)
    spec = tf.TensorSpec((None, size, size, 3), tf.float32, name="pixels")
    archive.add_endpoint("serve", serve, input_signature=[spec])
    archive.write_out(str(directory), verbose=False)
    target = Path(directory) / SAVED_MODEL_METADATA
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(export_metadata(meta), indent=2) + "\n")


def convert_tflite(saved_model: Path, path: Path, meta: dict) -> None:
    """A float32 TFLite flatbuffer converted from the SavedModel (no quantisation), with the
    metadata JSON in its `metadata` table."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    flat = tf.lite.TFLiteConverter.from_saved_model(str(saved_model)).convert()
    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(flat))
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(export_metadata(meta)).encode(), np.uint8)
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = METADATA_NAME, len(model.buffers) - 1
    model.metadata = [*(model.metadata or []), entry]
    path.write_bytes(bytes(flatbuffer_utils.convert_object_to_bytearray(model)))


def tflite_metadata(path: Path) -> dict | None:
    """The metadata JSON inside a TFLite file written by `convert_tflite`, or None."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(path))
    for entry in model.metadata or []:
        name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
        if name == METADATA_NAME:
            return json.loads(bytes(model.buffers[entry.buffer].data))
    return None


class SavedModelRunner:
    """A SavedModel export, run like a Keras model: `predict_on_batch` → list of outputs."""

    def __init__(self, directory: Path):
        self.loaded = tf.saved_model.load(str(directory))  # kept alive: `serve` uses it
        self.meta = json.loads((Path(directory) / SAVED_MODEL_METADATA).read_text())

    def predict_on_batch(self, pixels: np.ndarray) -> list[np.ndarray]:
        outputs = self.loaded.serve(tf.constant(pixels, tf.float32))
        return [np.asarray(outputs[name]) for name in OUTPUTS[self.meta["task"]]]


class TFLiteRunner:
    """A TFLite export through its serving signature: `predict_on_batch` → list of outputs."""

    def __init__(self, path: Path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the deprecation notice of tf.lite
            self.interpreter = tf.lite.Interpreter(model_path=str(path))
        self.runner = self.interpreter.get_signature_runner("serving_default")
        self.meta = tflite_metadata(path)

    def predict_on_batch(self, pixels: np.ndarray) -> list[np.ndarray]:
        # One image at a time: the batch size is fixed once the tensors are allocated.
        rows = [self.runner(pixels=image[None].astype(np.float32)) for image in pixels]
        names = OUTPUTS[self.meta["task"]]
        return [np.concatenate([row[name] for row in rows]) for name in names]


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
