"""datasets.py: a user's folder read into rows, every file that is not used listed with its
reason, hidden files counted, and labels found beside an image or mirrored in labels/."""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path

import imagehash
import numpy as np
import pytest
import tqdm
from PIL import Image

from stages.shared.core.cli import UserError
from stages.shared.data import datasets
from stages.shared.data.datasets import orphan_reason, scan_classification, scan_detection
from tests.conftest import labelme, write_image


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def two_frame_gif(path: Path) -> None:
    pages = [Image.new("RGB", (14, 11), "red"), Image.new("RGB", (14, 11), "blue")]
    pages[0].save(path, save_all=True, append_images=pages[1:], duration=100)


@pytest.fixture
def class_folders(tmp_path) -> Path:
    """Two classes (one image nested a folder deeper), an empty class, and each kind of file
    that is not used."""
    rng = np.random.default_rng(3)
    root = tmp_path / "ds"
    write_image(root / "cat/one.png", rng, (12, 10))
    write_image(root / "cat/deeper/two.png", rng, (9, 15))
    write_image(root / "dog/three.png", rng, (20, 8))
    two_frame_gif(root / "dog/pages.gif")
    (root / "empty").mkdir()
    write_image(root / ".cache/four.png", rng)  # a hidden folder: neither class nor row
    write_image(root / "cat/.five.png", rng)
    write_image(root / "loose.png", rng)
    (root / "cat/notes.txt").write_text("hello")
    (root / "cat/layers.psd").write_bytes(b"8BPS")
    (root / "cat/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    write_image(root / "dog/tiny.png", rng, (7, 30))
    os.symlink(tmp_path / "nowhere.png", root / "dog/gone.png")
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", root / "dog/linked")
    return root


def test_class_folders_give_rows_classes_and_the_reason_for_every_file_left_out(class_folders):
    root = class_folders
    scan, classes = scan_classification(root)
    assert classes == ["cat", "dog", "empty"]
    expected = [
        ("cat/deeper/two.png", "cat", 9, 15),
        ("cat/one.png", "cat", 12, 10),
        ("dog/pages.gif", "dog", 14, 11),
        ("dog/three.png", "dog", 20, 8),
    ]
    assert scan.rows == [
        {
            "path": (root / rel).as_posix(),
            "label": label,
            "md5": md5(root / rel),
            "width": width,
            "height": height,
            "phash": None,
        }
        for rel, label, width, height in expected
    ]
    reasons = {Path(s["path"]).relative_to(root).as_posix(): s["reason"] for s in scan.skipped}
    assert reasons == {
        "loose.png": "not inside a class folder — move it into <root>/<class>/",
        "cat/notes.txt": "not an image (.txt)",
        "cat/layers.psd": "unsupported format (.psd)",
        "cat/broken.png": "not an image file (unrecognised format)",
        "dog/tiny.png": "too small (7×30 px); images need 8 px a side or more",
        "dog/gone.png": "broken link — copy or link the files themselves",
        "dog/linked": "link to a folder (not followed) — copy or link the files themselves",
    }
    assert scan.hidden == 2
    assert scan.notes == {"multi-frame file: first frame used": 1}


def test_fingerprints_are_the_perceptual_hash_of_each_image(class_folders):
    scan, _ = scan_classification(class_folders, fingerprint=True)
    for row in scan.rows:
        with Image.open(row["path"]) as img:
            assert row["phash"] == str(imagehash.phash(img.convert("RGB")))
    assert len({row["phash"] for row in scan.rows}) == len(scan.rows) == 4


@pytest.mark.parametrize("scan", [scan_classification, scan_detection])
def test_a_missing_or_file_root_is_one_line_naming_the_param(tmp_path, scan):
    with pytest.raises(UserError, match=r"^data\.x: '.*/none' does not exist — create it or set"):
        scan(tmp_path / "none", key="data.x")
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match=r"^data\.x: '.*/file' is a file, not a folder — point"):
        scan(tmp_path / "file", key="data.x")


def test_the_default_keys_name_the_params_of_each_task(tmp_path):
    with pytest.raises(UserError, match=r"set data\.classification in params\.yaml$"):
        scan_classification(tmp_path / "none")
    with pytest.raises(UserError, match=r"point data\.detection at a folder$"):
        scan_detection(Path(__file__))


def write_json(path: Path, doc) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))


@pytest.fixture
def frames(tmp_path) -> Path:
    """Frames 16×12 with labels mirrored in labels/ or beside the image, negatives, bad and
    orphan labels."""
    rng = np.random.default_rng(5)
    root = tmp_path / "faces"
    for name in ("boxed", "plain", "bare", "empty", "garbled", "noted"):
        write_image(root / f"images/{name}.png", rng, (16, 12))
    write_json(root / "labels/boxed.json", labelme([[12, 9], [4, 6]], 16, 12))
    write_json(root / "labels/empty.json", {"shapes": [], "imageWidth": 16, "imageHeight": 12})
    (root / "labels/garbled.json").write_text("{not json")
    write_json(root / "labels/noted.json", labelme([[-4, 3], [8, 12]], 16, 12, "polygon"))
    write_image(root / "side/beside.png", rng, (16, 12))
    write_json(root / "side/beside.json", labelme([[2, 3], [10, 9]], 16, 12))
    write_json(root / "labels/orphan.json", labelme([[1, 1], [5, 5]], 16, 12))
    write_json(root / "labels/pasted.json", {**labelme([[1, 1], [5, 5]]), "imageData": "iVBO"})
    (root / "labels/list.json").write_text("[]")
    (root / "readme.md").write_text("# frames")
    write_image(root / "images/.thumb.png", rng)
    (root / "images/broken.png").write_bytes(b"GIF89a")  # sorts before images that follow
    two_frame_gif(root / "images/pages.gif")
    return root


def test_detection_frames_give_boxes_negatives_and_the_reason_for_every_file_left_out(frames):
    root = frames
    scan = scan_detection(root)
    rows = {Path(r["path"]).relative_to(root).as_posix(): r for r in scan.rows}
    boxes = {k: (r["present"], r["x1"], r["y1"], r["x2"], r["y2"]) for k, r in rows.items()}
    assert boxes == {
        "images/bare.png": (0, 0.0, 0.0, 0.0, 0.0),
        "images/boxed.png": (1, 0.25, 0.5, 0.75, 0.75),
        "images/empty.png": (0, 0.0, 0.0, 0.0, 0.0),
        "images/noted.png": (1, 0.0, 0.25, 0.5, 1.0),
        "images/pages.gif": (0, 0.0, 0.0, 0.0, 0.0),
        "images/plain.png": (0, 0.0, 0.0, 0.0, 0.0),
        "side/beside.png": (1, 0.125, 0.25, 0.625, 0.75),
    }
    assert list(rows) == sorted(rows)
    for rel, row in rows.items():
        size = (14, 11) if rel.endswith(".gif") else (16, 12)
        assert (row["md5"], row["width"], row["height"]) == (md5(root / rel), *size)
        assert row["phash"] is None
    reasons = {Path(s["path"]).relative_to(root).as_posix(): s["reason"] for s in scan.skipped}
    garbled = (root / "labels/garbled.json").as_posix()
    assert reasons == {
        "images/garbled.png": reasons["images/garbled.png"],
        "images/broken.png": "not an image file (unrecognised format)",
        "labels/orphan.json": "label file without a matching image — add the image or delete it",
        "labels/list.json": "label file without a matching image — add the image or delete it",
        "labels/pasted.json": "label with embedded imageData but no image file of the same name"
        " — save that image beside the JSON under the same name, or delete the JSON",
        "readme.md": "not an image (.md)",
    }
    assert reasons["images/garbled.png"].startswith(f"{garbled}: invalid JSON (")
    assert scan.notes == {
        "negative: no JSON": 3,
        "negative: no shape": 1,
        "polygon: used its bounding box": 1,
        "box outside the image: clipped": 1,
        "multi-frame file: first frame used": 1,
    }
    assert scan.hidden == 1
    with_hashes = scan_detection(root, fingerprint=True)
    assert all(len(row["phash"]) == 16 for row in with_hashes.rows)


def test_a_label_that_is_not_json_text_is_an_orphan_without_embedded_image(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    assert orphan_reason(path).startswith("label file without a matching image")
    path.write_text('{"imageData": ""}')
    assert orphan_reason(path).startswith("label file without a matching image")
    path.write_text('{"imageData": "abc"}')
    assert orphan_reason(path).startswith("label with embedded imageData")


@pytest.mark.parametrize("scan", [scan_classification, scan_detection])
def test_a_scan_shows_a_progress_bar_of_files_and_clears_it(tmp_path, monkeypatch, capsys, scan):
    monkeypatch.setattr(datasets, "tqdm", functools.partial(tqdm.tqdm, disable=False))
    # No monitor thread: a thread left behind would hang the processes mutmut forks.
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)
    root = tmp_path / "photos"
    write_image(root / "cat/a.png", np.random.default_rng(0))
    scan(root)
    shown = capsys.readouterr().err
    drawn, cleared = shown.strip("\r").split("\r")
    assert drawn.startswith(f"scan {root}:   0%|") and drawn.endswith("| 0/1 [00:00<?, ?file/s]")
    assert shown.endswith("\r") and cleared.strip() == ""  # the bar does not stay on screen
