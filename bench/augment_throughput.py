"""Augment throughput with 1 and 2 worker processes on the sample detection data."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import yaml

from stages import sample, split
from stages.shared.augmentation import augment_rows
from stages.shared.manifest import read_manifest

ROOT = Path(__file__).resolve().parents[1]


def images_per_second(rows: list[dict], config: dict, workers: int) -> float:
    """Augmented images written per second over all rows."""
    started = time.perf_counter()
    written = sum(len(out) for out in augment_rows(rows, config, workers))
    return written / (time.perf_counter() - started)


def run() -> list[dict]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    cfg = params["augment"]["detection"]
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            Path("params.yaml").write_text(yaml.safe_dump(params))
            sample.main(["detection"])
            split.main(["detection"])
            rows = read_manifest(Path("data/split/detection.csv"), "detection").to_dict("records")
            out_dir = Path("out")
            out_dir.mkdir()
            config = {
                "transforms": cfg["transforms"], "size": cfg["size"], "with_boxes": True,
                "min_visibility": cfg["min_visibility"], "where": "bench", "copies": 4,
                "seed": 0, "out_dir": out_dir.as_posix(), "format": cfg["format"],
            }  # fmt: skip
            images_per_second(rows[:20], config, 1)  # warm caches and imports
            one = images_per_second(rows, config, 1)
            two = images_per_second(rows, config, 2)
        finally:
            os.chdir(cwd)
    ratio = two / one
    print(f"augment: 1 worker {one:.0f} img/s, 2 workers {two:.0f} img/s, ratio {ratio:.2f}")
    return [
        {"figure": "augment img/s, 1 worker", "value": round(one), "target": "-", "holds": "-"},
        {"figure": "augment img/s, 2 workers", "value": round(two), "target": "-", "holds": "-"},
        {
            "figure": "augment speed-up, 2 vs 1 workers",
            "value": round(ratio, 2),
            "target": ">= 1.7",
            "holds": "yes" if ratio >= 1.7 else "no",
        },
    ]
