"""Every kind of bad input at once: split, augment and a 1-epoch training through the stage
CLIs on a dataset holding each case. Every good file is used, every bad file is reported
with its reason, nothing prints a traceback, and the dataset is left exactly as it was."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.conftest import ROOT, labelme, write_image, write_params

pytestmark = pytest.mark.slow


def tree_digest(root: Path) -> dict[str, str]:
    """Every entry below root: file content hashes and link targets (links not followed)."""
    digest = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_symlink():
            digest[key] = "link:" + os.readlink(path)
        elif path.is_file():
            digest[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[key] = "dir"
    return digest


def good_images(folder: Path, count: int, rng, start: int = 0) -> list[str]:
    return [
        write_image(folder / f"img_{start + i:02d}.png", rng, (12, 10)).as_posix()
        for i in range(count)
    ]


def classification_zoo(root: Path) -> tuple[set[str], dict[str, str]]:
    """A class-folder dataset with every awkward case; (good paths, bad path → reason)."""
    rng = np.random.default_rng(7)
    good = set(good_images(root / "cat", 10, rng) + good_images(root / "dog", 10, rng))
    cat = root / "cat"
    Image.fromarray(np.full((9, 11), 40000, np.uint16)).save(cat / "deep 16-bit.png")
    Image.fromarray(rng.integers(0, 255, (9, 9), dtype=np.uint8), "L").save(cat / "grey.png")
    write_image(cat / "alpha.png", rng, (10, 10), mode="RGBA")
    Image.fromarray(rng.integers(0, 255, (10, 10), dtype=np.uint8), "L").convert("P").save(
        cat / "palette.gif"
    )
    Image.new("CMYK", (12, 12), (10, 200, 30, 0)).save(cat / "print.jpg")
    rotated = Image.new("RGB", (16, 8), "red")
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(cat / "rotated.jpg", exif=exif)
    write_image(cat / "UPPER.JPG", rng, (14, 12), fmt="JPEG")
    write_image(cat / "name with spaces ünïcode.png", rng, (12, 12))
    write_image(cat / "nested/deeper/inside.png", rng, (12, 12))
    Image.fromarray(rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8)).save(cat / "large.jpg")
    (root / "dog/link.png").symlink_to(root / "dog/img_00.png")
    good |= {
        (cat / n).as_posix()
        for n in (
            "deep 16-bit.png",
            "grey.png",
            "alpha.png",
            "palette.gif",
            "print.jpg",
            "rotated.jpg",
            "UPPER.JPG",
            "name with spaces ünïcode.png",
            "nested/deeper/inside.png",
            "large.jpg",
        )
    } | {(root / "dog/link.png").as_posix()}
    bad = {}
    (cat / "empty.jpg").write_bytes(b"")
    bad["cat/empty.jpg"] = "not an image file"
    data = (root / "dog/img_01.png").read_bytes()
    (cat / "cut.png").write_bytes(data[: len(data) // 2])
    bad["cat/cut.png"] = "truncated or corrupt image"
    (cat / "page.png").write_text("<html><body>Not found</body></html>")
    bad["cat/page.png"] = "not an image file"
    (cat / "notes.txt").write_text("shot on a phone")
    bad["cat/notes.txt"] = "not an image (.txt)"
    (cat / "Thumbs.db").write_bytes(b"\x00" * 64)
    bad["cat/Thumbs.db"] = "not an image (.db)"
    write_image(cat / "tiny.png", rng, (5, 5))
    bad["cat/tiny.png"] = "too small (5×5 px)"
    (cat / "dangling.png").symlink_to(root / "nowhere.png")
    bad["cat/dangling.png"] = "broken link"
    write_image(root / "loose.png", rng)
    bad["loose.png"] = "not inside a class folder"
    (cat / ".DS_Store").write_bytes(b"\x00\x01")  # hidden: counted, not reported one by one
    write_image(root / ".cache/cat/hidden.png", rng)
    (root / "empty_class").mkdir()
    return good, {(root / k).as_posix(): v for k, v in bad.items()}


def detection_zoo(root: Path) -> tuple[dict[str, int], dict[str, str]]:
    """labelme in images/ + labels/ with every awkward case; (good path → present, bad)."""
    rng = np.random.default_rng(8)
    images, labels = root / "images", root / "labels"
    present: dict[str, int] = {}

    def image(name: str, doc: dict | str | None, positive: int | None) -> None:
        path = write_image(images / f"{name}.jpg", rng, (40, 30), fmt="JPEG")
        if doc is not None:
            labels.mkdir(parents=True, exist_ok=True)
            text = doc if isinstance(doc, str) else json.dumps(doc)
            (labels / f"{name}.json").write_text(text)
        if positive is not None:
            present[path.as_posix()] = positive

    for i in range(12):
        image(f"face_{i:02d}", labelme([[30, 20], [10, 5]]), 1)  # corners bottom-right first
    for i in range(4):
        image(f"empty_{i:02d}", None, 0)  # no JSON: a negative
    image("no_shapes", {**labelme([[0, 0], [1, 1]]), "shapes": []}, 0)
    image("polygon", labelme([[5, 5], [20, 8], [12, 25]], shape_type="polygon"), 1)
    image("circle", labelme([[20, 15], [25, 15]], shape_type="circle"), 1)
    two = labelme([[1, 1], [5, 5]])
    two["shapes"].append(
        {"label": "face", "points": [[10, 10], [35, 28]], "shape_type": "rectangle"}
    )
    image("two_faces", two, 1)
    image("outside", labelme([[-10, -5], [30, 50]]), 1)
    image("elsewhere", {**labelme([[5, 5], [20, 20]]), "imagePath": "../../../etc/passwd"}, 1)
    image("other_size", labelme([[10, 10], [70, 50]], width=80, height=60), 1)
    embedded = base64.b64encode((images / "face_00.jpg").read_bytes()).decode()
    image("embedded", {**labelme([[5, 5], [20, 20]]), "imageData": embedded}, 1)
    bad = {}
    image("broken_json", "{not json", None)
    bad["images/broken_json.jpg"] = "invalid JSON"
    image("no_keys", {"version": "5.2.1"}, None)
    bad["images/no_keys.jpg"] = "no 'shapes' list"
    image("flat_box", labelme([[10, 10], [10, 20]]), None)
    bad["images/flat_box.jpg"] = "box has no area inside the image"
    image("one_point", labelme([[10, 10]]), None)
    bad["images/one_point.jpg"] = "has 1 points, a rectangle needs 2"
    (labels / "orphan.json").write_text(json.dumps(labelme([[1, 1], [9, 9]])))
    bad["labels/orphan.json"] = "label file without a matching image"
    (labels / "only_data.json").write_text(
        json.dumps({**labelme([[1, 1], [9, 9]]), "imageData": embedded})
    )
    bad["labels/only_data.json"] = "embedded imageData but no image file"
    return present, {(root / k).as_posix(): v for k, v in bad.items()}


def run_stage(module: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1"}
    command = [sys.executable, "-m", f"stages.{module}", *args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{module} {args} exited {result.returncode}:\n{output[-3000:]}"
    assert "Traceback" not in output, output[-3000:]
    return result


def assert_report(task: str, cwd: Path, good, bad: dict[str, str], root: Path) -> pd.DataFrame:
    """The manifest holds exactly the good files; the report every bad one with its reason
    (both name them relative to the dataset folder `root`)."""
    manifest = pd.read_csv(cwd / f"data/split/{task}.csv")
    manifest["path"] = [(root / path).as_posix() for path in manifest["path"]]
    assert set(manifest["path"]) == set(good), set(manifest["path"]) ^ set(good)
    report = json.loads((cwd / f"reports/data/{task}.json").read_text())
    skipped = {(root / e["path"]).as_posix(): e["reason"] for e in report["skipped"]["files"]}
    assert set(skipped) == set(bad), set(skipped) ^ set(bad)
    for path, reason in bad.items():
        assert reason in skipped[path], (path, skipped[path])
    assert report["skipped"]["count"] == len(bad)
    return manifest


def test_every_bad_input_is_reported_and_every_good_one_trains(tmp_path):
    data, work = tmp_path / "user_data", tmp_path / "project"
    good_cls, bad_cls = classification_zoo(data / "classes")
    present, bad_det = detection_zoo(data / "faces")
    before = tree_digest(data)
    work.mkdir()
    write_params(
        work,
        data={"classification": str(data / "classes"), "detection": str(data / "faces")},
        base={"seed": 1, "image_size": {"classification": 16, "detection": 32}},
        split={"small_classes": "drop"},
        train_classifier={"epochs": 1, "batch_size": 8},
        train_detector={"epochs": 1, "batch_size": 8},
    )

    for task in ("classification", "detection"):
        run_stage("split", task, cwd=work)
        run_stage("augment", task, cwd=work)
    manifest = assert_report("classification", work, good_cls, bad_cls, data / "classes")
    report = json.loads((work / "reports/data/classification.json").read_text())
    assert report["dropped_classes"] == ["empty_class"] and report["hidden_files_ignored"] == 2
    detection = assert_report("detection", work, present, bad_det, data / "faces")
    assert dict(zip(detection["path"], detection["present"], strict=True)) == present
    notes = json.loads((work / "reports/data/detection.json").read_text())["notes"]
    for note in (
        "several shapes: kept the largest",
        "box outside the image: clipped",
        "polygon: used its bounding box",
        "circle: used its bounding box",
        "imageWidth/imageHeight differ from the image file: scaled by the JSON",
    ):
        assert notes.get(note, 0) >= 1, (note, notes)
    elsewhere = detection[detection["path"].str.endswith("elsewhere.jpg")]
    assert elsewhere["path"].item().startswith((data / "faces/images").as_posix())
    assert manifest["label"].value_counts().to_dict() == {"cat": 20, "dog": 11}

    run_stage("train_classifier", cwd=work)
    run_stage("train_detector", cwd=work)
    assert (work / "models/classifier.keras").exists() and (work / "models/detector.keras").exists()
    assert tree_digest(data) == before  # the user's data: not one byte written, moved or deleted
