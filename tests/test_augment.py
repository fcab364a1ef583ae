"""stages/augment.py and augmentation.py: checked pipelines, boxes in sync, reproducible."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from stages import augment, split
from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.config import dataset_root
from stages.shared.data.augmentation import _close, build_pipeline, decode_side, zoom_of
from stages.shared.data.augmentation import augment as augment_one
from stages.shared.data.tfdata import read_pixels
from tests.conftest import (
    ROOT,
    make_classification,
    make_detection,
    refuses_choice,
    usage,
    write_params,
)


def set_augment(workdir, task: str, **values) -> None:
    path = workdir / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for key in ("workers", "shard_size"):
        if key in values:
            params["augment"][key] = values.pop(key)
    if "size" in values:  # the model input size is what augment writes
        params["base"]["image_size"][task] = values.pop("size")
    params["augment"][task].update(values)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (
            [{"name": "HorizontalFlp"}],
            r"\[0\]: unknown transform 'HorizontalFlp'; close matches: "
            r"HorizontalFlip",
        ),
        ([{"name": "HorizontalFlip", "pp": 0.5}], r"\[0\]\.pp: not an argument of HorizontalFlip"),
        ([{"p": 0.5}], r"\[0\]: each transform needs a 'name'"),
        (
            [{"name": "Blur"}, {"name": "RandomCrop", "height": "x", "width": 3}],
            r"\[1\]: invalid arguments for RandomCrop: .*height",
        ),
        ([{"name": "Zzz"}], r"\[0\]: unknown transform 'Zzz'; no close match among"),
    ],
)
def test_bad_transform_lists_raise_one_clear_line(specs, message):
    with pytest.raises(UserError, match=r"augment\.detection\.transforms" + message) as err:
        build_pipeline(specs, 32, True, 0.5, "augment.detection.transforms")
    assert "\n" not in str(err.value)


def synthetic(box_px=(10, 6, 22, 18), size=(40, 30)) -> tuple[np.ndarray, tuple]:
    """Black image with one white rectangle, and its normalised box."""
    image = np.zeros((size[1], size[0], 3), np.uint8)
    x1, y1, x2, y2 = box_px
    image[y1:y2, x1:x2] = 255
    return image, (x1 / size[0], y1 / size[1], x2 / size[0], y2 / size[1])


@pytest.mark.parametrize("seed", range(6))
def test_the_box_stays_on_the_object_under_flips_and_crops(seed):
    specs = [
        {"name": "RandomCrop", "height": 26, "width": 34},
        {"name": "HorizontalFlip", "p": 0.5},
        {"name": "VerticalFlip", "p": 0.5},
    ]
    pipeline = build_pipeline(specs, 64, True, 0.5, "t")
    image, box = synthetic()
    out, new_box = augment_one(pipeline, image, box, seed)
    assert out.shape == (64, 64, 3) and new_box is not None
    x1, y1, x2, y2 = (round(v * 64) for v in new_box)
    inside = out[y1 + 2 : y2 - 2, x1 + 2 : x2 - 2].mean()
    mask = np.ones((64, 64), bool)
    mask[max(y1 - 2, 0) : y2 + 2, max(x1 - 2, 0) : x2 + 2] = False
    assert inside > 240 and out[mask].mean() < 5


def test_a_box_cropped_away_becomes_a_negative():
    pipeline = build_pipeline([{"name": "Crop", "x_max": 8, "y_max": 5}], 16, True, 0.5, "t")
    image, box = synthetic()
    _, new_box = augment_one(pipeline, image, box, 0)
    assert new_box is None


def tree_digest(root) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


@pytest.fixture
def detection_split(workdir):
    make_detection(workdir / "faces", positives=16, negatives=4)
    write_params(workdir, data={"detection": "faces"})
    split.main(["detection"])
    set_augment(workdir, "detection", copies=3, size=32)
    return workdir


def test_a_transform_that_misfits_an_image_names_the_file_and_the_fix(detection_split):
    crop = {"name": "RandomCrop", "height": 64, "width": 64, "pad_if_needed": False}
    set_augment(detection_split, "detection", transforms=[crop])
    expected = (
        r"augment\.detection\.transforms failed on faces/images/im_\d+\.jpg \(40×30 px\): "
        r"CropSizeError: .* pad_if_needed: true"
    )
    with pytest.raises(UserError, match=expected):
        augment.main(["detection"])


def test_every_copy_written_by_the_stage_carries_its_boxes_transformed(detection_split):
    # Each positive's box is (10, 5)-(30, 20) in 40×30: x is symmetric about the centre, y is
    # not, so a vertical flip moves it and a copy that kept the original box would show.
    set_augment(detection_split, "detection", transforms=[{"name": "VerticalFlip", "p": 1.0}])
    augment.main(["detection"])
    out = pd.read_csv(detection_split / "data/augmented/detection/manifest.csv")
    copies = out[out["path"].str.startswith("data/augmented/")]
    positive = copies["source"].map(out.set_index("path")["present"]) == 1
    assert positive.sum() > 0 and (~positive).sum() > 0
    assert (copies.loc[positive, "present"] == 1).all()
    flipped = copies.loc[positive, ["x1", "y1", "x2", "y2"]].to_numpy()
    np.testing.assert_allclose(
        flipped, [[10 / 40, 1 - 20 / 30, 30 / 40, 1 - 5 / 30]] * len(flipped), atol=1e-4
    )
    assert (copies.loc[~positive, "present"] == 0).all()


@pytest.mark.parametrize("split_name", ["train", "test"])
def test_an_image_broken_after_split_is_one_line_naming_it(detection_split, split_name):
    # a train image is augmented, a test image only prepared for the shards: both say it
    rows = pd.read_csv(detection_split / "data/split/detection.csv")
    # the manifest's paths start at the dataset folder; the message names the file itself
    file = dataset_root("detection") / rows.loc[rows["split"] == split_name, "path"].iloc[0]
    (detection_split / file).write_bytes(b"not a jpeg any more")
    broken = file.as_posix()
    expected = (
        rf"^{broken}: not an image file \(unrecognised format\) — the file changed after"
        r" `split` checked it; re-run `dvc repro`$"
    )  # the reason once, after the path once
    with pytest.raises(UserError, match=expected):
        augment.main(["detection"])


def test_outputs_are_byte_identical_with_one_or_two_workers(detection_split):
    set_augment(detection_split, "detection", workers=1)
    augment.main(["detection"])
    first = tree_digest(detection_split / "data/augmented/detection")
    set_augment(detection_split, "detection", workers=2)
    augment.main(["detection"])
    assert tree_digest(detection_split / "data/augmented/detection") == first


def test_only_train_rows_are_augmented_and_lost_boxes_are_counted(detection_split):
    set_augment(
        detection_split,
        "detection",
        transforms=[{"name": "RandomCrop", "height": 12, "width": 12, "p": 1.0}],
    )
    augment.main(["detection"])
    source = pd.read_csv(detection_split / "data/split/detection.csv")
    out = pd.read_csv(detection_split / "data/augmented/detection/manifest.csv")
    report = json.loads((detection_split / "reports/data/augment-detection.json").read_text())
    for held in ("val", "test"):  # carried over as the split lists them, one record each
        rows = source[source["split"] == held].reset_index(drop=True)
        got = out[out["split"] == held].reset_index(drop=True)
        pd.testing.assert_frame_equal(got[rows.columns], rows)
        assert got["record"].str.startswith(f"{held}-00000-of-").all()
    copies = out[out["path"].str.startswith("data/augmented/")]
    assert set(copies["split"]) == {"train"}
    assert len(copies) == 3 * (source["split"] == "train").sum() == report["copies_written"]
    positives_in = copies["source"].map(source.set_index("path")["present"])
    lost = int(((positives_in == 1) & (copies["present"] == 0)).sum())
    assert lost > 0 and report["boxes_lost"] == lost
    assert (copies.loc[copies["present"] == 0, ["x1", "y1", "x2", "y2"]] == 0).all().all()
    assert read_pixels(detection_split / "data/augmented/detection", "train").shape[1:] == (
        32,
        32,
        3,
    )


def test_zero_copies_passes_the_split_through(workdir):
    make_classification(workdir / "ds", {"a": 10, "b": 10})
    write_params(workdir, data={"classification": "ds"})
    split.main(["classification"])
    set_augment(workdir, "classification", copies=0, keep_original=False)
    augment.main(["classification"])
    source = pd.read_csv(workdir / "data/split/classification.csv")
    out = pd.read_csv(workdir / "data/augmented/classification/manifest.csv")
    ordered = out[source.columns].sort_values("path").reset_index(drop=True)
    pd.testing.assert_frame_equal(ordered, source.sort_values("path").reset_index(drop=True))
    assert (out["path"] == out["source"]).all()  # no copies
    report = json.loads((workdir / "reports/data/augment-classification.json").read_text())
    # With nothing to replace them, the originals stay, whatever keep_original says.
    assert report["originals_kept"] is True and report["copies_per_image"] == 0
    set_augment(workdir, "classification", copies=1)
    augment.main(["classification"])
    report = json.loads((workdir / "reports/data/augment-classification.json").read_text())
    assert report["originals_kept"] is False and report["rows"]["train"] == report["train_images"]


@pytest.mark.parametrize(
    ("words", "fix"), [("", "free some disk space"), ("Read-only file system", "read-only")]
)
def test_a_full_or_read_only_disk_is_one_line_and_leaves_no_manifest(
    detection_split, monkeypatch, capsys, words, fix
):
    import tensorflow as tf

    from stages.shared.data import shards

    set_augment(detection_split, "detection", workers=1, shard_size=8)
    augment.main(["detection"])  # a good run first: its manifest must not survive the failure
    manifest = detection_split / "data/augmented/detection/manifest.csv"
    assert manifest.exists()
    real = tf.io.TFRecordWriter

    class Failing(real):
        """The second shard fails: on a full disk for real (/dev/full), else as TF says."""

        def __init__(self, path):
            self.second = "-00001-of-" in path
            super().__init__("/dev/full" if self.second and not words else path)

        def write(self, record):
            if self.second and words:
                raise tf.errors.UnknownError(None, None, f"{self}; {words}")
            super().write(record)

    monkeypatch.setattr(tf.io, "TFRecordWriter", Failing)
    with pytest.raises(SystemExit) as stop:
        run_stage(augment.main, ["detection"])
    assert stop.value.code == 2
    message = capsys.readouterr().err.strip().splitlines()
    assert len(message) == 1
    assert message[0].startswith("error: data/augmented/detection/train-00001-of-")
    assert "cannot write" in message[0] and fix in message[0]
    assert not manifest.exists()  # a later stage finds no manifest to trust
    assert shards.OS_WORDS  # the words TensorFlow reports are the OS's


@pytest.mark.parametrize(
    ("spec", "zoom"),
    [
        ({"name": "Affine", "scale": [0.8, 1.25]}, 1.25),
        ({"name": "Affine", "scale": {"x": [0.9, 1.1], "y": [0.7, 1.4]}}, 1.4),
        ({"name": "Affine", "scale": 0.5}, 1.0),  # shrinking only: no zoom
        ({"name": "Affine", "rotate": 10}, 1.0),  # no scale given
        ({"name": "RandomScale", "scale_limit": 0.3}, 1.3),
        ({"name": "ShiftScaleRotate", "scale_limit": [-0.2, 0.1]}, 1.1),
        ({"name": "RandomScale", "scale_limit": -0.2}, 1.0),
        ({"name": "RandomScale"}, 1.0),
        ({"name": "RandomResizedCrop", "size": [8, 8], "scale": [0.25, 1.0]}, 2.0),
        ({"name": "RandomResizedCrop", "size": [8, 8], "scale": 0.04}, 5.0),
        ({"name": "RandomResizedCrop", "size": [8, 8]}, 1 / 0.08**0.5),  # albumentations' 0.08
        ({"name": "HorizontalFlip"}, 1.0),
        # up to 10 % (or 20 %) cut from each side: 80 % (60 %) of the side is left at worst
        ({"name": "CropAndPad", "percent": [-0.1, 0.0], "keep_size": False}, 1.25),
        ({"name": "CropAndPad", "percent": [[-0.2, 0.0], 0, [-0.05, 0.1], 0]}, 1 / 0.6),
        ({"name": "CropAndPad", "percent": 0.1}, 1.0),  # padding only
    ],
)
def test_how_far_each_transform_can_magnify(spec, zoom):
    assert zoom_of(spec) == pytest.approx(zoom)


def test_the_decode_side_is_the_output_times_the_largest_zoom():
    flips = [{"name": "HorizontalFlip"}]
    zooms = [{"name": "Affine", "scale": [1.0, 1.3]}, {"name": "RandomScale", "scale_limit": 0.5}]
    assert decode_side(flips, 40) == 40
    assert decode_side([], 40) == 40
    assert decode_side(zooms, 41) == 62  # ceil(41 × 1.5 = 61.5)
    assert decode_side([*zooms, {"name": "RandomCrop", "height": 8, "width": 8}], 40) is None
    assert decode_side([{"name": "CenterCrop", "height": 8, "width": 8}], 40) is None
    assert decode_side([{"name": "CropAndPad", "px": [-4, 0]}], 40) is None
    assert decode_side([{"name": "CropAndPad", "percent": [-0.1, 0.0]}], 40) == 50


@pytest.mark.parametrize(
    ("word", "choices", "expected"),
    [
        (
            "HorizontalFlp",
            ["HorizontalFlip", "VerticalFlip", "Affine"],
            "close matches: HorizontalFlip",
        ),
        ("p", ["always_apply", "p"], "close matches: p"),
        (
            "Blurx",
            ["Blur", "Blurs", "Blurry", "Blurred", "Affine"],
            "close matches: Blur, Blurs, Blurry",  # ratios .89, .8, .73; Blurred .67 comes 4th
        ),
        ("zzz", ["a", "b", "c"], "choices: a, b, c"),
        (
            "zzz",
            [f"T{i}" for i in range(21)],
            "no close match among 21 albumentations transforms (see its docs)",
        ),
        ("zzz", [f"T{i}" for i in range(20)], "choices: " + ", ".join(f"T{i}" for i in range(20))),
    ],
)
def test_a_misspelt_name_gets_its_close_matches_or_the_choices(word, choices, expected):
    assert _close(word, choices) == expected


def test_copies_differ_from_each_other_and_follow_the_seed(detection_split):
    # Brightness drawn anew for every copy: equal files would mean one draw served them all.
    shift = {"name": "RandomBrightnessContrast", "brightness_limit": 0.4, "p": 1.0}
    set_augment(detection_split, "detection", transforms=[shift])
    augment.main(["detection"])
    out = pd.read_csv(detection_split / "data/augmented/detection/manifest.csv")
    copies = out[out["path"].str.startswith("data/augmented/")]
    per_source = copies.groupby("source")["md5"].agg(["count", "nunique"])
    assert (per_source["count"] == 3).all() and (per_source["nunique"] == 3).all()
    assert copies["md5"].nunique() == len(copies)  # no two images drew alike either
    assert copies["width"].eq(32).all() and copies["height"].eq(32).all()
    first = tree_digest(detection_split / "data/augmented/detection")
    augment.main(["detection"])
    assert tree_digest(detection_split / "data/augmented/detection") == first
    params = yaml.safe_load((detection_split / "params.yaml").read_text())
    params["base"]["seed"] += 1
    (detection_split / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    augment.main(["detection"])
    assert tree_digest(detection_split / "data/augmented/detection") != first


def test_a_pipeline_without_boxes_returns_the_resized_image_alone():
    pipeline = build_pipeline([{"name": "HorizontalFlip", "p": 1.0}], 16, False, 0.5, "t")
    image = np.zeros((30, 40, 3), np.uint8)
    image[:, :20] = 200  # bright left half
    out, box = augment_one(pipeline, image, None, seed=3)
    assert box is None and out.shape == (16, 16, 3)
    assert out[:, :6].mean() < 20 and out[:, -6:].mean() > 180  # flipped: bright on the right


def test_the_command_line_says_what_the_stage_does_and_refuses_other_arguments(capsys):
    assert usage(augment.main) == (
        "[-h] [--dump DIR] [--count COUNT] {classification,detection} Stage `augment@<task>`:"
        " the images training and evaluation read, as TFRecord shards; positional arguments:"
        " {classification,detection} options: -h, --help show this help message and exit"
        " --dump DIR write the first --count training records to DIR as PNG files (boxes"
        " drawn) with records.csv, and exit --count COUNT records to --dump (default 64)"
    )
    refuses_choice(augment.main, "faces", ("classification", "detection"), capsys)


def test_the_report_and_line_say_what_was_written_with_or_without_the_originals(workdir, capsys):
    make_classification(workdir / "ds", {"a": 12, "b": 8})
    write_params(workdir, data={"classification": "ds"})
    split.main(["classification"])
    source = pd.read_csv(workdir / "data/split/classification.csv")
    counts = source["split"].value_counts().to_dict()
    set_augment(workdir, "classification", copies=2, keep_original=False, workers=1)
    capsys.readouterr()
    augment.main(["classification"])
    report = json.loads((workdir / "reports/data/augment-classification.json").read_text())
    assert report == {
        "task": "classification",
        "train_images": counts["train"],
        "copies_per_image": 2,
        "copies_written": 2 * counts["train"],
        "originals_kept": False,
        "rows": {"train": 2 * counts["train"], "val": counts["val"], "test": counts["test"]},
        "boxes_lost": 0,
        "image_size": 32,
        "shards": 3,  # one per split: every split fits in 1024 records
    }
    out = pd.read_csv(workdir / "data/augmented/classification/manifest.csv")
    assert not out.loc[out["split"] == "train", "path"].isin(source["path"]).any()
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"augment@classification: {2 * counts['train']} copies of")
    assert line.endswith("s with 1 workers") and f" of {counts['train']} train images; " in line
    assert f"; {sum(report['rows'].values())} records in 3 shards; " in line
    set_augment(workdir, "classification", copies=1, keep_original=True)
    augment.main(["classification"])
    report = json.loads((workdir / "reports/data/augment-classification.json").read_text())
    assert report["originals_kept"] and report["rows"]["train"] == 2 * counts["train"]
    out = pd.read_csv(workdir / "data/augmented/classification/manifest.csv")
    originals = out[out["path"] == out["source"]]
    assert len(originals) == len(source) and (out["source"].isin(source["path"])).all()


def test_a_bad_transform_in_params_stops_before_any_image_is_touched(workdir):
    make_classification(workdir / "ds", {"a": 6, "b": 4})
    write_params(workdir, data={"classification": "ds"})
    split.main(["classification"])
    set_augment(workdir, "classification", copies=1, workers=1)
    augment.main(["classification"])
    out = workdir / "data/augmented/classification"
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    set_augment(workdir, "classification", transforms=[{"name": "Blur"}, {"name": "Flp"}])
    with pytest.raises(
        UserError, match=r"^augment\.classification\.transforms\[1\]: unknown transform 'Flp'"
    ):
        augment.main(["classification"])
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before  # the last run stays


def test_augment_shows_a_progress_bar_of_train_images(workdir, monkeypatch, capsys):
    import functools

    import tqdm

    make_classification(workdir / "ds", {"a": 6, "b": 4})
    write_params(workdir, data={"classification": "ds"})
    split.main(["classification"])
    set_augment(workdir, "classification", copies=1, workers=1)
    monkeypatch.setattr(augment, "tqdm", functools.partial(tqdm.tqdm, disable=False))
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)  # no thread left behind
    capsys.readouterr()
    augment.main(["classification"])
    train = (pd.read_csv(workdir / "data/split/classification.csv")["split"] == "train").sum()
    bars = capsys.readouterr().err.replace("\n", "\r").split("\r")
    first = [bar for bar in bars if bar.startswith("augment@classification train: ")][-1]
    assert first.startswith("augment@classification train: 100%|")
    assert f"| {train}/{train} [" in first and first.endswith("image/s]")


def frames(sources: list[str], negatives: int, areas=(0.16,)) -> pd.DataFrame:
    """Training rows of a split manifest: one frame with an object per entry of `sources`
    (its group), its box a square of the next share of the frame's area in `areas` (cycled),
    and `negatives` frames without one, each its own group as split makes it."""
    present = [1] * len(sources) + [0] * negatives
    groups = [*sources, *(f"md5-{i}" for i in range(negatives))]
    sides = [areas[i % len(areas)] ** 0.5 for i in range(len(sources))] + [0.0] * negatives
    frame = pd.DataFrame({"present": present, "group": groups, "split": "train"})
    frame["x1"], frame["y1"] = 0.1, 0.2
    frame["x2"], frame["y2"] = 0.1 + np.array(sides), 0.2 + np.array(sides)
    return frame


@pytest.mark.parametrize(
    ("train", "expected"),
    [
        # 16 coins in 211 frames (the recipe check's `coins`): few objects, more copies.
        (frames([f"coin{i % 16}" for i in range(211)], 40), 6),
        # 31 and 32 distinct objects: the threshold.
        (frames([f"face{i}" for i in range(31)], 0), 6),
        (frames([f"face{i % 32}" for i in range(64)], 0), 3),
        # Frames without an object are never sources, however many there are.
        (frames([f"face{i % 8}" for i in range(40)], 200), 6),
        # 67 faces (the sample): 3.
        (frames([f"face{i % 67}" for i in range(290)], 46), 3),
        # Small objects: the median box under 5 % of the frame (`small-faces`: 1.5 %), however
        # many there are; at 5 % they are not small. Negatives do not count.
        (frames([f"face{i % 65}" for i in range(336)], 84, areas=(0.015,)), 6),
        (frames([f"face{i}" for i in range(40)], 400, areas=(0.0499,)), 6),
        (frames([f"face{i}" for i in range(40)], 0, areas=(0.05,)), 3),
        (frames([f"face{i}" for i in range(40)], 400, areas=(0.1,)), 3),
        # The median, not the mean: three small boxes and two large ones are small ...
        (frames([f"face{i}" for i in range(40)], 0, areas=(0.01, 0.02, 0.5, 0.03, 0.6)), 6),
        # ... and two small ones among three large ones are not.
        (frames([f"face{i}" for i in range(40)], 0, areas=(0.01, 0.06, 0.07, 0.02, 0.08)), 3),
    ],
)
def test_auto_copies_come_from_the_number_of_distinct_objects_and_their_size(train, expected):
    assert augment.auto_copies("auto", train) == expected
    assert augment.auto_copies(4, train) == 4


def test_auto_copies_writes_six_copies_of_each_frame_when_objects_are_few(detection_split):
    # 16 frames with an object and `group_by: none`: at most 16 sources in train, so 6 copies.
    set_augment(detection_split, "detection", copies="auto")
    augment.main(["detection"])
    out = pd.read_csv(detection_split / "data/augmented/detection/manifest.csv")
    report = json.loads((detection_split / "reports/data/augment-detection.json").read_text())
    train = int((out["path"] == out["source"]).sum() - (out["split"] != "train").sum())
    copies = out[out["path"] != out["source"]]
    assert train > 0 and len(copies) == 6 * train == report["copies_written"]
    assert report["copies_per_image"] == 6
    assert copies.groupby("source").size().eq(6).all()


def squares_on_noise(root, positives: int = 20, negatives: int = 10):
    """PNG frames of dark noise (0-40): `positives` of 40×30 with a white 10×10 square at a
    place of their own, labelled, then `negatives` of 60×36 (another shape) without."""
    from PIL import Image

    from tests.conftest import labelme

    rng = np.random.default_rng(7)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(positives + negatives):
        shape = (30, 40, 3) if i < positives else (36, 60, 3)
        pixels = rng.integers(0, 41, shape, dtype=np.uint8)
        if i < positives:
            x, y = 2 + (i * 7) % 27, 2 + (i * 5) % 17
            pixels[y : y + 10, x : x + 10] = 255
            doc = labelme([[x, y], [x + 10, y + 10]])
            (root / "labels" / f"f_{i:02d}.json").write_text(json.dumps(doc))
        Image.fromarray(pixels).save(root / "images" / f"f_{i:02d}.png")


@pytest.fixture
def squares(workdir):
    squares_on_noise(workdir / "squares")
    write_params(
        workdir,
        data={"detection": "squares"},
        split={"near_duplicates": {"max_distance": 0}},
    )
    split.main(["detection"])
    set_augment(workdir, "detection", copies=3, size=40, transforms=[])
    return workdir


def train_copies(workdir) -> tuple[pd.DataFrame, np.ndarray, dict]:
    """The train records (manifest rows, pixels in record order) and the augment report."""
    out = pd.read_csv(workdir / "data/augmented/detection/manifest.csv")
    train = out[out["split"] == "train"].reset_index(drop=True)
    pixels = read_pixels(workdir / "data/augmented/detection", "train")
    report = json.loads((workdir / "reports/data/augment-detection.json").read_text())
    return train, pixels, report


def test_copy_paste_puts_a_training_object_into_copies_of_empty_frames(squares):
    set_augment(squares, "detection", paste=1.0)
    augment.main(["detection"])
    train, pixels, report = train_copies(squares)
    present = pd.read_csv(squares / "data/split/detection.csv").set_index("path")["present"]
    is_copy = train["path"] != train["source"]
    empty = is_copy & (train["source"].map(present) == 0)
    assert empty.sum() >= 6 and report["objects_pasted"] == empty.sum()
    # Originals stay as they were: negatives among them.
    assert (train.loc[~is_copy, "present"] == train.loc[~is_copy, "source"].map(present)).all()
    for index in np.flatnonzero(empty):
        row, image = train.loc[index], pixels[index]
        assert row["present"] == 1
        # The same share of the frame as the square in its source: 10/40 by 10/30.
        assert row["x2"] - row["x1"] == pytest.approx(10 / 40, abs=1e-4)
        assert row["y2"] - row["y1"] == pytest.approx(10 / 30, abs=1e-4)
        x1, y1, x2, y2 = (row[k] * 40 for k in ("x1", "y1", "x2", "y2"))
        inside = image[round(y1) + 1 : round(y2) - 1, round(x1) + 1 : round(x2) - 1]
        assert inside.min() > 200, "the box holds the white square"
        outside = np.ones((40, 40), bool)  # beyond the box and its fading margin (quarter)
        outside[max(int(y1 - 4), 0) : int(y2 + 5), max(int(x1 - 4), 0) : int(x2 + 5)] = False
        assert image[outside].max() <= 40, "nothing else of the source frame came along"


def test_copy_paste_reaches_its_share_of_copies_and_follows_the_seed(squares):
    counts = {}
    for share in (0.0, 0.5):
        set_augment(squares, "detection", paste=share)
        augment.main(["detection"])
        train, _, report = train_copies(squares)
        present = pd.read_csv(squares / "data/split/detection.csv").set_index("path")["present"]
        empty = (train["path"] != train["source"]) & (train["source"].map(present) == 0)
        counts[share] = (int(train.loc[empty, "present"].sum()), int(empty.sum()))
        assert report["objects_pasted"] == counts[share][0]
    assert counts[0.0][0] == 0
    pasted, empty = counts[0.5]
    assert 0.2 * empty <= pasted <= 0.8 * empty
    first = tree_digest(squares / "data/augmented/detection")
    set_augment(squares, "detection", workers=2)
    augment.main(["detection"])
    assert tree_digest(squares / "data/augmented/detection") == first


def test_a_pasted_object_cropped_away_is_counted_lost(squares):
    crop = {"name": "RandomCrop", "height": 12, "width": 12, "p": 1.0}
    set_augment(squares, "detection", paste=1.0, transforms=[crop])
    augment.main(["detection"])
    train, _, report = train_copies(squares)
    present = pd.read_csv(squares / "data/split/detection.csv").set_index("path")["present"]
    empty = (train["path"] != train["source"]) & (train["source"].map(present) == 0)
    # Every copy of an empty frame got an object (paste: 1.0); those now empty lost it.
    copies = train["path"] != train["source"]
    lost = copies & (train["present"] == 0)
    assert 0 < (lost & empty).sum() < empty.sum()
    assert report["objects_pasted"] == empty.sum()
    assert report["boxes_lost"] == lost.sum()


def test_the_committed_transforms_give_the_same_pixels_in_every_release_of_the_pins():
    # The augmented files, and every model trained on them, hang on these bytes: the committed
    # params' transforms on one fixed image. A change of albumentations, albucore or OpenCV
    # that moves them (opencv-python-headless 5.1.0.95 against the pinned 5.0.0.93 did)
    # re-deals every committed result; pin the libraries in requirements.txt, or re-run the
    # pipeline and commit what it writes.
    params = yaml.safe_load((ROOT / "params.yaml").read_text())["augment"]
    rng = np.random.default_rng(7)
    image = (rng.random((120, 160, 3)) * 255).astype(np.uint8)
    image[30:90, 40:110] = (200, 120, 40)
    digests = {}
    for task, size, box in (
        ("classification", 32, None),
        ("detection", 64, (0.25, 0.25, 0.7, 0.75)),
    ):
        spec = params[task]
        visible = spec.get("min_visibility", 0.5)
        pipeline = build_pipeline(spec["transforms"], size, box is not None, visible, task)
        digest = hashlib.sha256()
        for seed in range(8):
            out, new_box = augment_one(pipeline, image, box, seed)
            digest.update(out.tobytes() + repr(new_box).encode())
        digests[task] = digest.hexdigest()[:16]
    assert digests == {"classification": "f21cbcc373186209", "detection": "da4a128af7299db7"}
