"""How a trained model behaves on easy variants of its test images: invariance and
directional tests in the spirit of CheckList (Ribeiro et al., ACL 2020).

Each check transforms the model-size pixels of every test image and compares the model's
answer with what it should be: the mirrored box after a horizontal flip, the moved box after a
shift, the same box and presence after a brightness/contrast change or a JPEG re-encoding;
the same top-1 class, at about the same probability, for a classifier.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from stages.shared.evaluation.metrics import box_iou, ordered_corners

SHIFT_PIXELS = 3  # of the model's input side: right and down, the gap padded black
BRIGHTNESS = (1.25, 15.0)  # contrast × 1.25, then + 15 (of 255), clipped
JPEG_QUALITY = 40


def flip(pixels: np.ndarray) -> np.ndarray:
    return pixels[:, :, ::-1]


def mirror_boxes(boxes: np.ndarray) -> np.ndarray:
    return np.stack([1 - boxes[:, 2], boxes[:, 1], 1 - boxes[:, 0], boxes[:, 3]], axis=1)


def shift(pixels: np.ndarray) -> np.ndarray:
    moved = np.zeros_like(pixels)
    moved[:, SHIFT_PIXELS:, SHIFT_PIXELS:] = pixels[:, :-SHIFT_PIXELS, :-SHIFT_PIXELS]
    return moved


def shift_boxes(boxes: np.ndarray, side: int) -> np.ndarray:
    return np.clip(boxes + SHIFT_PIXELS / side, 0.0, 1.0)


def brighten(pixels: np.ndarray) -> np.ndarray:
    gain, offset = BRIGHTNESS
    return np.clip((pixels - 127.5) * gain + 127.5 + offset, 0, 255).astype(np.float32)


def reencode(pixels: np.ndarray) -> np.ndarray:
    out = []
    for image in pixels:
        buffer = io.BytesIO()
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(
            buffer, "JPEG", quality=JPEG_QUALITY
        )
        buffer.seek(0)
        out.append(np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float32))
    return np.stack(out)


@dataclass(frozen=True)
class Check:
    """A transform of (n, side, side, 3) pixels, and where a box should go under it."""

    transform: Callable[[np.ndarray], np.ndarray]
    expected_box: Callable[[np.ndarray, int], np.ndarray]
    what: str


CHECKS = {
    "flip": Check(flip, lambda boxes, side: mirror_boxes(boxes), "horizontal flip"),
    "shift": Check(shift, shift_boxes, f"shift by {SHIFT_PIXELS} px right and down"),
    "brightness": Check(brighten, lambda boxes, side: boxes, "brightness and contrast up"),
    "jpeg": Check(reencode, lambda boxes, side: boxes, f"JPEG re-encoding, quality {JPEG_QUALITY}"),
}


def detector_behaviour(predict, pixels: np.ndarray, present: np.ndarray, names, threshold: float):
    """Per check: mean IoU between the box on the transformed image and where the original
    box should have gone (images with an object), and presence agreement (all images);
    with the per-image rows (check, index, score) for the worst-case figure."""
    side = pixels.shape[1]
    score, box = predict(pixels)
    said = score.reshape(-1) >= threshold
    box = ordered_corners(box)
    summary, rows = {}, []
    for name in names:
        check = CHECKS[name]
        new_score, new_box = predict(check.transform(pixels))
        ious = box_iou(check.expected_box(box, side), ordered_corners(new_box))
        agree = (new_score.reshape(-1) >= threshold) == said
        summary[name] = {
            "box_iou": float(ious[present].mean()) if present.any() else float("nan"),
            "presence_agreement": float(agree.mean()),
        }
        rows += [(name, i, float(ious[i])) for i in np.flatnonzero(present)]
    return summary, rows


def classifier_behaviour(predict, pixels: np.ndarray, names):
    """Per check: top-1 agreement with the original answer, and the mean change of the
    original top-1 class's probability; with per-image rows (check, index, change)."""
    (proba,) = predict(pixels)
    top = proba.argmax(axis=1)
    rows_index = np.arange(len(top))
    summary, rows = {}, []
    for name in names:
        (new,) = predict(CHECKS[name].transform(pixels))
        change = np.abs(new[rows_index, top] - proba[rows_index, top])
        summary[name] = {
            "top1_agreement": float((new.argmax(axis=1) == top).mean()),
            "top1_probability_change": float(change.mean()),
        }
        rows += [(name, i, -float(c)) for i, c in enumerate(change)]  # worst = lowest
    return summary, rows
