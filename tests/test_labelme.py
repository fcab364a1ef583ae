"""labelme.py: finding label files and reading one normalised box from them."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.shared.data.labelme import LabelError, find_label, parse_label, read_label
from tests.conftest import labelme


def close(box):
    """Boxes are stored rounded to 6 decimals."""
    return pytest.approx(box, abs=1e-6)


@pytest.mark.parametrize(
    "points",
    [[[10, 5], [30, 20]], [[30, 20], [10, 5]], [[10, 20], [30, 5]], [[30, 5], [10, 20]]],
)
def test_corners_in_any_order_give_the_same_box(points):
    label = parse_label(labelme(points), (40, 30))
    assert label.box == close((0.25, 5 / 30, 0.75, 20 / 30))
    assert label.notes == ()


def test_no_shapes_is_a_negative():
    assert parse_label({"shapes": []}, (40, 30)).box is None


def test_points_outside_the_image_are_clipped_and_noted():
    label = parse_label(labelme([[-5, -5], [50, 20]]), (40, 30))
    assert label.box == close((0.0, 0.0, 1.0, 20 / 30))
    assert "box outside the image: clipped" in label.notes


def test_polygon_uses_its_bounding_box():
    doc = labelme([[10, 5], [30, 10], [20, 20]], shape_type="polygon")
    label = parse_label(doc, (40, 30))
    assert label.box == close((0.25, 5 / 30, 0.75, 20 / 30))
    assert "polygon: used its bounding box" in label.notes


def test_several_rectangles_keep_the_largest():
    doc = labelme([[0, 0], [4, 4]])
    doc["shapes"].append({"points": [[10, 10], [30, 25]], "shape_type": "rectangle"})
    label = parse_label(doc, (40, 30))
    assert label.box == close((0.25, 1 / 3, 0.75, 25 / 30))
    assert "several shapes: kept the largest" in label.notes


def test_json_size_differing_from_file_scales_by_the_json():
    label = parse_label(labelme([[10, 5], [30, 20]], width=40, height=30), (80, 60))
    assert label.box == close((0.25, 5 / 30, 0.75, 20 / 30))
    assert any("differ from the image file" in n for n in label.notes)


def test_point_shapes_carry_no_box():
    label = parse_label(labelme([[3, 3]], shape_type="point"), (40, 30))
    assert label.box is None and label.notes == ("point shape ignored (no area)",)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"flags": {}}, "no 'shapes' list"),
        (labelme([[1, 1]]), r"'shapes\[0\]\.points' has 1 points, a rectangle needs 2"),
        (labelme([[1, 1], ["a", 2]]), r"'shapes\[0\]\.points' is not a list of \[x, y\] pairs"),
        (labelme([[5, 5], [5, 20]]), "box has no area"),
        (labelme([[50, 40], [60, 50]]), "box has no area"),
        ({"shapes": ["rect"]}, r"'shapes\[0\]' is not an object"),
    ],
)
def test_unusable_labels_raise_with_the_reason(doc, message):
    with pytest.raises(LabelError, match=message):
        parse_label(doc, (40, 30))


def test_invalid_json_file(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("{not json")
    with pytest.raises(LabelError, match=r"invalid JSON .* fix or delete the file"):
        read_label(path, (40, 30))


def test_find_label_beside_the_image_or_in_labels(tmp_path):
    (tmp_path / "images" / "sub").mkdir(parents=True)
    (tmp_path / "labels" / "sub").mkdir(parents=True)
    image = tmp_path / "images" / "sub" / "a.jpg"
    assert find_label(image, tmp_path) is None
    mirrored = tmp_path / "labels" / "sub" / "a.json"
    mirrored.write_text("{}")
    assert find_label(image, tmp_path) == mirrored
    beside = tmp_path / "images" / "sub" / "a.json"
    beside.write_text("{}")
    assert find_label(image, tmp_path) == beside


numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True), st.integers(-(10**6), 10**6), st.text()
)
point = st.lists(numbers, min_size=0, max_size=3)
shape = st.fixed_dictionaries(
    {"points": st.one_of(st.lists(point, max_size=5), numbers)},
    optional={
        "shape_type": st.sampled_from(["rectangle", "polygon", "circle", "point", None, "line"])
    },
)
documents = st.one_of(
    st.fixed_dictionaries(
        {"shapes": st.lists(shape, max_size=4)},
        optional={"imageWidth": numbers, "imageHeight": numbers},
    ),
    st.dictionaries(st.text(max_size=5), numbers, max_size=3),
)


@given(doc=documents, size=st.tuples(st.integers(1, 2000), st.integers(1, 2000)))
def test_any_document_gives_a_valid_box_a_negative_or_a_label_error(doc, size):
    try:
        label = parse_label(doc, size)
    except LabelError as err:
        assert str(err)
        return
    if label.box is not None:
        x1, y1, x2, y2 = label.box
        assert 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0
    json.dumps(label.notes)


coordinate = st.floats(-500, 2500, allow_nan=False)


@given(
    corners=st.tuples(coordinate, coordinate, coordinate, coordinate),
    size=st.tuples(st.integers(8, 2000), st.integers(8, 2000)),
)
def test_box_normalisation_clips_orders_and_scales_any_rectangle(corners, size):
    ax, ay, bx, by = corners
    doc = {"shapes": [{"points": [[ax, ay], [bx, by]], "shape_type": "rectangle"}]}
    width, height = size
    clip_x = sorted(min(max(v, 0), width) for v in (ax, bx))
    clip_y = sorted(min(max(v, 0), height) for v in (ay, by))
    try:
        label = parse_label(doc, size)
    except LabelError as err:
        # Refused only when too little of the box is left inside the image.
        assert clip_x[1] - clip_x[0] < 1 or clip_y[1] - clip_y[0] < 1 or "millionth" in str(err)
        return
    expected = (clip_x[0] / width, clip_y[0] / height, clip_x[1] / width, clip_y[1] / height)
    assert label.box == pytest.approx(expected, abs=1e-6)
    x1, y1, x2, y2 = label.box
    assert 0.0 <= x1 < x2 <= 1.0 and 0.0 <= y1 < y2 <= 1.0
    clipped = any(v < 0 for v in corners) or max(ax, bx) > width or max(ay, by) > height
    assert ("box outside the image: clipped" in label.notes) == clipped


def test_a_circle_becomes_the_box_around_it():
    # Centre (20, 12), rim point (23, 16): radius 5 (3-4-5), so x 15–25 and y 7–17 of 40 × 30.
    doc = labelme([[20, 12], [23, 16]], shape_type="circle")
    label = parse_label(doc, (40, 30))
    assert label.box == close((15 / 40, 7 / 30, 25 / 40, 17 / 30))
    assert label.notes == ("circle: used its bounding box",)
    three_points = labelme([[20, 12], [23, 16], [1, 1]], shape_type="circle")
    ignored = parse_label(three_points, (40, 30))
    assert ignored.box is None and ignored.notes == ("circle shape ignored (no area)",)


def test_the_largest_shape_wins_by_area_not_by_side_or_position():
    # A: 30 × 2 at the far corner (area 60, longest side); B: 9 × 8 near the origin (area 72).
    doc = labelme([[8, 26], [38, 28]])
    doc["shapes"].append({"points": [[2, 3], [11, 11]], "shape_type": "rectangle"})
    label = parse_label(doc, (40, 30))
    assert label.box == close((2 / 40, 3 / 30, 11 / 40, 11 / 30))


def test_old_files_with_a_null_shape_type_are_polygons():
    doc = labelme([[10, 5], [30, 10], [20, 20]], shape_type=None)
    label = parse_label(doc, (40, 30))
    assert label.box == close((0.25, 5 / 30, 0.75, 20 / 30))
    assert label.notes == ("polygon: used its bounding box",)


def test_a_box_of_exactly_one_pixel_is_kept_and_less_is_refused():
    one = parse_label(labelme([[10, 5], [11, 6]]), (40, 30))
    assert one.box == close((10 / 40, 5 / 30, 11 / 40, 6 / 30))
    for points in ([[10, 5], [10.5, 9]], [[10, 5], [14, 5.5]]):  # under a pixel in x, in y
        with pytest.raises(LabelError) as error:
            parse_label(labelme(points), (40, 30))
        assert str(error.value) == "box has no area inside the image — fix or delete the shape"


def test_coordinates_are_rounded_to_six_decimals():
    label = parse_label(labelme([[1, 1], [2, 2]], width=3, height=3), (3, 3))  # thirds
    assert label.box == (0.333333, 0.333333, 0.666667, 0.666667)


def test_a_zero_or_missing_json_size_falls_back_to_the_image_file():
    for width, height in ((0, 30), (40, 0)):
        label = parse_label(labelme([[10, 5], [30, 20]], width=width, height=height), (80, 60))
        assert label.box == close((10 / 80, 5 / 60, 30 / 80, 20 / 60)), (width, height)
        assert label.notes == ()
    tiny = parse_label(labelme([[0, 0], [1, 1]], width=1, height=2), (2, 4))  # 1 px is a size
    assert tiny.box == close((0.0, 0.0, 1.0, 0.5))


def test_messages_are_whole_sentences():
    cases = [
        ({"flags": {}}, "no 'shapes' list — not a labelme file; fix or delete it"),
        (
            labelme([[1, 1], [float("inf"), 2]]),
            "'shapes[0].points' is not a list of [x, y] pairs — fix the file",
        ),
        (
            labelme([[1, 1], [2, 2], [3, 3]]),
            "'shapes[0].points' has 3 points, a rectangle needs 2 — fix or delete the file",
        ),
    ]
    for doc, message in cases:
        with pytest.raises(LabelError) as error:
            parse_label(doc, (40, 30))
        assert str(error.value) == message
    scaled = parse_label(labelme([[10, 5], [30, 20]], width=40, height=30), (80, 60))
    assert scaled.notes == (
        "imageWidth/imageHeight differ from the image file: scaled by the JSON",
    )


def test_a_label_beside_an_image_outside_images_is_found_and_nothing_else(tmp_path):
    (tmp_path / "frames").mkdir()
    (tmp_path / "labels").mkdir()
    image = tmp_path / "frames" / "a.jpg"
    (tmp_path / "labels" / "a.json").write_text("{}")  # labels/ mirrors images/ only
    assert find_label(image, tmp_path) is None
    (tmp_path / "frames" / "a.json").write_text("{}")
    assert find_label(image, tmp_path) == tmp_path / "frames" / "a.json"


def test_an_infinite_json_size_falls_back_to_the_image_file():
    doc = labelme([[10, 5], [30, 20]], width=float("inf"), height=30)
    assert parse_label(doc, (80, 60)).box == close((10 / 80, 5 / 60, 30 / 80, 20 / 60))


@pytest.mark.parametrize(
    ("smaller", "larger"),
    [
        ([[30, 0], [36, 20]], [[0, 0], [11, 11]]),  # 6 × 20 = 120 against 11 × 11 = 121
        ([[0, 0], [5, 30]], [[20, 20], [33, 32]]),  # 5 × 30 = 150 against 13 × 12 = 156
    ],
)
def test_the_largest_of_two_shapes_of_nearly_equal_area(smaller, larger):
    doc = labelme(smaller, width=40, height=40)
    doc["shapes"].append({"points": larger, "shape_type": "rectangle"})
    (x1, y1), (x2, y2) = larger
    assert parse_label(doc, (40, 40)).box == close((x1 / 40, y1 / 40, x2 / 40, y2 / 40))


def test_a_json_height_of_one_pixel_or_infinity():
    one = parse_label(labelme([[0, 0], [2, 1]], width=2, height=1), (4, 4))
    assert one.box == close((0.0, 0.0, 1.0, 1.0))  # scaled by the JSON's 2 × 1
    endless = labelme([[10, 5], [30, 20]], width=40, height=float("inf"))
    assert parse_label(endless, (80, 60)).box == close((10 / 80, 5 / 60, 30 / 80, 20 / 60))
