"""stages/shared/training/inputs.py: what a training run reads from an augmented folder —
each train row once per epoch with its own target, val in record order, the debug modes'
short epochs and fixed batch — checked on shards whose every image says which row it is."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages.shared.core.cli import UserError
from stages.shared.params.sections import load_params
from stages.shared.training import inputs
from tests.conftest import ROOT, write_shards

SIZE, TRAIN, VAL = 8, 10, 5


def flat(value: int) -> np.ndarray:
    return np.full((SIZE, SIZE, 3), value, np.uint8)


@pytest.fixture
def folder(tmp_path):
    """Shards of 10 train and 5 val images, record i of train all pixels 10 + i, of val
    100 + i; the manifest rows' `n` is the same number, so an image names its target. Train
    rows 0, 2, 4, 6, 8 are originals (path == source), saved under `ds/` at that value."""
    shards = tmp_path / "augmented"
    write_shards(
        shards,
        {"train": [flat(10 + i) for i in range(TRAIN)], "val": [flat(100 + i) for i in range(VAL)]},
        shard_size=3,
    )
    rows = []
    for i in range(TRAIN):
        source = f"ds/{i}.png"
        rows.append({"split": "train", "n": 10 + i, "source": source,
                     "path": source if i % 2 == 0 else f"copies/{i}.png"})  # fmt: skip
        if i % 2 == 0:
            (tmp_path / "ds").mkdir(exist_ok=True)
            Image.fromarray(flat(10 + i)).save(tmp_path / source)
    rows += [{"split": "val", "n": 100 + i, "source": f"v/{i}.png", "path": f"v/{i}.png"}
             for i in range(VAL)]  # fmt: skip
    return tmp_path, pd.DataFrame(rows), (shards / "manifest.csv").as_posix()


def targets(rows: pd.DataFrame) -> np.ndarray:
    return rows["n"].to_numpy(np.float32)


def config(**update):
    return load_params("train_classifier", ROOT / "params.yaml").model_copy(update=update)


def batches(dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(images.numpy(), target.numpy()) for images, target in dataset]


def read(root, frame, manifest, cfg=None, seed=7, batch=2):
    return inputs.train_val_data(frame, manifest, targets, SIZE, cfg or config(), seed, batch, root)


def paired(images: np.ndarray, target: np.ndarray) -> bool:
    """Every image of the batch carries its own row's number."""
    return np.array_equal(images[:, 0, 0, 0], target) and bool((images == images[:, :1, :1]).all())


def test_each_epoch_serves_every_train_row_once_with_its_target_in_its_own_order(folder):
    root, frame, manifest = folder
    rows, data = read(root, frame, manifest, batch=4)
    assert rows["n"].tolist() == list(range(10, 20))
    assert data["steps"] == 3  # 10 rows in batches of 4
    served = batches(data["train"](range(2)))
    assert len(served) == 6 and all(paired(*batch) for batch in served)
    first, second = (np.concatenate([t for _, t in served[i : i + 3]]) for i in (0, 3))
    assert sorted(first) == sorted(second) == list(range(10, 20))
    assert first.tolist() != second.tolist()  # each epoch its own shuffle
    assert first.tolist() != list(range(10, 20))
    again = np.concatenate(
        [t for _, t in batches(read(root, frame, manifest, batch=4)[1]["train"](range(1)))]
    )
    other = np.concatenate(
        [t for _, t in batches(read(root, frame, manifest, seed=8, batch=4)[1]["train"](range(1)))]
    )
    assert again.tolist() == first.tolist() and other.tolist() != first.tolist()


def test_val_is_every_val_row_in_record_order_and_the_first_batch_is_epoch_zeros(folder):
    root, frame, manifest = folder
    _, data = read(root, frame, manifest, batch=2)
    val = batches(data["val"])
    assert len(val) == 3 and all(paired(*batch) for batch in val)
    assert np.concatenate([t for _, t in val]).tolist() == list(range(100, 105))
    images, target = inputs.first_batch(data)
    epoch = batches(data["train"](range(1)))
    assert np.array_equal(images.numpy(), epoch[0][0]) and np.array_equal(
        target.numpy(), epoch[0][1]
    )
    assert images.shape == (2, SIZE, SIZE, 3) and images.dtype.name == "float32"


def test_a_fast_debug_run_has_two_batches_of_train_and_of_val(folder):
    root, frame, manifest = folder
    _, normal = read(root, frame, manifest, batch=2)
    _, fast = read(root, frame, manifest, config(debug="fast"), batch=2)
    assert (normal["steps"], len(batches(normal["val"]))) == (5, 3)
    assert fast["steps"] == 2 and len(batches(fast["val"])) == 2
    assert "overfit_batch" not in fast and "overfit_batch" not in normal
    _, big = read(root, frame, manifest, config(debug="fast"), batch=8)
    assert big["steps"] == 2 and len(batches(big["val"])) == 1  # fewer than 2: all of them


@pytest.mark.parametrize("size, expected", [(3, 3), (50, 5)])
def test_overfit_takes_a_seeded_batch_of_originals_read_from_the_dataset_folder(
    folder, monkeypatch, tmp_path_factory, size, expected
):
    root, frame, manifest = folder
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))  # the files are found under root
    cfg = config(debug="overfit")
    cfg = cfg.model_copy(update={"overfit": cfg.overfit.model_copy(update={"batch": size})})
    images, target = read(root, frame, manifest, cfg)[1]["overfit_batch"]
    assert images.shape == (expected, SIZE, SIZE, 3) and paired(images.numpy(), target.numpy())
    picked = target.numpy().tolist()
    assert len(set(picked)) == expected and set(picked) <= {10, 12, 14, 16, 18}  # originals only
    again = read(root, frame, manifest, cfg)[1]["overfit_batch"][1].numpy().tolist()
    assert again == picked
    if expected < 5:
        draws = {tuple(read(root, frame, manifest, cfg, seed=s)[1]["overfit_batch"][1].numpy())
                 for s in range(6)}  # fmt: skip
        assert len(draws) > 1  # the seed draws them


def test_a_manifest_without_val_rows_names_the_fix(folder):
    root, frame, manifest = folder
    only_train = frame[frame["split"] == "train"]
    with pytest.raises(
        UserError, match=r"manifest\.csv: no val rows — set split\.fractions\.val above 0$"
    ):
        read(root, only_train, manifest)


def test_a_tuple_of_targets_becomes_a_tuple_of_tensors():
    present, boxes = inputs.tf_constant((np.array([1.0, 0.0]), np.zeros((2, 4))))
    assert present.numpy().tolist() == [1.0, 0.0] and boxes.shape == (2, 4)
    assert inputs.tf_constant(np.arange(3)).numpy().tolist() == [0, 1, 2]


def test_shards_of_another_size_name_the_folder_and_the_fix(folder):
    root, frame, manifest = folder
    folder_name = manifest.removesuffix("/manifest.csv")
    message = (
        f"^{re.escape(folder_name)}: shards hold 8 px images, training expects 16 — re-run"
        " `dvc repro` so augment writes them at the current size$"
    )
    with pytest.raises(UserError, match=message):
        inputs.train_val_data(frame, manifest, targets, 16, config(), 7, 2, root)
