"""losses.py: box IoU and the localization losses on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from stages.shared.losses import box_iou, giou_error, localization_loss


def arr(*rows):
    return np.array(rows, dtype="float32")


def test_box_iou_known_values_and_any_corner_order():
    iou = box_iou(
        arr([0, 0, 0.5, 0.5], [0, 0, 0.2, 0.2]), arr([0.25, 0.25, 0.75, 0.75], [0.4, 0, 0.6, 0.2])
    )
    assert np.allclose(np.asarray(iou), [0.0625 / 0.4375, 0.0], atol=1e-6)
    swapped = box_iou(arr([0.5, 0.5, 0, 0]), arr([0.75, 0.25, 0.25, 0.75]))
    assert np.allclose(np.asarray(swapped), [0.0625 / 0.4375], atol=1e-6)


def test_corner_loss_counts_positives_only():
    loss = localization_loss("corners")
    true = arr([0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 0.0, 0.0])
    pred = arr([0.2, 0.2, 0.5, 0.7], [0.9, 0.9, 0.1, 0.1])  # the negative's box is far off
    # (0.1² + 0²) corner + (0.4 − 0.3)² width + (0.4 − 0.5)² height = 0.03; negative ignored.
    assert float(loss(true, pred, arr([1], [0]))) == pytest.approx(0.03, abs=1e-6)
    both = loss(
        np.concatenate([true[:1], true[:1]]), np.concatenate([pred[:1], true[:1]]), arr([1], [1])
    )
    assert float(both) == pytest.approx(0.015, abs=1e-6)
    assert float(loss(true, pred, arr([0], [0]))) == 0.0


def test_giou_loss_values():
    loss = localization_loss("giou")
    same = arr([0.1, 0.1, 0.4, 0.4])
    assert float(loss(same, same, arr([1]))) == pytest.approx(0.0, abs=1e-5)
    # Disjoint: IoU 0, enclosing 0.6×0.2 = 0.12, union 0.08 → GIoU −1/3, 1 − GIoU = 4/3;
    # plus the corner term: x1 off by 0.4 → 0.16, same size → 0.
    disjoint = loss(arr([0, 0, 0.2, 0.2]), arr([0.4, 0, 0.6, 0.2]), arr([1]))
    assert float(disjoint) == pytest.approx(4 / 3 + 0.16, abs=1e-5)
    assert float(giou_error(arr([0, 0, 0.2, 0.2]), arr([0.4, 0, 0.6, 0.2]))[0]) == pytest.approx(
        4 / 3, abs=1e-5
    )


def test_giou_of_boxes_that_differ_in_x_and_in_y():
    # Nothing symmetric: true box 0.5 wide × 0.2 high at (0.1, 0.6); predicted 0.2 × 0.3 at
    # (0.3, 0.1). Disjoint (y ranges 0.6–0.8 and 0.1–0.4). Union 0.10 + 0.06 = 0.16;
    # enclosing box x 0.1–0.6, y 0.1–0.8 = 0.5 × 0.7 = 0.35. GIoU = 0 − 0.19/0.35.
    # An enclosing box that mixed x with y (x 0.1–0.8, y 0.1–0.6: 0.35 also) would agree by
    # chance, so a second case breaks the tie: x 0.0–0.9 by y 0.2–0.5.
    true, pred = arr([0.1, 0.6, 0.6, 0.8]), arr([0.3, 0.1, 0.5, 0.4])
    assert float(giou_error(true, pred)[0]) == pytest.approx(1 + 0.19 / 0.35, abs=1e-5)
    # True 0.0–0.3 × 0.2–0.5 (0.09), predicted 0.6–0.9 × 0.3–0.4 (0.03): enclosing 0.9 × 0.3.
    true, pred = arr([0.0, 0.2, 0.3, 0.5]), arr([0.6, 0.3, 0.9, 0.4])
    assert float(giou_error(true, pred)[0]) == pytest.approx(1 + (0.27 - 0.12) / 0.27, abs=1e-5)
    # Overlapping, not nested: true 0.1–0.5 × 0.2–0.4, predicted 0.3–0.7 × 0.3–0.8.
    # Intersection 0.2 × 0.1 = 0.02; union 0.08 + 0.2 − 0.02 = 0.26; enclosing 0.6 × 0.6.
    true, pred = arr([0.1, 0.2, 0.5, 0.4]), arr([0.3, 0.3, 0.7, 0.8])
    expected = 1 - (0.02 / 0.26 - (0.36 - 0.26) / 0.36)
    assert float(giou_error(true, pred)[0]) == pytest.approx(expected, abs=1e-5)


def test_unknown_localization_loss():
    with pytest.raises(ValueError, match=r"unknown localization loss 'l1'; choices: corners, giou"):
        localization_loss("l1")
