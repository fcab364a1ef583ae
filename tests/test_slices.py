"""slices.py: metrics by object size, position and on negatives, computed by hand."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.shared.core.cli import UserError
from stages.shared.evaluation.slices import (
    classifier_slices,
    detector_slices,
    position_slice,
    size_slice,
)
from stages.shared.params.sections import parse_section


class Cfg:
    size = (0.05, 0.15)
    border = 0.05


# Six objects: areas 0.01, 0.04 (small), 0.09, 0.1 (medium), 0.25, 0.36 (large); two negatives.
BOXES = np.array(
    [
        [0.0, 0.0, 0.1, 0.1],  # small, touching the corner: border
        [0.4, 0.4, 0.6, 0.6],  # small, central
        [0.3, 0.3, 0.6, 0.6],  # medium
        [0.5, 0.1, 0.75, 0.5],  # medium
        [0.25, 0.25, 0.75, 0.75],  # large
        [0.2, 0.2, 0.8, 0.8],  # large
        [0, 0, 0, 0],
        [0, 0, 0, 0],
    ]
)
PRESENT = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)
IOUS = np.array([0.2, 0.6, 0.7, 0.9, 0.4, 0.8, 0, 0])
SAID = np.array([1, 1, 1, 1, 1, 1, 1, 0], bool)  # one false positive of two negatives


def test_detector_slices_by_hand():
    found = detector_slices(BOXES, PRESENT, IOUS, SAID, Cfg, 200, 0)
    small, medium, large = (found["size"][s] for s in ("small", "medium", "large"))
    assert (small["images"], small["mean_iou"], small["recall50"]) == (2, pytest.approx(0.4), 0.5)
    assert (medium["images"], medium["mean_iou"], medium["recall50"]) == (
        2,
        pytest.approx(0.8),
        1.0,
    )
    assert (large["images"], large["mean_iou"], large["recall50"]) == (2, pytest.approx(0.6), 0.5)
    border, central = found["position"]["border"], found["position"]["central"]
    assert border["images"] == 1 and border["mean_iou"] == pytest.approx(0.2)
    assert central["images"] == 5 and central["mean_iou"] == pytest.approx(3.4 / 5)
    assert found["negatives"]["images"] == 2 and found["negatives"]["false_positive_rate"] == 0.5
    interval = medium["ci95"]["mean_iou"]
    assert interval["low"] <= 0.8 <= interval["high"]


@given(areas=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=60))
def test_every_box_falls_in_exactly_one_size_slice(areas):
    names = size_slice(np.array(areas), (0.05, 0.15))
    assert all(name in ("small", "medium", "large") for name in names)
    for area, name in zip(areas, names, strict=True):
        assert (area < 0.05) == (name == "small") and (area >= 0.15) == (name == "large")


def test_an_empty_slice_is_reported_not_a_crash():
    found = detector_slices(BOXES[:2], PRESENT[:2], IOUS[:2], SAID[:2], Cfg, 100, 0)
    assert found["size"]["large"] == {"images": 0, "mean_iou": None, "recall50": None}
    assert found["negatives"] == {"images": 0, "false_positive_rate": None}


def test_classifier_slices_by_source_size():
    actual, predicted = np.array([0, 1, 1, 0, 1]), np.array([0, 1, 0, 0, 0])
    sizes = np.array([[20, 30], [100, 80], [12, 50], [64, 64], [300, 200]])
    found = classifier_slices(actual, predicted, sizes, 32, 100, 0)["source_size"]
    assert found["smaller_than_input"] == {
        "images": 2,
        "accuracy": 0.5,
        "ci95": found["smaller_than_input"]["ci95"],
    }
    assert found["input_size_or_larger"]["images"] == 3
    assert found["input_size_or_larger"]["accuracy"] == pytest.approx(2 / 3)
    same = classifier_slices(actual, predicted, np.full((5, 2), 32), 32, 100, 0)
    assert same == {}  # every image the input size: no slice to show


@pytest.mark.parametrize("size", [[0.15, 0.05], [0.0, 0.1], [0.1, 1.0], [0.1]])
def test_slices_that_would_be_empty_are_one_line_naming_the_param(size):
    section = {
        "batch_size": 8,
        "presence_threshold": 0.5,
        "bootstrap": 100,
        "behaviour": ["flip"],
        "slices": {"size": size, "border": 0.05},
    }
    with pytest.raises(UserError, match=r"evaluate\.detector\.slices: size: two rising"):
        parse_section("evaluate", {"classifier": CLASSIFIER, "detector": section})


CLASSIFIER = {"batch_size": 8, "top_k": 3, "bootstrap": 100, "behaviour": ["jpeg"]}


def test_an_unknown_check_name_is_one_line_naming_the_param():
    section = {**CLASSIFIER, "behaviour": ["jpeg", "blur"]}
    detector = {
        "batch_size": 8,
        "presence_threshold": 0.5,
        "bootstrap": 100,
        "behaviour": ["flip"],
        "slices": {"size": [0.05, 0.15], "border": 0.05},
    }
    with pytest.raises(
        UserError, match=r"evaluate\.classifier\.behaviour\.1: Input should be 'flip', 'shift'"
    ):
        parse_section("evaluate", {"classifier": section, "detector": detector})


def test_a_box_on_a_threshold_belongs_to_the_larger_slice():
    # README: below size[0] is small, from size[1] on is large.
    areas = np.array([0.0499, 0.05, 0.1499, 0.15])
    assert size_slice(areas, (0.05, 0.15)).tolist() == ["small", "medium", "medium", "large"]


def test_position_looks_at_each_edge_and_the_border_is_exclusive():
    boxes = np.array(
        [
            [0.3, 0.3, 0.97, 0.6],  # near the right edge only
            [0.3, 0.3, 0.6, 0.96],  # near the bottom edge only
            [0.04, 0.3, 0.6, 0.6],  # near the left edge only
            [0.3, 0.02, 0.6, 0.6],  # near the top edge only
            [0.25, 0.25, 0.75, 0.75],  # central
            [0.3, 0.3, 0.6, 0.9375],  # exactly the border's width from the bottom: central
        ]
    )
    assert position_slice(boxes, 0.0625).tolist() == ["border"] * 4 + ["central"] * 2


def test_slice_intervals_hold_their_value_follow_the_seed_and_repeat():
    one = detector_slices(BOXES, PRESENT, IOUS, SAID, Cfg, 200, 0)
    assert detector_slices(BOXES, PRESENT, IOUS, SAID, Cfg, 200, 0) == one
    other = detector_slices(BOXES, PRESENT, IOUS, SAID, Cfg, 200, 5)
    for group, name in (("size", "large"), ("position", "central")):
        entry = one[group][name]
        interval = entry["ci95"]["mean_iou"]
        assert interval["low"] <= entry["mean_iou"] <= interval["high"]
        assert interval["low"] < interval["high"]
    # Five objects sit centrally: their interval moves with the seed it is given.
    assert other["position"]["central"]["ci95"] != one["position"]["central"]["ci95"]
    negatives = one["negatives"]
    assert negatives["false_positive_rate"] == 0.5
    assert 0.0 <= negatives["ci95"]["fpr"]["low"] < 0.5 < negatives["ci95"]["fpr"]["high"] <= 1
    # Flags as 0/1 numbers mean what the booleans mean (not row numbers).
    as_numbers = detector_slices(BOXES, PRESENT.astype(int), IOUS, SAID.astype(int), Cfg, 200, 0)
    assert as_numbers == one


def test_classifier_slice_intervals_and_an_image_of_exactly_the_input_size():
    sizes = np.array([[8, 12], [16, 16], [20, 16], [12, 30], [40, 40], [9, 9]])
    actual = np.array([0, 0, 1, 1, 0, 1])
    predicted = np.array([0, 1, 1, 0, 0, 0])
    found = classifier_slices(actual, predicted, sizes, 16, 300, 0)["source_size"]
    # Shorter side under 16: rows 0, 3, 5 (one right of three); 16 or more: rows 1, 2, 4.
    assert found["smaller_than_input"]["images"] == 3
    assert found["smaller_than_input"]["accuracy"] == pytest.approx(1 / 3)
    assert found["input_size_or_larger"]["accuracy"] == pytest.approx(2 / 3)
    for entry in found.values():
        interval = entry["ci95"]["accuracy"]
        assert interval["low"] <= entry["accuracy"] <= interval["high"]
    again = classifier_slices(actual, predicted, sizes, 16, 300, 0)["source_size"]
    moved = classifier_slices(actual, predicted, sizes, 16, 300, 9)["source_size"]
    assert again == found and moved != found


def test_size_slice_intervals_follow_the_seed_too():
    rng = np.random.default_rng(4)
    corner = rng.uniform(0.0, 0.3, (30, 2))
    boxes = np.hstack([corner, corner + np.array([0.6, 0.5])])  # 30 large boxes, 0.6 × 0.5
    ious = rng.uniform(0.3, 0.95, 30)
    flags = np.ones(30, bool)
    one, other = (detector_slices(boxes, flags, ious, flags, Cfg, 200, s) for s in (0, 5))
    assert one["size"]["large"]["images"] == 30
    assert one["size"]["large"]["mean_iou"] == other["size"]["large"]["mean_iou"]
    assert one["size"]["large"]["ci95"] != other["size"]["large"]["ci95"]
