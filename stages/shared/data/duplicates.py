"""Near-duplicate images: perceptual hashes a few bits apart.

A resized, re-encoded or lightly edited copy of an image has a different file hash but
almost the same perceptual hash (imagehash's pHash: the signs of the 8×8 lowest DCT
frequencies of a 32×32 grey thumbnail, 64 bits). Pairs within `max_distance` bits are found
without comparing every pair: split each hash into `max_distance + 1` blocks; two hashes that
differ in at most that many bits agree exactly on at least one block (pigeonhole), so only
hashes sharing a block value are compared.

Bursts and video frames hold many images with one hash: 50 near-copies of an image are 1,225
pairs. So the search runs over the distinct hash values, not the images (`NearDuplicates`):
the groups come from a chain through each value's images plus one link per pair of values,
the number of pairs is counted from the values' multiplicities, and only the first pairs the
report lists are ever written out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

HASH_BITS = 64


def close_values(values: np.ndarray, max_distance: int) -> np.ndarray:
    """(a, b, distance) rows, a < b, for the distinct uint64 `values` within `max_distance`
    bits of each other: candidates share a block (pigeonhole), checked with a popcount."""
    candidates = []
    blocks = np.array_split(np.arange(HASH_BITS, dtype=np.uint64), max_distance + 1)
    for block in blocks:
        mask = np.bitwise_or.reduce(np.uint64(1) << block)
        keys = values & mask
        order = np.argsort(keys, kind="stable")
        starts = np.flatnonzero(np.r_[True, keys[order][1:] != keys[order][:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
            members = np.sort(order[start : start + size])
            a, b = np.triu_indices(size, 1)
            candidates.append(np.stack([members[a], members[b]], 1))
    if not candidates:
        return np.zeros((0, 3), dtype=np.int64)
    pairs = np.unique(np.concatenate(candidates), axis=0)
    distance = np.bitwise_count(values[pairs[:, 0]] ^ values[pairs[:, 1]]).astype(np.int64)
    keep = distance <= max_distance
    return np.column_stack([pairs[keep], distance[keep]])


@dataclass
class NearDuplicates:
    """Near-duplicate pairs of a list of hashes, held by distinct hash value."""

    rows: list[np.ndarray]  # per distinct value: its items (indices into the hashes), sorted
    links: np.ndarray  # (a, b, distance) between distinct values

    @property
    def edges(self) -> list[tuple[int, int]]:
        """Item pairs that join the same groups as every near-duplicate pair does."""
        chains = [(int(r[k]), int(r[k + 1])) for r in self.rows for k in range(len(r) - 1)]
        return chains + [(int(self.rows[a][0]), int(self.rows[b][0])) for a, b, _ in self.links]

    @property
    def count(self) -> int:
        """How many item pairs are near-duplicates (without listing them)."""
        sizes = np.array([len(r) for r in self.rows], dtype=np.int64)
        same = int((sizes * (sizes - 1) // 2).sum())
        return same + int((sizes[self.links[:, 0]] * sizes[self.links[:, 1]]).sum())

    def first(self, limit: int | None = None) -> list[tuple[int, int, int]]:
        """The pairs (i, j, distance), i < j, in sorted order, the first `limit` of them
        (None: all), found item by item."""
        value_of = {int(i): v for v, r in enumerate(self.rows) for i in r}
        near: dict[int, list[tuple[int, int]]] = {}
        for a, b, distance in self.links.tolist():
            near.setdefault(a, []).append((b, distance))
            near.setdefault(b, []).append((a, distance))
        found: list[tuple[int, int, int]] = []
        for i in sorted(value_of):
            if limit is not None and len(found) >= limit:
                break
            v = value_of[i]
            partners = [(int(j), 0) for j in self.rows[v] if j > i]
            for other, distance in near.get(v, []):
                partners += [(int(j), distance) for j in self.rows[other] if j > i]
            found += [(i, j, distance) for j, distance in sorted(partners)]
        return found if limit is None else found[:limit]


def near_duplicates(hashes: Sequence[str | None], max_distance: int) -> NearDuplicates:
    """The near-duplicates among `hashes` within `max_distance` bits; items without a hash
    (None) are never paired. 0 turns the check off."""
    known = np.array([i for i, h in enumerate(hashes) if h is not None], dtype=np.int64)
    if max_distance <= 0 or len(known) < 2:
        return NearDuplicates([], np.zeros((0, 3), dtype=np.int64))
    values = np.array([int(hashes[i], 16) for i in known], dtype=np.uint64)
    distinct, inverse = np.unique(values, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.cumsum(np.bincount(inverse, minlength=len(distinct)))[:-1]
    rows = np.split(known[order], bounds)
    return NearDuplicates(rows, close_values(distinct, max_distance))


def near_duplicate_pairs(
    hashes: Sequence[str | None], max_distance: int
) -> list[tuple[int, int, int]]:
    """(i, j, distance) for every pair of hashed items within `max_distance` bits, i < j,
    sorted; items without a hash (None) are never paired. 0 turns the check off."""
    return near_duplicates(hashes, max_distance).first()
