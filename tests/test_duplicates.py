"""duplicates.py and the pHash: copies are caught, different images are not, and the
pigeonhole search finds exactly the pairs a brute-force comparison finds."""

from __future__ import annotations

import io
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import skimage.data
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from stages.shared.data.duplicates import near_duplicate_pairs, near_duplicates
from stages.shared.data.images import perceptual_hash
from stages.shared.data.splitting import join_groups


def brute_force(hashes, max_distance):
    pairs = []
    for i, j in combinations(range(len(hashes)), 2):
        if hashes[i] is None or hashes[j] is None:
            continue
        distance = bin(int(hashes[i], 16) ^ int(hashes[j], 16)).count("1")
        if distance <= max_distance:
            pairs.append((i, j, distance))
    return pairs


@settings(max_examples=60, deadline=None)
@given(
    base=st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=8),
    flips=st.lists(st.tuples(st.integers(0, 7), st.sets(st.integers(0, 63), max_size=9))),
    max_distance=st.integers(0, 8),
)
def test_the_pigeonhole_search_equals_brute_force(base, flips, max_distance):
    # Hashes clustered around a few bases (a few flipped bits each), plus one unhashed image.
    values = list(base)
    for which, bits in flips:
        value = base[which % len(base)]
        for bit in bits:
            value ^= 1 << bit
        values.append(value)
    hashes = [f"{v:016x}" for v in values] + [None]
    found = near_duplicate_pairs(hashes, max_distance)
    expected = brute_force(hashes, max_distance) if max_distance else []
    assert found == expected
    # by distinct value: the same count, the same first pairs, the same groups
    held = near_duplicates(hashes, max_distance)
    assert held.count == len(expected)
    assert held.first(3) == expected[:3]
    keys = [[f"item{i:02d}"] for i in range(len(hashes))]
    assert join_groups(keys, held.edges) == join_groups(keys, [(i, j) for i, j, _ in expected])


def test_bursts_of_copies_are_counted_and_grouped_without_listing_every_pair():
    rng = np.random.default_rng(7)
    images = [f"{v:016x}" for v in rng.integers(0, 2**63, 300, dtype=np.int64)]
    # 50 copies of each: 30 with the image's hash, 20 one bit off (a brightness change)
    burst = [h for h in images for _ in range(30)]
    burst += [f"{int(h, 16) ^ 1:016x}" for h in images for _ in range(20)]
    held = near_duplicates(burst, 4)
    assert held.count == 300 * (50 * 49 // 2)  # 367,500 pairs
    assert len(held.edges) == 300 * 49  # a chain per image: what grouping needs
    groups = join_groups([[f"{i:05d}"] for i in range(len(burst))], held.edges)
    assert len(set(groups)) == 300
    assert groups[0] == groups[300 * 30] and groups[0] != groups[1 * 30]
    assert held.first(2) == [(0, 1, 0), (0, 2, 0)]


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea", "rocket", "brick"])
def test_a_resized_reencoded_copy_is_within_the_default_distance(name):
    photo = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
    copy = jpeg(photo.resize((photo.width // 2, photo.height * 2 // 5), Image.BILINEAR), 70)
    hashes = [perceptual_hash(photo), perceptual_hash(copy)]
    assert near_duplicate_pairs(hashes, 4) == [(0, 1, near_duplicate_pairs(hashes, 4)[0][2])]


def test_different_photos_and_the_sample_frames_are_not_near_duplicates(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from stages import sample
    from tests.conftest import write_params

    write_params(tmp_path)
    sample.main(["detection"])  # the default 480 frames
    frames = sorted(Path("data/sample/detection/images").glob("*.jpg"))
    photos = [
        Image.fromarray(getattr(skimage.data, n)()).convert("RGB")
        for n in ("astronaut", "coffee", "chelsea", "rocket", "brick", "grass", "camera")
    ]
    hashes = [perceptual_hash(Image.open(p)) for p in frames] + [perceptual_hash(p) for p in photos]
    assert near_duplicate_pairs(hashes, 4) == []
    assert len(hashes) == 487 and len(set(hashes)) == 487


def test_zero_turns_the_check_off():
    assert near_duplicate_pairs(["00000000000000ff", "00000000000000ff"], 0) == []
    assert near_duplicate_pairs(["00000000000000ff", "00000000000000ff"], 1) == [(0, 1, 0)]


def test_the_hash_reads_any_mode_the_same_as_rgb():
    grey = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1)))
    assert perceptual_hash(grey) == perceptual_hash(grey.convert("RGB"))
    assert perceptual_hash(grey.convert("RGBA")) == perceptual_hash(grey.convert("RGB"))
