"""Stage `augment@<task>`: the images training and evaluation read, as TFRecord shards;
offline augmentation of the train split with albumentations.

In:  data/split/<task>.csv and the images it lists (never changed).
Out: data/augmented/<task>/: <split>-NNNNN-of-NNNNN.tfrecord shards of model-input images
     (see shared/shards.py): the train images (if kept) and their augmented copies, in a
     seeded order; val and test as the split lists them. shards.json describes them;
     manifest.csv lists every record (the split manifest's columns, plus `source`, the
     user's file, and `record`, <shard>#<position>; a copy's `path` is its record).
     reports/data/augment-<task>.json: copies written, boxes lost, shards.
     `--dump DIR` writes training records as PNG files, to look at what augmentation did.
Params: base.seed, base.image_size.<task> (the size written; `auto`: see
        manifest.input_size), augment.shard_size, augment.<task> (`copies: auto` for
        detection: see auto_copies; augment.workers changes speed only, never the output).
"""

from __future__ import annotations

import argparse
import itertools
import os
import shutil
import time
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from stages.shared.core.cli import run_stage
from stages.shared.core.config import BaseParams, dataset_root, load_params
from stages.shared.core.paths import (
    AUGMENTED_DIR,
    DATA_REPORTS_DIR,
    TASKS,
    augmented_manifest,
    split_manifest,
)
from stages.shared.core.seeding import make_rng
from stages.shared.data import shards
from stages.shared.data.augmentation import augment_rows, build_pipeline, decode_side
from stages.shared.data.manifest import (
    BOX,
    SMALL_AREA,
    input_size,
    median_box_area,
    read_manifest,
    write_json,
    write_manifest,
)
from stages.shared.params.augment import AugmentParams

# `copies: auto` (detection): FEW_COPIES augmented copies of each training frame, MANY_COPIES when
# the frames with an object show fewer than FEW_SOURCES distinct objects (sources, as
# split.group_by names them), or when the objects are small: the median training box under
# SMALL_AREA of its frame (manifest.py; the bound of evaluate's "small" slice). The augmented
# views are most of the variety the model sees when objects are few, or when each covers a few
# pixels of its frame. On the recipe check's `coins` (16 coins in training) 6 copies raised test
# AP50 by 0.07 over 3 (mean of four seeds); on the sample (67 faces, median box 13.5 % of the
# frame) by 0.02 (one seed), for 1.75x the training time; on `small-faces` (65 faces, median box
# 1.5 %) AP50 by 0.07 and mean IoU by 0.04, every seed of three above the best with 3 copies, for
# about 1.5x the training time (bench/RECIPE_LEVERS.md).
FEW_COPIES, MANY_COPIES, FEW_SOURCES = 3, 6, 32


def auto_copies(setting: int | str, train: pd.DataFrame) -> int:
    """Augmented copies per training image: `setting`, or for `auto` from the training frames
    that hold an object: the number of distinct sources among them (`group` of the split
    manifest; with `group_by: none` every frame is its own source) and their boxes' median
    share of the frame's area."""
    if setting != "auto":
        return int(setting)
    held = train[train["present"] == 1]
    sources = held["group"].nunique()
    small = median_box_area(held) < SMALL_AREA
    return MANY_COPIES if sources < FEW_SOURCES or small else FEW_COPIES


def paste_bank(train: pd.DataFrame) -> list[tuple[str, tuple[float, ...]]]:
    """(path, box) of each training frame holding an object, in md5 order: what copy-paste
    (`augment.detection.paste`) puts into the copies of frames without one."""
    held = train[train["present"] == 1].sort_values("md5", kind="stable")
    return [(row["path"], tuple(row[k] for k in BOX)) for row in held.to_dict("records")]


def frame_order(train: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Training frames in the seeded order their records are written: shards then hold a
    mix of the whole dataset, so a reader's bounded shuffle buffer mixes well (tfdata)."""
    return train.iloc[make_rng(seed, "shard order").permutation(len(train))]


def split_jobs(frame: pd.DataFrame, keep_train: bool, copies: int, seed: int) -> dict:
    """Per split, the (row, keep the image, add copies) jobs whose images make its records,
    in record order: training frames in the seeded shard order, val and test as listed."""
    train = frame_order(frame[frame["split"] == "train"], seed)
    jobs = {"train": [(row, keep_train, copies > 0) for row in train.to_dict("records")]}
    for split in ("val", "test"):
        rows = frame[frame["split"] == split].to_dict("records")
        jobs[split] = [(row, True, False) for row in rows]
    return jobs


class SplitRecords:
    """The serialised records of one split, from the jobs' (pixels, row) lists in order;
    keeps each one's manifest row (`record`: <shard>#<position>; a copy's `path`: the same
    under the output folder)."""

    def __init__(self, produced, names: list[str], shard_size: int, fmt: str, out_dir: Path):
        self.produced, self.names, self.shard_size = produced, names, shard_size
        self.fmt, self.out_dir = fmt, out_dir
        self.rows: list[dict] = []

    def __iter__(self):
        for images in self.produced:
            for pixels, row in images:
                index = len(self.rows)
                record = f"{self.names[index // self.shard_size]}#{index % self.shard_size}"
                path = row["path"] or (self.out_dir / record).as_posix()
                self.rows.append({**row, "path": path, "record": record})
                yield shards.example(pixels, self.fmt, index, row)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=TASKS)
    parser.add_argument(
        "--dump",
        metavar="DIR",
        help="write the first --count training records to DIR as PNG files (boxes drawn)"
        " with records.csv, and exit",
    )
    parser.add_argument("--count", type=int, default=64, help="records to --dump (default 64)")
    args = parser.parse_args(argv)
    task = args.task
    if args.dump:
        written = shards.dump(AUGMENTED_DIR / task, "train", Path(args.dump), args.count)
        print(f"augment@{task}: {written} training records → {args.dump} (see records.csv)")
        return
    base, params = load_params(BaseParams), load_params(AugmentParams)
    cfg = getattr(params, task)
    where = f"augment.{task}.transforms"
    with_boxes = task == "detection"
    min_visibility = getattr(cfg, "min_visibility", 0.0)
    paste = getattr(cfg, "paste", 0.0)
    frame = read_manifest(split_manifest(task), task)
    frame["source"] = frame["path"]
    train = frame[frame["split"] == "train"]
    copies_each = auto_copies(cfg.copies, train)
    keep_train = cfg.keep_original or copies_each == 0
    keep = frame if keep_train else frame[frame["split"] != "train"]
    # The model input size (one setting per fact; `auto`: from the rows passed through, as
    # training computes it from them), then every transform checked before touching an image.
    size = input_size(getattr(base.image_size, task), keep)
    build_pipeline(cfg.transforms, size, with_boxes, min_visibility, where)

    out_dir = AUGMENTED_DIR / task
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    workers = params.workers or os.cpu_count() or 1
    config = {
        "transforms": cfg.transforms,
        "size": size,
        "with_boxes": with_boxes,
        "min_visibility": min_visibility,
        "where": where,
        "seed": base.seed,
        "copies": copies_each,
        "root": dataset_root(task).as_posix(),  # where the manifest's paths start
        # A large JPEG decodes at reduced scale when the transforms allow (see decode_side).
        "decode_side": decode_side(cfg.transforms, size),
        # Copy-paste (detection): the training objects a negative frame's copy may receive,
        # in md5 order (independent of file order).
        "paste": paste,
        "bank": paste_bank(train) if paste > 0 else [],
    }
    started = time.perf_counter()
    jobs = split_jobs(frame, keep_train, copies_each, base.seed)
    produced = augment_rows([job for split in jobs.values() for job in split], config, workers)
    rows: list[dict] = []
    files, counts = {}, {}
    for split, todo in jobs.items():
        counts[split] = len(todo) * (int(keep_train) + copies_each if split == "train" else 1)
        names = shards.shard_names(split, counts[split], params.shard_size)
        mine = itertools.islice(produced, len(todo))
        progress = tqdm(mine, total=len(todo), desc=f"augment@{task} {split}", unit="image")
        records = SplitRecords(progress, names, params.shard_size, cfg.format, out_dir)
        shards.write_split(out_dir, names, records, counts[split], params.shard_size)
        files[split] = names
        rows += records.rows
    seconds = time.perf_counter() - started
    spec = {"image_size": size, "format": cfg.format, "shard_size": params.shard_size}
    shards.write_spec(out_dir, {**spec, "records": counts, "files": files})
    out = pd.DataFrame(rows, columns=[*frame.columns, "record", "lost"])
    write_manifest(augmented_manifest(task), out, task, extra=("source", "record"))
    copies = out[out["path"] != out["source"]]
    report = {
        "task": task,
        "train_images": len(train),
        "copies_per_image": copies_each,
        "copies_written": len(copies),
        "originals_kept": bool(keep_train),
        "rows": counts,
        "boxes_lost": int(copies["lost"].fillna(0).sum()),
        "image_size": size,
        "shards": sum(map(len, files.values())),
    }
    if with_boxes:  # copies of frames without an object that hold one now (or lost it)
        empty = copies["source"].map(frame.set_index("path")["present"]) == 0
        report["objects_pasted"] = int(
            (empty & ((copies["present"] == 1) | (copies["lost"] == 1))).sum()
        )
    write_json(DATA_REPORTS_DIR / f"augment-{task}.json", report)
    # Speed goes to the log, not the report: the report must be the same bytes on every run.
    print(
        f"augment@{task}: {len(copies)} copies of {len(train)} train images; {len(out)} records"
        f" in {report['shards']} shards; {seconds:.1f}s with {workers} workers"
    )


if __name__ == "__main__":
    run_stage(main)
