"""Classifier architectures, looked up by name: small CNNs, and a pooling head on a backbone.

Every model takes float32 pixels in [0, 255] and normalises them itself, so a saved
`.keras` file needs no outside preprocessing. Backbone models keep the backbone as one
layer named `backbone` (see backbones.py); a pretrained one is frozen at first, and
`backbones.unfreeze_top` opens its top layers for fine-tuning.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import keras
from keras import layers

from stages.shared.core.cli import UserError
from stages.shared.models.backbones import BACKBONES, build_backbone


def augmentation_layers(flip: str, rotation: float, zoom: float) -> list[layers.Layer]:
    """In-model random augmentation (active in training only); empty when all are off."""
    stack: list[layers.Layer] = []
    if flip != "none":
        stack.append(layers.RandomFlip(flip))
    if rotation > 0:
        stack.append(layers.RandomRotation(rotation))
    if zoom > 0:
        stack.append(layers.RandomZoom(zoom))
    return stack


def simple_cnn(size: int, num_classes: int, dropout: float, aug: list[layers.Layer], **_):
    """The Sequential Conv/MaxPool/Dense/Dropout network of the brain-tumour tutorial."""
    stack = [keras.Input((size, size, 3)), *aug, layers.Rescaling(1 / 255.0)]
    for filters in (32, 64, 128):
        stack += [layers.Conv2D(filters, 3, padding="same", activation="relu"), layers.MaxPool2D()]
    stack += [
        layers.Flatten(),
        layers.Dense(128, activation="relu"),
        layers.Dropout(dropout),
        layers.Dense(num_classes, activation="softmax", dtype="float32"),
    ]
    return keras.Sequential(stack, name="simple_cnn")


@keras.saving.register_keras_serializable(package="pipeline")
class ConvModule(layers.Layer):
    """Conv → BatchNorm → ReLU, the building block of MiniInception."""

    def __init__(self, filters: int, kernel: int, strides: int = 1, padding="same", **kwargs):
        super().__init__(**kwargs)
        self.filters, self.kernel, self.strides, self.padding = filters, kernel, strides, padding
        self.conv = layers.Conv2D(filters, kernel, strides=strides, padding=padding)
        # momentum 0.9, not 0.99: with few steps per epoch the moving statistics must converge.
        self.norm = layers.BatchNormalization(momentum=0.9)

    def call(self, x, training=False):
        return keras.activations.relu(self.norm(self.conv(x), training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters, kernel=self.kernel, strides=self.strides, padding=self.padding
        )
        return config


@keras.saving.register_keras_serializable(package="pipeline")
class InceptionModule(layers.Layer):
    """A 1×1 and a 3×3 ConvModule side by side, concatenated."""

    def __init__(self, filters_1x1: int, filters_3x3: int, **kwargs):
        super().__init__(**kwargs)
        self.filters_1x1, self.filters_3x3 = filters_1x1, filters_3x3
        self.branch_1x1 = ConvModule(filters_1x1, 1)
        self.branch_3x3 = ConvModule(filters_3x3, 3)

    def call(self, x, training=False):
        return layers.concatenate(
            [self.branch_1x1(x, training=training), self.branch_3x3(x, training=training)]
        )

    def get_config(self):
        config = super().get_config()
        config.update(filters_1x1=self.filters_1x1, filters_3x3=self.filters_3x3)
        return config


@keras.saving.register_keras_serializable(package="pipeline")
class DownsampleModule(layers.Layer):
    """A strided 3×3 ConvModule beside a 3×3 max-pool, concatenated (halves the size)."""

    def __init__(self, filters: int, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.conv = ConvModule(filters, 3, strides=2, padding="valid")
        self.pool = layers.MaxPool2D(3, strides=2)

    def call(self, x, training=False):
        return layers.concatenate([self.conv(x, training=training), self.pool(x)])

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters)
        return config


@keras.saving.register_keras_serializable(package="pipeline")
class MiniInception(keras.Model):
    """The subclassed MiniInception of the TF2 tutorial, `width` scaling every filter count."""

    def __init__(self, num_classes: int, width: int = 16, dropout: float = 0.3, **kwargs):
        super().__init__(**kwargs)
        self.num_classes, self.width, self.dropout_rate = num_classes, width, dropout
        w = width
        self.rescale = layers.Rescaling(1 / 255.0)
        self.stem = ConvModule(w * 6, 3)
        self.blocks = [
            InceptionModule(w * 2, w * 2),
            InceptionModule(w * 2, w * 3),
            DownsampleModule(w * 5),
            InceptionModule(w * 7, w * 3),
            InceptionModule(w * 6, w * 4),
            DownsampleModule(w * 6),
            InceptionModule(w * 11, w * 10),
        ]
        self.pool = layers.GlobalAveragePooling2D()
        self.drop = layers.Dropout(dropout)
        self.head = layers.Dense(num_classes, activation="softmax", dtype="float32")

    def call(self, x, training=False):
        x = self.stem(self.rescale(x), training=training)
        for block in self.blocks:
            x = block(x, training=training)
        return self.head(self.drop(self.pool(x), training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "num_classes": self.num_classes,
            "width": self.width,
            "dropout": self.dropout_rate,
        }


def mini_inception(size: int, num_classes: int, dropout: float, aug, width: int = 16, **_):
    """MiniInception behind an input and the augmentation layers, built for `size`."""
    inputs = keras.Input((size, size, 3))
    x = keras.Sequential(aug, name="augmentation")(inputs) if aug else inputs
    outputs = MiniInception(num_classes, width=width, dropout=dropout, name="mini_inception")(x)
    return keras.Model(inputs, outputs, name="mini_inception")


def on_backbone(
    name: str, size: int, num_classes: int, dropout: float, aug, weights=None, **_
) -> keras.Model:
    """A classifier on backbone `name`: the backbone, global average pooling, dropout,
    softmax. A pretrained backbone (`weights` set) starts frozen and runs in inference mode,
    so its BatchNorm statistics survive fine-tuning; from scratch it trains like any layer.
    """
    backbone = build_backbone(name, size, weights)
    inputs = keras.Input((size, size, 3))
    x = keras.Sequential(aug, name="augmentation")(inputs) if aug else inputs
    if weights is None:
        x = backbone(x)
    else:
        backbone.trainable = False
        x = backbone(x, training=False)
    x = layers.Dropout(dropout)(layers.GlobalAveragePooling2D()(x))
    outputs = layers.Dense(num_classes, activation="softmax", dtype="float32")(x)
    return keras.Model(inputs, outputs, name=f"{name}_classifier")


ARCHITECTURES: dict[str, Callable[..., keras.Model]] = {
    "simple_cnn": simple_cnn,
    "mini_inception": mini_inception,
    **{name: functools.partial(on_backbone, name) for name in BACKBONES},
}


def build_classifier(architecture: str, **kwargs) -> keras.Model:
    """Look up and build an architecture by name."""
    if architecture not in ARCHITECTURES:
        choices = ", ".join(ARCHITECTURES)
        raise UserError(f"unknown architecture {architecture!r}; choices: {choices}")
    return ARCHITECTURES[architecture](**kwargs)
