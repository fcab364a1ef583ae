"""stages/sample.py: the embedded demo data is built offline, deterministically, as labelme."""

from __future__ import annotations

import hashlib
import json

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
