"""Feature extractors shared by the classifier and the detector, looked up by name, and the
pretrained weights they can start from.

Every backbone is a `keras.Model` named `backbone` that takes float32 pixels in [0, 255] and
returns a feature map, so a backbone trained by one model (or task) fits the other.
`weights` is `null` (from scratch), `imagenet` (keras.applications downloads it), a
keras.applications weights file (`.h5`, the file that download would fetch), or a `.keras`
model written by this pipeline, whose `backbone` is copied.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import keras
from keras import layers

from stages.shared.core.cli import UserError
from stages.shared.core.paths import PRETRAINED_DIR

# keras.applications backbones: (constructor, normalisation layer for [0, 255] input).
APPLICATIONS: dict[str, tuple[Callable, Callable[[], layers.Layer]]] = {
    "mobilenet_v2": (
        keras.applications.MobileNetV2,
        lambda: layers.Rescaling(1 / 127.5, offset=-1.0),  # its preprocess_input: [-1, 1]
    ),
    "efficientnet_b0": (
        keras.applications.EfficientNetB0,
        lambda: layers.Identity(),  # EfficientNet rescales [0, 255] inside the model
    ),
    "vgg16": (
        keras.applications.VGG16,
        lambda: layers.Rescaling(1 / 255.0),  # the face-tracking tutorial fed [0, 1]
    ),
}
BACKBONES = ("plain_cnn", *APPLICATIONS)


def plain_cnn(size: int) -> keras.Model:
    """A ~0.6M-parameter VGG-style stack with BatchNorm that learns from scratch on a CPU.

    Its features keep a stride of 8 (an 8×8 map at 64 px): a box head that reads positions
    from them (soft-argmax) sizes small objects far better than from a stride-16 map (on the
    held-out faces of the sample: mean IoU 0.77 against 0.74, AP50-95 0.58 against 0.49),
    at about the same cost (four 128-channel convolutions instead of two of 256 at 4×4).
    """
    inputs = keras.Input((size, size, 3))
    x = layers.Rescaling(1 / 255.0)(inputs)
    x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x)
    for filters, convs, pool in ((32, 1, True), (64, 2, True), (128, 4, False)):
        for _ in range(convs):
            x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
            # momentum 0.9: with ~80 steps an epoch, 0.99 leaves the moving statistics far from
            # the batch statistics for many epochs, and validation looks broken meanwhile.
            x = layers.BatchNormalization(momentum=0.9)(x)
            x = layers.ReLU()(x)
        if pool:
            x = layers.MaxPool2D()(x)
    return keras.Model(inputs, x, name="backbone")


def application(name: str, size: int, weights: str | None) -> keras.Model:
    """A headless keras.applications model; a failed weights download is one clear line."""
    constructor, _ = APPLICATIONS[name]
    try:
        return constructor(include_top=False, weights=weights, input_shape=(size, size, 3))
    except Exception as err:  # keras.utils.get_file raises a bare Exception on URL errors
        if weights is None:
            raise
        raise UserError(
            f"could not load {weights} weights for {name} ({' '.join(str(err).split())[:160]})"
            f" — set weights: null, or put the weights file in {PRETRAINED_DIR}/ and set"
            f" weights: {PRETRAINED_DIR}/<file>.h5"
        ) from None


def build_backbone(
    name: str, size: int, weights: str | None = None, bn_momentum: float | None = None
) -> keras.Model:
    """The backbone `name` for size×size input, with its pretrained weights loaded.

    `bn_momentum` overrides the BatchNorm momentum (0.99 / 0.999 in keras.applications). From
    scratch with few steps per epoch, such a slow moving average stays near its initial
    values for hundreds of steps, so the model evaluated in inference mode looks untrained.
    """
    if name not in BACKBONES:
        raise UserError(f"unknown backbone {name!r}; choices: {', '.join(BACKBONES)}")
    from_model = weights is not None and weights.endswith(".keras")
    if name == "plain_cnn":
        if weights is not None and not from_model:
            raise UserError(f"weights: {weights!r} — plain_cnn takes null or a .keras model")
        backbone = plain_cnn(size)
    else:
        inputs = keras.Input((size, size, 3))
        app = application(name, size, None if from_model else weights)
        features = app(APPLICATIONS[name][1]()(inputs))
        backbone = keras.Model(inputs, features, name="backbone")
    if bn_momentum is not None:
        for layer in flat_layers(backbone):
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = bn_momentum
    return backbone  # a `.keras` donor's weights: models.store.copy_pretrained, once built


def flat_layers(model: keras.Model) -> list[layers.Layer]:
    """The leaf layers of a model, nested models opened, in order."""
    leaves: list[layers.Layer] = []
    for layer in model.layers:
        leaves += flat_layers(layer) if isinstance(layer, keras.Model) else [layer]
    return leaves


def find_backbone(model: keras.Model) -> keras.Model | None:
    """The layer named `backbone` of a model of this pipeline (classifier or detector)."""
    try:
        return model.get_layer("backbone")
    except ValueError:
        return None


def copy_backbone_weights(path: Path, source: keras.Model, backbone: keras.Model) -> None:
    """Copy the backbone `source` (of the saved model at `path`) into `backbone`."""
    arrays = source.get_weights()
    shapes = [tuple(a.shape) for a in arrays]
    if shapes != [tuple(w.shape) for w in backbone.weights]:
        raise UserError(
            f"{path}: its backbone ({len(shapes)} weight arrays) does not fit this"
            f" backbone ({len(backbone.weights)}) — pretrain with the same backbone"
        )
    backbone.set_weights(arrays)


def unfreeze_top(backbone: keras.Model, count: int) -> int:
    """Make the top `count` layers of a backbone trainable; return how many are.

    BatchNormalization layers stay frozen, as the Keras transfer-learning guide advises:
    updating their statistics on a small dataset wrecks what the backbone learnt.
    """
    backbone.trainable = True
    leaves = flat_layers(backbone)
    boundary = max(len(leaves) - count, 0)
    for index, layer in enumerate(leaves):
        frozen = index < boundary or isinstance(layer, layers.BatchNormalization)
        layer.trainable = not frozen
    return sum(1 for layer in leaves if layer.trainable and layer.weights)
