"""Evaluation metrics: classifier scores (scikit-learn), box IoU and COCO-style detection AP.

Classifier: accuracy, macro precision / recall / F1, one-vs-rest ROC AUC (macro over the
classes that have both positives and negatives in the test set), top-k accuracy, the
confusion matrix (raw and row-normalised) and ROC points per class.

Detector AP follows the COCO evaluation (pycocotools `COCOeval`): predictions sorted by confidence
(stable), a prediction is a true positive when its image has an object and IoU ≥ the
threshold, precision made monotone from the right, then averaged at 101 recall points
(0, 0.01, …, 1). Here every image gets exactly one prediction, ranked by its presence logit
(the value before the sigmoid: probabilities saturate at exactly 1.0 in float32, and ties
would fall back to file order); an image without an object turns its prediction into a
false positive.

`classifier_statistics` and `detector_statistics` give the headline metrics of any subset of
test rows, for the bootstrap intervals (intervals.py).

`HEADLINES` are the few numbers a reviewer decides on: `evaluate` writes them alone to
`reports/eval/<model>/metrics.json`, the file `dvc.yaml` declares under `metrics:` (so `dvc
exp show` and `dvc metrics diff` show these and nothing else), and the rest (intervals,
slices, behaviour, baselines, the other scores) to `detail.json` beside it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn import metrics as skm

# Per model, in the order reviews list them. Every one has a bootstrap interval.
HEADLINES = {
    "classifier": ("accuracy", "macro_f1", "log_loss"),
    "detector": ("ap50", "ap50_95", "mean_iou", "presence_accuracy"),
}
LOWER_IS_BETTER = {"log_loss"}

RECALL_POINTS = np.linspace(0.0, 1.0, 101)
COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def ordered_corners(boxes: np.ndarray) -> np.ndarray:
    """(x1, y1, x2, y2) rows with x1 ≤ x2 and y1 ≤ y2: the box heads predict each corner
    independently, and the training loss (losses.box_iou) reads either order as one box."""
    boxes = np.asarray(boxes, dtype=np.float64)
    return np.concatenate(
        [np.minimum(boxes[:, :2], boxes[:, 2:]), np.maximum(boxes[:, :2], boxes[:, 2:])], axis=1
    )


def box_iou(true_boxes: np.ndarray, pred_boxes: np.ndarray) -> np.ndarray:
    """IoU per row of two (N, 4) arrays of (x1, y1, x2, y2) boxes."""
    t = np.asarray(true_boxes, dtype=np.float64)
    p = np.asarray(pred_boxes, dtype=np.float64)
    inter_w = np.clip(np.minimum(t[:, 2], p[:, 2]) - np.maximum(t[:, 0], p[:, 0]), 0, None)
    inter_h = np.clip(np.minimum(t[:, 3], p[:, 3]) - np.maximum(t[:, 1], p[:, 1]), 0, None)
    inter = inter_w * inter_h
    area_t = (t[:, 2] - t[:, 0]) * (t[:, 3] - t[:, 1])
    area_p = (p[:, 2] - p[:, 0]) * (p[:, 3] - p[:, 1])
    union = area_t + area_p - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def average_precision(scores: np.ndarray, hits: np.ndarray, positives: int) -> float:
    """101-point interpolated AP of ranked predictions (`hits`: true positive or not)."""
    if positives == 0:
        return float("nan")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")
    hit = np.asarray(hits, dtype=bool)[order]
    true_pos = np.cumsum(hit)
    false_pos = np.cumsum(~hit)
    recall = true_pos / positives
    precision = true_pos / (true_pos + false_pos + np.spacing(1))
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    index = np.searchsorted(recall, RECALL_POINTS, side="left")
    sampled = np.where(index < len(envelope), envelope[np.minimum(index, len(envelope) - 1)], 0)
    return float(sampled.mean())


def ap_at_thresholds(
    ranking: np.ndarray, ious: np.ndarray, positives: int, thresholds=COCO_IOU_THRESHOLDS
) -> dict[str, float]:
    """AP50 and AP50-95 of ranked predictions with their IoUs (−1 where no object)."""
    per_threshold = [average_precision(ranking, ious >= t, positives) for t in thresholds]
    return {"ap50": per_threshold[0], "ap50_95": float(np.mean(per_threshold))}


def detection_ap(
    scores: np.ndarray,
    pred_boxes: np.ndarray,
    present: np.ndarray,
    true_boxes: np.ndarray,
    thresholds: np.ndarray = COCO_IOU_THRESHOLDS,
) -> dict[str, float]:
    """AP50 and AP50-95 (mean over COCO's 10 IoU thresholds) for one prediction per image."""
    present = np.asarray(present, dtype=bool).reshape(-1)
    ious = np.where(present, box_iou(true_boxes, pred_boxes), -1.0)
    return ap_at_thresholds(scores, ious, int(present.sum()), thresholds)


def detection_scores(
    scores: np.ndarray,
    pred_boxes: np.ndarray,
    present: np.ndarray,
    true_boxes: np.ndarray,
    threshold: float = 0.5,
    ranking: np.ndarray | None = None,
) -> dict[str, float]:
    """Presence accuracy / precision / recall at `threshold` (on the probabilities `scores`),
    mean IoU on positives, AP (predictions ranked by `ranking`, the logits; else `scores`)."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    present = np.asarray(present, dtype=bool).reshape(-1)
    said = scores >= threshold
    true_pos = int((said & present).sum())
    ious = box_iou(true_boxes, pred_boxes)[present]
    ranked = scores if ranking is None else np.asarray(ranking, dtype=np.float64).reshape(-1)
    return {
        "presence_accuracy": float((said == present).mean()),
        "presence_precision": true_pos / int(said.sum()) if said.any() else 0.0,
        "presence_recall": true_pos / int(present.sum()) if present.any() else float("nan"),
        "mean_iou": float(ious.mean()) if len(ious) else float("nan"),
        **detection_ap(ranked, pred_boxes, present, true_boxes),
    }


def detector_statistics(scores, ranking, pred_boxes, present, true_boxes, threshold: float):
    """Headline detector metrics of a subset of test rows (indices, repeats allowed)."""
    present = np.asarray(present, dtype=bool).reshape(-1)
    said = np.asarray(scores).reshape(-1) >= threshold
    ious = np.where(present, box_iou(true_boxes, pred_boxes), -1.0)
    ranking = np.asarray(ranking, dtype=np.float64).reshape(-1)

    def statistics(rows: np.ndarray) -> dict[str, float]:
        has = present[rows]
        return {
            **ap_at_thresholds(ranking[rows], ious[rows], int(has.sum())),
            "mean_iou": float(ious[rows][has].mean()) if has.any() else float("nan"),
            "presence_accuracy": float((said[rows] == has).mean()),
        }

    return statistics


def precision_recall_points(scores: np.ndarray, hits: np.ndarray, positives: int) -> np.ndarray:
    """(threshold, precision, recall) rows, one per distinct score, highest score first.

    The raw curve (not the monotone envelope AP integrates), as a reviewer reads it: at
    each score threshold, what share of the images said to hold an object are right, and
    what share of the objects are found.
    """
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="mergesort")
    ranked, hit = scores[order], np.asarray(hits, dtype=bool)[order]
    true_pos, false_pos = np.cumsum(hit), np.cumsum(~hit)
    # The last row of each run of equal scores: a threshold admits ties together.
    last = np.r_[ranked[1:] != ranked[:-1], True]
    precision = true_pos / np.maximum(true_pos + false_pos, 1)
    recall = true_pos / max(positives, 1)
    return np.stack([ranked[last], precision[last], recall[last]], axis=1)


def classifier_scores(actual: np.ndarray, proba: np.ndarray, top_k: int = 0) -> dict[str, float]:
    """Headline scores of class indices `actual` against (N, C) probabilities.

    Macro averages (precision, recall, F1, ROC AUC) are over the classes that have test rows:
    a class absent from the test split has no recall and no ROC curve, so it is left out of
    every average alike (a prediction of it still counts as a miss for the true class).
    `top_k_accuracy` is added when `top_k` > 0 and there are more than `top_k` classes.
    """
    classes = np.arange(proba.shape[1])
    tested = np.unique(actual)
    predicted = proba.argmax(axis=1)
    precision, recall, f1, _ = skm.precision_recall_fscore_support(
        actual, predicted, labels=tested, average="macro", zero_division=0
    )
    scores = {
        "accuracy": float(skm.accuracy_score(actual, predicted)),
        "macro_precision": float(precision),
        "macro_recall": float(recall),
        "macro_f1": float(f1),
        "roc_auc": nanmean(per_class_auc(actual, proba)),
        "log_loss": float(skm.log_loss(actual, proba, labels=classes)),
        "classes_without_test_rows": int(len(classes) - len(tested)),
    }
    if 0 < top_k < len(classes):
        scores[f"top_{top_k}_accuracy"] = float(
            skm.top_k_accuracy_score(actual, proba, k=top_k, labels=classes)
        )
    return scores


def classifier_statistics(actual: np.ndarray, proba: np.ndarray):
    """Headline classifier metrics of a subset of test rows (indices, repeats allowed), macro
    F1 over the classes present in the subset, as `classifier_scores` does."""
    predicted = proba.argmax(axis=1)
    classes = proba.shape[1]
    # Log-loss per row: minus the log of the probability of the true class, clipped to
    # [eps, 1 - eps] of its float type as scikit-learn's log_loss clips it.
    eps = np.finfo(proba.dtype).eps if np.issubdtype(proba.dtype, np.floating) else 1e-15
    surprise = -np.log(np.clip(proba[np.arange(len(actual)), actual], eps, 1 - eps))

    def statistics(rows: np.ndarray) -> dict[str, float]:
        # From one confusion matrix: scikit-learn's f1_score checks its input on every call
        # (~5 ms), most of a 1000-resample bootstrap; tests/test_metrics.py holds this to it.
        # F1 of a class = 2 TP / (its true rows + its predicted rows).
        cells = actual[rows] * classes + predicted[rows]
        confusion = np.bincount(cells, minlength=classes * classes).reshape(classes, classes)
        hits, truths, guesses = np.diag(confusion), confusion.sum(1), confusion.sum(0)
        present = truths > 0
        f1 = 2 * hits[present] / (truths[present] + guesses[present])
        return {
            "accuracy": float(hits.sum() / len(rows)),
            "macro_f1": float(f1.mean()),
            "log_loss": float(surprise[rows].mean()),
        }

    return statistics


def nanmean(values: np.ndarray) -> float:
    """Mean of the defined values; NaN (without a warning) when none is."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if len(defined) else float("nan")


def one_vs_rest(actual: np.ndarray, classes: int) -> list[tuple[int, np.ndarray]]:
    """(class, is-this-class mask) for each class that has a ROC curve: one with both
    positives and negatives in `actual`."""
    masks = [(c, actual == c) for c in range(classes)]
    return [(c, mask) for c, mask in masks if 0 < mask.sum() < len(actual)]


def per_class_auc(actual: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """One-vs-rest ROC AUC per class; NaN for a class absent from (or alone in) `actual`."""
    aucs = np.full(proba.shape[1], np.nan)
    for c, positive in one_vs_rest(actual, proba.shape[1]):
        aucs[c] = skm.roc_auc_score(positive, proba[:, c])
    return aucs


def per_class_report(actual: np.ndarray, proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """class, precision, recall, f1, support, roc_auc: one row per class."""
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        actual, proba.argmax(axis=1), labels=np.arange(len(classes)), zero_division=0
    )
    return pd.DataFrame(
        {
            "class": classes,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
            "roc_auc": per_class_auc(actual, proba),
        }
    )


def confusion_table(actual: np.ndarray, predicted: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """actual, predicted, count, normalized (share of the actual class's row): every cell."""
    counts = skm.confusion_matrix(actual, predicted, labels=np.arange(len(classes)))
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    rows, cols = np.indices(counts.shape)
    return pd.DataFrame(
        {
            "actual": np.asarray(classes)[rows.ravel()],
            "predicted": np.asarray(classes)[cols.ravel()],
            "count": counts.ravel(),
            "normalized": shares.ravel(),
        }
    )


def roc_points(actual: np.ndarray, proba: np.ndarray, classes: list[str]) -> pd.DataFrame:
    """class, fpr, tpr, threshold: the one-vs-rest ROC curve of each class that has one."""
    frames = []
    for c, positive in one_vs_rest(actual, len(classes)):
        fpr, tpr, threshold = skm.roc_curve(positive, proba[:, c], drop_intermediate=True)
        frames.append(
            pd.DataFrame({"class": classes[c], "fpr": fpr, "tpr": tpr, "threshold": threshold})
        )
    if not frames:  # a test split of one class has no ROC curve
        return pd.DataFrame(columns=["class", "fpr", "tpr", "threshold"])
    return pd.concat(frames, ignore_index=True)


def roc_averages(actual: np.ndarray, proba: np.ndarray, points: int = 101) -> pd.DataFrame:
    """fpr, micro, macro: micro- and macro-averaged one-vs-rest ROC on a common FPR grid."""
    grid = np.linspace(0.0, 1.0, points)
    onehot = np.eye(proba.shape[1], dtype=bool)[actual]
    fpr, tpr, _ = skm.roc_curve(onehot.ravel(), proba.ravel())
    micro = np.interp(grid, fpr, tpr)
    curves = []
    for c, positive in one_vs_rest(actual, proba.shape[1]):
        fpr_c, tpr_c, _ = skm.roc_curve(positive, proba[:, c])
        curves.append(np.interp(grid, fpr_c, tpr_c))
    macro = np.mean(curves, axis=0) if curves else np.full(points, np.nan)
    return pd.DataFrame({"fpr": grid, "micro": micro, "macro": macro})


def split_report(model: str, report: dict) -> tuple[dict, dict]:
    """(headline, detail) of an evaluation report: the `HEADLINES` metrics, and the rest."""
    headline = {key: report[key] for key in HEADLINES[model] if key in report}
    return headline, {key: value for key, value in report.items() if key not in headline}
