"""losses.py: box IoU and the localization losses on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from stages.shared.models.losses import (
    box_iou,
    corner_size_error,
    giou_error,
    localization_loss,
    mean_box_baseline,
)


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


def test_iou_and_giou_of_boxes_smaller_than_epsilon():
    # Areas of 1e-9 (20e-6 × 50e-6), below EPSILON (1e-7): worked by hand with EPSILON in place.
    tiny = arr([0.5, 0.5, 0.50002, 0.50005])
    apart = arr([0.10004, 0.1, 0.10006, 0.10005])  # same size, 20e-6 to the right of `moved`
    moved = arr([0.1, 0.1, 0.10002, 0.10005])
    iou = float(np.asarray(box_iou(tiny, tiny))[0])
    assert iou == pytest.approx(1e-9 / (1e-9 + 1e-7), rel=0.01)  # in (0, 1), not negative
    same = float(np.asarray(giou_error(tiny, tiny))[0])
    assert same == pytest.approx(1 - 1e-9 / (1e-9 + 1e-7), abs=2e-3)
    # Disjoint: enclosing 60e-6 × 50e-6 = 3e-9, union 2e-9, so 1 − GIoU = 1 + 1e-9 / (3e-9 + ε).
    disjoint = float(np.asarray(giou_error(moved, apart))[0])
    assert disjoint == pytest.approx(1 + 1e-9 / (3e-9 + 1e-7), abs=2e-3)


def test_losses_take_any_leading_shape():
    # Boxes are per row along the last axis: a (2, 3, 4) batch gives the flat (6, 4) values.
    rng = np.random.default_rng(4)
    corners = np.sort(rng.uniform(size=(2, 12, 2)), axis=-1).astype("float32")
    true = np.stack(
        [corners[0, :6, 0], corners[0, 6:, 0], corners[0, :6, 1], corners[0, 6:, 1]], -1
    )
    pred = np.stack(
        [corners[1, :6, 0], corners[1, 6:, 0], corners[1, :6, 1], corners[1, 6:, 1]], -1
    )
    for error in (corner_size_error, giou_error, box_iou):
        flat = np.asarray(error(true, pred))
        nested = np.asarray(error(true.reshape(2, 3, 4), pred.reshape(2, 3, 4)))
        assert nested.shape == (2, 3)
        assert np.allclose(nested.reshape(-1), flat, atol=1e-6)


def test_the_mean_box_baseline_scores_the_mean_train_box_on_the_val_objects():
    # Train: two objects and a negative whose box (all ones) must not enter the mean; the mean
    # of the objects is [0.1, 0.1, 0.5, 0.5]. Val: that box exactly (IoU 1), a box of a quarter
    # of its area in its corner (IoU 0.25), and a negative that must not be scored.
    train = (
        np.array([[1.0], [1.0], [0.0]]),
        np.array([[0.0, 0.0, 0.4, 0.4], [0.2, 0.2, 0.6, 0.6], [1.0, 1.0, 1.0, 1.0]]),
    )
    val = (
        np.array([[1.0], [1.0], [0.0]]),
        np.array([[0.1, 0.1, 0.5, 0.5], [0.1, 0.1, 0.3, 0.3], [0.0, 0.0, 1.0, 1.0]]),
    )
    baseline = mean_box_baseline(train, val)
    assert baseline == {
        "metric": "mean_iou",
        "baseline": pytest.approx((1.0 + 0.25) / 2, abs=1e-6),
        "name": "the mean train box",
        "higher": True,
    }


def test_no_mean_box_baseline_without_a_train_or_a_val_object():
    some = (np.array([[1.0]]), np.array([[0.1, 0.1, 0.5, 0.5]]))
    none = (np.array([[0.0]]), np.array([[0.1, 0.1, 0.5, 0.5]]))
    assert mean_box_baseline(none, some) is None
    assert mean_box_baseline(some, none) is None
    assert mean_box_baseline(some, some)["baseline"] == pytest.approx(1.0)
