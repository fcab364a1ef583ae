"""behaviour.py: the arithmetic of each check on hand-built models with known behaviour."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stages.shared.evaluation import behaviour

SIDE = 32


def images(count: int = 6, seed: int = 0) -> np.ndarray:
    """Dark images, each with one bright pixel at its own place (never on the edge rows)."""
    rng = np.random.default_rng(seed)
    pixels = rng.uniform(0, 40, (count, SIDE, SIDE, 3)).astype(np.float32)
    for i in range(count):
        y, x = rng.integers(4, SIDE - 8, 2)
        pixels[i, y, x] = 255
    return pixels


def fixed_box_detector(pixels):
    """Always the same box, always present: it ignores the image."""
    n = len(pixels)
    return np.full((n, 1), 0.9, np.float32), np.tile([0.2, 0.2, 0.6, 0.6], (n, 1))


def brightest_pixel_detector(pixels):
    """A 3×3-pixel box centred on the brightest pixel: moves with the image."""
    grey = pixels.mean(axis=-1).reshape(len(pixels), -1)
    y, x = np.divmod(grey.argmax(axis=1), SIDE)
    cx, cy = (x + 0.5) / SIDE, (y + 0.5) / SIDE
    half = 1.5 / SIDE
    boxes = np.stack([cx - half, cy - half, cx + half, cy + half], axis=1)
    return np.full((len(pixels), 1), 0.9, np.float32), boxes


def test_a_fixed_box_scores_its_overlap_with_its_own_mirror():
    present = np.ones(6, bool)
    summary, rows = behaviour.detector_behaviour(
        fixed_box_detector, images(), present, ["flip"], 0.5
    )
    # Box (0.2, 0.2, 0.6, 0.6) against its mirror (0.4, 0.2, 0.8, 0.6): overlap 0.2 × 0.4,
    # union 0.16 + 0.16 − 0.08 → IoU 1/3. Presence never changes.
    assert summary["flip"]["box_iou"] == pytest.approx(1 / 3)
    assert summary["flip"]["presence_agreement"] == 1.0
    assert len(rows) == 6 and all(score == pytest.approx(1 / 3) for _, _, score in rows)


def test_an_equivariant_detector_scores_one_under_flip_and_shift():
    present = np.ones(6, bool)
    summary, _ = behaviour.detector_behaviour(
        brightest_pixel_detector, images(), present, ["flip", "shift"], 0.5
    )
    assert summary["flip"]["box_iou"] == pytest.approx(1.0)
    assert summary["shift"]["box_iou"] == pytest.approx(1.0)


def test_presence_agreement_counts_the_answers_that_flip():
    def flickering(pixels):  # says "object" only when the top-left pixel is bright
        score = (pixels[:, 0, 0, 0] > 100).astype(np.float32)[:, None]
        return score, np.tile([0.1, 0.1, 0.3, 0.3], (len(pixels), 1))

    pixels = images()
    pixels[:3, 0, 0] = 255  # three images say "object"; a shift moves that pixel away
    summary, _ = behaviour.detector_behaviour(
        flickering, pixels, np.ones(6, bool), ["shift", "brightness"], 0.5
    )
    assert summary["shift"]["presence_agreement"] == pytest.approx(3 / 6)
    assert summary["brightness"]["presence_agreement"] == 1.0


def test_classifier_agreement_and_probability_change_by_hand():
    def by_brightness(pixels):  # class 1 in proportion to the mean brightness
        p1 = np.clip(pixels.mean(axis=(1, 2, 3)) / 255, 0, 1)
        return [np.stack([1 - p1, p1], axis=1)]

    pixels = np.stack([np.full((SIDE, SIDE, 3), v, np.float32) for v in (60, 100, 140)])
    summary, rows = behaviour.classifier_behaviour(by_brightness, pixels, ["brightness"])
    # Brightened: (v − 127.5) × 1.25 + 142.5 → 58.1, 108.1, 158.1 → p1 0.228, 0.424, 0.620.
    before, after = (
        np.array([60, 100, 140]) / 255,
        (np.array([60, 100, 140]) - 127.5) * 1.25 + 142.5,
    )
    after = after / 255
    assert summary["brightness"]["top1_agreement"] == pytest.approx(1.0)  # 0, 0, 1 stay
    change = np.abs(np.where(before > 0.5, after - before, before - after))
    assert summary["brightness"]["top1_probability_change"] == pytest.approx(change.mean())
    assert sorted(score for _, _, score in rows) == pytest.approx(sorted(-change))


def test_jpeg_and_brightness_transforms_stay_in_range():
    pixels = images()
    for name in ("jpeg", "brightness", "shift", "flip"):
        out = behaviour.CHECKS[name].transform(pixels)
        assert out.shape == pixels.shape and out.min() >= 0 and out.max() <= 255, name


def test_a_score_on_the_threshold_says_present_before_and_after_a_check():
    # Score exactly 0.5 on the original and after each check: present both times, agreed.
    def constant(batch):
        return np.full((len(batch), 1), 0.5), np.tile([[0.1, 0.2, 0.4, 0.6]], (len(batch), 1))

    pixels = np.zeros((3, 8, 8, 3), "float32")
    summary, rows = behaviour.detector_behaviour(
        constant, pixels, np.array([True, False, True]), ["flip", "shift"], threshold=0.5
    )
    assert summary["flip"]["presence_agreement"] == 1.0

    # Every check contributes its rows: two objects × two checks.
    assert [(name, index) for name, index, _ in rows] == [
        ("flip", 0),
        ("flip", 2),
        ("shift", 0),
        ("shift", 2),
    ]
    none = behaviour.detector_behaviour(constant, pixels, np.zeros(3, bool), ["flip"], 0.5)[0]
    assert math.isnan(none["flip"]["box_iou"])


def test_a_shifted_box_stops_at_the_image_edge():
    boxes = np.array([[0.5, 0.25, 0.95, 0.99]])
    assert behaviour.shift_boxes(boxes, 12).tolist() == [[0.75, 0.5, 1.0, 1.0]]


def test_transforms_clip_out_of_range_pixels_before_encoding():
    pixels = np.full((1, 8, 8, 3), 300.0, "float32")
    pixels[0, :4] = -40.0
    again = behaviour.reencode(pixels)
    assert again.dtype == np.float32 and again.shape == (1, 8, 8, 3)
    assert again[0, 0].max() <= 5 and again[0, 7].min() >= 250  # clipped, not wrapped
    dark = behaviour.brighten(np.zeros((1, 2, 2, 3), "float32"))
    assert dark.max() == 0.0  # (0 − 127.5) × 1.25 + 142.5 < 0: clipped to black
    grey = behaviour.reencode(np.full((1, 8, 8, 1), 90.0, "float32").repeat(3, axis=-1))
    assert grey.shape == (1, 8, 8, 3)
