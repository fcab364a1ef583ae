"""Matplotlib figures for review: training curves, confusion matrix, ROC and PR curves, IoU
histogram, and galleries of test images. Each function takes plain data and returns a Figure;
`save_figure` writes it (the `plot` stage decides what goes where)."""

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
from matplotlib.ticker import MaxNLocator

from stages.shared.images import ImageError, read_rgb

TRAIN_COLOR, VAL_COLOR = "tab:blue", "tab:orange"
TRUE_COLOR, PRED_COLOR = "lime", "red"
DISPLAY_SIDE = 512  # pixels a gallery image needs: large photos decode at reduced scale


def read_history(live_dir: Path, metric: str) -> dict[str, pd.DataFrame]:
    """DVCLive's per-epoch `train` and `eval` series of one metric (missing ones left out)."""
    series = {}
    for phase in ("train", "eval"):
        path = Path(live_dir) / "plots" / "metrics" / phase / f"{metric}.tsv"
        if path.exists():
            series[phase] = pd.read_csv(path, sep="\t")
    return series


def training_curves(live_dir: Path, panels: list[tuple[str, str]], title: str) -> Figure:
    """One panel per (metric, label): train vs val per epoch, as in the tutorials."""
    columns = min(len(panels), 2)
    rows = math.ceil(len(panels) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.6 * rows), squeeze=False)
    for ax, (metric, label) in zip(axes.flat, panels, strict=False):
        for phase, frame in read_history(live_dir, metric).items():
            color, name = (TRAIN_COLOR, "train") if phase == "train" else (VAL_COLOR, "val")
            ax.plot(frame["step"] + 1, frame[metric], color=color, label=name, marker=".")
        ax.set(title=label, xlabel="epoch", ylabel=label.split(" (")[0].lower())
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        ax.legend()
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_heatmap(confusion: pd.DataFrame) -> Figure:
    """Row-normalised confusion matrix as colour, with the raw counts written in each cell."""
    classes = list(dict.fromkeys(confusion["actual"]))
    shares = confusion.pivot(index="actual", columns="predicted", values="normalized")
    counts = confusion.pivot(index="actual", columns="predicted", values="count")
    shares, counts = shares.loc[classes, classes], counts.loc[classes, classes]
    side = max(4.5, 0.55 * len(classes) + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    image = ax.imshow(shares.to_numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the actual class")
    if len(classes) <= 30:  # beyond that the numbers no longer fit their cells
        for (i, j), count in np.ndenumerate(counts.to_numpy()):
            dark = shares.iat[i, j] > 0.6
            ax.text(
                j,
                i,
                str(count),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(len(classes)), classes, rotation=45 if len(classes) > 8 else 0)
    ax.set_yticks(range(len(classes)), classes)
    ax.set(
        xlabel="predicted class",
        ylabel="actual class",
        title="Classifier confusion matrix (test, row-normalised; counts in cells)",
    )
    fig.tight_layout()
    return fig


def roc_curves(roc: pd.DataFrame, averages: pd.DataFrame, aucs: dict[str, float]) -> Figure:
    """One-vs-rest ROC curve per class, plus the micro and macro averages; an inset zooms on
    the top-left corner, where good classifiers differ."""
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    inset = ax.inset_axes((0.3, 0.42, 0.45, 0.42))
    colors = plt.get_cmap("tab20")
    for axes, lw in ((ax, 1.0), (inset, 1.2)):
        for i, (name, curve) in enumerate(roc.groupby("class", sort=False)):
            auc = aucs.get(str(name), float("nan"))
            axes.plot(
                curve["fpr"],
                curve["tpr"],
                color=colors(i % 20),
                lw=lw,
                alpha=0.85,
                label=f"{name} (AUC {auc:.4f})",
                drawstyle="steps-post",
            )
        axes.plot(averages["fpr"], averages["micro"], "k--", lw=2, label="micro average")
        axes.plot(averages["fpr"], averages["macro"], "k:", lw=2, label="macro average")
        axes.grid(alpha=0.3)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    inset.set(xlim=(0.0, 0.1), ylim=(0.9, 1.005), title="zoom: FPR ≤ 0.1, TPR ≥ 0.9")
    inset.title.set_fontsize(8)
    inset.tick_params(labelsize=7)
    ax.set(
        xlabel="false positive rate",
        ylabel="true positive rate",
        xlim=(-0.01, 1.0),
        ylim=(0.0, 1.01),
        title="Classifier ROC, one class vs rest (test)",
    )
    ax.legend(fontsize=7, loc="lower right", ncol=2 if len(aucs) > 10 else 1)
    fig.tight_layout()
    return fig


def pr_curve(curve: pd.DataFrame, ap50: float | None) -> Figure:
    """Detector precision-recall at IoU 0.5, one point per presence-score threshold."""
    fig, ax = plt.subplots(figsize=(6.0, 4.8))
    label = f"AP50 {ap50:.3f}" if ap50 is not None else "AP50 n/a"
    ax.step(curve["recall"], curve["precision"], where="post", color=PRED_COLOR, label=label)
    ax.set(
        xlabel="recall (objects found with IoU ≥ 0.5)",
        ylabel="precision",
        xlim=(0.0, 1.01),
        ylim=(0.0, 1.02),
        title="Detector precision-recall at IoU 0.5 (test)",
    )
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


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
