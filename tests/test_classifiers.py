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


def test_unknown_architecture_and_backbone_are_clear_errors():
    with pytest.raises(UserError, match=r"unknown architecture 'resnet'; choices: simple_cnn, "):
        classifiers.build_classifier("resnet", size=32, num_classes=2, dropout=0.0, aug=[])
    with pytest.raises(UserError, match=r"unknown backbone 'vgg19'; choices: mobilenet_v2, "):
        classifiers.build_backbone("vgg19", 32, None)


def test_fine_tune_unfreezes_exactly_the_top_layers_except_batchnorm():
    model = classifiers.build_classifier(
        "mobilenet_v2", size=32, num_classes=2, dropout=0.0, aug=[], weights=None
    )
    backbone = model.get_layer("backbone")
    assert not backbone.trainable and all(not w.trainable for w in backbone.weights)
    count = classifiers.unfreeze_top(model, 12)
    top = backbone.layers[-12:]
    expected = [layer for layer in top if not isinstance(layer, keras.layers.BatchNormalization)]
    assert count == len(expected) > 0
    assert all(layer.trainable for layer in expected)
    assert not any(layer.trainable for layer in backbone.layers[:-12])
    assert all(
        not layer.trainable
        for layer in backbone.layers
        if isinstance(layer, keras.layers.BatchNormalization)
    )


def test_a_failed_weights_download_is_one_clear_line(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid: None -- no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.mobilenet_v2.file_utils.get_file", offline)
    with pytest.raises(
        UserError,
        match=r"could not load imagenet weights for mobilenet_v2 .*"
        r"set weights: null",
    ):
        classifiers.build_backbone("mobilenet_v2", 96, "imagenet")
