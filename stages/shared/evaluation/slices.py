"""Metrics by slice of the test split: where a model fails, not only how often.

Detector: by object size (box area as a share of the image: small, medium, large, with the
thresholds of `evaluate.detector.slices.size`), by position (a box within
`slices.border` of an edge, or central), and on the negatives (false-positive rate at the
presence threshold). Classifier: by source image size, smaller or larger than the model's
input, when the test images' sizes differ. Each slice carries its count and a bootstrap 95%
interval, like the headline metrics.
"""

from __future__ import annotations

import numpy as np

from stages.shared.evaluation.intervals import bootstrap

SIZES = ("small", "medium", "large")


def size_slice(areas: np.ndarray, thresholds: tuple[float, float]) -> np.ndarray:
    """'small' / 'medium' / 'large' per box area (share of the image); every box gets one."""
    small, large = thresholds
    return np.where(areas < small, "small", np.where(areas < large, "medium", "large"))


def position_slice(boxes: np.ndarray, border: float) -> np.ndarray:
    """'border' for boxes within `border` of an image edge, else 'central'."""
    gap = np.minimum.reduce([boxes[:, 0], boxes[:, 1], 1 - boxes[:, 2], 1 - boxes[:, 3]])
    return np.where(gap < border, "border", "central")


def iou_slice(ious: np.ndarray, resamples: int, seed: int) -> dict:
    """Count, mean IoU, share found at IoU ≥ 0.5, and the mean IoU's interval."""
    if not len(ious):
        return {"images": 0, "mean_iou": None, "recall50": None}
    interval = bootstrap(len(ious), lambda rows: {"mean_iou": ious[rows].mean()}, resamples, seed)
    return {
        "images": len(ious),
        "mean_iou": float(ious.mean()),
        "recall50": float((ious >= 0.5).mean()),
        "ci95": {"mean_iou": interval["mean_iou"]},
    }


def detector_slices(true_boxes, present, ious, said, cfg, resamples: int, seed: int) -> dict:
    """Mean IoU and recall at IoU 0.5 by object size and by position; false positives."""
    present = np.asarray(present, dtype=bool)
    boxes, found = np.asarray(true_boxes, dtype=np.float64)[present], np.asarray(ious)[present]
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    by_size, by_place = size_slice(areas, cfg.size), position_slice(boxes, cfg.border)
    negatives = ~present
    wrong = np.asarray(said, dtype=bool)[negatives].astype(float)
    false_positives = {"images": int(negatives.sum()), "false_positive_rate": None}
    if negatives.any():
        interval = bootstrap(len(wrong), lambda r: {"fpr": wrong[r].mean()}, resamples, seed)
        false_positives.update(false_positive_rate=float(wrong.mean()), ci95=interval)
    return {
        "size": {s: iou_slice(found[by_size == s], resamples, seed) for s in SIZES},
        "position": {
            p: iou_slice(found[by_place == p], resamples, seed) for p in ("border", "central")
        },
        "negatives": false_positives,
    }


def classifier_slices(actual, predicted, sizes: np.ndarray, side: int, resamples, seed) -> dict:
    """Accuracy on test images whose shorter side is below the input size, and the rest;
    empty when every test image is on one side of it."""
    smaller = np.asarray(sizes).min(axis=1) < side
    if smaller.all() or not smaller.any():
        return {}
    right = (np.asarray(actual) == np.asarray(predicted)).astype(float)
    out = {}
    for name, mask in (("smaller_than_input", smaller), ("input_size_or_larger", ~smaller)):
        hits = right[mask]
        interval = bootstrap(
            len(hits), lambda r, h=hits: {"accuracy": h[r].mean()}, resamples, seed
        )
        out[name] = {"images": int(mask.sum()), "accuracy": float(hits.mean()), "ci95": interval}
    return {"source_size": out}
