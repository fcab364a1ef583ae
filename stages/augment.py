"""Stage `augment@<task>`: offline augmentation of the train split with albumentations.

In:  data/split/<task>.csv and the images it lists.
Out: data/augmented/<task>/ (augmented train images + manifest.csv in the split manifest's
     schema, plus a `source` column); val/test rows are carried over untouched, pointing at
     the original files. reports/data/augment-<task>.json: copies written, boxes lost.
Params: base.seed, base.image_size.<task> (the size written; `auto`: see
        manifest.input_size), augment.<task> (`copies: auto` for detection: see
        auto_copies; augment.workers changes speed only, never the output).
"""

from __future__ import annotations

import argparse
import os
import shutil
import time

import pandas as pd
from tqdm import tqdm

from stages.shared.augmentation import augment_rows, build_pipeline, decode_side
from stages.shared.cli import run_stage
from stages.shared.manifest import input_size, read_manifest, write_json, write_manifest
from stages.shared.params import load_params
from stages.shared.paths import AUGMENTED_DIR, DATA_REPORTS_DIR, TASKS, split_manifest

# `copies: auto` (detection): FEW_COPIES augmented copies of each training frame, MANY_COPIES
# when the frames with an object show fewer than FEW_SOURCES distinct objects (sources, as
# split.group_by names them). With few objects the augmented views are most of the variety
# the model sees: on the recipe check's `coins` (16 coins in training) 6 copies raised test
# AP50 by 0.07 over 3 (mean of four seeds), on the sample (67 faces) by 0.02 (one seed), for
# 1.75x the training time. The threshold sits between the two (README, "Recipe check").
FEW_COPIES, MANY_COPIES, FEW_SOURCES = 3, 6, 32


def auto_copies(setting: int | str, train: pd.DataFrame) -> int:
    """Augmented copies per training image: `setting`, or for `auto` from the number of
    distinct sources among the training frames that hold an object (`group` of the split
    manifest; with `group_by: none` every frame is its own source)."""
    if setting != "auto":
        return int(setting)
    sources = train.loc[train["present"] == 1, "group"].nunique()
    return MANY_COPIES if sources < FEW_SOURCES else FEW_COPIES


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=TASKS)
    task = parser.parse_args(argv).task
    base, params = load_params("base"), load_params("augment")
    cfg = getattr(params, task)
    where = f"augment.{task}.transforms"
    with_boxes = task == "detection"
    min_visibility = getattr(cfg, "min_visibility", 0.0)
    frame = read_manifest(split_manifest(task), task)
    frame["source"] = frame["path"]
    train = frame[frame["split"] == "train"]
    copies_each = auto_copies(cfg.copies, train)
    keep = frame if cfg.keep_original or copies_each == 0 else frame[frame["split"] != "train"]
    # The model input size (one setting per fact; `auto`: from the rows passed through, as
    # training computes it from them), then every transform checked before touching an image.
    size = input_size(getattr(base.image_size, task), keep)
    build_pipeline(cfg.transforms, size, with_boxes, min_visibility, where)

    out_dir = AUGMENTED_DIR / task
    shutil.rmtree(out_dir, ignore_errors=True)
    (out_dir / "images").mkdir(parents=True)
    workers = params.workers or os.cpu_count() or 1
    config = {
        "transforms": cfg.transforms,
        "size": size,
        "with_boxes": with_boxes,
        "min_visibility": min_visibility,
        "where": where,
        "seed": base.seed,
        "copies": copies_each,
        "out_dir": (out_dir / "images").as_posix(),
        "format": cfg.format,
        # A large JPEG decodes at reduced scale when the transforms allow (see decode_side).
        "decode_side": decode_side(cfg.transforms, size),
    }
    started = time.perf_counter()
    copies: list[dict] = []
    if copies_each:
        rows = train.to_dict("records")
        results = augment_rows(rows, config, workers)
        for produced in tqdm(results, total=len(rows), desc=f"augment@{task}", unit="image"):
            copies.extend(produced)
    seconds = time.perf_counter() - started
    out = pd.concat([keep, pd.DataFrame(copies, columns=[*frame.columns, "lost"])])
    write_manifest(out_dir / "manifest.csv", out, task, extra=("source",))
    report = {
        "task": task,
        "train_images": len(train),
        "copies_per_image": copies_each,
        "copies_written": len(copies),
        "originals_kept": bool(cfg.keep_original or copies_each == 0),
        "rows": {s: int((out["split"] == s).sum()) for s in ("train", "val", "test")},
        "boxes_lost": int(sum(r.get("lost", 0) for r in copies)),
        "image_size": size,
    }
    write_json(DATA_REPORTS_DIR / f"augment-{task}.json", report)
    # Speed goes to the log, not the report: the report must be the same bytes on every run.
    print(
        f"augment@{task}: {len(copies)} copies of {len(train)} train images in {seconds:.1f}s"
        f" with {workers} workers"
    )


if __name__ == "__main__":
    run_stage(main)
