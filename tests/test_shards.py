"""shards.py and the shards augment writes: the pixels every stage agrees on, few files,
a way to look at them, and a full disk said in one line."""

from __future__ import annotations

import errno
import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from stages import augment, split, train_detector
from stages.shared.core.config import dataset_root
from stages.shared.data import shards
from stages.shared.data.tfdata import load_image, read_pixels
from stages.shared.training import loop
from tests.conftest import make_detection, run_paths, write_params

FOLDER = "data/augmented/detection"


def detection_shards(workdir, **augment_params) -> pd.DataFrame:
    """A tiny labelme set split and augmented at 32 px (2 copies); the augmented manifest."""
    make_detection(workdir / "faces", positives=12, negatives=4)
    write_params(
        workdir,
        data={"detection": "faces"},
        base={"image_size": {"classification": 16, "detection": 32}},
    )
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["augment"]["detection"].update(copies=2, **augment_params.pop("detection", {}))
    params["augment"].update(augment_params)
    (workdir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    split.main(["detection"])
    augment.main(["detection"])
    return pd.read_csv(workdir / FOLDER / "manifest.csv", dtype={"group": str})


@pytest.mark.parametrize("fmt", ["raw", "png"])
def test_a_users_image_in_the_shards_is_exactly_what_predict_makes_of_the_file(workdir, fmt):
    out = detection_shards(workdir, detection={"format": fmt})
    for split_name in ("train", "val", "test"):
        rows = out[out["split"] == split_name].reset_index(drop=True)
        pixels = read_pixels(workdir / FOLDER, split_name)
        assert len(pixels) == len(rows) > 0
        for i in np.flatnonzero(rows["path"] == rows["source"]):
            file = (dataset_root("detection") / rows["path"][i]).as_posix()  # as the user has it
            assert np.array_equal(pixels[i], load_image(file, 32)), (split_name, i)
    # a copy's path names its record, and the record holds the copy's pixels (md5 of them)
    copies = out[out["path"] != out["source"]].reset_index(drop=True)
    assert (copies["path"] == FOLDER + "/" + copies["record"]).all()
    train = out[out["split"] == "train"].reset_index(drop=True)
    pixels = read_pixels(workdir / FOLDER, "train")
    import hashlib

    for i in np.flatnonzero(train["path"] != train["source"])[:5]:
        digest = hashlib.md5(pixels[i].astype(np.uint8).tobytes()).hexdigest()
        assert digest == train["md5"][i]


def test_raw_and_png_shards_hold_the_same_pixels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "raw").mkdir()
    (tmp_path / "png").mkdir()
    images = {}
    for fmt in ("raw", "png"):
        monkeypatch.chdir(tmp_path / fmt)
        detection_shards(tmp_path / fmt, detection={"format": fmt})
        images[fmt] = read_pixels(tmp_path / fmt / FOLDER, "train")
    assert np.array_equal(images["raw"], images["png"])
    sizes = {
        fmt: sum(p.stat().st_size for p in (tmp_path / fmt / FOLDER).glob("*.tfrecord"))
        for fmt in images
    }
    assert sizes["png"] < sizes["raw"]


def test_files_in_the_output_grow_with_shards_not_images(workdir):
    out = detection_shards(workdir, shard_size=8)
    counts = out["split"].value_counts()
    files = sorted(p.name for p in (workdir / FOLDER).iterdir())
    shard_files = [f for f in files if f.endswith(".tfrecord")]
    assert len(shard_files) == sum(math.ceil(counts[s] / 8) for s in ("train", "val", "test"))
    assert len(files) == len(shard_files) + 2  # manifest.csv and shards.json
    spec = json.loads((workdir / FOLDER / "shards.json").read_text())
    assert spec["records"] == {s: int(counts[s]) for s in ("train", "val", "test")}
    # every record sits where its manifest row says
    for split_name in ("train", "val", "test"):
        rows = out[out["split"] == split_name].reset_index(drop=True)
        expected = [f"{spec['files'][split_name][i // 8]}#{i % 8}" for i in range(len(rows))]
        assert rows["record"].tolist() == expected


@pytest.mark.parametrize(("count", "files"), [(0, 0), (1, 1), (1024, 1), (1025, 2), (3000, 3)])
def test_shard_names_say_their_place_and_their_number(count, files):
    names = shards.shard_names("train", count, 1024)
    assert len(names) == files
    assert names == [f"train-{i:05d}-of-{files:05d}.tfrecord" for i in range(files)]


@pytest.mark.parametrize("fmt", ["raw", "png"])
def test_dump_writes_the_training_records_as_pictures_with_their_boxes(workdir, capsys, fmt):
    out = detection_shards(workdir, detection={"format": fmt})
    augment.main(["detection", "--dump", "look", "--count", "5"])
    assert "5 training records → look" in capsys.readouterr().out
    listed = pd.read_csv(workdir / "look/records.csv", dtype={"group": str})
    assert len(listed) == 5 and sorted(p.name for p in (workdir / "look").glob("*.png")) == sorted(
        listed["file"]
    )
    train = out[out["split"] == "train"].reset_index(drop=True)
    assert listed["source"].tolist() == train["source"][:5].tolist()
    assert listed["present"].tolist() == train["present"][:5].tolist()
    pixels = read_pixels(workdir / FOLDER, "train")
    for i, row in listed.iterrows():
        picture = np.asarray(Image.open(workdir / "look" / row["file"]))
        if row["present"]:  # the box's left edge is drawn in red
            x1, y1, y2 = (int(row[k] * 32) for k in ("x1", "y1", "y2"))
            assert (picture[y1:y2, x1] == [255, 0, 0]).all()
        else:
            assert np.array_equal(picture, pixels[i].astype(np.uint8))


def test_a_full_disk_is_an_os_error_naming_the_shard():
    with pytest.raises(OSError, match=r"No space left on device: '/dev/full'") as err:
        shards.write_split("/dev", ["full"], iter([b"x" * 100_000]), 1, 4)
    assert err.value.errno == errno.ENOSPC


def test_missing_shards_say_which_stage_writes_them(tmp_path):
    from stages.shared.core.cli import UserError

    with pytest.raises(UserError, match=r"shards\.json: not found — run `dvc repro`"):
        shards.read_spec(tmp_path)


def test_training_reads_the_shards_not_the_users_files(workdir):
    detection_shards(workdir)
    for image in (workdir / "faces/images").iterdir():
        image.unlink()
    write_params(
        workdir,
        data={"detection": "faces"},
        base={"image_size": {"classification": 16, "detection": 32}},
        train_detector={"epochs": 1, "batch_size": 8, "head_width": 8},
    )
    cfg, base = load_params_pair()
    summary = loop.train(train_detector.Detector, cfg, base, run_paths("detection"))
    assert (workdir / "models/run.keras").exists() and summary


def load_params_pair():
    from stages.shared.params.sections import load_params

    return load_params("train_detector"), load_params("base")
