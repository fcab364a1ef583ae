"""Stage `train-classifier`: train a Keras 3 classifier on the augmented classification data.

In:  data/augmented/classification (manifest, shards); Out: models/classifier.keras + .json,
models/classifier_batch.npz, reports/train/classifier/ (DVCLive). Params: base, train_classifier.
The course of the run (resume, phases, checks, saving) is `stages.shared.training.loop`'s.
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
        """sklearn's 'balanced' weights by class index, or None."""
        if self.cfg.class_weight == "none":
            return None
        from sklearn.utils.class_weight import compute_class_weight

        labels = np.array(self.train_rows["label"])
        weights = compute_class_weight("balanced", classes=np.array(self.classes), y=labels)
        return {i: float(w) for i, w in enumerate(weights)}

    def baseline(self, val_rows):
        """The majority class (val_accuracy) or the train prior (val_loss), on val."""
        targets = self.targets(val_rows)
        if self.cfg.monitor == "val_accuracy":
            majority = float((targets.argmax(axis=1) == self.prior.argmax()).mean())
            return {"metric": "accuracy", "baseline": majority, "name": "the majority class",
                    "higher": True}  # fmt: skip
        loss = checks.prior_cross_entropy(self.prior, self.cfg.label_smoothing, targets)
        return {"metric": "loss", "baseline": loss, "name": "the train prior", "higher": False}

    def build(self, size):
        """The architecture, its output bias at the train prior (softmax(log p) = p);
        `debug: overfit` builds it without in-model augmentation."""
        from stages.shared.models import classifiers

        cfg = self.cfg
        aug = cfg.in_model_augmentation.model_dump()
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

        optimizer = make_optimizer(self.cfg.optimizer, learning_rate)
        model.compile(optimizer=optimizer, loss=self.loss(), metrics=["accuracy"],
                      jit_compile=jit_compile)  # fmt: skip

    def first_batch(self, model, images, targets):
        value = float(self.loss()(targets, model(images, training=False)))
        smoothing, onehot = self.cfg.label_smoothing, np.asarray(targets)
        expected = checks.prior_cross_entropy(self.prior, smoothing, onehot)
        seen = checks.seen_by_model(model, images, self.layers)
        pixels = np.clip(np.rint(seen), 0, 255).astype(np.uint8)
        report = checks.first_batch_report(value, expected, "categorical cross-entropy")
        return report, {"images": pixels, "targets": targets}

    def metadata(self):
        return {"classes": self.classes, "architecture": self.cfg.architecture}


def main(argv: list[str]) -> None:
    loop.main(Classifier, argv, __doc__.splitlines()[0])


if __name__ == "__main__":
    run_stage(main)
