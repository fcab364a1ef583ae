"""Augment throughput with 1 and 2 worker processes on the sample detection data."""

from __future__ import annotations

from pathlib import Path

from bench.common import project_params, row, temp_project, timed
from stages import sample, split
from stages.shared.augmentation import augment_rows
from stages.shared.manifest import read_manifest


def run() -> list[dict]:
    params = project_params()
    cfg = params["augment"]["detection"]
    stages = [(sample.main, ["detection"]), (split.main, ["detection"])]
    with temp_project(params, stages):
        rows = read_manifest(Path("data/split/detection.csv"), "detection").to_dict("records")
        Path("out").mkdir()
        config = {
            "transforms": cfg["transforms"],
            "size": params["base"]["image_size"]["detection"],
            "with_boxes": True,
            "min_visibility": cfg["min_visibility"],
            "where": "bench",
            "copies": 4,
            "seed": 0,
            "out_dir": "out",
            "format": cfg["format"],
            "decode_side": None,
        }
        list(augment_rows(rows[:20], config, 1))  # warm caches and imports
        written = 4 * len(rows)
        one = written / timed(lambda: list(augment_rows(rows, config, 1)))
        two = written / timed(lambda: list(augment_rows(rows, config, 2)))
    ratio = two / one
    print(f"augment: 1 worker {one:.0f} img/s, 2 workers {two:.0f} img/s, ratio {ratio:.2f}")
    return [
        row("augment img/s, 1 worker", round(one)),
        row("augment img/s, 2 workers", round(two)),
        row("augment speed-up, 2 vs 1 workers", round(ratio, 2), ">= 1.7", ratio >= 1.7),
    ]
