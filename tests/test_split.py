"""stages/split.py (with datasets.py): manifests, reports and one-line errors on user data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from stages import split
from stages.shared.cli import UserError
from tests.conftest import make_classification, make_detection, write_image, write_params


def run_split(task: str) -> tuple[pd.DataFrame, dict]:
    split.main([task])
    frame = pd.read_csv(f"data/split/{task}.csv")
    return frame, json.loads(open(f"reports/data/{task}.json").read())


def test_classification_manifest_and_report(workdir):
    root = make_classification(workdir / "ds", {"cat": 20, "dog": 10})
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / "dog" / "broken.png").write_bytes(b"")
    (root / "loose.png").write_bytes(b"")
    (root / ".hidden").mkdir()
    write_image(root / ".hidden" / "x.png", np.random.default_rng(0))
    shutil.copy(root / "cat" / "img_00.png", root / "cat" / "img_00 copy.png")
    write_params(workdir, data={"classification": "ds"})
    frame, report = run_split("classification")
    assert list(frame.columns) == ["path", "label", "md5", "split"]
    assert len(frame) == 31 and report["images"] == 31
    # 20 unique cats split 14/3/3; the duplicate adds one to whichever split its twin is in.
    unique_cats = frame[frame["label"] == "cat"].drop_duplicates("md5")["split"].value_counts()
    assert unique_cats.to_dict() == {"train": 14, "val": 3, "test": 3}
    assert sum(report["classes"]["cat"].values()) == 21
    assert report["duplicates"] == {"groups": 1, "extra_copies": 1}
    twin_md5 = frame.loc[frame["path"] == "ds/cat/img_00.png", "md5"].item()
    dup = frame[frame["md5"] == twin_md5]
    assert len(dup) == 2 and dup["split"].nunique() == 1
    reasons = {s["path"]: s["reason"] for s in report["skipped"]["files"]}
    assert reasons["ds/cat/notes.txt"] == "not an image (.txt)"
    assert reasons["ds/dog/broken.png"].startswith("not an image file")
    assert reasons["ds/loose.png"].startswith("not inside a class folder")
    assert report["skipped"]["count"] == 3 and report["hidden_files_ignored"] == 1


def test_split_is_byte_identical_on_rerun_and_changes_with_the_seed(workdir):
    make_classification(workdir / "ds", {"a": 15, "b": 15})
    write_params(workdir, data={"classification": "ds"})
    split.main(["classification"])
    first = (workdir / "data/split/classification.csv").read_bytes()
    split.main(["classification"])
    assert (workdir / "data/split/classification.csv").read_bytes() == first
    write_params(workdir, data={"classification": "ds"}, base={"seed": 7})
    split.main(["classification"])
    assert (workdir / "data/split/classification.csv").read_bytes() != first


def test_a_single_class_is_one_clear_error(workdir):
    make_classification(workdir / "ds", {"only": 10})
    write_params(workdir, data={"classification": "ds"})
    with pytest.raises(
        UserError, match=r"needs at least 2 classes with images, found 1 \('only'\)"
    ):
        split.main(["classification"])


def test_an_empty_class_folder_is_one_clear_error_or_dropped(workdir):
    make_classification(workdir / "ds", {"a": 10, "b": 10})
    (workdir / "ds" / "empty").mkdir()
    write_params(workdir, data={"classification": "ds"})
    with pytest.raises(UserError, match=r"class 'empty' \(0\) has fewer than split.min_per_class"):
        split.main(["classification"])
    write_params(workdir, data={"classification": "ds"}, split={"small_classes": "drop"})
    frame, report = run_split("classification")
    assert report["dropped_classes"] == ["empty"] and set(frame["label"]) == {"a", "b"}


def test_a_missing_dataset_directory_is_one_clear_error(workdir):
    write_params(workdir, data={"detection": "nowhere"})
    with pytest.raises(UserError, match=r"data.detection: 'nowhere' does not exist"):
        split.main(["detection"])


def test_identical_images_with_different_labels_are_skipped(workdir):
    root = make_classification(workdir / "ds", {"a": 10, "b": 10})
    shutil.copy(root / "a" / "img_01.png", root / "b" / "same.png")
    write_params(workdir, data={"classification": "ds"})
    frame, report = run_split("classification")
    assert len(frame) == 19
    assert report["skipped"]["by_reason"] == {
        "identical image carries different labels ['a', 'b']": 2
    }


@pytest.mark.parametrize("beside", [False, True])
def test_detection_reads_labelme_in_either_layout(workdir, beside):
    root = make_detection(workdir / "faces", positives=14, negatives=6, beside=beside)
    (root / "stray.json").write_text("{}")
    write_params(workdir, data={"detection": "faces"})
    frame, report = run_split("detection")
    assert len(frame) == 20 and frame["present"].sum() == 14
    positives = frame[frame["present"] == 1]
    assert np.allclose(
        positives[["x1", "y1", "x2", "y2"]], [0.25, 5 / 30, 0.75, 20 / 30], atol=1e-6
    )
    assert (frame.loc[frame["present"] == 0, ["x1", "y1", "x2", "y2"]] == 0).all().all()
    assert report["notes"]["negative: no JSON"] == 6
    assert report["classes"]["object"] == {"train": 10, "val": 2, "test": 2}
    assert report["skipped"]["files"] == [
        {
            "path": "faces/stray.json",
            "reason": "label file without a matching image — add the image or delete it",
        }
    ]


def test_detection_with_a_broken_label_skips_the_image_with_the_reason(workdir):
    root = make_detection(workdir / "faces", positives=8, negatives=4)
    (root / "labels" / "im_00.json").write_text("{broken")
    write_params(workdir, data={"detection": "faces"})
    frame, report = run_split("detection")
    assert len(frame) == 11
    (entry,) = report["skipped"]["files"]
    assert entry["path"] == "faces/images/im_00.jpg"
    assert entry["reason"].startswith("faces/labels/im_00.json: invalid JSON")
