"""Seeded, stratified train/val/test assignment of groups, and the groups themselves.

A group is everything that must not straddle splits: the images of one source (a patient, a
session, a video, one pasted face), exact duplicates, and near-duplicates. Groups are dealt,
largest first, to the split whose per-class image counts fall furthest below their targets,
so the split stays as stratified as the groups allow. With groups of one image of one class
each, every class is split within one image of the exact fractions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import numpy as np

from stages.shared.core.seeding import make_rng


class Components:
    """Union-find over keys: items that share any key end up in one component."""

    def __init__(self):
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller key names the component: the name does not depend on listing order.
            self.parent[max(ra, rb)] = min(ra, rb)


def join_groups(keys: Sequence[Sequence[str]], pairs: Sequence[tuple[int, int]] = ()) -> list[str]:
    """A component name per item: items sharing any of their keys, or linked by a (i, j)
    pair, share one."""
    components = Components()
    for item_keys in keys:
        for other in item_keys[1:]:
            components.union(item_keys[0], other)
    for i, j in pairs:
        components.union(keys[i][0], keys[j][0])
    return [components.find(item_keys[0]) for item_keys in keys]


GROUP_BY = ("none", "folder", "pattern")  # what keeps images in one split (`group_key`)


def group_key(relative: str, by: str, pattern: re.Pattern | None, top: str | None) -> str | None:
    """The source group of a file from its path relative to the dataset root, or None when
    it has none (its own group). `folder`: the first folder below the class folder (or below
    `top`, e.g. `images/` for detection); `pattern`: the regex's first capture group."""
    if by == "none":
        return None
    if by == "pattern":
        match = pattern.search(relative) if pattern else None
        return f"{match.group(1)}" if match and match.group(1) is not None else None
    parts = relative.split("/")
    skip = 1 if top is None or parts[0] == top else 0  # the class folder, or `images/`
    folders = parts[skip:-1]
    return folders[0] if folders else None


def _deal(
    order: list[int], counts: np.ndarray, targets: np.ndarray, weights: np.ndarray
) -> list[int]:
    """Put each group (rows of `counts`: images per class), in `order`, into the bin where it
    adds least to Σ w·(filled − target)² / target over bins × classes (a chi-square: a
    shortfall weighs more in a small bin). With one image of one class at a time this fills
    the bin with the largest relative shortfall, which keeps every bin within one image of
    its target."""
    filled = np.zeros_like(targets)
    placed = [0] * len(counts)
    scale = weights / np.maximum(targets, 1e-9)  # a bin with target 0 is never chosen
    for index in order:
        g = counts[index]
        gap = filled - targets
        cost = ((2 * gap * g + g * g) * scale).sum(axis=1)
        best = int(np.argmin(cost))  # ties: the first bin (train, then val)
        placed[index] = best
        filled[best] += g
    return placed


def assign_splits(
    groups: Sequence[str],
    labels: Sequence[str],
    fractions: Mapping[str, float],
    seed: int,
    folds: int = 1,
    fold: int = 0,
) -> list[str]:
    """The split of every item; items sharing a group share a split.

    Groups are dealt largest first (ties in a seeded order of their names, so the result does
    not depend on file listing order). With `folds` > 1 (k-fold cross-validation) the test
    groups are those of the plain split; the others are dealt into `folds` folds the same
    way, and fold number `fold` is the val split (`fractions["val"]` is then unused).
    """
    names = sorted(set(groups))
    classes = sorted(set(labels))
    row = {name: i for i, name in enumerate(names)}
    column = {label: j for j, label in enumerate(classes)}
    counts = np.zeros((len(names), len(classes)))
    for group, label in zip(groups, labels, strict=True):
        counts[row[group], column[label]] += 1
    totals = counts.sum(axis=0)
    weights = 1.0 / np.maximum(totals, 1)  # each class matters alike, however large
    shuffled = make_rng(seed, "split").permutation(len(names))
    order = sorted(shuffled, key=lambda i: -counts[i].sum())  # stable: seeded among equals
    splits = list(fractions)
    targets = np.array([[fractions[s] * t for t in totals] for s in splits])
    placed = [splits[b] for b in _deal(order, counts, targets, weights)]
    if folds > 1:
        rest = [i for i in order if placed[i] != "test"]
        pool = counts[rest].sum(axis=0)
        fold_targets = np.tile(pool / folds, (folds, 1))
        dealt = _deal(list(range(len(rest))), counts[rest], fold_targets, weights)
        for i, k in zip(rest, dealt, strict=True):
            placed[i] = "val" if k == fold else "train"
    split_of = dict(zip(names, placed, strict=True))
    return [split_of[group] for group in groups]
