"""Stage `train-classifier`: train a Keras 3 classifier on the augmented classification data.

In: data/augmented/classification. Out: models/classifier.keras + .json, classifier_batch.npz,
reports/train/classifier/ (DVCLive). The run itself (resume, phases, saving) is training.loop's.
"""

from __future__ import annotations

import numpy as np

from stages.shared.core.cli import run_stage
from stages.shared.params.train_classifier import TrainClassifierParams
from stages.shared.training import checks, loop


class Classifier(loop.Task):
    """One label per image: softmax over the classes, categorical cross-entropy, accuracy."""

    model, params, keys = "classifier", TrainClassifierParams, ("loss", "accuracy")

    def __init__(self, cfg, frame):
        super().__init__(cfg, frame)
        self.classes = sorted(frame["label"].unique())
        self.prior = checks.class_prior(self.targets(self.train_rows))

    def targets(self, rows):
        from stages.shared.data.tfdata import one_hot

        return one_hot(rows["label"], self.classes)

    def class_weight(self):
        if self.cfg.class_weight == "none":
            return None
        return checks.balanced_weights(self.train_rows["label"], self.classes)

    def baseline(self, val_rows):
        smoothing = self.cfg.label_smoothing
        return checks.prior_baseline(
            self.cfg.monitor, self.prior, smoothing, self.targets(val_rows)
        )

    def build(self, size):
        """The architecture, its output bias at the train prior (softmax(log p) = p);
        `debug: overfit` builds it without in-model augmentation."""
        from stages.shared.models import classifiers

        cfg, aug = self.cfg, self.cfg.in_model_augmentation.model_dump()
        self.layers = [] if cfg.debug == "overfit" else classifiers.augmentation_layers(**aug)
        model = classifiers.build_classifier(
            cfg.architecture, size=size, num_classes=len(self.classes), dropout=cfg.dropout,
            aug=self.layers, weights=cfg.weights, width=cfg.width,
        )  # fmt: skip
        checks.start_at_prior(checks.output_layer(model), np.log(self.prior))
        return model

    def loss(self):
        import keras

        return keras.losses.CategoricalCrossentropy(label_smoothing=self.cfg.label_smoothing)

    def compile(self, model, learning_rate, jit_compile):
        from stages.shared.training.optim import make_optimizer

        optimizer, loss = make_optimizer(self.cfg.optimizer, learning_rate), self.loss()
        model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"], jit_compile=jit_compile)

    def first_batch(self, model, images, targets):
        value = float(self.loss()(targets, model(images, training=False)))
        expected = checks.prior_cross_entropy(self.prior, self.cfg.label_smoothing, targets)
        seen = np.clip(np.rint(checks.seen_by_model(model, images, self.layers)), 0, 255)
        report = checks.first_batch_report(value, expected, "categorical cross-entropy")
        return report, {"images": seen.astype(np.uint8), "targets": targets}

    def metadata(self):
        return {"classes": self.classes, "architecture": self.cfg.architecture}


def main(argv: list[str]) -> None:
    loop.main(Classifier, argv, __doc__.splitlines()[0])


if __name__ == "__main__":
    run_stage(main)
