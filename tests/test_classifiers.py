"""classifiers.py: every architecture builds, learns a step, and round-trips through .keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from stages.shared import classifiers
from stages.shared.cli import UserError


@pytest.mark.parametrize("architecture", list(classifiers.ARCHITECTURES))
def test_architecture_trains_a_step_and_round_trips(architecture, tmp_path):
    keras.utils.set_random_seed(0)
    aug = classifiers.augmentation_layers("horizontal", 0.05, 0.1)
    model = classifiers.build_classifier(
        architecture, size=32, num_classes=3, dropout=0.2, aug=aug, weights=None, width=2
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=6, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True by default
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(UserError, match=r"unknown architecture 'resnet'; choices: simple_cnn, "):
        classifiers.build_classifier("resnet", size=32, num_classes=2, dropout=0.0, aug=[])


def test_a_pretrained_backbone_starts_frozen_and_one_from_scratch_trains(tmp_path):
    from stages.shared.training import save_model

    keras.utils.set_random_seed(0)
    kwargs = {"size": 16, "num_classes": 2, "dropout": 0.0, "aug": []}
    scratch = classifiers.build_classifier("plain_cnn", **kwargs)
    save_model(scratch, tmp_path / "pretrained/donor.keras", {})
    tuned = classifiers.build_classifier(
        "plain_cnn", weights=str(tmp_path / "pretrained/donor.keras"), **kwargs
    )
    x = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[[0, 1] * 4]
    for model in (scratch, tuned):
        model.compile(optimizer="adam", loss="categorical_crossentropy")
    before = {
        name: m.get_layer("backbone").get_weights() for name, m in [("s", scratch), ("t", tuned)]
    }
    for model in (scratch, tuned):
        model.fit(x, y, epochs=1, verbose=0)
    # From scratch every backbone weight moves (BatchNorm statistics included); pretrained,
    # none does: the head learns on the frozen features.
    after_scratch = scratch.get_layer("backbone").get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before["s"], after_scratch, strict=True))
    after_tuned = tuned.get_layer("backbone").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before["t"], after_tuned, strict=True))
