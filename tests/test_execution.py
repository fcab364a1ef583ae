"""Steps per call of the compiled training step (stages/shared/training/execution.py): the
choice, the probe that leaves the model as it found it, and the same model whatever the
granularity."""

from __future__ import annotations

import hashlib

import keras
import numpy as np
import pytest

from stages import augment, split, train_classifier
from stages.shared.core.seeding import seed_everything
from stages.shared.models.classifiers import build_classifier
from stages.shared.params.sections import load_params
from stages.shared.training import execution, loop
from tests.conftest import make_classification, run_paths, write_params

# --- the choice ---


def test_the_fewest_steps_that_keep_the_fixed_cost_under_a_tenth():
    # 12 ms fixed, 22 ms a step: N ≥ 0.9 × 12 / (0.1 × 22) = 4.91 → 5
    # (12 / (12 + 5 × 22) = 9.8 %; with 4 steps 12 / 100 = 12 %).
    assert execution.steps_for_share(0.012, 0.022, limit=1000) == 5
    assert execution.steps_for_share(0.012, 0.022, limit=3) == 3  # capped by the epoch
    # On the boundary: 9 fixed, 1 a step, 81 steps → 9 / 90 = exactly a tenth.
    assert execution.steps_for_share(9.0, 1.0, limit=1000) == 81
    assert execution.steps_for_share(9.0, 1.0, limit=1000, share=0.5) == 9  # 9 / 18
    assert execution.steps_for_share(0.0, 0.022, limit=50) == 1  # no fixed cost
    assert execution.steps_for_share(0.012, 0.0, limit=50) == 50  # no cost per step
    assert execution.steps_for_share(0.012, 0.0, limit=0) == 1


def test_the_fixed_and_per_step_cost_from_calls_of_one_and_of_several_steps():
    # A call of 1 step takes 34 ms, one of 8 steps 34 + 7 × 22 = 188 ms.
    fixed, per_step = execution.split_cost(0.034, 0.188, 8)
    assert fixed == pytest.approx(0.012) and per_step == pytest.approx(0.022)
    assert execution.split_cost(0.050, 0.040, 8) == (0.050, 0.0)  # noise: never negative
    assert execution.split_cost(0.25, 3.75, 8) == (0.0, 0.5)  # a call of 1 under one step


def test_a_call_is_timed_between_the_ends_of_consecutive_calls():
    times = iter([5.0, 5.5, 7.0, 7.25, 7.5])  # the first call traced: no end before it
    ends = execution.CallEnds(clock=lambda: next(times))
    for batch in range(5):
        ends.on_train_batch_end(batch)
    assert ends.median_call() == 0.375  # median of 0.5, 1.5, 0.25, 0.25


def test_calls_cover_an_epoch_whole():
    # Keras makes ceil(S / N) calls of N steps: only a divisor of S trains S batches an epoch.
    assert execution.whole_calls(5, 30, up=True) == 5
    assert execution.whole_calls(4, 30, up=True) == 5  # 30 = 2 × 3 × 5
    assert execution.whole_calls(4, 30, up=False) == 3
    assert execution.whole_calls(7, 30, up=True) == 10
    assert execution.whole_calls(2, 79, up=True) == 79  # a prime epoch: one call
    assert execution.whole_calls(50, 79, up=False) == 1


def test_a_number_is_lowered_to_whole_calls_and_auto_probes_only_a_long_epoch(monkeypatch):
    def no_probe(*args):
        raise AssertionError("probed")

    monkeypatch.setattr(execution, "probe", no_probe)
    assert execution.choose_steps(6, None, None, None, limit=42) == {"steps": 6}
    assert execution.choose_steps(8, None, None, None, limit=42) == {"steps": 7}
    assert execution.choose_steps(60, None, None, None, limit=42) == {"steps": 42}
    assert execution.choose_steps("auto", None, None, None, limit=8) == {"steps": 8}
    monkeypatch.setattr(execution, "probe", lambda *args: (0.012, 0.022))
    assert execution.choose_steps("auto", None, None, None, limit=9) == {
        "steps": 9, "fixed_ms": 12.0, "per_step_ms": 22.0
    }  # fmt: skip
    assert execution.choose_steps("auto", None, None, None, limit=40)["steps"] == 5
    assert execution.choose_steps("auto", None, None, None, limit=42)["steps"] == 6


# --- the probe leaves no trace ---


def tiny_model(seed: int) -> keras.Model:
    seed_everything(seed, deterministic_ops=True)
    model = build_classifier("plain_cnn", size=16, num_classes=3, dropout=0.3, aug=[])
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    return model


def weights_md5(model: keras.Model) -> str:
    digest = hashlib.md5()
    for weight in model.get_weights():
        digest.update(np.ascontiguousarray(weight).tobytes())
    return digest.hexdigest()


def test_a_model_probed_trains_to_the_weights_of_one_never_probed():
    rng = np.random.default_rng(3)
    images = rng.uniform(0, 255, (40, 16, 16, 3)).astype("float32")
    labels = np.eye(3, dtype="float32")[rng.integers(0, 3, 40)]
    plain = tiny_model(7)
    plain.fit(images, labels, batch_size=4, epochs=1, shuffle=False, verbose=0)
    probed = tiny_model(7)
    fixed, per_step = execution.probe(probed, images[:4], labels[:4])
    assert fixed >= 0.0 and per_step > 0.0
    probed.fit(images, labels, batch_size=4, epochs=1, shuffle=False, verbose=0)
    assert weights_md5(probed) == weights_md5(plain)


# --- the same model, whatever the steps per call ---


@pytest.fixture
def digits(workdir):
    """44 images of 3 classes, about 40 to train at batch 4: 10 steps an epoch, long enough
    for `auto` to probe."""
    make_classification(workdir / "ds", {"a": 24, "b": 12, "c": 8}, seed=5)
    augmentation = {**load_params("augment").classification.model_dump(), "copies": 0}
    write_params(workdir, data={"classification": "ds"},
                 base={"seed": 3, "image_size": {"classification": 16, "detection": 32}},
                 split={"fractions": {"train": 0.9, "val": 0.05, "test": 0.05}},
                 augment={"classification": augmentation},
                 train_classifier={"epochs": 2, "batch_size": 4})  # fmt: skip
    split.main(["classification"])
    augment.main(["classification"])
    return workdir


def train_with(steps, name: str) -> str:
    """Train the classifier stage's way with `steps` per call; the saved model's path."""
    keras.backend.clear_session()  # layer names count from 0 again, as in a stage's process
    base = load_params("base").model_copy(update={"steps_per_execution": steps})
    paths = run_paths("classification", name)
    loop.train(train_classifier.Classifier, load_params("train_classifier"), base, paths)
    return paths["model"]


def test_the_saved_model_is_the_same_bytes_with_one_several_or_auto_steps_per_call(digits):
    import json

    # 10 steps an epoch: 5 runs two calls an epoch, 4 is lowered to 2.
    files = {steps: digits / train_with(steps, f"s{steps}") for steps in (1, 5, 4, "auto")}
    first = files[1].read_bytes()
    assert all(file.read_bytes() == first for file in files.values())
    speed = json.loads((digits / "reports/throughput/sauto/metrics.json").read_text())
    chosen = speed["steps_per_execution"]
    assert chosen["steps"] in (1, 2, 5, 10) and chosen["per_step_ms"] > 0  # measured, whole
    lowered = json.loads((digits / "reports/throughput/s4/metrics.json").read_text())
    assert lowered["steps_per_execution"] == {"steps": 2}
