"""classifiers.py: every architecture builds, learns a step, and round-trips through .keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from stages.shared.core.cli import UserError
from stages.shared.models import classifiers
from stages.shared.models.backbones import APPLICATIONS, flat_layers


@pytest.mark.parametrize("architecture", list(classifiers.ARCHITECTURES))
def test_architecture_trains_a_step_and_round_trips(architecture, tmp_path):
    """The project's own architectures train in a traced step, as the pipeline runs them; Keras'
    applications (their layers are Keras', traced by Keras' own tests) train eagerly: tracing
    EfficientNet-B0's step takes ~40 s on 2 cores, the eager step ~4 s, for the same check."""
    keras.utils.set_random_seed(0)
    aug = classifiers.augmentation_layers("horizontal", 0.05, 0.1)
    model = classifiers.build_classifier(
        architecture, size=32, num_classes=3, dropout=0.2, aug=aug, weights=None, width=2
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"],
                  run_eagerly=architecture in APPLICATIONS)  # fmt: skip
    x = np.random.default_rng(0).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    y = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]
    before = [w.copy() for w in model.get_weights()]
    model.fit(x, y, epochs=1, batch_size=6, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.models.load_model(path)  # safe_mode=True by default
    np.testing.assert_allclose(loaded(x, training=False), model(x, training=False), atol=1e-6)


def test_unknown_architecture_is_a_clear_error():
    with pytest.raises(UserError, match=r"unknown architecture 'resnet'; choices: simple_cnn, "):
        classifiers.build_classifier("resnet", size=32, num_classes=2, dropout=0.0, aug=[])


def test_a_pretrained_backbone_starts_frozen_and_one_from_scratch_trains(tmp_path):
    from stages.shared.models.store import copy_pretrained, save_model

    keras.utils.set_random_seed(0)
    kwargs = {"size": 16, "num_classes": 2, "dropout": 0.0, "aug": []}
    scratch = classifiers.build_classifier("plain_cnn", **kwargs)
    save_model(scratch, tmp_path / "pretrained/donor.keras", {})
    tuned = classifiers.build_classifier(
        "plain_cnn", weights=str(tmp_path / "pretrained/donor.keras"), **kwargs
    )
    copy_pretrained(tuned, str(tmp_path / "pretrained/donor.keras"))
    x = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    y = np.eye(2, dtype="float32")[[0, 1] * 4]
    for model in (scratch, tuned):
        model.compile(optimizer="adam", loss="categorical_crossentropy")
    before = {
        name: m.get_layer("backbone").get_weights() for name, m in [("s", scratch), ("t", tuned)]
    }
    # the pretrained backbone starts from the donor's weights
    assert all(np.array_equal(a, b) for a, b in zip(before["s"], before["t"], strict=True))
    for model in (scratch, tuned):
        model.fit(x, y, epochs=1, verbose=0)
    # From scratch every backbone weight moves (BatchNorm statistics included); pretrained,
    # none does: the head learns on the frozen features.
    after_scratch = scratch.get_layer("backbone").get_weights()
    assert all(not np.array_equal(a, b) for a, b in zip(before["s"], after_scratch, strict=True))
    after_tuned = tuned.get_layer("backbone").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(before["t"], after_tuned, strict=True))


def conv(kernel: int, channels: int, filters: int) -> int:
    return kernel * kernel * channels * filters + filters


def conv_module(kernel: int, channels: int, filters: int) -> int:
    return conv(kernel, channels, filters) + 4 * filters  # + BatchNorm: γ, β, mean, variance


def test_the_simple_cnn_is_the_tutorials_network_by_its_parameter_count():
    model = classifiers.build_classifier("simple_cnn", size=32, num_classes=3, dropout=0.4,
                                         aug=[])  # fmt: skip
    # Three 3×3 convolutions (32, 64, 128 filters), each halving 32 px: 4×4×128 features,
    # a Dense 128 and the softmax over 3 classes.
    by_hand = conv(3, 3, 32) + conv(3, 32, 64) + conv(3, 64, 128) + 4 * 4 * 128 * 128 + 128
    assert model.count_params() == by_hand + 128 * 3 + 3
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        0.4
    ]
    x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    out = keras.ops.convert_to_numpy(model(x))
    assert out.dtype == np.float32 and np.allclose(out.sum(axis=1), 1.0, atol=1e-6)
    # The model scales [0, 255] itself: 255 everywhere is 1.0 after its Rescaling layer.
    rescale = next(layer for layer in model.layers if isinstance(layer, keras.layers.Rescaling))
    assert float(keras.ops.convert_to_numpy(rescale(np.full((1, 1), 255.0)))[0, 0]) == 1.0
    pooled = [layer for layer in model.layers if isinstance(layer, keras.layers.MaxPooling2D)]
    for layer in [*pooled, model.layers[-3]]:  # each convolution and the Dense 128: ReLU
        hidden = keras.Model(model.inputs, layer.output)
        assert keras.ops.convert_to_numpy(hidden(x)).min() >= 0.0, layer.name


def test_mini_inception_has_the_tutorials_blocks_at_the_width_given():
    w, size = 2, 32
    model = classifiers.build_classifier("mini_inception", size=size, num_classes=4,
                                         dropout=0.25, aug=[], width=w)  # fmt: skip

    def inception(channels, a, b):
        return conv_module(1, channels, a) + conv_module(3, channels, b), a + b

    def downsample(channels, f):
        return conv_module(3, channels, f), f + channels

    total, channels = conv_module(3, 3, 6 * w), 6 * w
    for kind, *filters in [("i", 2 * w, 2 * w), ("i", 2 * w, 3 * w), ("d", 5 * w),
                           ("i", 7 * w, 3 * w), ("i", 6 * w, 4 * w), ("d", 6 * w),
                           ("i", 11 * w, 10 * w)]:  # fmt: skip
        params, channels = (inception if kind == "i" else downsample)(channels, *filters)
        total += params
    assert model.count_params() == total + channels * 4 + 4
    inner = model.get_layer("mini_inception")
    assert inner.drop.rate == 0.25
    norms = [layer for layer in inner._flatten_layers() if isinstance(layer,
             keras.layers.BatchNormalization)]  # fmt: skip
    assert norms and {layer.momentum for layer in norms} == {0.9}
    x = np.random.default_rng(1).uniform(0, 255, (2, size, size, 3)).astype("float32")
    assert np.allclose(keras.ops.convert_to_numpy(model(x)).sum(axis=1), 1.0, atol=1e-5)


def test_augmentation_layers_follow_each_param_and_none_when_off():
    assert classifiers.augmentation_layers("none", 0.0, 0.0) == []
    flip, rotate, zoom = classifiers.augmentation_layers("vertical", 0.125, 0.2)
    assert (flip.mode, rotate.factor, zoom.height_factor) == ("vertical", (-0.125, 0.125), 0.2)
    only_zoom = classifiers.augmentation_layers("none", 0.0, 0.3)
    assert [type(layer).__name__ for layer in only_zoom] == ["RandomZoom"]


def test_a_backbone_classifier_pools_its_features_into_the_softmax():
    aug = classifiers.augmentation_layers("horizontal", 0, 0)
    model = classifiers.build_classifier("plain_cnn", size=16, num_classes=5, dropout=0.5, aug=aug)
    assert model.name == "plain_cnn_classifier" and model.output_shape == (None, 5)
    features = model.get_layer("backbone").output_shape[-1]
    head = model.layers[-1]
    assert head.kernel.shape == (features, 5) and head.dtype_policy.compute_dtype == "float32"
    assert [layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)] == [
        0.5
    ]
    assert model.get_layer("augmentation").layers[0].mode == "horizontal"


def test_each_architecture_has_its_name_the_augmentation_and_a_softmax(tmp_path):
    aug = classifiers.augmentation_layers("horizontal", 0.0, 0.0)
    x = np.random.default_rng(2).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    for architecture, name in [("simple_cnn", "simple_cnn"), ("mini_inception", "mini_inception"),
                               ("plain_cnn", "plain_cnn_classifier")]:  # fmt: skip
        model = classifiers.build_classifier(
            architecture, size=32, num_classes=3, dropout=0.0, aug=aug, width=2
        )
        assert model.name == name
        assert any(layer is aug[0] for layer in flat_layers(model)), architecture
        if architecture != "simple_cnn":  # one block named in model.summary()
            assert model.get_layer("augmentation").layers == aug, architecture
        out = keras.ops.convert_to_numpy(model(x))
        assert (out > 0).all() and np.allclose(out.sum(axis=1), 1.0, atol=1e-5), architecture


def test_the_inception_blocks_save_and_load_inside_any_model(tmp_path):
    inputs = keras.Input((15, 15, 3))
    x = classifiers.ConvModule(5, 3, strides=2, padding="valid")(inputs)
    x = classifiers.InceptionModule(3, 4)(x)
    outputs = classifiers.DownsampleModule(6)(x)
    model = keras.Model(inputs, outputs)
    model.save(tmp_path / "blocks.keras")
    loaded = keras.models.load_model(tmp_path / "blocks.keras")
    assert loaded.output_shape == model.output_shape == (None, 3, 3, 13)
    conv = loaded.layers[1]
    assert (conv.filters, conv.kernel, conv.strides, conv.padding) == (5, 3, 2, "valid")
    assert (loaded.layers[2].filters_1x1, loaded.layers[2].filters_3x3) == (3, 4)
    assert loaded.layers[3].filters == 6
    x = np.random.default_rng(0).uniform(0, 1, (2, 15, 15, 3)).astype("float32")
    assert np.allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


@pytest.mark.float16
@pytest.mark.parametrize("architecture", ["simple_cnn", "mini_inception", "plain_cnn"])
def test_under_mixed_precision_the_probabilities_stay_float32(architecture):
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = classifiers.build_classifier(
            architecture, size=16, num_classes=3, dropout=0.0, aug=[], width=2
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    x = np.random.default_rng(3).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
    out = model(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float32", architecture
    assert np.allclose(keras.ops.convert_to_numpy(out).sum(axis=1), 1.0, atol=1e-6)
