"""plotting.py: what a reviewer reads on each figure (titles, labels, bars, boxes and where
they are drawn), checked on the figure's own artists, and PNGs without a time stamp."""

from __future__ import annotations

from pathlib import Path

import matplotlib.colors as mcolors
import numpy as np
import pandas as pd
import pytest
from matplotlib.patches import Rectangle
from PIL import Image

from stages.shared.review import plotting


def rgba(name: str) -> tuple:
    return mcolors.to_rgba(name)


def boxes_of(ax) -> list[tuple]:
    """(x, y, width, height, edge colour, line style) of each rectangle drawn on a panel."""
    return [
        (
            *(round(float(v), 6) for v in (*p.get_xy(), p.get_width(), p.get_height())),
            p.get_edgecolor(),
            p.get_linestyle(),
        )
        for p in ax.patches
        if isinstance(p, Rectangle) and not p.get_fill()
    ]


def photo(path: Path, size=(40, 20), colour=(200, 30, 30)) -> str:
    Image.new("RGB", size, colour).save(path)
    return str(path)


def test_the_iou_histogram_bins_by_twentieths_and_marks_the_mean_and_the_ap50_line():
    fig = plotting.iou_histogram(np.array([0.12, 0.13, 0.51, 0.97]), 0.4325)
    (ax,) = fig.axes
    bars = [p for p in ax.patches if not isinstance(p, Rectangle) or p.get_fill()]
    assert [round(b.get_x(), 2) for b in bars] == [round(0.05 * i, 2) for i in range(20)]
    heights = {round(b.get_x(), 2): b.get_height() for b in bars}
    assert heights[0.1] == 2 and heights[0.5] == 1 and heights[0.95] == 1
    assert sum(heights.values()) == 4
    assert bars[0].get_facecolor() == rgba("tab:blue")
    mean, hit = ax.get_lines()
    assert list(mean.get_xdata()) == [0.4325, 0.4325] and mean.get_linestyle() == "--"
    assert list(hit.get_xdata()) == [0.5, 0.5] and hit.get_color() == "red"
    assert hit.get_linestyle() == ":"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["mean 0.432", "IoU 0.5 (AP50 hit)"]
    assert ax.get_legend()._loc == 2  # upper left
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == (
        "IoU (predicted vs true box)",
        "test images with an object",
        "Detector IoU on test images with an object",
    )
    assert tuple(fig.get_size_inches()) == (6.0, 4.2)
    (no_mean,) = plotting.iou_histogram(np.array([0.5]), None).axes
    assert [t.get_text() for t in no_mean.get_legend().get_texts()] == ["IoU 0.5 (AP50 hit)"]


def test_a_grid_holds_as_many_panels_as_images_in_rows_of_columns():
    fig, axes = plotting.image_grid(5, 3, "Title")
    assert len(axes) == 5 and len(fig.axes) == 6
    assert all(not ax.axison for ax in fig.axes)
    assert fig._suptitle.get_text() == "Title"
    assert tuple(fig.get_size_inches()) == pytest.approx((2.6 * 3, 2.5 * 2 + 0.5))
    fig, axes = plotting.image_grid(2, 8, "Few")  # never more columns than images
    assert len(fig.axes) == 2 and tuple(fig.get_size_inches()) == pytest.approx((5.2, 3.0))
    fig, axes = plotting.image_grid(3, 0, "One column")
    assert len(fig.axes) == 3 and tuple(fig.get_size_inches()) == pytest.approx((2.6, 8.0))


def test_a_box_is_drawn_on_the_pixels_it_covers(tmp_path):
    _, (ax,) = plotting.image_grid(1, 1, "")
    assert plotting.show_image(ax, photo(tmp_path / "p.png")) == (40, 20)
    plotting.draw_box(ax, (0.25, 0.1, 0.75, 0.6), (40, 20), "lime")
    plotting.draw_box(ax, (0.0, 0.0, 0.5, 0.5), (40, 20), "red", dashed=True)
    assert boxes_of(ax) == [
        (9.5, 1.5, 20.0, 10.0, rgba("lime"), "-"),
        (-0.5, -0.5, 20.0, 10.0, rgba("red"), "--"),
    ]
    assert all(p.get_linewidth() == 2 for p in ax.patches)
    (image,) = ax.get_images()
    assert image.get_array().shape == (20, 40, 3)


def test_an_unreadable_image_is_a_panel_that_says_so(tmp_path):
    _, (ax,) = plotting.image_grid(1, 1, "")
    (tmp_path / "bad.png").write_bytes(b"nothing")
    assert plotting.show_image(ax, str(tmp_path / "bad.png")) is None
    assert plotting.show_image(ax, str(tmp_path / "missing.png")) is None
    (note, _) = ax.texts
    assert note.get_text() == "unreadable" and note.get_position() == (0.5, 0.5)
    assert (note.get_ha(), note.get_va(), note.get_transform()) == (
        "center",
        "center",
        ax.transAxes,
    )
    assert not ax.get_images()


def detection_row(path: str, **values) -> dict:
    row = dict(path=path, present=1, x1=0.1, y1=0.2, x2=0.5, y2=0.9, score=0.875, iou=0.456)
    row.update(pred_x1=0.2, pred_y1=0.3, pred_x2=0.6, pred_y2=0.8, predicted_present=True)
    return {**row, **values}


def test_the_detection_gallery_draws_both_boxes_and_says_the_score(tmp_path):
    rows = pd.DataFrame(
        [
            detection_row(photo(tmp_path / "a.png")),
            detection_row(photo(tmp_path / "b.png"), present=0, predicted_present=False),
            detection_row(str(tmp_path / "gone.png")),
        ]
    )
    fig = plotting.detection_gallery(rows, columns=2)
    assert fig._suptitle.get_text() == (
        "Detector on test images: true box green, predicted red (dashed = said absent)"
    )
    first, second, third, _ = fig.axes
    assert boxes_of(first) == [
        (3.5, 3.5, 16.0, 14.0, rgba("lime"), "-"),
        (7.5, 5.5, 16.0, 10.0, rgba("red"), "-"),
    ]
    assert first.get_title() == "a.png\nscore 0.88, IoU 0.46"
    assert first.title.get_fontsize() == 8
    assert boxes_of(second) == [(7.5, 5.5, 16.0, 10.0, rgba("red"), "--")]
    assert second.get_title() == "b.png\nscore 0.88, no object"
    assert boxes_of(third) == [] and third.get_title() == ""
    assert third.texts[0].get_text() == "unreadable"


def test_the_mistakes_gallery_names_actual_and_predicted_or_says_there_are_none(tmp_path):
    rows = pd.DataFrame(
        [
            {"path": photo(tmp_path / "x.png"), "actual": "cat", "predicted": "dog",
             "confidence": 0.914},
            {"path": photo(tmp_path / "y.png"), "actual": "dog", "predicted": "cat",
             "confidence": 0.5},
        ]
    )  # fmt: skip
    fig = plotting.misclassified_gallery(rows, columns=4)
    assert fig._suptitle.get_text() == "Classifier mistakes on test images"
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["x.png\ncat → dog (0.91)", "y.png\ndog → cat (0.50)"]
    assert all(ax.title.get_fontsize() == 8 and ax.get_images() for ax in fig.axes)
    empty = plotting.misclassified_gallery(rows.iloc[:0], columns=4)
    (ax,) = empty.axes
    assert not ax.axison and tuple(empty.get_size_inches()) == (5, 1.5)
    (note,) = ax.texts
    assert note.get_text() == "No misclassified test images."
    assert (note.get_position(), note.get_ha(), note.get_va()) == ((0.5, 0.5), "center", "center")


def test_a_training_batch_shows_each_image_pixel_for_pixel_with_its_label_or_box():
    images = np.zeros((3, 10, 20, 3), np.uint8)
    images[1, 2:5, 4:8] = 255
    boxes = [None, (0.2, 0.2, 0.4, 0.5), None]
    fig = plotting.train_batch_figure(images, ["a", "object", "no object"], boxes, columns=2)
    assert fig._suptitle.get_text() == "One training batch, as the model sees it"
    assert [ax.get_title() for ax in fig.axes[:3]] == ["a", "object", "no object"]
    assert fig.axes[0].title.get_fontsize() == 8
    assert boxes_of(fig.axes[1]) == [(3.5, 1.5, 4.0, 3.0, rgba("lime"), "-")]
    assert boxes_of(fig.axes[0]) == boxes_of(fig.axes[2]) == []
    for ax, image in zip(fig.axes, images, strict=False):
        (drawn,) = ax.get_images()
        assert drawn.get_interpolation() == "nearest"
        assert np.array_equal(drawn.get_array(), image)
    labels_only = plotting.train_batch_figure(images[:2], ["a", "b"])
    assert len(labels_only.axes) == 2 and all(not boxes_of(ax) for ax in labels_only.axes)


def test_worst_cases_are_one_row_per_check_in_order():
    image = np.zeros((8, 8, 3), np.uint8)
    cases = [("flip", image, "0.10"), ("dark", image, "0.20"), ("flip", image, "0.30"),
             ("flip", image, "0.40"), ("dark", image + 9, "0.50")]  # fmt: skip
    fig = plotting.worst_cases_figure(cases, columns=2)
    assert fig._suptitle.get_text() == (
        "Worst test images per behaviour check (as the model saw them)"
    )
    assert len(fig.axes) == 4 and tuple(fig.get_size_inches()) == pytest.approx((4.6, 5.5))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["flip: 0.10", "flip: 0.30", "dark: 0.20", "dark: 0.50"]
    assert fig.axes[0].title.get_fontsize() == 7
    assert all(not ax.axison for ax in fig.axes)
    assert fig.axes[3].get_images()[0].get_array()[0, 0, 0] == 9
    assert fig.axes[3].get_images()[0].get_interpolation() == "nearest"
    wide = plotting.worst_cases_figure(cases, columns=9)  # never more columns than the most
    assert len(wide.axes) == 6 and [ax.get_title() for ax in wide.axes][4:] == ["dark: 0.50", ""]


def test_error_bars_reach_the_interval_ends_and_empty_slices_have_none():
    slices = {
        "small": {"accuracy": 0.75, "images": 8, "ci95": {"accuracy": {"low": 0.5, "high": 0.875}}},
        "none": {"accuracy": None, "images": 0, "ci95": {"accuracy": None}},
        "no interval": {"accuracy": 0.5, "images": 1, "ci95": {}},
        "no key": {"accuracy": 0.25, "images": 3},
    }
    heights, down, up = plotting.error_bars(slices, "accuracy")
    assert heights == [0.75, 0.0, 0.5, 0.25]
    assert down == [0.25, 0.0, 0.0, 0.0] and up == [0.125, 0.0, 0.0, 0.0]


def test_the_slices_figure_has_a_panel_per_grouping_and_says_each_slice_size():
    groups = {
        "size": {
            "small": {"iou": 0.5, "images": 4, "ci95": {"iou": {"low": 0.25, "high": 0.875}}},
            "large": {"iou": None, "images": 0},
        },
        "position": {"left": {"iou": 0.875, "images": 7}},
    }
    fig = plotting.slices_figure(groups, "iou", "mean IoU")
    assert fig._suptitle.get_text() == "mean IoU by slice of the test split (bars: 95% interval)"
    assert tuple(fig.get_size_inches()) == pytest.approx((7.2, 3.8))
    size, position = fig.axes
    assert (size.get_title(), size.get_ylabel(), size.get_ylim()) == (
        "by size",
        "mean IoU",
        (0, 1.05),
    )
    assert position.get_title() == "by position"
    assert [t.get_text() for t in size.get_xticklabels()] == ["small", "large"]
    assert [round(p.get_height(), 3) for p in size.patches] == [0.5, 0.0]
    assert size.patches[0].get_facecolor() == rgba("tab:blue")
    assert [(t.get_text(), t.get_position()) for t in size.texts] == [
        ("n=4", (0, 0.02)),
        ("empty", (1, 0.02)),
    ]
    assert all(t.get_fontsize() == 8 and t.get_ha() == "center" for t in size.texts)
    assert size.texts[0].get_va() == "bottom"
    (bars,) = [c for c in size.containers if hasattr(c, "has_yerr")]
    assert bars.has_yerr
    (segments,) = bars.lines[2]
    ends = sorted(tuple(s[:, 1]) for s in segments.get_segments())
    assert ends[-1] == pytest.approx((0.25, 0.875))  # the interval's own ends
    caps = bars.lines[1]
    assert caps and caps[0].get_markersize() == 8  # capsize 4 each side
    assert [t.get_text() for t in position.texts] == ["n=7"]
    assert size.yaxis._major_tick_kw.get("gridOn") and not size.xaxis._major_tick_kw.get("gridOn")


def test_a_saved_png_has_no_time_or_software_stamp(tmp_path):
    fig = plotting.iou_histogram(np.array([0.5]), 0.5)
    plotting.save_figure(fig, tmp_path / "deep/fig.png", dpi=50)
    with Image.open(tmp_path / "deep/fig.png") as img:
        assert img.size == (300, 210) and "Software" not in img.info
    import matplotlib.pyplot as plt

    assert fig.number not in plt.get_fignums()  # closed: a long plot run does not pile up
