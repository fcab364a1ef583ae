"""labelme annotations: finding a JSON for an image and reading one object box from it.

Boxes come out as (x1, y1, x2, y2) normalised to [0, 1] with x1 < x2 and y1 < y2, whatever
order the annotator clicked the corners in. A detection image holds at most one object
(the FaceTracker design): with several usable shapes the largest is kept and noted.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Box = tuple[float, float, float, float]


class LabelError(Exception):
    """A label file that cannot be used; the message is the reason and the fix."""


@dataclass(frozen=True)
class Label:
    """What one labelme file says: a box (None = negative) and notes on what was adjusted."""

    box: Box | None
    notes: tuple[str, ...] = field(default=())


def find_label(image: Path, root: Path) -> Path | None:
    """The labelme JSON of `image`: beside it, or mirrored from `images/` into `labels/`."""
    beside = image.with_suffix(".json")
    if beside.is_file():
        return beside
    rel = image.relative_to(root)
    if rel.parts and rel.parts[0] == "images":
        mirrored = root.joinpath("labels", *rel.parts[1:]).with_suffix(".json")
        if mirrored.is_file():
            return mirrored
    return None


def read_label(path: Path, image_size: tuple[int, int]) -> Label:
    """Parse a labelme file for an image of `image_size` (width, height) pixels."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise LabelError(f"invalid JSON ({err}) — fix or delete the file") from None
    return parse_label(doc, image_size)


def parse_label(doc: Any, image_size: tuple[int, int]) -> Label:
    """The single object box of a parsed labelme document, normalised to [0, 1]."""
    if not isinstance(doc, dict) or not isinstance(doc.get("shapes"), list):
        raise LabelError("no 'shapes' list — not a labelme file; fix or delete it")
    notes: list[str] = []
    width, height = _frame_size(doc, image_size, notes)
    boxes = []
    for i, shape in enumerate(doc["shapes"]):
        box = _shape_box(shape, i, notes)
        if box is not None:
            boxes.append(box)
    if not boxes:
        return Label(None, tuple(notes))
    if len(boxes) > 1:
        notes.append("several shapes: kept the largest")
    x1, y1, x2, y2 = max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1]))
    box = _normalise((x1, y1, x2, y2), width, height, notes)
    return Label(box, tuple(notes))


def _frame_size(doc: dict, image_size: tuple[int, int], notes: list[str]) -> tuple[float, float]:
    """The pixel frame the points refer to: the JSON's own size if it gives one."""
    w, h = doc.get("imageWidth"), doc.get("imageHeight")
    given = isinstance(w, int | float) and isinstance(h, int | float)
    if given and 0 < w < math.inf and 0 < h < math.inf:
        if (int(w), int(h)) != tuple(image_size):
            notes.append("imageWidth/imageHeight differ from the image file: scaled by the JSON")
        return float(w), float(h)
    return float(image_size[0]), float(image_size[1])


def _shape_box(shape: Any, index: int, notes: list[str]) -> Box | None:
    """The pixel bounding box of one shape, or None for shapes that carry no area."""
    if not isinstance(shape, dict):
        raise LabelError(f"'shapes[{index}]' is not an object — fix or delete the file")
    kind = shape.get("shape_type") or "polygon"  # labelme writes null for polygons in old files
    points = shape.get("points")
    if (
        not isinstance(points, list)
        or not points
        or not all(
            isinstance(p, list | tuple)
            and len(p) == 2
            and all(isinstance(v, int | float) and v == v and abs(v) != float("inf") for v in p)
            for p in points
        )
    ):
        raise LabelError(f"'shapes[{index}].points' is not a list of [x, y] pairs — fix the file")
    xs = [float(p[0]) for p in points]
    ys = [float(p[1]) for p in points]
    if kind == "rectangle":
        if len(points) != 2:
            raise LabelError(
                f"'shapes[{index}].points' has {len(points)} points, a rectangle needs 2"
                " — fix or delete the file"
            )
    elif kind == "polygon":
        notes.append("polygon: used its bounding box")
    elif kind == "circle" and len(points) == 2:
        r = ((xs[1] - xs[0]) ** 2 + (ys[1] - ys[0]) ** 2) ** 0.5
        notes.append("circle: used its bounding box")
        return (xs[0] - r, ys[0] - r, xs[0] + r, ys[0] + r)
    else:
        notes.append(f"{kind} shape ignored (no area)")
        return None
    return (min(xs), min(ys), max(xs), max(ys))


def _normalise(box: Box, width: float, height: float, notes: list[str]) -> Box:
    """Clip a pixel box to the frame and scale it to [0, 1]."""
    x1, y1, x2, y2 = box
    clipped = (min(max(x1, 0), width), min(max(y1, 0), height))
    clipped += (min(max(x2, 0), width), min(max(y2, 0), height))
    if clipped != box:
        notes.append("box outside the image: clipped")
    cx1, cy1, cx2, cy2 = clipped
    if cx2 - cx1 < 1 or cy2 - cy1 < 1:
        raise LabelError("box has no area inside the image — fix or delete the shape")
    # Six decimals keep manifests byte-stable and are far below a pixel of any real image.
    nx1, ny1 = round(cx1 / width, 6), round(cy1 / height, 6)
    nx2, ny2 = round(cx2 / width, 6), round(cy2 / height, 6)
    if nx2 <= nx1 or ny2 <= ny1:
        raise LabelError("box is under a millionth of the image wide — fix or delete the shape")
    return (nx1, ny1, nx2, ny2)
