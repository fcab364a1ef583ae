"""Evaluation metrics in NumPy: box IoU and COCO-style average precision for one object per image.

AP follows the COCO evaluation (pycocotools `COCOeval`): predictions sorted by confidence
(stable), a prediction is a true positive when its image has an object and IoU ≥ the
threshold, precision made monotone from the right, then averaged at 101 recall points
(0, 0.01, …, 1). Here every image gets exactly one prediction, scored by its presence
probability; an image without an object turns its prediction into a false positive.
"""

from __future__ import annotations

import numpy as np

RECALL_POINTS = np.linspace(0.0, 1.0, 101)
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def box_iou(true_boxes: np.ndarray, pred_boxes: np.ndarray) -> np.ndarray:
    """IoU per row of two (N, 4) arrays of (x1, y1, x2, y2) boxes."""
    t = np.asarray(true_boxes, dtype=np.float64)
    p = np.asarray(pred_boxes, dtype=np.float64)
    inter_w = np.clip(np.minimum(t[:, 2], p[:, 2]) - np.maximum(t[:, 0], p[:, 0]), 0, None)
    inter_h = np.clip(np.minimum(t[:, 3], p[:, 3]) - np.maximum(t[:, 1], p[:, 1]), 0, None)
    inter = inter_w * inter_h
    area_t = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    area_p = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    union = area_t + area_p - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def average_precision(scores: np.ndarray, hits: np.ndarray, positives: int) -> float:
    """101-point interpolated AP of ranked predictions (`hits`: true positive or not)."""
    if positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    hit = np.asarray(hits, dtype=bool)[order]
    true_pos = np.cumsum(hit)
    false_pos = np.cumsum(~hit)
    recall = true_pos / positives
    precision = true_pos / (true_pos + false_pos + np.spacing(1))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(index < len(envelope), envelope[np.minimum(index, len(envelope) - 1)], 0)
    return float(sampled.mean())


def detection_ap(
    scores: np.ndarray,
    pred_boxes: np.ndarray,
    present: np.ndarray,
    true_boxes: np.ndarray,
    thresholds: np.ndarray = COCO_IOU_THRESHOLDS,
) -> dict[str, float]:
    """AP50 and AP50-95 (mean over COCO's 10 IoU thresholds) for one prediction per image."""
    present = np.asarray(present, dtype=bool).reshape(-1)
    ious = np.where(present, box_iou(true_boxes, pred_boxes), -1.0)
    per_threshold = [
        average_precision(scores, ious >= threshold, int(present.sum())) for threshold in thresholds
    ]
    return {"ap50": per_threshold[0], "ap50_95": float(np.mean(per_threshold))}
