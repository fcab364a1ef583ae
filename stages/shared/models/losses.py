"""Detector losses and box geometry, in keras.ops (boxes are (x1, y1, x2, y2) in [0, 1]).

The localization losses average over images that contain an object only: the face-tracking
tutorial summed over every image, which also pulled the boxes of negatives towards zero.
"""

from __future__ import annotations

import numpy as np
from keras import ops

EPSILON = 1e-7


def _ordered(box):
    """Split a box tensor into x1, y1, x2, y2 with the corners put in order."""
    x1, y1, x2, y2 = (box[..., i] for i in range(4))
    return ops.minimum(x1, x2), ops.minimum(y1, y2), ops.maximum(x1, x2), ops.maximum(y1, y2)


def _overlap(true_box, pred_box):
    """Intersection, union and smallest enclosing area of two boxes, per row."""
    tx1, ty1, tx2, ty2 = _ordered(true_box)
    px1, py1, px2, py2 = _ordered(pred_box)
    inter_w = ops.maximum(ops.minimum(tx2, px2) - ops.maximum(tx1, px1), 0.0)
    inter_h = ops.maximum(ops.minimum(ty2, py2) - ops.maximum(ty1, py1), 0.0)
    inter = inter_w * inter_h
    union = (tx2 - tx1) * (ty2 - ty1) + (px2 - px1) * (py2 - py1) - inter
    enclosing_w = ops.maximum(tx2, px2) - ops.minimum(tx1, px1)
    enclosing_h = ops.maximum(ty2, py2) - ops.minimum(ty1, py1)
    return inter, union, enclosing_w * enclosing_h


def box_iou(true_box, pred_box):
    """Intersection over union per row."""
    inter, union, _ = _overlap(true_box, pred_box)
    return inter / (union + EPSILON)


def corner_size_error(true_box, pred_box):
    """The tutorial's per-image error: squared top-left offset + squared width/height error."""
    corner = ops.sum(ops.square(true_box[..., :2] - pred_box[..., :2]), axis=-1)
    true_w, true_h = true_box[..., 2] - true_box[..., 0], true_box[..., 3] - true_box[..., 1]
    pred_w, pred_h = pred_box[..., 2] - pred_box[..., 0], pred_box[..., 3] - pred_box[..., 1]
    return corner + ops.square(true_w - pred_w) + ops.square(true_h - pred_h)


def giou_error(true_box, pred_box):
    """1 − generalised IoU per image (Rezatofighi et al., CVPR 2019): it has a gradient even
    when the boxes do not overlap, unlike 1 − IoU."""
    inter, union, enclosing = _overlap(true_box, pred_box)
    giou = inter / (union + EPSILON) - (enclosing - union) / (enclosing + EPSILON)
    return 1.0 - giou


def corners_giou_error(true_box, pred_box):
    """Corner/size error + (1 − GIoU), as DETR pairs an L1 box term with GIoU.

    GIoU alone, on sigmoid corner outputs trained from scratch, drove every box to the whole
    frame here (sigmoids saturated, IoU stuck at 0.16 for the sample); the corner term keeps
    the gradients alive while GIoU sharpens the overlap.
    """
    return corner_size_error(true_box, pred_box) + giou_error(true_box, pred_box)


LOCALIZATION_ERRORS = {"corners": corner_size_error, "giou": corners_giou_error}


def localization_loss(name: str):
    """The masked localization loss `(true_box, pred_box, present) -> scalar` by name."""
    if name not in LOCALIZATION_ERRORS:
        choices = ", ".join(LOCALIZATION_ERRORS)
        raise ValueError(f"unknown localization loss {name!r}; choices: {choices}")
    error = LOCALIZATION_ERRORS[name]

    def loss(true_box, pred_box, present):
        mask = ops.reshape(ops.cast(present, "float32"), (-1,))
        per_image = ops.cast(error(true_box, pred_box), "float32")
        return ops.sum(per_image * mask) / ops.maximum(ops.sum(mask), 1.0)

    return loss


def mean_box_baseline(train: tuple, val: tuple) -> dict | None:
    """The val mean IoU of the mean train box, measured as training measures its own
    (`box_iou`), from (presence, boxes) targets; None when train or val has no object. The
    yardstick of `training.checks.learned_report` for a detector."""
    (train_present, train_boxes), (val_present, val_boxes) = train, val
    objects = val_boxes[val_present.ravel() == 1]
    if not (train_present.any() and len(objects)):
        return None
    mean_box = train_boxes[train_present.ravel() == 1].mean(axis=0)
    ious = box_iou(objects, np.tile(mean_box, (len(objects), 1)))
    return {"metric": "mean_iou", "baseline": float(ops.mean(ious)),
            "name": "the mean train box", "higher": True}  # fmt: skip
