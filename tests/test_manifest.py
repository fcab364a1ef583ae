"""manifest.py: the CSV format stages hand each other, atomic writes and the checks on reading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stages.shared.core.cli import UserError
from stages.shared.data.manifest import (
    atomic_write_text,
    input_size,
    read_json,
    read_manifest,
    write_json,
    write_manifest,
)


def detection_rows() -> pd.DataFrame:
    # Columns shuffled and one extra column, as a stage's frame may hold them.
    return pd.DataFrame(
        {
            "split": ["train", "test"],
            "md5": ["00ab", "0f00"],  # leading zeros must survive
            "group": ["007", "12"],
            "path": ["a/one.jpg", "b/two.png"],
            "present": [1, 0],
            "x1": [0.1234567, 0.0],
            "y1": [0.25, 0.0],
            "x2": [0.5, 0.0],
            "y2": [0.75, 0.0],
            "width": [640, 480],
            "height": [480, 640],
            "note": ["x", "y"],
        }
    )


def test_a_manifest_is_written_in_the_task_column_order_byte_stable(tmp_path):
    path = tmp_path / "deep" / "dir" / "manifest.csv"  # the folder is created
    write_manifest(path, detection_rows(), "detection", extra=("note",))
    raw = path.read_bytes()
    assert b"\r\n" not in raw and raw.endswith(b"\n")
    lines = raw.decode().splitlines()
    assert lines[0] == "path,present,x1,y1,x2,y2,md5,width,height,group,split,note"
    assert lines[1] == "a/one.jpg,1,0.123457,0.250000,0.500000,0.750000,00ab,640,480,007,train,x"
    write_manifest(
        tmp_path / "again.csv", detection_rows().iloc[::-1].iloc[::-1], "detection", ("note",)
    )
    assert (tmp_path / "again.csv").read_bytes() == raw
    without_extra = tmp_path / "plain.csv"
    write_manifest(without_extra, detection_rows(), "detection")
    assert without_extra.read_text().splitlines()[0].endswith(",group,split")


def test_reading_keeps_text_columns_as_text(tmp_path):
    path = tmp_path / "manifest.csv"
    write_manifest(path, detection_rows(), "detection")
    frame = read_manifest(path, "detection")
    assert frame["md5"].tolist() == ["00ab", "0f00"]
    assert frame["group"].tolist() == ["007", "12"]
    rows = pd.DataFrame(
        {
            "path": ["p.jpg"],
            "label": ["1"],
            "md5": ["0123"],
            "width": [3],
            "height": [2],
            "group": ["0"],
            "split": ["val"],
        }
    )
    write_manifest(tmp_path / "c.csv", rows, "classification")
    read = read_manifest(tmp_path / "c.csv", "classification")
    assert read.loc[0, "label"] == "1" and read.loc[0, "md5"] == "0123"
    assert read.loc[0, "path"] == "p.jpg" and read.loc[0, "split"] == "val"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, r"manifest\.csv: manifest not found — run `dvc repro` for its stage"),
        ("path,label,md5\n", r"missing columns \['width', 'height', 'group', 'split'\]"),
        (
            "path,label,md5,width,height,group,split\na,b,c,1,1,g,train\nd,e,f,1,1,g,tset\n",
            r"unknown split values \['tset'\]; valid: train, val, test",
        ),
    ],
)
def test_a_bad_manifest_is_one_line_naming_it(tmp_path, content, message):
    path = tmp_path / "manifest.csv"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError, match=message) as error:
        read_manifest(path, "classification")
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_json_keeps_the_key_order_and_ends_with_a_newline(tmp_path):
    path = tmp_path / "out" / "metrics.json"
    write_json(path, {"zeta": 1, "alpha": [1, 2]})
    text = path.read_text()
    assert text == '{\n  "zeta": 1,\n  "alpha": [\n    1,\n    2\n  ]\n}\n'
    assert json.loads(text) == {"zeta": 1, "alpha": [1, 2]}
    assert read_json(path) == {"zeta": 1, "alpha": [1, 2]}


def test_a_missing_report_says_to_run_the_pipeline_in_one_line(tmp_path):
    path = tmp_path / "reports" / "eval" / "detector" / "metrics.json"
    wanted = r"metrics\.json: not found — run `dvc repro` to produce it$"
    with pytest.raises(UserError, match=wanted):
        read_json(path)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "report.txt"
    atomic_write_text(path, "old\r\nline")
    assert path.read_bytes() == b"old\r\nline"  # written as given, no newline translation

    temporaries = []

    def broken_replace(source, target):
        temporaries.append((Path(source), Path(target)))
        raise OSError("disk full")

    monkeypatch.setattr("stages.shared.data.manifest.os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_text(path, "new")
    assert path.read_bytes() == b"old\r\nline"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.txt"]
    # Written beside the target (a rename within one file system is atomic), hidden from
    # anyone listing the folder, and marked as temporary.
    ((source, target),) = temporaries
    assert source.parent == tmp_path and target == path
    assert source.name.startswith(".report.txt.") and source.name.endswith(".tmp")
    monkeypatch.undo()
    atomic_write_text(path, "ünïcode")
    assert path.read_bytes() == "ünïcode".encode()


def sized(sides: list[tuple[int, int]], **columns) -> pd.DataFrame:
    paths = [f"img_{i}.png" for i in range(len(sides))]
    return pd.DataFrame(
        {"path": paths, "width": [w for w, _ in sides], "height": [h for _, h in sides]} | columns
    )


def test_auto_input_size_is_the_median_short_side_in_multiples_of_8_within_32_to_64():
    # Short sides 50, 41, 58, 120, 44 (width or height, never the long one): median 50 -> 48.
    # The long sides' median (150) or the widths' (58) would give 64 and 56.
    frame = sized([(50, 150), (200, 41), (58, 75), (120, 300), (160, 44)])
    assert input_size("auto", frame) == 48
    assert input_size(40, frame) == 40  # a number is the size, whatever the data
    assert input_size("auto", sized([(20, 30), (25, 12), (28, 40)])) == 32  # never below 32
    assert input_size("auto", sized([(400, 300), (500, 640), (90, 71)])) == 64  # nor above 64


def test_auto_input_size_counts_the_users_files_not_the_augmented_copies():
    # Augmented copies (path != source) are already at some model size: 3 copies at 32 px
    # would pull the median of all rows down to 32; the user's own images say 56.
    users = sized([(56, 80), (60, 57), (81, 56)])
    users["source"] = users["path"]
    copies = sized([(32, 32)] * 3)
    copies["source"] = users["path"]
    copies["path"] = [f"copy_{i}.png" for i in range(3)]
    assert input_size("auto", pd.concat([users, copies])) == 56
    expected = (
        r"^image_size: auto needs images as the user brought them in the manifest "
        r"\(keep_original: true, or val/test rows\) — set keep_original: true or a size in pixels$"
    )
    with pytest.raises(UserError, match=expected):
        input_size("auto", copies)


def boxed(sides: list[float], split="train", present=1) -> pd.DataFrame:
    """Detection rows whose boxes have these shorter sides (the other side 0.5)."""
    frame = sized([(160, 120)] * len(sides), split=split, present=present)
    frame["x1"], frame["y1"] = 0.1, 0.2
    frame["x2"] = frame["x1"] + np.array(sides)
    frame["y2"] = frame["y1"] + 0.5
    return frame


def test_auto_detection_size_gives_the_small_objects_12_pixels_in_multiples_of_8():
    # Shorter sides 0.15 (widths; heights are 0.5): 12 px need a side of 80.
    assert input_size("auto", boxed([0.15] * 10)) == 80
    # The 10 % quantile decides: two tiny boxes in 20 (10 %) are interpolated, not the floor.
    sides = [0.01, 0.01] + [0.15] * 18  # quantile at index 1.9: 0.01 + 0.9 · 0.14 = 0.136
    assert input_size("auto", boxed(sides)) == 96  # 12 / 0.136 = 88.2 -> 96
    assert input_size("auto", boxed([0.01] + [0.15] * 19)) == 80  # one in 20: under 10 %
    assert input_size("auto", boxed([0.07] * 10)) == 176  # 171.4 wanted: small faces
    assert input_size("auto", boxed([0.05] * 10)) == 192  # 240 wanted: capped at 192
    assert input_size("auto", boxed([0.5] * 10)) == 64  # 24 wanted: never below 64
    assert input_size(72, boxed([0.05] * 10)) == 72  # a number is the size
    wide = boxed([0.16] * 10)  # boxes turned: 0.5 wide, 0.16 high (12 / 0.16 = 75 -> 80)
    wide["x2"], wide["y2"] = wide["x1"] + 0.5, wide["y1"] + 0.16
    assert input_size("auto", wide) == 80
    # A side that is 0.15 up to float error (0.35 - 0.2 = 0.1499…) still needs 80, not 88.
    wide["y1"], wide["y2"] = 0.2, 0.35
    assert input_size("auto", wide) == 80
    # The tolerance is a millionth of a pixel: 4e-7 px over 80 is float error, 1e-4 px is not.
    wide["y1"], wide["y2"] = 0.0, 12 / (80 + 4e-7)
    assert input_size("auto", wide) == 80
    wide["y2"] = 12 / (80 + 1e-4)
    assert input_size("auto", wide) == 88


def test_auto_detection_size_gives_small_boxes_256_px_or_their_frames_longer_side():
    def frames(sides: list[float], size: tuple[int, int], height: float = 0.5) -> pd.DataFrame:
        frame = boxed(sides)
        frame["width"], frame["height"] = size
        frame["y2"] = frame["y1"] + height
        return frame

    # shorter side 0.15 (80 px by the quantile), area 0.15 · 0.15 = 2.25 % of the frame: small
    assert input_size("auto", frames([0.15] * 10, (320, 240), height=0.15)) == 256
    assert input_size("auto", frames([0.15] * 10, (400, 300), height=0.15)) == 256
    assert input_size("auto", frames([0.15] * 10, (200, 150), height=0.15)) == 200  # its side
    assert input_size("auto", frames([0.15] * 10, (196, 150), height=0.15)) == 200  # up to 8
    assert input_size("auto", frames([0.15] * 10, (320, 240), height=0.17)) == 80  # 2.55 %
    # boxes like the coins' (a median just under 5 %, evaluate's "small" slice) keep the quantile
    assert input_size("auto", frames([0.15] * 10, (320, 240), height=0.333)) == 80
    # the median decides: two of five boxes of 13.5 % do not make the others large
    mixed = frames([0.15] * 3 + [0.9] * 2, (320, 240), height=0.15)
    assert input_size("auto", mixed) == 256
    # nor does one small box in five make them small
    mixed = frames([0.15] + [0.9] * 4, (320, 240), height=0.15)
    assert input_size("auto", mixed) == 80  # the quantile's side (12 px on a 0.15 side)
    # the quantile's side stays when it asks more than the frames' own side
    assert input_size("auto", frames([0.05] * 10, (100, 80), height=0.15)) == 192


def test_auto_detection_size_reads_the_training_objects_only():
    train = boxed([0.15] * 10)
    tiny_test = boxed([0.02] * 10, split="test")  # held out: must not steer the model
    negatives = boxed([0.0] * 10, present=0)  # no object, no size
    assert input_size("auto", pd.concat([train, tiny_test, negatives])) == 80
    assert input_size("auto", tiny_test) == 192  # no training rows (keep_original: false)
    assert input_size("auto", negatives) == 64  # no boxes: the low end
