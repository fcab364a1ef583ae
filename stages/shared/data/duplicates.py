"""Near-duplicate images: perceptual hashes a few bits apart.

A resized, re-encoded or lightly edited copy of an image has a different file hash but
almost the same perceptual hash (imagehash's pHash: the signs of the 8×8 lowest DCT
frequencies of a 32×32 grey thumbnail, 64 bits). Pairs within `max_distance` bits are found
without comparing every pair: split each hash into `max_distance + 1` blocks; two hashes that
differ in at most that many bits agree exactly on at least one block (pigeonhole), so only
hashes sharing a block value are compared.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np

HASH_BITS = 64


def hash_bits(hashes: Sequence[str]) -> np.ndarray:
    """16-hex-digit hashes as an (n, 64) array of bits."""
    values = np.array([int(h, 16) for h in hashes], dtype=np.uint64)
    return ((values[:, None] >> np.arange(HASH_BITS, dtype=np.uint64)) & np.uint64(1)).astype(
        np.uint8
    )


def near_duplicate_pairs(
    hashes: Sequence[str | None], max_distance: int
) -> list[tuple[int, int, int]]:
    """(i, j, distance) for every pair of hashed items within `max_distance` bits, i < j,
    sorted; items without a hash (None) are never paired. 0 turns the check off."""
    known = [i for i, h in enumerate(hashes) if h is not None]
    if max_distance <= 0 or len(known) < 2:
        return []
    bits = hash_bits([hashes[i] for i in known])
    blocks = np.array_split(np.arange(HASH_BITS), max_distance + 1)
    candidates: set[tuple[int, int]] = set()
    for block in blocks:
        buckets: dict[bytes, list[int]] = defaultdict(list)
        for row, value in enumerate(bits[:, block]):
            buckets[value.tobytes()].append(row)
        for members in buckets.values():
            candidates.update((a, b) for n, a in enumerate(members) for b in members[n + 1 :])
    pairs = []
    for a, b in sorted(candidates):
        distance = int((bits[a] != bits[b]).sum())
        if distance <= max_distance:
            pairs.append((known[a], known[b], distance))
    return pairs
