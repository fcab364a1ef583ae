"""The FaceTracker single-object detector: a backbone and two heads, with its own train_step.

Heads as in the face-tracking tutorial: pooled backbone features → Dense(head_width, relu) →
Dense(1) → sigmoid for "is there an object", and → Dense(4, sigmoid) for its box (x1, y1, x2,
y2) in [0, 1] (`box_head="dense"`). `box_head="center"` is convolutional instead: every cell of
the feature map proposes a box around itself and a centre heatmap picks among them
(`CenterBox`). Total loss = w_loc · localization + w_cls · classification (tutorial: 1, 0.5).
`presence_logits` gives the presence before its sigmoid, for ranking: confident
probabilities saturate at exactly 1.0 in float32 and could not be told apart.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers, ops

from stages.shared.core.cli import UserError
from stages.shared.models.backbones import build_backbone
from stages.shared.models.losses import box_iou, localization_loss


@keras.saving.register_keras_serializable(package="pipeline")
class SpatialSoftmax(layers.Layer):
    """Per channel: the softmax-weighted mean (x, y) position of its activation, and its max.

    The "spatial soft-argmax" of Levine et al. (JMLR 2016): each channel becomes a keypoint
    whose coordinates are differentiable in the features, so a box head learns *where* from
    the first epochs instead of decoding position from a flattened grid.
    """

    def build(self, input_shape):
        # Learnt sharpness of the softmax, one per channel.
        self.temperature = self.add_weight(
            shape=(input_shape[-1],), initializer="ones", name="temperature"
        )

    def call(self, features):
        # Softmax and coordinates in float32, also under mixed precision (float16 features).
        features = ops.cast(features, "float32")
        shape = ops.shape(features)
        height, width, channels = shape[1], shape[2], shape[3]
        flat = ops.reshape(features, (-1, height * width, channels))
        attention = ops.softmax(flat * self.temperature, axis=1)
        ys, xs = ops.meshgrid(
            ops.linspace(0.0, 1.0, height), ops.linspace(0.0, 1.0, width), indexing="ij"
        )
        grid_x = ops.reshape(xs, (1, -1, 1))
        grid_y = ops.reshape(ys, (1, -1, 1))
        mean_x = ops.sum(attention * grid_x, axis=1)
        mean_y = ops.sum(attention * grid_y, axis=1)
        return ops.concatenate([mean_x, mean_y, ops.max(flat, axis=1)], axis=-1)


@keras.saving.register_keras_serializable(package="pipeline")
class CenterBox(layers.Layer):
    """A box from a map of (centre logit, x offset, y offset, width, height) per cell.

    The softmax of the centre logits over the cells weights each cell's own box: its centre
    (the cell's, moved by up to one cell) and its size. Every cell predicts with the same
    weights, so what is learnt about a box in one place holds in every other place.
    """

    def call(self, cells):
        cells = ops.cast(cells, "float32")
        shape = ops.shape(cells)
        height, width = shape[1], shape[2]
        flat = ops.reshape(cells, (-1, height * width, 5))
        attention = ops.softmax(flat[..., 0], axis=1)
        ys, xs = ops.meshgrid(
            (ops.arange(height, dtype="float32") + 0.5) / ops.cast(height, "float32"),
            (ops.arange(width, dtype="float32") + 0.5) / ops.cast(width, "float32"),
            indexing="ij",
        )
        x = ops.reshape(xs, (1, -1)) + ops.tanh(flat[..., 1]) / ops.cast(width, "float32")
        y = ops.reshape(ys, (1, -1)) + ops.tanh(flat[..., 2]) / ops.cast(height, "float32")
        half_w = ops.sigmoid(flat[..., 3]) / 2
        half_h = ops.sigmoid(flat[..., 4]) / 2
        box = ops.stack([x - half_w, y - half_h, x + half_w, y + half_h], axis=-1)
        box = ops.sum(attention[..., None] * box, axis=1)
        return ops.clip(box, 0.0, 1.0)


BOX_HEADS = ("dense", "center")  # a box from pooled features, or from every cell (CenterBox)
POOLING = {
    "max": layers.GlobalMaxPooling2D,  # the tutorial's
    "avg": layers.GlobalAveragePooling2D,
    "flatten": layers.Flatten,  # keeps where features are, in a large Dense layer
    "softargmax": SpatialSoftmax,  # keypoints: learns positions fastest from scratch
}


@keras.saving.register_keras_serializable(package="pipeline")
class FaceTracker(keras.Model):
    """Backbone + presence head + box head; `call` returns (presence [B, 1], box [B, 4])."""

    def __init__(
        self,
        backbone="plain_cnn",
        image_size=96,
        head_width=256,
        pooling="softargmax",
        dropout=0.0,
        weights=None,
        bn_momentum=None,
        box_head="dense",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.config = {
            "backbone": backbone,
            "image_size": image_size,
            "head_width": head_width,
            "pooling": pooling,
            "dropout": dropout,
            "bn_momentum": bn_momentum,
            "box_head": box_head,
        }
        if pooling not in POOLING:
            raise UserError(f"unknown pooling {pooling!r}; choices: {', '.join(POOLING)}")
        # From scratch, on a CPU budget, only `plain_cnn` learns; the keras.applications backbones
        # need pretrained weights (docs/training.md, "Which detector backbone").
        self.backbone = build_backbone(backbone, image_size, weights, bn_momentum)
        self.presence_head = self._head(1, "presence", activation=None)  # logits
        if box_head == "center":
            self.box_head = keras.Sequential(
                [
                    layers.Conv2D(head_width, 3, padding="same", activation="relu"),
                    layers.Conv2D(5, 1, dtype="float32"),
                    CenterBox(),
                ],
                name="box_head",
            )
        elif box_head == "dense":
            self.box_head = self._head(4, "box")
        else:
            raise UserError(f"unknown box_head {box_head!r}; choices: {', '.join(BOX_HEADS)}")
        self.loss_weights = (1.0, 0.5)
        self.localization = "corners"
        # Created here, not in compile: Keras locks a built layer's state.
        self.trackers = {
            name: keras.metrics.Mean(name=name)
            for name in ("loss", "class_loss", "box_loss", "mean_iou")
        }
        self.trackers["presence_accuracy"] = keras.metrics.BinaryAccuracy(name="presence_accuracy")

    def _head(self, units: int, name: str, activation: str | None = "sigmoid") -> keras.Sequential:
        cfg = self.config
        return keras.Sequential(
            [
                POOLING[cfg["pooling"]](),
                layers.Dense(cfg["head_width"], activation="relu"),
                layers.Dropout(cfg["dropout"]),
                layers.Dense(units, activation=activation, dtype="float32"),
            ],
            name=f"{name}_head",
        )

    def call(self, images, training=False):
        features = self.backbone(images, training=training)
        presence = ops.sigmoid(self.presence_head(features, training=training))
        return presence, self.box_head(features, training=training)

    def presence_logits(self, images):
        """(batch, 1) presence before the sigmoid (inference mode)."""
        return self.presence_head(self.backbone(images, training=False), training=False)

    def compile(self, optimizer, localization="corners", loss_weights=(1.0, 0.5), **kwargs):
        """Like the tutorial's `compile(opt, classloss, localizationloss)`, by name."""
        super().compile(optimizer=optimizer, **kwargs)
        # The plain function (mean taken here), not keras.losses.BinaryCrossentropy: that
        # class divides by the number of replicas, which train_step does for the total.
        self.class_loss = lambda y, p: ops.mean(keras.losses.binary_crossentropy(y, p))
        self.box_loss = localization_loss(localization)
        self.loss_weights = tuple(float(w) for w in loss_weights)
        self.localization = localization

    @property
    def metrics(self):
        return list(self.trackers.values())

    def _compute_losses(self, data, training: bool):
        images, (present, box), _ = keras.utils.unpack_x_y_sample_weight(data)
        pred_present, pred_box = self(images, training=training)
        class_loss = self.class_loss(present, pred_present)
        box_loss = self.box_loss(box, pred_box, present)
        w_loc, w_cls = self.loss_weights
        total = w_loc * box_loss + w_cls * class_loss
        return total, class_loss, box_loss, (present, box, pred_present, pred_box)

    def _update(self, total, class_loss, box_loss, tensors) -> dict:
        present, box, pred_present, pred_box = tensors
        self.trackers["loss"].update_state(total)
        self.trackers["class_loss"].update_state(class_loss)
        self.trackers["box_loss"].update_state(box_loss)
        # Mean IoU over the images that hold an object: negatives have no box to match.
        self.trackers["mean_iou"].update_state(
            box_iou(box, pred_box), sample_weight=tf.reshape(present, (-1,))
        )
        self.trackers["presence_accuracy"].update_state(present, pred_present)
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            total, class_loss, box_loss, tensors = self._compute_losses(data, training=True)
            # Replicas' gradients are summed: each contributes its share of the mean loss.
            share = total / tf.distribute.get_strategy().num_replicas_in_sync
            scaled = self.optimizer.scale_loss(share)  # mixed precision: avoid float16 underflow
        grads = tape.gradient(scaled, self.trainable_variables)
        # The optimizer given to compile, not a global one as in the tutorial.
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables, strict=True))
        return self._update(total, class_loss, box_loss, tensors)

    def test_step(self, data):
        return self._update(*self._compute_losses(data, training=False))

    def get_config(self):
        return {**super().get_config(), **self.config}

    def get_compile_config(self):
        if not self.compiled:
            return None  # an uncompiled model (e.g. built for inference) saves without one
        return {
            "optimizer": keras.optimizers.serialize(self.optimizer),
            "localization": self.localization,
            "loss_weights": list(self.loss_weights),
        }

    def compile_from_config(self, config):
        optimizer = keras.optimizers.deserialize(config.pop("optimizer"))
        self.compile(optimizer=optimizer, **config)
        if self.built:
            self.optimizer.build(self.trainable_variables)  # so its saved state loads too
