"""Reading a user's dataset folder into manifest rows, with every unusable file accounted for.

Classification: `<root>/<class>/<image>` (nested folders below a class belong to it).
Detection: `<root>/images/*` + `<root>/labels/*.json`, or labelme JSON beside each image;
an image without JSON, or whose JSON has no usable shape, is a negative.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from stages.shared.core.cli import UserError
from stages.shared.data.images import (
    ImageError,
    check_codec,
    file_md5,
    image_facts,
    is_hidden,
    is_image_file,
    skip_reason,
)
from stages.shared.data.labelme import LabelError, find_label, read_label


@dataclass
class Scan:
    """Usable rows, skipped files with reasons, and counts of adjustments made."""

    rows: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    notes: Counter = field(default_factory=Counter)
    hidden: int = 0

    def skip(self, path: Path, reason: str) -> None:
        self.skipped.append({"path": path.as_posix(), "reason": reason})


def check_root(root: Path, key: str) -> None:
    """Stop with one line if a dataset directory named in params is unusable."""
    if not root.exists():
        raise UserError(f"{key}: '{root}' does not exist — create it or set {key} in params.yaml")
    if not root.is_dir():
        raise UserError(f"{key}: '{root}' is a file, not a folder — point {key} at a folder")


def list_files(root: Path, scan: Scan) -> list[Path]:
    """Every visible file below root, sorted; hidden files and folders are only counted."""
    files = []
    for path in sorted(root.rglob("*")):
        if is_hidden(path, root):
            scan.hidden += path.is_file()
        elif path.is_file():
            files.append(path)
        elif path.is_symlink():
            # rglob does not enter linked folders; a dangling link points nowhere.
            what = "link to a folder (not followed)" if path.is_dir() else "broken link"
            scan.skip(path, f"{what} — copy or link the files themselves")
    return files


def inspect(path: Path, scan: Scan, fingerprint: bool):
    """The image's facts, or None with the file skipped and its reason recorded; a missing
    codec stops the stage with one line naming the package."""
    check_codec(path)
    try:
        facts = image_facts(path, fingerprint)
    except ImageError as err:
        scan.skip(path, str(err))
        return None
    if facts.frames > 1:
        scan.notes["multi-frame file: first frame used"] += 1
    return facts


def scan_classification(
    root: Path, key: str = "data.classification", fingerprint: bool = False
) -> tuple[Scan, list[str]]:
    """Rows (path, label, md5, phash) for every decodable image, and all class names (even
    empty); `phash` is the perceptual hash with `fingerprint`, else None."""
    check_root(root, key)
    scan = Scan()
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for path in tqdm(list_files(root, scan), desc=f"scan {root}", unit="file", leave=False):
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            scan.skip(path, "not inside a class folder — move it into <root>/<class>/")
        elif not is_image_file(path):
            scan.skip(path, skip_reason(path))
        else:
            facts = inspect(path, scan, fingerprint)
            if facts is None:
                continue
            row = {"path": path.as_posix(), "label": rel.parts[0], "md5": file_md5(path)}
            width, height = facts.size
            scan.rows.append({**row, "width": width, "height": height, "phash": facts.phash})
    return scan, classes


def scan_detection(root: Path, key: str = "data.detection", fingerprint: bool = False) -> Scan:
    """Rows (path, present, x1..y2, md5, phash) for every decodable image; orphan labels
    skipped; `phash` is the perceptual hash with `fingerprint`, else None."""
    check_root(root, key)
    scan = Scan()
    files = list_files(root, scan)
    used_labels: set[Path] = set()
    for path in tqdm(files, desc=f"scan {root}", unit="file", leave=False):
        if path.suffix.lower() == ".json":
            continue
        if not is_image_file(path):
            scan.skip(path, skip_reason(path))
            continue
        facts = inspect(path, scan, fingerprint)
        if facts is None:
            continue
        size, phash = facts.size, facts.phash
        label_path = find_label(path, root)
        box = None
        if label_path is not None:
            used_labels.add(label_path)
            try:
                label = read_label(label_path, size)
            except LabelError as err:
                scan.skip(path, f"{label_path.as_posix()}: {err}")
                continue
            scan.notes.update(label.notes)
            box = label.box
        if box is None:
            scan.notes["negative: no JSON" if label_path is None else "negative: no shape"] += 1
        row = {"path": path.as_posix(), "present": int(box is not None), "md5": file_md5(path)}
        row.update(width=size[0], height=size[1], phash=phash)
        row.update(zip(("x1", "y1", "x2", "y2"), box or (0.0, 0.0, 0.0, 0.0), strict=True))
        scan.rows.append(row)
    for path in files:
        if path.suffix.lower() == ".json" and path not in used_labels:
            scan.skip(path, orphan_reason(path))
    return scan


def orphan_reason(path: Path) -> str:
    """Why a label file is skipped when no image of its name is found."""
    try:
        embedded = bool(json.loads(path.read_text(encoding="utf-8")).get("imageData"))
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        embedded = False
    if embedded:
        return (
            "label with embedded imageData but no image file of the same name — save that"
            " image beside the JSON under the same name, or delete the JSON"
        )
    return "label file without a matching image — add the image or delete it"
