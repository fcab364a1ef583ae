"""Stage `split@<task>`: assign every usable image of a dataset to train / val / test.

In:  the dataset folder named by `data.<task>` in params.yaml.
Out: data/split/<task>.csv (a manifest: paths, labels or boxes, content hash, group, split)
     and reports/data/<task>.json (counts per split and class, groups, duplicates and
     near-duplicates, skipped files + why).
Params: base.seed, split.* (split.group_by.<task> and split.group_pattern.<task> for its task).
Images of one group (a source named by split.group_by, exact copies, near-duplicates) always
share a split, so the test split holds no source the model trained on.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

import pandas as pd

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.config import BaseParams, load_params
from stages.shared.core.paths import TASKS, split_manifest, split_report
from stages.shared.data.datasets import Scan, scan_classification, scan_detection
from stages.shared.data.duplicates import near_duplicates
from stages.shared.data.manifest import SPLITS, write_json, write_manifest
from stages.shared.data.splitting import assign_splits, group_key, join_groups
from stages.shared.params.data import DataParams
from stages.shared.params.split import SplitParams

NEAR_DUPLICATES_LISTED = 200  # pairs written to the report; all are counted


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


def source_groups(frame: pd.DataFrame, root: str, task: str, cfg) -> tuple[list, int]:
    """Each row's source group key (None: its own) by split.group_by, and how many rows have
    none; a pattern that matches no file is one line naming the param."""
    by, text = getattr(cfg.group_by, task), getattr(cfg.group_pattern, task)
    pattern = re.compile(text) if by == "pattern" else None
    top = "images" if task == "detection" else None
    relative = list(frame["path"])
    keys = [group_key(rel, by, pattern, top) for rel in relative]
    unmatched = sum(key is None for key in keys)
    if by == "pattern" and keys and unmatched == len(keys):
        raise UserError(
            f"split.group_pattern.{task}: '{text}' matches no file of '{root}' (e.g."
            f" {relative[0]!r}) — fix the pattern, or set split.group_by.{task}: none"
        )
    return keys, unmatched


def assign_groups(frame: pd.DataFrame, root: str, task: str, cfg) -> dict:
    """Fill frame["group"] (source, exact copies and near-duplicates joined); return what
    the report says about the groups."""
    sources, unmatched = source_groups(frame, root, task, cfg)
    # Key priority by prefix: a component is named after its source if it has one.
    keys = [
        ([f"0:{source}"] if source is not None else []) + [f"1:{md5}"]
        for source, md5 in zip(sources, frame["md5"], strict=True)
    ]
    found = near_duplicates(list(frame["phash"]), cfg.near_duplicates.max_distance)
    frame["group"] = [name[2:] for name in join_groups(keys, found.edges)]
    paths = list(frame["path"])
    return {
        "by": getattr(cfg.group_by, task),
        "pattern": getattr(cfg.group_pattern, task) or None,
        "files_without_a_source": unmatched,
        "near_duplicates": {
            "max_distance": cfg.near_duplicates.max_distance,
            "pairs": found.count,
            "listed": [[paths[i], paths[j], d] for i, j, d in found.first(NEAR_DUPLICATES_LISTED)],
        },
    }


def group_report(frame: pd.DataFrame, fractions: dict) -> dict:
    """How many groups, the largest, and a warning for each group larger than a split."""
    sizes = frame.groupby("group").size().sort_values(ascending=False, kind="mergesort")
    smallest = min((f, s) for s, f in fractions.items() if f > 0)
    share = smallest[0] * len(frame)
    warnings = [
        f"group {name!r} ({count} images) is larger than the {smallest[1]} split's share"
        f" ({share:.0f} images): it cannot be split, so the fractions are off"
        for name, count in sizes.items()
        if count > share
    ]
    return {
        "count": len(sizes),
        "largest": {"group": str(sizes.index[0]), "images": int(sizes.iloc[0])},
        "warnings": warnings,
    }


def build_report(task: str, root: str, frame: pd.DataFrame, scan: Scan, dropped: list[str]):
    """The JSON report: counts per split and class, duplicates, adjustments, skipped files."""
    per_split = frame.groupby(["split", "label"]).size()
    copies = frame.groupby("md5").size()
    return {
        "task": task,
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


def relative_to_root(frame: pd.DataFrame, scan: Scan, root: str) -> pd.DataFrame:
    """Paths relative to the dataset folder, in the manifest and the report alike: the same
    bytes in another folder give the same outputs, and nothing after `split` re-runs."""

    def relative(path: str) -> str:
        try:
            return Path(path).relative_to(root).as_posix()
        except ValueError:  # not under the folder (a skipped link's target): as found
            return path

    prefix = f"{Path(root).as_posix()}/"
    for skipped in scan.skipped:  # a reason may name another file (a label): relative too
        skipped["path"] = relative(skipped["path"])
        skipped["reason"] = skipped["reason"].replace(prefix, "")
    return frame.assign(path=[relative(p) for p in frame["path"]])


def scan_frame(task: str, root: str, key: str, cfg, fingerprint: bool):
    """(manifest rows as a frame, scan, dropped classes) of a dataset folder."""
    if task == "classification":
        scan, classes = scan_classification(Path(root), key, fingerprint)
        columns = ["path", "label", "md5", "width", "height", "phash"]
        frame = pd.DataFrame(scan.rows, columns=columns)
        frame = drop_conflicts(frame, scan)
        dropped = check_classes(frame, classes, cfg, key)
        return frame[~frame["label"].isin(dropped)], scan, dropped
    scan = scan_detection(Path(root), key, fingerprint)
    columns = ["path", "present", "x1", "y1", "x2", "y2", "md5", "width", "height", "phash"]
    frame = pd.DataFrame(scan.rows, columns=columns)
    frame["label"] = frame["present"].map({1: "object", 0: "negative"})
    frame = drop_conflicts(frame, scan)
    if not frame["present"].any():
        raise UserError(f"{key}: no image in '{root}' has a labelme rectangle — label some")
    return frame, scan, []


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=TASKS)
    task = parser.parse_args(argv).task
    base, data, cfg = load_params(BaseParams), load_params(DataParams), load_params(SplitParams)
    key, root = f"data.{task}", getattr(data, task)
    fingerprint = cfg.near_duplicates.max_distance > 0
    frame, scan, dropped = scan_frame(task, root, key, cfg, fingerprint)
    frame = relative_to_root(frame.reset_index(drop=True), scan, root)
    groups = assign_groups(frame, root, task, cfg)
    fractions = cfg.fractions.model_dump()
    frame["split"] = assign_splits(
        frame["group"], frame["label"], fractions, base.seed, cfg.folds, cfg.fold
    )
    write_manifest(split_manifest(task), frame, task)
    report = build_report(task, root, frame, scan, dropped)
    report["groups"] = {**groups, **group_report(frame, fractions)}
    report["cross_validation"] = {"folds": cfg.folds, "val_fold": cfg.fold}
    write_json(split_report(task), report)
    counts = {s: int((frame["split"] == s).sum()) for s in SPLITS}
    print(
        f"split@{task}: {counts}, {report['groups']['count']} groups,"
        f" {groups['near_duplicates']['pairs']} near-duplicate pairs,"
        f" {len(scan.skipped)} skipped (see {split_report(task)})"
    )


if __name__ == "__main__":
    run_stage(main)
