"""splitting.py: groups never straddle splits or folds; stratified as closely as groups allow."""

from __future__ import annotations

import re
from collections import Counter, defaultdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stages.shared.data.splitting import assign_splits, group_key, join_groups

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def split_of_each_group(groups, splits) -> dict[str, set[str]]:
    seen: dict[str, set[str]] = defaultdict(set)
    for group, split in zip(groups, splits, strict=True):
        seen[group].add(split)
    return seen


layouts = st.lists(
    st.tuples(st.integers(0, 30), st.sampled_from(["a", "b", "c"])),  # (group, label) per item
    min_size=1,
    max_size=120,
)


@settings(max_examples=150, deadline=None)
@given(items=layouts, seed=st.integers(0, 10**6), folds=st.integers(1, 5))
def test_a_group_never_straddles_splits_or_folds(items, seed, folds):
    groups = [f"g{g}" for g, _ in items]
    labels = [label for _, label in items]
    val_of_fold = []
    test = None
    for fold in range(folds):
        splits = assign_splits(groups, labels, FRACTIONS, seed, folds, fold)
        assert all(len(s) == 1 for s in split_of_each_group(groups, splits).values())
        fold_test = {g for g, s in zip(groups, splits, strict=True) if s == "test"}
        assert test is None or fold_test == test  # every fold has the plain split's test set
        test = fold_test
        val_of_fold.append({g for g, s in zip(groups, splits, strict=True) if s == "val"})
    if folds > 1:  # the folds partition the groups outside test
        assert sum(len(v) for v in val_of_fold) == len(set(set(groups) - test))
        assert set().union(*val_of_fold) == set(groups) - test


@settings(max_examples=100, deadline=None)
@given(sizes=st.dictionaries(st.sampled_from("abcdef"), st.integers(1, 200), min_size=1))
def test_groups_of_one_image_split_every_class_within_one_image(sizes):
    labels = [label for label, n in sorted(sizes.items()) for _ in range(n)]
    groups = [f"image-{i}" for i in range(len(labels))]
    splits = assign_splits(groups, labels, FRACTIONS, seed=3)
    for label, size in sizes.items():
        got = Counter(s for s, lab in zip(splits, labels, strict=True) if lab == label)
        for name, frac in FRACTIONS.items():
            assert abs(got[name] - size * frac) < 1, (label, name, got)


def test_groups_with_several_classes_keep_every_class_close_to_its_fractions():
    # 40 patients, each with 3 'tumour' slices and 2 'healthy' ones, plus 30 single scans.
    groups = [f"p{p}" for p in range(40) for _ in range(5)] + [f"s{i}" for i in range(30)]
    labels = (["tumour"] * 3 + ["healthy"] * 2) * 40 + ["healthy"] * 30
    splits = assign_splits(groups, labels, FRACTIONS, seed=1)
    assert all(len(s) == 1 for s in split_of_each_group(groups, splits).values())
    for label in ("tumour", "healthy"):
        total = labels.count(label)
        got = Counter(s for s, lab in zip(splits, labels, strict=True) if lab == label)
        for name, frac in FRACTIONS.items():
            assert abs(got[name] - total * frac) <= 5, (label, name, got)  # one patient's worth


def test_same_seed_same_result_in_any_listing_order_and_a_new_seed_differs():
    groups = [f"g{i // 2}" for i in range(80)]
    labels = ["a", "b"] * 40
    first = dict(zip(range(80), assign_splits(groups, labels, FRACTIONS, 1), strict=True))
    order = list(range(80))[::-1]
    backwards = assign_splits([groups[i] for i in order], [labels[i] for i in order], FRACTIONS, 1)
    assert dict(zip(order, backwards, strict=True)) == first
    other = dict(zip(range(80), assign_splits(groups, labels, FRACTIONS, 2), strict=True))
    assert other != first


def test_a_group_larger_than_a_split_lands_in_train():
    groups = ["big"] * 30 + [f"s{i}" for i in range(70)]
    labels = ["a"] * 100
    splits = assign_splits(groups, labels, FRACTIONS, seed=0)
    assert {s for g, s in zip(groups, splits, strict=True) if g == "big"} == {"train"}
    assert Counter(splits) == {"train": 70, "val": 15, "test": 15}


def test_shared_keys_and_pairs_join_groups():
    keys = [["0:alice", "1:m1"], ["1:m2"], ["0:bob", "1:m2"], ["1:m3"], ["1:m4"]]
    names = join_groups(keys, pairs=[(3, 4)])
    assert names[1] == names[2] == "0:bob"  # same content as bob's image
    assert names[3] == names[4] == "1:m3"  # a near-duplicate pair
    assert names[0] == "0:alice" and len(set(names)) == 3


@pytest.mark.parametrize(
    ("relative", "by", "pattern", "top", "expected"),
    [
        ("tumour/patient_07/slice_3.png", "folder", None, None, "patient_07"),
        ("tumour/slice_3.png", "folder", None, None, None),  # no folder: its own group
        ("images/session_2/frame_10.jpg", "folder", None, "images", "session_2"),
        ("session_2/frame_10.jpg", "folder", None, "images", "session_2"),  # JSON beside
        ("images/frame_10_face037.jpg", "pattern", r"_face(\d+)", "images", "037"),
        ("images/frame_11.jpg", "pattern", r"_face(\d+)", "images", None),
        ("cat/img_00.png", "none", None, None, None),
    ],
)
def test_group_keys_from_folders_and_patterns(relative, by, pattern, top, expected):
    compiled = re.compile(pattern) if pattern else None
    assert group_key(relative, by, compiled, top) == expected


def test_k_fold_names_only_train_val_test_and_fold_zero_is_the_default():
    labels = ["a"] * 37 + ["b"] * 11 + ["c"] * 5
    groups = [f"image-{i}" for i in range(len(labels))]
    plain = assign_splits(groups, labels, FRACTIONS, seed=4)
    default = assign_splits(groups, labels, FRACTIONS, seed=4, folds=4)
    assert default == assign_splits(groups, labels, FRACTIONS, seed=4, folds=4, fold=0)
    assert default != assign_splits(groups, labels, FRACTIONS, seed=4, folds=4, fold=1)
    for fold in range(4):
        splits = assign_splits(groups, labels, FRACTIONS, seed=4, folds=4, fold=fold)
        assert set(splits) == {"train", "val", "test"}
        assert [s == "test" for s in splits] == [s == "test" for s in plain]
        # Every class outside test is dealt evenly over the 4 folds: within one image.
        for label in "abc":
            outside = sum(
                s != "test" and lab == label for s, lab in zip(plain, labels, strict=True)
            )
            val = sum(s == "val" and lab == label for s, lab in zip(splits, labels, strict=True))
            assert abs(val - outside / 4) < 1, (fold, label, val, outside)


def test_a_long_chain_of_shared_keys_is_one_group_whatever_the_order():
    # a–b, b–c, c–d, d–e, listed so that union-find builds a chain and must compress it.
    keys = [["k:e", "k:d"], ["k:d", "k:c"], ["k:c", "k:b"], ["k:b", "k:a"], ["k:z"]]
    names = join_groups(keys)
    assert names == ["k:a", "k:a", "k:a", "k:a", "k:z"]
    assert join_groups(keys[::-1]) == names[::-1]


def test_group_by_pattern_without_a_pattern_is_no_group():
    assert group_key("images/frame_10_face037.jpg", "pattern", None, "images") is None


@pytest.mark.parametrize("size", range(1, 9))
def test_a_small_class_is_split_within_one_image_of_its_fractions(size):
    # Targets below one image (0.15 × 3 = 0.45) must still weigh as they are.
    labels = ["big"] * 50 + ["small"] * size
    splits = assign_splits([f"image-{i}" for i in range(len(labels))], labels, FRACTIONS, 2)
    got = Counter(s for s, lab in zip(splits, labels, strict=True) if lab == "small")
    for name, frac in FRACTIONS.items():
        assert abs(got[name] - size * frac) < 1, (name, got)
