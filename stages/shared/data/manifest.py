"""Manifests: the CSV tables that say which file goes where, and atomic file writing.

A manifest never copies images; it lists them. Classification rows: path, label, md5, width,
height (of the upright image, pixels), group, split. Detection rows: path, present (0/1), x1,
y1, x2, y2 (normalised), md5, width, height, group, split. Images of one group (a source,
exact or near copies) always share a split.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stages.shared.core.cli import UserError

COLUMNS = {
    "classification": ["path", "label", "md5", "width", "height", "group", "split"],
    "detection": [
        *("path", "present", "x1", "y1", "x2", "y2", "md5", "width", "height", "group", "split")
    ],
}
SPLITS = ("train", "val", "test")
BOX = ["x1", "y1", "x2", "y2"]
AUTO_SIZE_RANGE = (32, 64)  # `image_size: auto` stays within this: a CPU budget
# Detection `auto`: the side at which the small objects (the 10 % quantile of the boxes'
# shorter sides) span SMALL_OBJECT_PIXELS, in multiples of 8, within AUTO_DETECTION_RANGE.
# The top is a CPU budget (192 px: 2.25x the compute of 128). It was 128: on the recipe
# check's small-faces (faces at 8-20 % of the short side among look-alikes), where `auto` asks
# for 176, 176 px against 128 raised test mean IoU from 0.495 (0.415-0.573) to 0.636
# (0.569-0.700) and AP50 from 0.568 to 0.729, for 1.9x the training time
# (bench/RECIPE_LEVERS.md); the sample (64) and the coins (112) ask for less than either top.
AUTO_DETECTION_RANGE = (64, 192)
SMALL_OBJECT_QUANTILE = 0.1
SMALL_OBJECT_PIXELS = 12
# Small boxes (the training boxes' median under SMALL_BOXES_AREA of their frame) get
# SMALL_BOXES_SIDE whatever the quantile asks, never more than the frames' own longer side: on
# the recipe check's small-faces (median box 1.5 %) 256 px against the 176 the quantile gives
# raised test AP50 from 0.843 to 0.909 and mean IoU from 0.695 to 0.771 (means over three
# training seeds, every 256 px seed above every 176 px one; bench/RECIPE_LEVERS.md), for 2.1x
# the training time. Its coins (median box 5.0 %) reach their targets at the quantile's 112
# px, and 256 would cost them 5x: the bound sits between the two, two points, not a curve.
# SMALL_AREA, evaluate's "small" slice, is the bound `copies: auto` takes.
SMALL_AREA = 0.05
SMALL_BOXES_AREA = 0.025
SMALL_BOXES_SIDE = 256


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file so readers see the old content or the new, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Any) -> None:
    """Write JSON with stable key order and a trailing newline, atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> dict:
    """A JSON report an earlier stage wrote, or one line saying to run the pipeline for it."""
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found — run `dvc repro` to produce it") from None


def write_manifest(path: Path, frame: pd.DataFrame, task: str, extra: tuple[str, ...] = ()) -> None:
    """Write a manifest with the task's columns (+ `extra`), in a byte-stable format."""
    frame = frame[COLUMNS[task] + list(extra)]
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))


def read_manifest(path: Path, task: str) -> pd.DataFrame:
    """Read and check a manifest written by `write_manifest`."""
    try:
        frame = pd.read_csv(
            path, dtype={"path": str, "label": str, "md5": str, "group": str, "split": str}
        )
    except FileNotFoundError:
        raise UserError(f"{path}: manifest not found — run `dvc repro` for its stage") from None
    missing = [c for c in COLUMNS[task] if c not in frame.columns]
    if missing:
        raise UserError(f"{path}: missing columns {missing} — re-run the stage that wrote it")
    bad = sorted(set(frame["split"]) - set(SPLITS))
    if bad:
        raise UserError(f"{path}: unknown split values {bad}; valid: {', '.join(SPLITS)}")
    return frame


def input_size(setting: int | str, frame: pd.DataFrame) -> int:
    """The model's input side in pixels: `setting`, or for `auto` from the images as the user
    brought them. Classification: their median short side, rounded down to a multiple of 8,
    within AUTO_SIZE_RANGE. Detection (a manifest with boxes): the side at which the small
    objects span SMALL_OBJECT_PIXELS (`detection_size`).

    The user's images are the manifest rows that point at the user's files: every row, or in
    an augmented manifest the rows whose `path` is their `source`. `augment` and the training
    stage so reach the same size, one from the rows it passes through, one from its input.
    """
    if setting != "auto":
        return int(setting)
    rows = frame[frame["path"] == frame["source"]] if "source" in frame.columns else frame
    if rows.empty:
        raise UserError(
            "image_size: auto needs images as the user brought them in the manifest (keep_original:"
            " true, or val/test rows) — set keep_original: true or a size in pixels"
        )
    if "present" in rows.columns:
        return detection_size(rows)
    short = float(rows[["width", "height"]].min(axis=1).median())
    low, high = AUTO_SIZE_RANGE
    return int(min(high, max(low, short // 8 * 8)))


def detection_size(rows: pd.DataFrame) -> int:
    """The smallest multiple of 8 within AUTO_DETECTION_RANGE at which the boxes' shorter
    sides (as shares of the frame, which is resized to a square) reach SMALL_OBJECT_PIXELS at
    their SMALL_OBJECT_QUANTILE: a detector cannot find what spans a few pixels, and every
    doubling of the side costs four times the compute. Small boxes (median under
    SMALL_BOXES_AREA) get at least SMALL_BOXES_SIDE, or the frames' median longer side when
    that is less. The training rows' boxes decide (all rows' when none is there:
    `keep_original: false`); no boxes: the range's low end."""
    low, high = AUTO_DETECTION_RANGE
    if "split" in rows.columns and (rows["split"] == "train").any():
        rows = rows[rows["split"] == "train"]
    boxes = rows[rows["present"] == 1]
    if boxes.empty:
        return low
    sides = np.minimum(boxes["x2"] - boxes["x1"], boxes["y2"] - boxes["y1"])
    small = float(np.quantile(sides.to_numpy(dtype=float), SMALL_OBJECT_QUANTILE))
    # Rounded before the ceiling: a side of 0.35 - 0.2 (0.1499…) asks for 80.00000000000001
    # px, not 88.
    needed = round(SMALL_OBJECT_PIXELS / max(small, 1e-6), 6)
    side = int(min(high, max(low, np.ceil(needed / 8) * 8)))
    if median_box_area(boxes) < SMALL_BOXES_AREA:
        longer = float(boxes[["width", "height"]].max(axis=1).median())
        side = max(side, int(min(SMALL_BOXES_SIDE, np.ceil(longer / 8) * 8)))
    return side


def median_box_area(boxes: pd.DataFrame) -> float:
    """The median share of its frame's area that a box covers (rows that hold an object)."""
    return float(((boxes["x2"] - boxes["x1"]) * (boxes["y2"] - boxes["y1"])).median())
