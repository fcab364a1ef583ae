"""Augment throughput with 1 and 2 worker processes on the sample detection data."""

from __future__ import annotations

from pathlib import Path

from bench.common import project_params, row, temp_project, timed
from stages import sample, split
from stages.shared.core.config import dataset_root
from stages.shared.data.augmentation import augment_rows
from stages.shared.data.manifest import input_size, read_manifest


def run() -> list[dict]:
    params = project_params()
    cfg = params["augment"]["detection"]
    stages = [(sample.main, ["detection"]), (split.main, ["detection"])]
    with temp_project(params, stages):
        frame = read_manifest(Path("data/split/detection.csv"), "detection")
        jobs = [(row, False, True) for row in frame.to_dict("records")]  # 4 copies of each
        config = {
            "transforms": cfg["transforms"],
            "size": input_size(params["base"]["image_size"]["detection"], frame),
            "with_boxes": True,
            "min_visibility": cfg["min_visibility"],
            "where": "bench",
            "copies": 4,
            "seed": 0,
            "decode_side": None,
            "root": dataset_root("detection").as_posix(),  # where the manifest's paths start
            "paste": 0.0,
            "bank": [],
        }
        list(augment_rows(jobs[:20], config, 1))  # warm caches and imports
        written = 4 * len(jobs)
        one = written / timed(lambda: list(augment_rows(jobs, config, 1)))
        two = written / timed(lambda: list(augment_rows(jobs, config, 2)))
    ratio = two / one
    print(f"augment: 1 worker {one:.0f} img/s, 2 workers {two:.0f} img/s, ratio {ratio:.2f}")
    return [
        row("augment img/s, 1 worker", round(one)),
        row("augment img/s, 2 workers", round(two)),
        row("augment speed-up, 2 vs 1 workers", round(ratio, 2), ">= 1.7", ratio >= 1.7),
    ]
