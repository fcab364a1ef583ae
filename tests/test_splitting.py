"""splitting.py: stratified, seeded, duplicate-aware split assignment."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stages.shared.splitting import assign_splits, split_counts

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


@given(n=st.integers(0, 500), a=st.floats(0.05, 0.9))
def test_split_counts_sum_to_n_and_stay_within_one_of_exact(n, a):
    fractions = {"train": a, "val": (1 - a) / 2, "test": (1 - a) / 2}
    counts = split_counts(n, fractions)
    assert sum(counts.values()) == n
    for name, frac in fractions.items():
        assert abs(counts[name] - n * frac) < 1 + 1e-9


def test_every_class_is_split_by_the_fractions_within_one_image():
    labels = ["a"] * 50 + ["b"] * 23 + ["c"] * 7
    groups = [f"md5-{i}" for i in range(len(labels))]
    splits = assign_splits(groups, labels, FRACTIONS, seed=3)
    for label, size in Counter(labels).items():
        got = Counter(s for s, lab in zip(splits, labels, strict=True) if lab == label)
        for name, frac in FRACTIONS.items():
            assert abs(got[name] - size * frac) <= 1, (label, name, got)


def test_duplicates_land_in_the_same_split():
    groups = [f"g{i // 3}" for i in range(60)]  # every image three times
    labels = ["a" if i < 30 else "b" for i in range(60)]
    splits = assign_splits(groups, labels, FRACTIONS, seed=0)
    for g in set(groups):
        assert len({s for s, gg in zip(splits, groups, strict=True) if gg == g}) == 1
    assert set(splits) == {"train", "val", "test"}


def test_same_seed_same_result_any_listing_order_and_new_seed_differs():
    groups = [f"g{i}" for i in range(40)]
    labels = ["a", "b"] * 20
    first = dict(zip(groups, assign_splits(groups, labels, FRACTIONS, 1), strict=True))
    backwards = assign_splits(groups[::-1], labels[::-1], FRACTIONS, 1)
    assert dict(zip(groups[::-1], backwards, strict=True)) == first
    other = dict(zip(groups, assign_splits(groups, labels, FRACTIONS, 2), strict=True))
    assert other != first


def test_one_group_with_two_labels_is_refused():
    with pytest.raises(ValueError, match="group g has two labels"):
        assign_splits(["g", "g"], ["a", "b"], FRACTIONS, 0)


def test_k_fold_keeps_the_test_split_and_rotates_val_through_every_item():
    labels = ["a"] * 40 + ["b"] * 21
    groups = [f"md5-{i}" for i in range(len(labels))]
    plain = assign_splits(groups, labels, FRACTIONS, seed=5)
    test = {g for g, s in zip(groups, plain, strict=True) if s == "test"}
    val_of_fold = []
    for fold in range(4):
        splits = assign_splits(groups, labels, FRACTIONS, seed=5, folds=4, fold=fold)
        assert {g for g, s in zip(groups, splits, strict=True) if s == "test"} == test
        val = {g for g, s in zip(groups, splits, strict=True) if s == "val"}
        # Stratified: each label's val share is its pool / 4, within one item.
        for label, pool in (("a", 40 - 6), ("b", 21 - 3)):
            got = sum(1 for g, lab in zip(groups, labels, strict=True) if g in val and lab == label)
            assert abs(got - pool / 4) <= 1, (fold, label, got)
        val_of_fold.append(val)
    # The folds partition everything outside test: disjoint, and together all of it.
    assert sum(len(v) for v in val_of_fold) == len(groups) - len(test)
    assert set().union(*val_of_fold) == set(groups) - test
