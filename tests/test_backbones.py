"""backbones.py: backbones by name, pretrained weights from a file, fine-tuning the top only."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from stages.shared.core.cli import UserError
from stages.shared.models import backbones
from stages.shared.models.classifiers import build_classifier
from stages.shared.models.detectors import FaceTracker
from stages.shared.models.store import copy_pretrained, save_model


def same(one, two) -> bool:
    return len(one) == len(two) and all(
        np.array_equal(a, b) for a, b in zip(one, two, strict=False)
    )


def test_unknown_backbone_is_a_clear_error():
    with pytest.raises(UserError, match=r"unknown backbone 'vgg19'; choices: plain_cnn, "):
        backbones.build_backbone("vgg19", 32)


@pytest.mark.parametrize(("name", "size"), [("plain_cnn", 24), ("mobilenet_v2", 32)])
def test_a_classifier_backbone_seeds_a_detector_and_back(tmp_path, name, size):
    keras.utils.set_random_seed(1)
    classifier = build_classifier(name, size=size, num_classes=3, dropout=0.0, aug=[])
    save_model(classifier, tmp_path / "classifier.keras", {})
    # Another input size: convolution weights do not depend on it.
    detector = FaceTracker(name, 40, head_width=8, weights=str(tmp_path / "classifier.keras"))
    copy_pretrained(detector, str(tmp_path / "classifier.keras"))
    assert same(detector.backbone.get_weights(), classifier.get_layer("backbone").get_weights())
    detector(np.zeros((1, 40, 40, 3), "float32"))
    save_model(detector, tmp_path / "detector.keras", {})
    again = build_classifier(
        name,
        size=size,
        num_classes=2,
        dropout=0.0,
        aug=[],
        weights=str(tmp_path / "detector.keras"),
    )
    copy_pretrained(again, str(tmp_path / "detector.keras"))
    assert same(again.get_layer("backbone").get_weights(), detector.backbone.get_weights())


def test_weights_that_do_not_fit_are_one_clear_line(tmp_path):
    small = build_classifier("simple_cnn", size=16, num_classes=2, dropout=0.0, aug=[])
    save_model(small, tmp_path / "simple.keras", {})
    plain = build_classifier("plain_cnn", size=16, num_classes=2, dropout=0.0, aug=[])
    with pytest.raises(
        UserError,
        match=r"simple\.keras: this model has no backbone .* with a backbone architecture "
        r"\(plain_cnn, mobilenet_v2, efficientnet_b0, vgg16\)$",
    ):
        copy_pretrained(plain, str(tmp_path / "simple.keras"))
    other = build_classifier("plain_cnn", size=32, num_classes=2, dropout=0.0, aug=[])
    save_model(other, tmp_path / "plain.keras", {})
    mobile = build_classifier("mobilenet_v2", size=32, num_classes=2, dropout=0.0, aug=[])
    with pytest.raises(UserError, match=r"plain\.keras: its backbone .* does not fit this"):
        copy_pretrained(mobile, str(tmp_path / "plain.keras"))
    with pytest.raises(UserError, match=r"missing\.keras: not found"):
        copy_pretrained(plain, str(tmp_path / "missing.keras"))


def test_a_keras_applications_weights_file_loads_offline(tmp_path):
    keras.utils.set_random_seed(2)
    app = backbones.application("mobilenet_v2", 32, None)
    app.save_weights(tmp_path / "mobilenet.weights.h5")
    loaded = backbones.build_backbone("mobilenet_v2", 32, str(tmp_path / "mobilenet.weights.h5"))
    assert same(loaded.layers[-1].get_weights(), app.get_weights())


def test_unfreezing_the_top_trains_those_layers_and_nothing_below():
    keras.utils.set_random_seed(3)
    backbone = backbones.build_backbone("plain_cnn", 16)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(backbone(inputs, training=False))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))
    backbone.trainable = False
    count = backbones.unfreeze_top(backbone, 6)  # conv, BN, ReLU, conv, BN, ReLU
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
    before = [layer.get_weights() for layer in backbone.layers]
    x = np.random.default_rng(0).uniform(0, 255, (8, 16, 16, 3)).astype("float32")
    model.fit(x, np.eye(2, dtype="float32")[[0, 1] * 4], epochs=1, verbose=0)
    changed = [
        i for i, layer in enumerate(backbone.layers) if not same(layer.get_weights(), before[i])
    ]
    convs = [i for i, layer in enumerate(backbone.layers) if isinstance(layer, keras.layers.Conv2D)]
    assert changed == convs[-2:] and count == 2  # BatchNorm stays frozen


def test_a_failed_weights_download_is_one_clear_line(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example.invalid: None -- no network")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    monkeypatch.setattr("keras.src.applications.mobilenet_v2.file_utils.get_file", offline)
    with pytest.raises(
        UserError,
        match=r"could not load imagenet weights for mobilenet_v2 .*set weights: null, or put the"
        r" weights file in pretrained/",
    ):
        backbones.build_backbone("mobilenet_v2", 96, "imagenet")


def test_plain_cnn_is_its_documented_stack_by_parameter_count_and_stride():
    backbone = backbones.build_backbone("plain_cnn", 64)
    assert backbone.output_shape == (None, 8, 8, 128)  # stride 8: an 8×8 map at 64 px

    def conv_bn(channels, filters):  # 3×3 without bias, then BatchNorm (4 per channel)
        return 9 * channels * filters + 4 * filters

    stem = 9 * 3 * 32 + 32
    body = conv_bn(32, 32) + conv_bn(32, 64) + conv_bn(64, 64) + conv_bn(64, 128)
    body += 3 * conv_bn(128, 128)
    assert backbone.count_params() == stem + body
    norms = [
        leaf
        for leaf in backbones.flat_layers(backbone)
        if isinstance(leaf, keras.layers.BatchNormalization)
    ]
    assert len(norms) == 7 and {n.momentum for n in norms} == {0.9}
    features = keras.ops.convert_to_numpy(
        backbone(np.random.default_rng(0).uniform(0, 255, (1, 64, 64, 3)).astype("float32"))
    )
    assert features.min() >= 0.0  # ends in a ReLU
    faster = backbones.build_backbone("plain_cnn", 32, bn_momentum=0.5)
    momenta = {
        layer.momentum for layer in backbones.flat_layers(faster) if hasattr(layer, "momentum")
    }
    assert momenta == {0.5}


def test_unfreezing_counts_only_the_trainable_layers_with_weights_and_keeps_batchnorm():
    backbone = backbones.build_backbone("plain_cnn", 32)
    backbone.trainable = False
    leaves = backbones.flat_layers(backbone)
    # The top 4 leaves: ReLU, Conv2D, BatchNorm, ReLU: one of them has weights to train.
    assert backbones.unfreeze_top(backbone, 4) == 1
    assert [layer.trainable for layer in leaves[-4:]] == [True, True, False, True]
    assert not any(layer.trainable for layer in leaves[:-4])
    assert backbones.unfreeze_top(backbone, 1000) == 8  # every conv, never a BatchNorm


def test_a_model_without_a_backbone_layer_has_none():
    plain = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert backbones.find_backbone(plain) is None
    wrapped = keras.Sequential(
        [keras.Input((16, 16, 3)), backbones.build_backbone("plain_cnn", 16)]
    )
    assert backbones.find_backbone(wrapped).name == "backbone"


@pytest.mark.parametrize(
    ("name", "channels"), [("mobilenet_v2", 1280), ("efficientnet_b0", 1280), ("vgg16", 512)]
)
def test_an_application_backbone_is_headless_and_built_for_the_input_size(name, channels):
    app = backbones.application(name, 32, None)
    assert app.input_shape == (None, 32, 32, 3)
    assert app.output_shape == (None, 1, 1, channels)  # a feature map, not 1000 class scores
    backbone = backbones.build_backbone(name, 32, bn_momentum=0.5)
    assert backbone.output_shape == (None, 1, 1, channels)
    leaves = backbones.flat_layers(backbone)  # the application's layers, opened
    assert not any(isinstance(leaf, keras.Model) for leaf in leaves)
    assert len(leaves) == 2 + len(backbones.flat_layers(app))  # input and normalisation
    norms = [leaf for leaf in leaves if isinstance(leaf, keras.layers.BatchNormalization)]
    assert len(norms) == {"mobilenet_v2": 52, "efficientnet_b0": 49, "vgg16": 0}[name]
    assert {n.momentum for n in norms} <= {0.5}


def test_a_long_download_error_is_cut_to_160_characters(monkeypatch):
    def offline(*args, **kwargs):
        raise Exception("x" * 150 + "\n   " + "y" * 100)

    monkeypatch.setattr("keras.src.applications.vgg16.file_utils.get_file", offline)
    with pytest.raises(UserError) as err:
        backbones.build_backbone("vgg16", 32, "imagenet")
    said = str(err.value).split("(", 1)[1].split(")", 1)[0]
    assert said == "x" * 150 + " " + "y" * 9  # whitespace runs become one space, then the cut


def test_plain_cnn_is_a_relu_stem_then_conv_batchnorm_relu_blocks():
    kinds = [
        type(leaf).__name__
        for leaf in backbones.flat_layers(backbones.build_backbone("plain_cnn", 32))
    ]
    block = ["Conv2D", "BatchNormalization", "ReLU"]
    assert kinds == [
        *("InputLayer", "Rescaling", "Conv2D"),
        *block, "MaxPooling2D", *block, *block, "MaxPooling2D", *block * 4,
    ]  # fmt: skip
    stem = backbones.build_backbone("plain_cnn", 32).layers[2]
    pixels = np.random.default_rng(5).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    seen = keras.ops.convert_to_numpy(stem(pixels / 255.0))
    assert seen.min() == 0.0 and seen.max() > 0.0  # the stem ends in its ReLU
