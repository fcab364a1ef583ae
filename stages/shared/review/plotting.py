"""Matplotlib figures for review that `dvc.yaml` does not define: IoU histogram, slices and
galleries of images with their labels and boxes. (The curves, confusion matrix, ROC and PR
figures are drawn from DVC's own specs, in `dvcplots`.) Each function takes plain data and
returns a Figure; `save_figure` writes it (the `plot` stage decides what goes where)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no screen

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from stages.shared.data.images import ImageError, read_rgb

TRAIN_COLOR = "tab:blue"
TRUE_COLOR, PRED_COLOR = "lime", "red"
DISPLAY_SIDE = 512  # pixels a gallery image needs: large photos decode at reduced scale


def iou_histogram(ious: np.ndarray, mean_iou: float | None) -> Figure:
    """IoU of each test object's predicted box, with the mean and the 0.5 line."""
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
    ax.hist(ious, bins=np.linspace(0.0, 1.0, 21), color=TRAIN_COLOR, edgecolor="white")
    if mean_iou is not None:
        ax.axvline(mean_iou, color="black", ls="--", label=f"mean {mean_iou:.3f}")
    ax.axvline(0.5, color=PRED_COLOR, ls=":", label="IoU 0.5 (AP50 hit)")
    ax.set(
        xlabel="IoU (predicted vs true box)",
        ylabel="test images with an object",
        title="Detector IoU on test images with an object",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def image_grid(count: int, columns: int, title: str) -> tuple[Figure, list]:
    """An empty grid of `count` image panels (axes off)."""
    columns = max(1, min(columns, count))
    rows = math.ceil(count / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(2.6 * columns, 2.5 * rows + 0.5), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    fig.suptitle(title)
    return fig, list(axes.flat)[:count]


def show_image(ax, path: str) -> tuple[int, int] | None:
    """Draw an image file in a panel; (width, height), or None with a note if unreadable."""
    try:
        pixels = read_rgb(Path(path), DISPLAY_SIDE)
    except (ImageError, OSError):
        ax.text(0.5, 0.5, "unreadable", ha="center", va="center", transform=ax.transAxes)
        return None
    ax.imshow(pixels)
    return pixels.shape[1], pixels.shape[0]


def draw_box(ax, box, size: tuple[int, int], color: str, dashed: bool = False) -> None:
    """A normalised (x1, y1, x2, y2) box drawn on an image of `size` (width, height) pixels."""
    x1, y1, x2, y2 = (float(v) for v in box)
    width, height = size
    # imshow puts pixel i's centre at i: the image's edge (normalised 0) lies at -0.5.
    ax.add_patch(
        Rectangle(
            (x1 * width - 0.5, y1 * height - 0.5),
            (x2 - x1) * width,
            (y2 - y1) * height,
            fill=False,
            lw=2,
            ec=color,
            ls="--" if dashed else "-",
        )
    )


def detection_gallery(rows: pd.DataFrame, columns: int) -> Figure:
    """Test images with the true box (green) and the predicted one (red; dashed when the
    presence score is below the threshold, i.e. the model says 'no object')."""
    title = "Detector on test images: true box green, predicted red (dashed = said absent)"
    fig, axes = image_grid(len(rows), columns, title)
    for ax, row in zip(axes, rows.itertuples(index=False), strict=True):
        size = show_image(ax, row.path)
        if size is None:
            continue
        if row.present:
            draw_box(ax, (row.x1, row.y1, row.x2, row.y2), size, TRUE_COLOR)
        draw_box(
            ax,
            (row.pred_x1, row.pred_y1, row.pred_x2, row.pred_y2),
            size,
            PRED_COLOR,
            dashed=not row.predicted_present,
        )
        truth = f"IoU {row.iou:.2f}" if row.present else "no object"
        ax.set_title(f"{Path(row.path).name}\nscore {row.score:.2f}, {truth}", fontsize=8)
    fig.tight_layout()
    return fig


def misclassified_gallery(rows: pd.DataFrame, columns: int) -> Figure:
    """Misclassified test images, most confident mistakes first: actual → predicted."""
    if rows.empty:
        fig, ax = plt.subplots(figsize=(5, 1.5))
        ax.axis("off")
        ax.text(0.5, 0.5, "No misclassified test images.", ha="center", va="center")
        return fig
    fig, axes = image_grid(len(rows), columns, "Classifier mistakes on test images")
    for ax, row in zip(axes, rows.itertuples(index=False), strict=True):
        show_image(ax, row.path)
        ax.set_title(
            f"{Path(row.path).name}\n{row.actual} → {row.predicted} ({row.confidence:.2f})",
            fontsize=8,
        )
    fig.tight_layout()
    return fig


def train_batch_figure(images: np.ndarray, titles: list[str], boxes=None, columns=8) -> Figure:
    """A training batch exactly as the model received it (uint8 pixels after offline and
    in-model augmentation): each image with its label, or its box (green) or "no object"."""
    fig, axes = image_grid(len(images), columns, "One training batch, as the model sees it")
    for index, (ax, image) in enumerate(zip(axes, images, strict=True)):
        ax.imshow(image, interpolation="nearest")
        if boxes is not None and boxes[index] is not None:
            draw_box(ax, boxes[index], (image.shape[1], image.shape[0]), TRUE_COLOR)
        ax.set_title(titles[index], fontsize=8)
    fig.tight_layout()
    return fig


def worst_cases_figure(cases: list[tuple[str, np.ndarray, str]], columns: int) -> Figure:
    """The worst test images of each behaviour check, one row per check: each image as the
    model saw it under the check, with its score."""
    checks = list(dict.fromkeys(check for check, _, _ in cases))
    per_row = max(sum(1 for c, _, _ in cases if c == check) for check in checks)
    columns = max(1, min(columns, per_row))
    fig, axes = plt.subplots(
        len(checks), columns, figsize=(2.3 * columns, 2.5 * len(checks) + 0.5), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for row, check in enumerate(checks):
        mine = [(image, title) for c, image, title in cases if c == check][:columns]
        for col, (image, title) in enumerate(mine):
            axes[row, col].imshow(image, interpolation="nearest")
            axes[row, col].set_title(f"{check}: {title}", fontsize=7)
    fig.suptitle("Worst test images per behaviour check (as the model saw them)")
    fig.tight_layout()
    return fig


def error_bars(slices: dict[str, dict], metric: str) -> tuple[list, list, list]:
    """(bar heights, distance down to the interval's low end, up to its high end); an empty
    slice (no value) gets a bar of 0 and no error bar."""
    heights, down, up = [], [], []
    for entry in slices.values():
        value = entry.get(metric)
        interval = (entry.get("ci95") or {}).get(metric) or {}
        heights.append(value or 0.0)
        down.append(value - interval["low"] if value is not None and interval else 0.0)
        up.append(interval["high"] - value if value is not None and interval else 0.0)
    return heights, down, up


def slices_figure(groups: dict[str, dict[str, dict]], metric: str, label: str) -> Figure:
    """One bar per slice, `metric` with its 95% interval as an error bar; a panel per way of
    slicing (size, position, ...); each bar says how many test images it holds."""
    fig, axes = plt.subplots(1, len(groups), figsize=(3.6 * len(groups), 3.8), squeeze=False)
    for ax, (grouping, slices) in zip(axes.flat, groups.items(), strict=True):
        heights, down, up = error_bars(slices, metric)
        ax.bar(list(slices), heights, color=TRAIN_COLOR, yerr=[down, up], capsize=4)
        for x, entry in enumerate(slices.values()):
            note = f"n={entry['images']}" if entry.get(metric) is not None else "empty"
            ax.text(x, 0.02, note, ha="center", va="bottom", fontsize=8)
        ax.set(title=f"by {grouping}", ylabel=label, ylim=(0, 1.05))
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{label} by slice of the test split (bars: 95% interval)")
    fig.tight_layout()
    return fig


def save_figure(fig: Figure, path: Path, dpi: int) -> None:
    """Write a PNG without a timestamp or version stamp, so re-runs give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    plt.close(fig)
