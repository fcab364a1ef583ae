"""stages/sample.py: the embedded demo data is built offline, deterministically, as labelme."""

from __future__ import annotations

import functools
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import tqdm
import yaml
from PIL import Image

from stages import sample, split
from stages.shared.data.labelme import read_label
from stages.shared.params.sections import load_params
from tests.conftest import ROOT, TINY_PARAMS, refuses_choice, usage, write_params


def tree_digest(root) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode() + path.read_bytes())
    return digest.hexdigest()


def test_sample_is_deterministic_and_split_reads_it(workdir):
    write_params(workdir, **TINY_PARAMS)
    for task in ("classification", "detection"):
        sample.main([task])
    first = {t: tree_digest(workdir / "data/sample" / t) for t in ("classification", "detection")}
    for task in ("classification", "detection"):
        sample.main([task])
        assert tree_digest(workdir / "data/sample" / task) == first[task]
    classes = sorted(p.name for p in (workdir / "data/sample/classification").iterdir())
    assert classes == [str(d) for d in range(10)]
    assert len(list((workdir / "data/sample/classification/3").glob("*.png"))) == 8
    images = sorted((workdir / "data/sample/detection/images").glob("*.jpg"))
    labels = sorted((workdir / "data/sample/detection/labels").glob("*.json"))
    assert len(images) == 24 and 0 < len(labels) < 24
    doc = json.loads(labels[0].read_text())
    assert doc["shapes"][0]["shape_type"] == "rectangle"
    label = read_label(labels[0], (64, 48))
    side = (label.box[2] - label.box[0]) * 64
    assert 16 <= round(side) <= 32
    split.main(["detection"])
    split.main(["classification"])
    report = json.loads((workdir / "reports/data/detection.json").read_text())
    assert report["images"] == 24 and report["skipped"]["count"] == 0


def test_the_sample_names_each_source_and_split_keeps_a_source_in_one_split(workdir):
    # Many frames over few faces: each face is pasted several times.
    params = {**TINY_PARAMS, "sample": {**TINY_PARAMS["sample"]}}
    params["sample"]["detection"] = {**params["sample"]["detection"], "frames": 120}
    write_params(workdir, **params)
    for task in ("classification", "detection"):
        sample.main([task])
        split.main([task])
    frame = pd.read_csv(workdir / "data/split/detection.csv")
    faces = frame["path"].str.extract(r"_face(\d+)\.jpg$")[0]
    assert faces.notna().sum() == frame["present"].sum()  # every positive names its face
    assert frame.loc[faces.isna(), "present"].eq(0).all()
    per_face = frame[faces.notna()].groupby(faces[faces.notna()])["split"].nunique()
    assert (per_face == 1).all() and (frame[faces.notna()].groupby(faces)["path"].count() > 1).any()
    assert set(frame["split"]) == {"train", "val", "test"}
    report = json.loads((workdir / "reports/data/detection.json").read_text())
    assert report["groups"]["by"] == "pattern"
    assert report["groups"]["files_without_a_source"] == int((frame["present"] == 0).sum())
    digits = pd.read_csv(workdir / "data/split/classification.csv")
    assert digits["path"].str.fullmatch(r"\d/digit_\d{4}\.png").all()


def test_each_digit_png_is_that_row_of_scikit_learn_recoloured_and_upscaled(tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    assert sample.write_digits(tmp_path, per_class=3, size=24, seed=5) == 30
    for label in range(10):
        files = sorted((tmp_path / str(label)).iterdir())
        rows = np.flatnonzero(digits.target == label)[:3]
        assert [f.name for f in files] == [f"digit_{row:04d}.png" for row in rows]
        for path, row in zip(files, rows, strict=True):
            with Image.open(path) as img:
                assert (img.mode, img.size) == ("RGB", (24, 24))
                small = np.asarray(img.resize((8, 8), Image.BOX), dtype=float)
            ink = digits.images[row] / 16.0
            # Ink bright on dark paper, in the digit's shape.
            grey = small.mean(-1)
            assert grey[ink >= 0.75].mean() > grey[ink == 0.0].mean() + 50
            assert np.corrcoef(grey.ravel(), ink.ravel())[0, 1] > 0.9
    colours = {Image.open(f).getpixel((12, 12)) for f in tmp_path.rglob("*.png")}
    assert len(colours) > 20  # each digit drawn in its own colours


def test_a_face_frame_holds_the_named_face_inside_its_labelled_box(tmp_path):
    import skimage.data

    cfg = load_params("sample", ROOT / "params.yaml").detection.model_copy(
        update={
            "frames": 30,
            "frame_width": 70,
            "frame_height": 50,
            "face_min": 20,
            "face_max": 30,
            "negative_fraction": 0.3,
        }
    )
    faces = skimage.data.lfw_subset()
    assert sample.write_faces(tmp_path, cfg, seed=2) == 30
    labels = sorted((tmp_path / "labels").iterdir())
    images = sorted((tmp_path / "images").iterdir())
    assert len(images) == 30 and 12 <= len(labels) <= 29
    orders = set()
    for label_path in labels:
        doc = json.loads(label_path.read_text())
        name = label_path.with_suffix(".jpg").name
        assert (doc["imagePath"], doc["imageWidth"], doc["imageHeight"]) == (
            f"../images/{name}",
            70,
            50,
        )
        (shape,) = doc["shapes"]
        assert (shape["label"], shape["shape_type"]) == ("face", "rectangle")
        (x1, y1), (x2, y2) = shape["points"]
        orders.add(x1 < x2)
        left, top, right, bottom = min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)
        side = right - left
        assert bottom - top == side and 20 <= side <= 30
        assert min(left, top) >= 0 and right <= 70 and bottom <= 50
        face_id = int(name.split("_face")[1][:3])
        with Image.open(tmp_path / "images" / name) as img:
            assert img.size == (70, 50)
            crop = np.asarray(img.convert("L").crop((left, top, right, bottom)), dtype=float)
        face = Image.fromarray((faces[face_id] * 255).astype(np.uint8)).resize((side, side))
        assert np.abs(crop - np.asarray(face, dtype=float)).mean() < 12  # JPEG's loss only
    assert orders == {True, False}  # corners in either order, as labelme users draw them
    negatives = [p for p in images if "_face" not in p.name]
    assert len(negatives) == 30 - len(labels)
    assert [p.stem for p in images] == sorted(
        [f"frame_{i:04d}" for i in range(30) if f"frame_{i:04d}.jpg" in {n.name for n in negatives}]
        + [p.stem for p in labels]
    )


def test_a_frame_is_a_crop_of_one_background_at_least_its_size():
    backgrounds = [np.full((40, 50, 3), 200, np.uint8), np.full((30, 30, 3), 10, np.uint8)]
    seen = set()
    for seed in range(12):
        frame = sample.make_frame(np.random.default_rng(seed), backgrounds, 64, 48)
        assert frame.size == (64, 48)
        values = set(np.unique(np.asarray(frame)))
        assert values in ({200}, {10})
        seen |= values
    assert seen == {200, 10}  # either picture is drawn
    pictures = sample.load_backgrounds()
    assert len(pictures) == len(sample.BACKGROUNDS)
    assert all(p.ndim == 3 and p.shape[2] == 3 and p.dtype == np.uint8 for p in pictures)


def test_the_sample_stage_rebuilds_its_folder_from_scratch(workdir, capsys):
    write_params(workdir, **TINY_PARAMS)
    stale = workdir / "data/sample/classification/old.png"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"stale")
    sample.main(["classification"])
    assert not stale.exists()
    assert capsys.readouterr().out.strip() == (
        "sample@classification: 80 images in data/sample/classification"
    )


def dvc_dir_md5(root: Path) -> str:
    """The hash DVC records for a folder output: the MD5 of its sorted (md5, relpath) list."""
    files = sorted(
        (p for p in root.rglob("*") if p.is_file()), key=lambda p: p.relative_to(root).parts
    )
    entries = [
        {"md5": hashlib.md5(p.read_bytes()).hexdigest(), "relpath": p.relative_to(root).as_posix()}
        for p in files
    ]
    return hashlib.md5(json.dumps(entries, sort_keys=True).encode()).hexdigest() + ".dir"


def test_the_default_sample_is_byte_for_byte_the_data_dvc_lock_records(workdir):
    """A fresh clone's `dvc repro` rebuilds the sample the committed results were computed
    on, so nothing downstream trains again for a difference in the data."""
    shutil.copy(ROOT / "params.yaml", workdir / "params.yaml")
    lock = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    for task in ("classification", "detection"):
        sample.main([task])
        (out,) = lock[f"sample@{task}"]["outs"]
        assert dvc_dir_md5(workdir / out["path"]) == out["md5"], task


def test_the_command_line_names_the_stage_and_takes_a_task_only(capsys):
    assert usage(sample.main) == (
        "[-h] {classification,detection} Stage `sample@<task>`: build the embedded demo"
        " dataset from images shipped in packages. positional arguments:"
        " {classification,detection} options: -h, --help show this help message and exit"
    )
    refuses_choice(sample.main, "faces", ("classification", "detection"), capsys)


def test_building_frames_shows_a_progress_bar_of_frames(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sample, "tqdm", functools.partial(tqdm.tqdm, disable=False))
    monkeypatch.setattr(tqdm.tqdm, "monitor_interval", 0)  # no thread left behind
    cfg = load_params("sample", ROOT / "params.yaml").detection.model_copy(update={"frames": 2})
    sample.write_faces(tmp_path, cfg, seed=0)
    shown = capsys.readouterr().err
    assert "sample@detection: 100%" in shown and "| 2/2 [" in shown and "frame/s]" in shown
