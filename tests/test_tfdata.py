"""tfdata.py: the input pipeline yields the right shapes, dtypes, pixels and labels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stages.shared.tfdata import (
    load_image,
    make_dataset,
    one_hot,
    should_cache,
    steps_per_epoch,
)


@pytest.fixture
def mixed_files(tmp_path):
    """Gray, RGB, RGBA and palette files of different sizes, each a flat known colour."""
    specs = {
        "grey.png": Image.new("L", (20, 10), 50),
        "rgb.jpg": Image.new("RGB", (7, 9), (200, 10, 10)),
        "rgba.png": Image.new("RGBA", (16, 16), (0, 0, 255, 128)),
        "palette.gif": Image.new("RGB", (30, 12), (0, 255, 0)).convert("P"),
        "bitmap.bmp": Image.new("RGB", (5, 5), (255, 255, 255)),
    }
    for name, img in specs.items():
        img.save(tmp_path / name)
    return [str(tmp_path / name) for name in specs]


def test_every_mode_and_size_becomes_float_rgb_of_the_right_size(mixed_files):
    labels = one_hot(["a", "b", "a", "c", "b"], ["a", "b", "c"])
    data = make_dataset(mixed_files, labels, size=8, batch_size=5, cache="none")
    images, targets = next(iter(data))
    assert images.shape == (5, 8, 8, 3) and images.dtype.name == "float32"
    assert targets.numpy().argmax(1).tolist() == [0, 1, 0, 2, 1]
    pixels = images.numpy()[:, 4, 4]
    assert np.allclose(pixels[0], 50) and np.allclose(pixels[2], [0, 0, 255])
    assert np.allclose(pixels[3], [0, 255, 0]) and np.allclose(pixels[4], 255)
    assert abs(pixels[1][0] - 200) < 8  # JPEG is lossy


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_shuffle_is_seeded_and_unshuffled_order_is_the_manifest_order(mixed_files, cache):
    targets = np.arange(5, dtype=np.int32)

    def order(seed):
        data = make_dataset(mixed_files, targets, 4, 5, shuffle_seed=seed, cache=cache)
        return next(iter(data))[1].numpy().tolist()

    assert make_dataset(mixed_files, targets, 4, 5).as_numpy_iterator().next()[1].tolist() == [
        0,
        1,
        2,
        3,
        4,
    ]
    assert order(3) == order(3)
    assert sorted(order(3)) == [0, 1, 2, 3, 4]
    # The images travel with their targets whichever way they are shuffled.
    data = make_dataset(mixed_files, targets, 4, 5, shuffle_seed=3, cache=cache)
    images, labels = next(iter(data))
    reference = {i: load_image(p, 4) for i, p in enumerate(mixed_files)}
    for image, label in zip(images.numpy(), labels.numpy(), strict=True):
        assert np.array_equal(image, reference[int(label)])


def test_load_image_names_the_file_it_cannot_read(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("<html>")
    with pytest.raises(Exception, match=r"bad\.png: not an image file"):
        load_image(bad, 8)


def test_cache_auto_depends_on_size():
    assert should_cache(1000, 32, "auto") and not should_cache(10**6, 224, "auto")
    assert should_cache(10**9, 512, "memory") and not should_cache(1, 8, "none")


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_each_epoch_has_its_own_order_and_a_resumed_stream_repeats_it(mixed_files, cache):
    import tensorflow as tf

    tf.random.set_seed(0)  # a global seed of 0 once broke seeds computed in the graph
    targets = np.arange(5, dtype=np.int32)

    def epochs(first: int, last: int) -> list[list[int]]:
        data = make_dataset(mixed_files, targets, 4, 5, 7, cache, range(first, last))
        return [batch[1].numpy().tolist() for batch in data]

    full = epochs(0, 6)
    assert len(full) == 6 and all(sorted(order) == [0, 1, 2, 3, 4] for order in full)
    assert len({tuple(order) for order in full}) > 1  # reshuffled between epochs
    assert epochs(3, 6) == full[3:]  # epoch k's order does not depend on where the run began
    assert epochs(6, 6) == []


def test_a_streamed_epoch_has_the_order_of_a_cached_one(mixed_files):
    # The first-batch check streams epoch 0 to decode only one batch: it must see the
    # batch that training (with its in-memory cache) sees.
    targets = np.arange(5, dtype=np.int32)
    orders = [
        [b[1].numpy().tolist() for b in make_dataset(mixed_files, targets, 4, 2, 11, c, range(2))]
        for c in ("memory", "none")
    ]
    assert orders[0] == orders[1]


def test_cache_auto_holds_exactly_two_gibibytes_of_decoded_floats():
    fits = 2 * 1024**3 // (32 * 32 * 3 * 4)  # 174762 images of 32 px as float32
    assert should_cache(fits, 32, "auto") and not should_cache(fits + 1, 32, "auto")


def test_steps_and_one_hot_by_hand():
    assert [steps_per_epoch(n, 8) for n in (0, 1, 8, 9, 16, 17)] == [1, 1, 1, 2, 2, 3]
    encoded = one_hot(["owl", "cat", "owl"], ["cat", "dog", "owl"])
    assert encoded.dtype == np.float32
    assert encoded.tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 1]]


def test_batches_keep_the_last_partial_one_and_no_epochs_give_no_batches(mixed_files):
    paths = mixed_files[:5]
    targets = np.arange(5, dtype="float32")
    batches = list(make_dataset(paths, targets, 8, batch_size=2))
    assert [len(t) for _, t in batches] == [2, 2, 1]
    assert np.concatenate([t for _, t in batches]).tolist() == [0, 1, 2, 3, 4]
    assert list(make_dataset(paths, targets, 8, 2, shuffle_seed=1, epochs=range(0))) == []
    two = [t.numpy().tolist() for _, t in make_dataset(paths, targets, 8, 5, 1, "none", range(2))]
    assert len(two) == 2 and sorted(two[0]) == sorted(two[1]) == [0, 1, 2, 3, 4]
