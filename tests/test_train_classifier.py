"""stages/train_classifier.py: deterministic, resumable training that saves its provenance."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from stages import augment, split, train_classifier
from stages.shared.params import load_params
from tests.conftest import make_classification, write_params

TINY = {
    "epochs": 2,
    "batch_size": 8,
    "early_stopping_patience": 5,
}


@pytest.fixture
def classification_data(workdir):
    make_classification(workdir / "ds", {"a": 12, "b": 12, "c": 12})
    write_params(
        workdir,
        data={"classification": "ds"},
        base={"seed": 1, "image_size": {"classification": 16, "detection": 32}},
        train_classifier=TINY,
    )
    split.main(["classification"])
    augment.main(["classification"])
    return workdir


def paths(workdir, name="run"):
    return {
        "manifest": "data/augmented/classification/manifest.csv",
        "model": f"models/{name}.keras",
        "live_dir": f"reports/train/{name}",
        "tensorboard": f"reports/tensorboard/{name}",
    }


def test_two_identical_runs_give_identical_weights(classification_data):
    cfg, base = load_params("train_classifier"), load_params("base")
    train_classifier.train(cfg, base, paths(classification_data, "one"))
    train_classifier.train(cfg, base, paths(classification_data, "two"))
    one = keras.models.load_model("models/one.keras").get_weights()
    two = keras.models.load_model("models/two.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    meta = json.loads((classification_data / "models/one.json").read_text())
    assert meta["classes"] == ["a", "b", "c"] and meta["params"]["epochs"] == 2
    assert meta["image_size"] == 16 and len(meta["manifest_md5"]) == 32
    summary = json.loads((classification_data / "reports/train/one/metrics.json").read_text())
    assert summary["step"] == 1 and "learning_rate" in summary["train"]
    assert summary["best"]["val_accuracy"] == meta["val_accuracy"]


class Interrupt(keras.callbacks.Callback):
    """Stops training abruptly after the first epoch, as a crash or kill would."""

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            raise KeyboardInterrupt


def test_an_interrupted_run_resumes_at_epoch_two(classification_data):
    cfg = load_params("train_classifier").model_copy(update={"epochs": 3})
    base = load_params("base")
    run = paths(classification_data)
    with pytest.raises(KeyboardInterrupt):
        train_classifier.train(cfg, base, {**run, "extra_callbacks": [Interrupt()]})
    assert list((classification_data / ".work/train_classifier").glob("*/backup"))

    epochs: list[int] = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    train_classifier.train(cfg, base, {**run, "extra_callbacks": [record]})
    assert epochs == [1, 2]  # 0-based: epochs 2 and 3
    steps = (classification_data / run["live_dir"] / "plots/metrics/eval/loss.tsv").read_text()
    assert [line.split("\t")[0] for line in steps.splitlines()[1:]] == ["0", "1", "2"]
    assert not list((classification_data / ".work/train_classifier").iterdir())


def test_exponential_schedule_really_lowers_the_rate(classification_data):
    cfg = load_params("train_classifier").model_copy(
        update={"schedule": "exponential", "decay_rate": 0.5, "learning_rate": 0.01}
    )
    train_classifier.train(cfg, load_params("base"), paths(classification_data))
    rates = classification_data / "reports/train/run/plots/metrics/train/learning_rate.tsv"
    values = [float(line.split("\t")[1]) for line in rates.read_text().splitlines()[1:]]
    assert values[0] == pytest.approx(0.005, rel=1e-3) and values[1] == pytest.approx(
        0.0025, rel=1e-3
    )


def test_fine_tune_phase_continues_after_the_frozen_phase(classification_data):
    cfg = load_params("train_classifier").model_copy(
        update={
            "architecture": "mobilenet_v2",
            "epochs": 1,
            "fine_tune": load_params("train_classifier").fine_tune.model_copy(
                update={"layers": 5, "epochs": 1}
            ),
        }
    )
    base = load_params("base").model_copy(
        update={
            "image_size": load_params("base").image_size.model_copy(update={"classification": 32})
        }
    )
    seen: list[tuple[int, int]] = []

    def count_trainable(epoch, logs):
        seen.append((epoch, len(record.model.trainable_weights)))

    record = keras.callbacks.LambdaCallback(on_epoch_begin=count_trainable)
    train_classifier.train(cfg, base, {**paths(classification_data), "extra_callbacks": [record]})
    (first_epoch, frozen), (second_epoch, tuned) = seen
    assert (first_epoch, second_epoch) == (0, 1) and tuned > frozen
    meta = json.loads((classification_data / "models/run.json").read_text())
    assert meta["epochs_run"] == 2 and meta["architecture"] == "mobilenet_v2"
