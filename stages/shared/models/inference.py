"""Running a trained model on image files: the model with its metadata, batched prediction
through the training preprocessing (`tfdata.load_image`), unreadable files reported.

Evaluation, prediction and export all go through here, so a model never sees pixels
prepared differently from the way it was trained.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from stages.shared.data.images import ImageError


@dataclass
class Predictions:
    """Model outputs for the files that could be read, and the ones that could not."""

    index: list[int] = field(default_factory=list)  # positions in the input list
    outputs: list[np.ndarray] = field(default_factory=list)  # one array per model output
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}


def read_batch(paths: Sequence[str], size: int) -> tuple[list[int], np.ndarray, list[dict]]:
    """Decode files as training does; (positions read, (n, size, size, 3) pixels, skipped)."""
    from stages.shared.data.tfdata import load_image

    kept, images, skipped = [], [], []
    for i, path in enumerate(paths):
        try:
            images.append(load_image(path, size))
            kept.append(i)
        except (ImageError, FileNotFoundError, IsADirectoryError) as err:
            reason = str(err).removeprefix(f"{path}: ")
            skipped.append({"path": str(path), "reason": reason})
    pixels = np.stack(images) if images else np.zeros((0, size, size, 3), np.float32)
    return kept, pixels, skipped


def as_list(outputs) -> list[np.ndarray]:
    """Model outputs (a tensor, or a tuple/list of them) as a list of float32 arrays."""
    items = outputs if isinstance(outputs, list | tuple) else [outputs]
    return [np.asarray(item, dtype=np.float32) for item in items]


def predict_pixels(model, pixels: np.ndarray, batch_size: int = 64, run=None) -> list[np.ndarray]:
    """Run `model` (or `run(pixels)` → outputs) over images in fixed batches (same batches ⇒
    same numbers); one array per output."""
    run = run or model.predict_on_batch
    chunks = [as_list(run(pixels[i : i + batch_size])) for i in range(0, len(pixels), batch_size)]
    return [np.concatenate(parts) for parts in zip(*chunks, strict=True)]


def predict_files(
    model, paths: Sequence[str], size: int, batch_size: int = 64, run=None
) -> Predictions:
    """Run `model` (or `run(pixels)` → outputs) over image files in fixed batches (same
    batches ⇒ same numbers)."""
    run = run or model.predict_on_batch
    result = Predictions()
    chunks: list[list[np.ndarray]] = []
    for start in range(0, len(paths), batch_size):
        kept, pixels, skipped = read_batch(paths[start : start + batch_size], size)
        result.skipped += skipped
        if not kept:
            continue
        result.index += [start + i for i in kept]
        chunks.append(as_list(run(pixels)))
    if chunks:
        result.outputs = [np.concatenate(parts) for parts in zip(*chunks, strict=True)]
    return result


class Timed:
    """A batch function (`model.predict_on_batch`) that times each call: inference images per
    second over the steady calls, those after the first of each batch size (a new size
    traces the graph again; a short last batch is one)."""

    def __init__(self, run: Callable, clock: Callable[[], float] = time.perf_counter):
        self.run, self.clock = run, clock
        self.calls: list[tuple[int, float]] = []  # (images, seconds) per call

    def __call__(self, pixels):
        start = self.clock()
        outputs = self.run(pixels)  # numpy out: the work is done when it returns
        self.calls.append((len(pixels), self.clock() - start))
        return outputs

    def steady(self) -> list[tuple[int, float]]:
        """The calls that repeat a batch size already seen."""
        seen: set[int] = set()
        found = []
        for images, seconds in self.calls:
            if images in seen:
                found.append((images, seconds))
            seen.add(images)
        return found

    def report(self) -> dict:
        """{images_per_second, images and batches timed, first call's seconds}."""
        timed = self.steady()
        if not timed:
            raise ValueError("no batch size was called twice: nothing steady to time")
        images, seconds = sum(n for n, _ in timed), sum(s for _, s in timed)
        return {
            "images_per_second": round(images / max(seconds, 1e-9), 1),
            "images_timed": images,
            "batches_timed": len(timed),
            "first_batch_seconds": round(self.calls[0][1], 4),
        }
