"""stages/sample.py: the embedded demo data is built offline, deterministically, as labelme."""

from __future__ import annotations

import hashlib
import json

import pandas as pd

from stages import sample, split
from stages.shared.labelme import read_label
from tests.conftest import TINY_PARAMS, write_params


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
    assert digits["path"].str.fullmatch(r".*/\d/digit_\d{4}\.png").all()
