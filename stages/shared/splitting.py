"""Seeded, stratified train/val/test assignment that keeps duplicate images together."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from stages.shared.seeding import make_rng


def split_counts(n: int, fractions: Mapping[str, float]) -> dict[str, int]:
    """Split n items by fractions with the largest-remainder rule (each within 1 of exact)."""
    exact = {name: n * frac for name, frac in fractions.items()}
    counts = {name: math.floor(value) for name, value in exact.items()}
    # Ties go to the split listed first (train, then val), so the result is deterministic.
    order = sorted(exact, key=lambda name: -(exact[name] - counts[name]))
    for name in order[: n - sum(counts.values())]:
        counts[name] += 1
    return counts


def assign_splits(
    groups: Sequence[str],
    labels: Sequence[str],
    fractions: Mapping[str, float],
    seed: int,
    folds: int = 1,
    fold: int = 0,
) -> list[str]:
    """The split of every item; items sharing a group (content hash) share a split.

    Stratification works on unique groups per label: each label's groups are ordered by
    group key (independent of file listing order), shuffled by a seed derived from the
    global seed and the label, then cut by `split_counts`. sklearn's `train_test_split`
    cuts in two steps and cannot keep groups together, hence this small function.

    With `folds` > 1 (k-fold cross-validation) the test items are the same as with one fold;
    the other items are dealt round-robin into `folds` folds, stratified per label, and fold
    number `fold` is the val split (`fractions["val"]` is then unused).
    """
    group_label: dict[str, str] = {}
    for group, label in zip(groups, labels, strict=True):
        if group_label.setdefault(group, label) != label:
            raise ValueError(f"group {group} has two labels: {group_label[group]!r}, {label!r}")
    by_label: dict[str, list[str]] = {}
    for group, label in group_label.items():
        by_label.setdefault(label, []).append(group)
    split_of: dict[str, str] = {}
    for label, members in sorted(by_label.items()):
        members.sort()
        order = make_rng(seed, "split", label).permutation(len(members))
        counts = split_counts(len(members), fractions)
        names = [name for name, count in counts.items() for _ in range(count)]
        if folds > 1:
            pool = len(members) - counts["test"]
            names = ["val" if k % folds == fold else "train" for k in range(pool)] + names[pool:]
        for position, name in zip(order, names, strict=True):
            split_of[members[position]] = name
    return [split_of[group] for group in groups]
