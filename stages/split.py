"""Stage `split@<task>`: assign every usable image of a dataset to train / val / test.

In:  the dataset folder named by `data.<task>` in params.yaml.
Out: data/split/<task>.csv (a manifest: paths, labels or boxes, content hash, split) and
     reports/data/<task>.json (counts per split and class, duplicates, skipped files + why).
Params: base.seed, split.*.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import pandas as pd

from stages.shared.cli import UserError, run_stage
from stages.shared.datasets import Scan, scan_classification, scan_detection
from stages.shared.manifest import SPLITS, write_json, write_manifest
from stages.shared.params import load_params
from stages.shared.paths import TASKS, split_manifest, split_report
from stages.shared.splitting import assign_splits


def drop_conflicts(frame: pd.DataFrame, scan: Scan) -> pd.DataFrame:
    """Skip identical images that carry different labels: no split could be right for them."""
    labels_per_md5 = frame.groupby("md5")["label"].nunique()
    conflicted = frame["md5"].isin(labels_per_md5[labels_per_md5 > 1].index)
    for path, md5 in frame.loc[conflicted, ["path", "md5"]].itertuples(index=False):
        others = sorted(set(frame.loc[frame["md5"] == md5, "label"]))
        scan.skip(Path(path), f"identical image carries different labels {others} — keep one")
    return frame[~conflicted]


def check_classes(frame: pd.DataFrame, classes: list[str], cfg, key: str) -> list[str]:
    """Apply split.min_per_class to each class; return the names of dropped classes."""
    unique = frame.drop_duplicates("md5")["label"].value_counts()
    small = [c for c in classes if unique.get(c, 0) < cfg.min_per_class]
    if small and cfg.small_classes == "error":
        sizes = ", ".join(f"{c!r} ({unique.get(c, 0)})" for c in small)
        raise UserError(
            f"{key}: class {sizes} has fewer than split.min_per_class={cfg.min_per_class} unique"
            " images — add images, remove the folder, or set split.small_classes: drop"
        )
    kept = [c for c in classes if c not in small]
    if len(kept) < 2:
        raise UserError(
            f"{key}: classification needs at least 2 classes with images, found {len(kept)}"
            f" ({', '.join(map(repr, kept)) or 'none'}) — add one folder per class"
        )
    return small


def build_report(task: str, root: str, frame: pd.DataFrame, scan: Scan, dropped: list[str]):
    """The JSON report: counts per split and class, duplicates, adjustments, skipped files."""
    per_split = frame.groupby(["split", "label"]).size()
    copies = frame.groupby("md5").size()
    return {
        "task": task,
        "dataset": root,
        "images": len(frame),
        "splits": {s: int((frame["split"] == s).sum()) for s in SPLITS},
        "classes": {
            label: {s: int(per_split.get((s, label), 0)) for s in SPLITS}
            for label in sorted(frame["label"].unique())
        },
        "duplicates": {
            "groups": int((copies > 1).sum()),
            "extra_copies": int((copies - 1).sum()),
        },
        "dropped_classes": dropped,
        "notes": dict(sorted(scan.notes.items())),
        "hidden_files_ignored": scan.hidden,
        "skipped": {
            "count": len(scan.skipped),
            "by_reason": dict(Counter(s["reason"].split(" — ")[0] for s in scan.skipped)),
            "files": scan.skipped,
        },
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=TASKS)
    task = parser.parse_args(argv).task
    base, data, cfg = load_params("base"), load_params("data"), load_params("split")
    key, root = f"data.{task}", getattr(data, task)
    if task == "classification":
        scan, classes = scan_classification(Path(root), key)
        frame = pd.DataFrame(scan.rows, columns=["path", "label", "md5"])
        frame = drop_conflicts(frame, scan)
        dropped = check_classes(frame, classes, cfg, key)
        frame = frame[~frame["label"].isin(dropped)]
    else:
        scan = scan_detection(Path(root), key)
        frame = pd.DataFrame(scan.rows, columns=["path", "present", "x1", "y1", "x2", "y2", "md5"])
        frame["label"] = frame["present"].map({1: "object", 0: "negative"})
        frame = drop_conflicts(frame, scan)
        dropped = []
        if not frame["present"].any():
            raise UserError(f"{key}: no image in '{root}' has a labelme rectangle — label some")
    frame = frame.reset_index(drop=True)
    fractions = cfg.fractions.model_dump()
    frame["split"] = assign_splits(
        frame["md5"], frame["label"], fractions, base.seed, cfg.folds, cfg.fold
    )
    write_manifest(split_manifest(task), frame, task)
    report = build_report(task, root, frame, scan, dropped)
    report["cross_validation"] = {"folds": cfg.folds, "val_fold": cfg.fold}
    write_json(split_report(task), report)
    counts = {s: int((frame["split"] == s).sum()) for s in SPLITS}
    print(f"split@{task}: {counts}, {len(scan.skipped)} skipped (see {split_report(task)})")


if __name__ == "__main__":
    run_stage(main)
