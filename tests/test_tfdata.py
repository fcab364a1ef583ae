"""tfdata.py: the shard reader yields the right pixels with the right targets, in a seeded
order that does not depend on caching, resuming or the shard layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stages.shared.data.tfdata import (
    load_image,
    make_dataset,
    one_hot,
    read_pixels,
    should_cache,
    steps_per_epoch,
)
from tests.conftest import write_shards

COUNT = 11  # records of the split most tests read: 3 shards of 4, the last one short


def coloured(count: int, size: int = 4, seed: int = 0) -> list[np.ndarray]:
    """`count` random uint8 images; each is told apart by its pixels."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (size, size, 3), dtype=np.uint8) for _ in range(count)]


@pytest.fixture
def shard_folder(tmp_path):
    return write_shards(tmp_path / "shards", {"train": coloured(COUNT), "val": coloured(3, 4, 1)})


def batches(data) -> list[tuple[np.ndarray, list[int]]]:
    return [(images.numpy(), targets.numpy().tolist()) for images, targets in data]


@pytest.mark.parametrize("fmt", ["raw", "png"])
def test_records_come_back_as_the_pixels_written_with_their_targets_in_record_order(tmp_path, fmt):
    images = coloured(COUNT, size=6)
    folder = write_shards(tmp_path / fmt, {"train": images}, fmt=fmt, shard_size=4)
    targets = np.arange(COUNT, dtype=np.int32) * 10
    got = batches(make_dataset(folder, "train", targets, batch_size=5, cache="none"))
    assert [len(t) for _, t in got] == [5, 5, 1]
    assert [i for _, t in got for i in t] == list(range(0, 10 * COUNT, 10))
    pixels = np.concatenate([b for b, _ in got])
    assert pixels.dtype == np.float32 and pixels.shape == (COUNT, 6, 6, 3)
    assert np.array_equal(pixels, np.stack(images).astype(np.float32))
    assert np.array_equal(read_pixels(folder, "train"), pixels)


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_a_shuffled_epoch_keeps_each_image_with_its_target_and_is_seeded(shard_folder, cache):
    targets = np.arange(COUNT, dtype=np.int32)
    reference = read_pixels(shard_folder, "train")

    def epoch(seed: int) -> list[int]:
        data = make_dataset(shard_folder, "train", targets, 4, seed, cache)
        order = []
        for images, labels in batches(data):
            for image, label in zip(images, labels, strict=True):
                assert np.array_equal(image, reference[label])
            order += labels
        return order

    assert epoch(3) == epoch(3)
    assert sorted(epoch(3)) == list(range(COUNT))  # every record once, from all three shards
    assert epoch(3) != epoch(4)
    assert epoch(3) != list(range(COUNT))


@pytest.mark.parametrize("cache", ["memory", "none"])
def test_each_epoch_has_its_own_order_and_a_resumed_stream_repeats_it(shard_folder, cache):
    import tensorflow as tf

    tf.random.set_seed(0)  # a global seed of 0 once broke seeds computed in the graph
    targets = np.arange(COUNT, dtype=np.int32)

    def epochs(first: int, last: int) -> list[list[int]]:
        data = make_dataset(shard_folder, "train", targets, COUNT, 7, cache, range(first, last))
        return [labels for _, labels in batches(data)]

    full = epochs(0, 6)
    assert len(full) == 6 and all(sorted(order) == list(range(COUNT)) for order in full)
    assert len({tuple(order) for order in full}) > 1  # reshuffled between epochs
    assert epochs(3, 6) == full[3:]  # epoch k's order does not depend on where the run began
    assert epochs(6, 6) == []


@pytest.mark.parametrize("buffer", [COUNT, 3])
def test_a_streamed_epoch_has_the_order_of_a_cached_one(shard_folder, buffer):
    # The first-batch check streams epoch 0 to decode only one batch: it must see the
    # batch that training (with its in-memory cache) sees, whatever the buffer.
    targets = np.arange(COUNT, dtype=np.int32)
    orders = [
        [
            t
            for _, t in batches(
                make_dataset(shard_folder, "train", targets, 2, 11, c, range(2), buffer)
            )
        ]
        for c in ("memory", "none")
    ]
    assert orders[0] == orders[1]


def test_a_small_buffer_bounds_how_far_a_record_moves(tmp_path):
    # One shard read in order: with a buffer of 2, the first record out is one of the
    # first 2 written, and record k comes out no earlier than position k - 1.
    folder = write_shards(tmp_path / "one", {"train": coloured(COUNT)}, shard_size=COUNT)
    targets = np.arange(COUNT, dtype=np.int32)
    for seed in range(5):
        data = make_dataset(folder, "train", targets, COUNT, seed, "none", buffer=2)
        order = batches(data)[0][1]
        assert order[0] in (0, 1)
        assert all(position >= record - 1 for position, record in enumerate(order))
    full = {
        tuple(batches(make_dataset(folder, "train", targets, COUNT, s, "none"))[0][1])
        for s in range(5)
    }
    assert any(order[0] > 1 for order in full)  # the default buffer holds every record


def test_detection_targets_are_gathered_as_a_tuple(shard_folder):
    present = np.arange(COUNT, dtype=np.float32)[:, None]
    boxes = np.tile(np.arange(COUNT, dtype=np.float32)[:, None], (1, 4)) / COUNT
    data = make_dataset(shard_folder, "train", (present, boxes), 4, 5, "none")
    for _, (got_present, got_boxes) in data:
        assert np.allclose(got_boxes.numpy(), got_present.numpy() / COUNT)


def test_load_image_names_the_file_it_cannot_read(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_text("<html>")
    with pytest.raises(Exception, match=r"bad\.png: not an image file"):
        load_image(bad, 8)


def test_load_image_makes_every_mode_float_rgb_of_the_size(tmp_path):
    Image.new("L", (20, 10), 50).save(tmp_path / "grey.png")
    Image.new("RGBA", (16, 16), (0, 0, 255, 128)).save(tmp_path / "rgba.png")
    grey, rgba = load_image(tmp_path / "grey.png", 8), load_image(tmp_path / "rgba.png", 8)
    assert grey.shape == rgba.shape == (8, 8, 3) and grey.dtype == np.float32
    assert np.allclose(grey, 50) and np.allclose(rgba[4, 4], [0, 0, 255])


def test_cache_auto_depends_on_size():
    assert should_cache(1000, 32, "auto") and not should_cache(10**6, 224, "auto")
    assert should_cache(10**9, 512, "memory") and not should_cache(1, 8, "none")


def test_cache_auto_holds_exactly_two_gibibytes_of_decoded_images():
    fits = 2 * 1024**3 // (32 * 32 * 3)  # 699050 images of 32 px as uint8
    assert should_cache(fits, 32, "auto") and not should_cache(fits + 1, 32, "auto")


def test_steps_and_one_hot_by_hand():
    assert [steps_per_epoch(n, 8) for n in (0, 1, 8, 9, 16, 17)] == [1, 1, 1, 2, 2, 3]
    encoded = one_hot(["owl", "cat", "owl"], ["cat", "dog", "owl"])
    assert encoded.dtype == np.float32
    assert encoded.tolist() == [[0, 0, 1], [1, 0, 0], [0, 0, 1]]


def test_keras_knows_how_many_batches_so_fit_never_runs_out_of_data(shard_folder):
    import warnings

    import keras

    targets = np.arange(COUNT, dtype=np.float32)
    train = make_dataset(shard_folder, "train", targets, 4, 1, "none", range(2))
    val = make_dataset(shard_folder, "val", np.zeros(3, np.float32), 2)
    assert int(val.cardinality()) == 2 and int(train.cardinality()) == 2 * 3
    model = keras.Sequential(
        [keras.Input((4, 4, 3)), keras.layers.Flatten(), keras.layers.Dense(1)]
    )
    model.compile(optimizer="sgd", loss="mse")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(train, validation_data=val, steps_per_epoch=3, epochs=2, verbose=0)
    assert not [w for w in caught if "ran out of data" in str(w.message)]
