"""Input-independent baselines: what a predictor that never looks at the image scores on the
same test rows, from the train split alone. A model's headline metric means something only
beside its baseline (A. Karpathy, "A Recipe for Training Neural Networks", 2019).

Classifier: `majority` always answers the train split's most frequent class; `prior` returns
the train class frequencies as its probabilities (its ROC AUC is 0.5, its log-loss the
cross-entropy of the test labels under the train prior). Detector: `mean_box` answers the
mean train box for every image, with the train presence rate as its score.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as skm

from stages.shared.evaluation.metrics import (
    COCO_IOU_THRESHOLDS,
    RECALL_POINTS,
    box_iou,
    per_class_auc,
)

# Headline metrics and the baseline each is compared with; True: higher is better.
COMPARED = {
    "classifier": {
        "accuracy": ("majority", True),
        "macro_f1": ("majority", True),
        "roc_auc": ("prior", True),
        "log_loss": ("prior", False),
    },
    "detector": {
        "ap50": ("mean_box", True),
        "ap50_95": ("mean_box", True),
        "mean_iou": ("mean_box", True),
        "presence_accuracy": ("mean_box", True),
    },
}
EPSILON = 1e-15  # sklearn's log-loss clipping: a class the train split lacks is not infinite


def class_prior(train_labels: np.ndarray, classes: int) -> np.ndarray:
    """Train class frequencies, in class-index order."""
    counts = np.bincount(np.asarray(train_labels, dtype=int), minlength=classes)
    return counts / counts.sum()


def classifier_baselines(train_labels: np.ndarray, actual: np.ndarray, classes: int) -> dict:
    """The majority and prior predictors' scores on the test labels `actual`."""
    prior = class_prior(train_labels, classes)
    guess = np.full(len(actual), int(prior.argmax()))
    tested = np.unique(actual)
    majority = {
        "accuracy": float((guess == actual).mean()),
        "macro_f1": float(
            skm.f1_score(actual, guess, labels=tested, average="macro", zero_division=0)
        ),
    }
    proba = np.tile(prior, (len(actual), 1))
    aucs = per_class_auc(actual, proba)
    defined = aucs[~np.isnan(aucs)]
    return {
        "majority": majority,
        "prior": {
            **majority,
            "roc_auc": float(defined.mean()) if len(defined) else float("nan"),
            "log_loss": float(-np.log(np.clip(prior[actual], EPSILON, 1)).mean()),
        },
    }


def tied_ap(hits: np.ndarray, positives: int) -> float:
    """101-point AP of predictions that all share one score: a single precision-recall point
    (every prediction admitted at once), so no order among them is invented."""
    if positives == 0:
        return float("nan")
    recall = hits.sum() / positives
    precision = hits.sum() / len(hits) if len(hits) else 0.0
    return float(precision * (recall + 1e-12 >= RECALL_POINTS).mean())


def detector_baseline(
    train_present: np.ndarray,
    train_boxes: np.ndarray,
    present: np.ndarray,
    true_boxes: np.ndarray,
    threshold: float,
) -> dict:
    """The mean train box with the train presence rate, scored on the test rows."""
    train_present = np.asarray(train_present, dtype=bool)
    present = np.asarray(present, dtype=bool)
    rate = float(train_present.mean())
    box = np.asarray(train_boxes, dtype=np.float64)[train_present].mean(axis=0)
    ious = np.where(present, box_iou(true_boxes, np.tile(box, (len(present), 1))), -1.0)
    per_threshold = [tied_ap(ious >= t, int(present.sum())) for t in COCO_IOU_THRESHOLDS]
    return {
        "mean_box": {
            "presence_rate": rate,
            "presence_accuracy": float(((rate >= threshold) == present).mean()),
            "mean_iou": float(ious[present].mean()) if present.any() else float("nan"),
            "ap50": per_threshold[0],
            "ap50_95": float(np.mean(per_threshold)),
        }
    }


def not_beaten(model: str, scores: dict, baseline: dict) -> list[str]:
    """The headline metrics on which the model does not beat its baseline."""
    lost = []
    for metric, (name, higher) in COMPARED[model].items():
        ours, theirs = scores.get(metric), baseline.get(name, {}).get(metric)
        if ours is None or theirs is None:
            continue
        if (ours <= theirs) if higher else (ours >= theirs):
            lost.append(f"{metric} {ours:.4g} vs {theirs:.4g} ({name})")
    return lost
