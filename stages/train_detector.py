"""Stage `train-detector`: train the FaceTracker single-object detector on augmented data.

In: data/augmented/detection. Out: models/detector.keras + .json, models/detector_batch.npz,
reports/train/detector/ (DVCLive). The run itself (resume, checks, saving) is training.loop's.
"""

from __future__ import annotations

import numpy as np

from stages.shared.core.cli import run_stage
from stages.shared.data.manifest import BOX
from stages.shared.params.train_detector import TrainDetectorParams
from stages.shared.training import checks, loop


class Detector(loop.Task):
    """At most one object per image: a presence logit and a box (x1, y1, x2, y2) in [0, 1]."""

    model, params = "detector", TrainDetectorParams
    keys = ("loss", "mean_iou", "presence_accuracy")

    def __init__(self, cfg, frame):
        super().__init__(cfg, frame)
        self.rate = float(self.train_rows["present"].mean())

    def targets(self, rows):
        """(presence [N, 1], box [N, 4]) float32 arrays."""
        return rows["present"].to_numpy("float32").reshape(-1, 1), rows[BOX].to_numpy("float32")

    def baseline(self, val_rows):
        from stages.shared.models.losses import mean_box_baseline

        return mean_box_baseline(self.targets(self.train_rows), self.targets(val_rows))

    def build(self, size):
        """Built (BackupAndRestore needs its weights), presence at the train presence rate."""
        from stages.shared.models.detectors import FaceTracker

        cfg = self.cfg
        model = FaceTracker(cfg.backbone, size, cfg.head_width, cfg.pooling, cfg.dropout,
                            cfg.weights, cfg.bn_momentum, box_head=cfg.box_head)  # fmt: skip
        model.backbone.trainable = cfg.trainable_backbone
        model(np.zeros((1, size, size, 3), "float32"))
        checks.start_at_prior(model.presence_head.layers[-1], [checks.logit(self.rate)])
        return model

    def compile(self, model, learning_rate, jit_compile):
        from stages.shared.training.optim import make_optimizer

        cfg, weights = self.cfg, self.cfg.loss_weights
        model.compile(optimizer=make_optimizer(cfg.optimizer, learning_rate),
                      localization=cfg.localization_loss, jit_compile=jit_compile,
                      loss_weights=(weights.localization, weights.classification))  # fmt: skip

    def first_batch(self, model, images, targets):
        present, boxes = targets
        value = float(model.class_loss(present, model(images, training=False)[0]))
        pixels = np.clip(np.rint(np.asarray(images)), 0, 255).astype(np.uint8)
        expected = checks.binary_cross_entropy(self.rate, np.asarray(present))
        report = checks.first_batch_report(value, expected, "presence cross-entropy")
        return report, {"images": pixels, "present": present, "boxes": boxes}

    def metadata(self):
        return {"backbone": self.cfg.backbone}


def main(argv: list[str]) -> None:
    loop.main(Detector, argv, __doc__.splitlines()[0])


if __name__ == "__main__":
    run_stage(main)
