"""stages/split.py (with datasets.py): manifests, reports and one-line errors on user data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from stages import split
from stages.shared.core.cli import UserError
from tests.conftest import (
    labelme,
    make_classification,
    make_detection,
    refuses_choice,
    usage,
    write_image,
    write_params,
)


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
    assert list(frame.columns) == ["path", "label", "md5", "width", "height", "group", "split"]
    assert len(frame) == 31 and report["images"] == 31
    # 20 unique cats split 14/3/3; the duplicate adds one to whichever split its twin is in.
    unique_cats = frame[frame["label"] == "cat"].drop_duplicates("md5")["split"].value_counts()
    assert unique_cats.to_dict() == {"train": 14, "val": 3, "test": 3}
    assert sum(report["classes"]["cat"].values()) == 21
    assert report["duplicates"] == {"groups": 1, "extra_copies": 1}
    twin_md5 = frame.loc[frame["path"] == "cat/img_00.png", "md5"].item()
    dup = frame[frame["md5"] == twin_md5]
    assert len(dup) == 2 and dup["split"].nunique() == 1
    reasons = {s["path"]: s["reason"] for s in report["skipped"]["files"]}
    assert reasons["cat/notes.txt"] == "not an image (.txt)"
    assert reasons["dog/broken.png"].startswith("not an image file")
    assert reasons["loose.png"].startswith("not inside a class folder")
    assert report["skipped"]["count"] == 3 and report["hidden_files_ignored"] == 1


def test_every_exact_copy_lands_in_the_split_of_its_original(workdir):
    # Seven copied images (one copied twice, one copied into a sub-folder), near-duplicates
    # off: one pair lands together by chance half the time, eight all together about 1 in 150.
    root = make_classification(workdir / "ds", {"cat": 24, "dog": 17})
    copies = {
        "cat/img_00.png": ["cat/img_00 copy.png", "cat/img_00 copy 2.png"],
        "cat/img_03.png": ["cat/again/img_03.png"],
        "cat/img_11.png": ["cat/img_11 (1).png"],
        "cat/img_19.png": ["cat/img_19 copy.png"],
        "dog/img_02.png": ["dog/img_02 copy.png"],
        "dog/img_08.png": ["dog/img_08 copy.png"],
        "dog/img_16.png": ["dog/img_16 copy.png"],
    }
    for original, duplicates in copies.items():
        for duplicate in duplicates:
            (root / duplicate).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / original, root / duplicate)
    write_params(
        workdir, data={"classification": "ds"}, split={"near_duplicates": {"max_distance": 0}}
    )
    frame, report = run_split("classification")
    split_of = dict(zip(frame["path"], frame["split"], strict=True))
    for original, duplicates in copies.items():
        for duplicate in duplicates:
            assert split_of[duplicate] == split_of[original], duplicate
    # The copies do not all sit in one split: the test is not passed by a split of one.
    assert len({split_of[original] for original in copies}) > 1
    assert report["duplicates"] == {"groups": 7, "extra_copies": 8}


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
            "path": "stray.json",
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
    assert entry["path"] == "images/im_00.jpg"
    assert entry["reason"].startswith("labels/im_00.json: invalid JSON")


# --- groups: a source (patient, session), exact copies and near-duplicates share a split ---


def make_patients(root, patients: int = 12, slices: int = 4, seed: int = 0):
    """<root>/<class>/patient_<p>/slice_<s>.png: every patient has slices in both classes."""
    rng = np.random.default_rng(seed)
    for p in range(patients):
        for label in ("tumour", "healthy"):
            for s in range(slices if label == "tumour" else slices - 1):
                write_image(root / label / f"patient_{p:02d}" / f"slice_{s}.png", rng, (14, 11))
    write_image(root / "healthy" / "loose_scan.png", rng, (14, 11))  # no patient folder
    return root


@pytest.mark.parametrize(("group_by", "pattern"), [("folder", ""), ("pattern", r"patient_(\d+)/")])
def test_a_patient_never_straddles_splits(workdir, group_by, pattern):
    make_patients(workdir / "scans")
    write_params(
        workdir,
        data={"classification": "scans"},
        split={
            "group_by": {"classification": group_by, "detection": "none"},
            "group_pattern": {"classification": pattern, "detection": ""},
        },
    )
    frame, report = run_split("classification")
    patient = frame["path"].str.extract(r"(patient_\d+)")[0]
    assert (frame[patient.notna()].groupby(patient)["split"].nunique() == 1).all()
    assert set(frame["split"]) == {"train", "val", "test"}
    groups = report["groups"]
    assert groups["by"] == group_by and groups["count"] == 13  # 12 patients + the loose scan
    assert groups["files_without_a_source"] == 1 and groups["largest"]["images"] == 7
    # Stratified as closely as 7-image patients allow: each class is near 70/15/15.
    for label, total in (("tumour", 48), ("healthy", 37)):
        counts = report["classes"][label]
        assert abs(counts["test"] - 0.15 * total) <= 4 and abs(counts["val"] - 0.15 * total) <= 4


def test_without_groups_the_same_patient_lands_in_several_splits(workdir):
    # The leak the groups prevent: checked so the test above cannot pass by chance.
    make_patients(workdir / "scans")
    write_params(workdir, data={"classification": "scans"})
    frame, _ = run_split("classification")
    patient = frame["path"].str.extract(r"(patient_\d+)")[0]
    assert (frame.groupby(patient)["split"].nunique() > 1).any()


def test_detection_groups_by_the_folder_below_images(workdir):
    rng = np.random.default_rng(0)
    for session in range(8):
        for frame_no in range(5):
            write_image(workdir / f"cam/images/s{session}/f{frame_no}.jpg", rng, (40, 30))
            doc = labelme([[5 + session, 4], [30, 25]])
            path = workdir / f"cam/labels/s{session}/f{frame_no}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(doc))
    write_params(
        workdir,
        data={"detection": "cam"},
        split={"group_by": {"classification": "none", "detection": "folder"}},
    )
    frame, report = run_split("detection")
    session = frame["path"].str.extract(r"images/(s\d)/")[0]
    assert (frame.groupby(session)["split"].nunique() == 1).all()
    assert report["groups"]["count"] == 8 and set(frame["group"]) == {f"s{i}" for i in range(8)}


def test_a_resized_reencoded_copy_joins_its_original(workdir):
    root = make_classification(workdir / "ds", {"a": 30, "b": 30})
    # Smooth random pictures (pixel noise has no low frequencies to hash), then a copy of one.
    from PIL import Image

    rng = np.random.default_rng(4)
    for label in ("a", "b"):
        for i in range(30):
            coarse = rng.integers(0, 256, (5, 5, 3), dtype=np.uint8)
            smooth = Image.fromarray(coarse).resize((48, 48), Image.BICUBIC)
            smooth.save(root / label / f"img_{i:02d}.png")
    original = Image.open(root / "a" / "img_05.png")
    original.resize((36, 36), Image.BILINEAR).save(root / "a" / "img_05_small.jpg", quality=70)
    write_params(workdir, data={"classification": "ds"})
    frame, report = run_split("classification")
    pairs = report["groups"]["near_duplicates"]
    listed = {tuple(sorted(pair[:2])) for pair in pairs["listed"]}
    assert ("a/img_05.png", "a/img_05_small.jpg") in listed
    assert pairs["pairs"] == len(pairs["listed"]) == 1  # the other 59 pictures are all distinct
    twins = frame[frame["path"].isin(["a/img_05.png", "a/img_05_small.jpg"])]
    assert twins["group"].nunique() == 1 and twins["split"].nunique() == 1
    write_params(
        workdir, data={"classification": "ds"}, split={"near_duplicates": {"max_distance": 0}}
    )
    frame, report = run_split("classification")
    assert report["groups"]["near_duplicates"]["pairs"] == 0
    assert frame["group"].nunique() == 61


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        (r"patient_(\d+", r"split\.group_pattern\.classification: not a valid regular expression"),
        (r"patient_\d+", r"split\.group_pattern\.classification: needs a capture group"),
        (
            r"visit_(\d+)",
            r"split\.group_pattern\.classification: 'visit_\(\\d\+\)' matches no file of 'scans'"
            r" \(e\.g\. 'healthy/",
        ),
    ],
)
def test_a_bad_group_pattern_is_one_line_naming_the_param(workdir, pattern, message):
    make_patients(workdir / "scans", patients=3)
    write_params(
        workdir,
        data={"classification": "scans"},
        split={
            "group_by": {"classification": "pattern", "detection": "none"},
            "group_pattern": {"classification": pattern, "detection": ""},
        },
    )
    with pytest.raises(UserError, match=message) as err:
        split.main(["classification"])
    assert "\n" not in str(err.value)


def test_a_group_larger_than_a_split_is_a_warning_not_a_crash(workdir):
    make_patients(workdir / "scans", patients=2, slices=10)  # two patients of 19 images
    write_params(
        workdir,
        data={"classification": "scans"},
        split={"group_by": {"classification": "folder", "detection": "none"}},
    )
    frame, report = run_split("classification")
    warnings = report["groups"]["warnings"]
    assert len(warnings) == 2 and "larger than the test split's share" in warnings[0]
    assert frame.groupby("group")["split"].nunique().eq(1).all()


def test_the_command_line_says_what_the_stage_does_and_refuses_other_arguments(capsys):
    assert usage(split.main) == (
        "[-h] {classification,detection} Stage `split@<task>`: assign every usable "
        "image of a dataset to train / val / test. positional arguments: "
        "{classification,detection} options: -h, --help show this help message and exit"
    )
    refuses_choice(split.main, "faces", ("classification", "detection"), capsys)


def test_the_whole_report_and_the_line_printed(workdir, capsys):
    root = make_classification(workdir / "ds", {"cat": 12, "dog": 8})
    shutil.copy(root / "cat/img_03.png", root / "cat/img_03 copy.png")
    (root / "dog/broken.png").write_bytes(b"")
    write_params(workdir, data={"classification": "ds"}, split={"folds": 1, "fold": 0})
    frame, report = run_split("classification")
    splits = frame["split"].value_counts().to_dict()
    classes = frame.groupby(["label", "split"]).size().unstack(fill_value=0)
    largest = frame.loc[frame["path"] == "cat/img_03.png", "group"].item()
    assert report == {
        "task": "classification",
        "images": 21,
        "splits": {s: splits.get(s, 0) for s in ("train", "val", "test")},
        "classes": {
            label: {s: int(classes.loc[label].get(s, 0)) for s in ("train", "val", "test")}
            for label in ("cat", "dog")
        },
        "duplicates": {"groups": 1, "extra_copies": 1},
        "dropped_classes": [],
        "notes": {},
        "hidden_files_ignored": 0,
        "skipped": {
            "count": 1,
            "by_reason": {"not an image file (unrecognised format)": 1},
            "files": [
                {"path": "dog/broken.png", "reason": "not an image file (unrecognised format)"}
            ],
        },
        "groups": {
            "by": "none",
            "pattern": "digit_(\\d+)",  # kept as written, unused with `by: none`
            "files_without_a_source": 21,
            "near_duplicates": {
                "max_distance": 4,
                "pairs": 1,  # the exact copy, 0 bits apart
                "listed": [["cat/img_03 copy.png", "cat/img_03.png", 0]],
            },
            "count": 20,
            "largest": {"group": largest, "images": 2},
            "warnings": [],
        },
        "cross_validation": {"folds": 1, "val_fold": 0},
    }
    assert splits == {"train": 15, "val": 3, "test": 3}
    assert capsys.readouterr().out.strip() == (
        "split@classification: {'train': 15, 'val': 3, 'test': 3}, 20 groups,"
        " 1 near-duplicate pairs, 1 skipped (see reports/data/classification.json)"
    )


def test_min_per_class_counts_unique_images_and_names_the_fix(workdir):
    root = make_classification(workdir / "ds", {"cat": 6, "dog": 3})
    for i in (1, 2):
        shutil.copy(root / "dog/img_00.png", root / f"dog/copy {i}.png")
    write_params(workdir, data={"classification": "ds"}, split={"min_per_class": 4})
    with pytest.raises(
        UserError,
        match=r"^data\.classification: class 'dog' \(3\) has fewer than split\.min_per_class=4"
        r" unique images — add images, remove the folder, or set split\.small_classes: drop$",
    ):
        split.main(["classification"])
    write_params(
        workdir,
        data={"classification": "ds"},
        split={"min_per_class": 7, "small_classes": "drop"},
    )
    with pytest.raises(
        UserError,
        match=r"^data\.classification: classification needs at least 2 classes with images,"
        r" found 0 \(none\) — add one folder per class$",
    ):
        split.main(["classification"])


def test_only_a_group_larger_than_the_smallest_share_is_a_warning():
    fractions = {"train": 0.7, "val": 0.15, "test": 0.15}  # 20 images: 3 a share
    frame = pd.DataFrame({"group": ["g3"] * 3 + [f"single{i}" for i in range(17)]})
    report = split.group_report(frame, fractions)
    assert report == {"count": 18, "largest": {"group": "g3", "images": 3}, "warnings": []}
    bigger = pd.DataFrame({"group": ["big"] * 4 + [f"single{i}" for i in range(16)]})
    assert split.group_report(bigger, fractions)["warnings"] == [
        "group 'big' (4 images) is larger than the test split's share (3 images): it cannot"
        " be split, so the fractions are off"
    ]


def test_detection_frames_are_fingerprinted_for_near_duplicates(workdir):
    root = make_detection(workdir / "faces", positives=6, negatives=3)
    shutil.copy(root / "images/im_07.jpg", root / "images/im_07 copy.jpg")
    write_params(workdir, data={"detection": "faces"})
    frame, report = run_split("detection")
    near = report["groups"]["near_duplicates"]
    assert near["pairs"] == 1 and near["listed"][0][:2] == [
        "images/im_07 copy.jpg",
        "images/im_07.jpg",
    ]
    assert frame.groupby("md5")["split"].nunique().eq(1).all()
