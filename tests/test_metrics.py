"""metrics.py: IoU and AP on hand-built cases, and AP against pycocotools on random cases."""

from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest
import sklearn.metrics as skm
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from stages.shared.evaluation.metrics import (
    average_precision,
    box_iou,
    classifier_scores,
    classifier_statistics,
    confusion_table,
    detection_ap,
    detection_scores,
    detector_statistics,
    nanmean,
    ordered_corners,
    per_class_auc,
    per_class_report,
    precision_recall_points,
    roc_averages,
    roc_points,
)


def test_box_iou_known_values():
    true = np.array([[0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 1, 1]], float)
    pred = np.array([[1, 1, 3, 3], [0, 0, 1, 1], [2, 2, 3, 3]], float)
    assert np.allclose(box_iou(true, pred), [1 / 7, 1.0, 0.0])


def test_ordered_corners_puts_the_top_left_first():
    boxes = np.array([[0.6, 0.7, 0.2, 0.1], [0.1, 0.9, 0.3, 0.2]])
    assert ordered_corners(boxes).tolist() == [[0.2, 0.1, 0.6, 0.7], [0.1, 0.2, 0.3, 0.9]]


def test_average_precision_hand_built():
    # Ranked: hit, miss, hit with 2 positives → precision 1 up to recall 0.5, 2/3 up to 1.
    ap = average_precision(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2)
    assert ap == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)
    assert average_precision(np.array([0.9]), np.array([True]), 1) == pytest.approx(1.0)
    assert average_precision(np.array([0.9]), np.array([False]), 1) == 0.0
    assert np.isnan(average_precision(np.array([0.9]), np.array([False]), 0))


def test_detection_ap_perfect_and_negatives_as_false_positives():
    boxes = np.array([[0.1, 0.1, 0.5, 0.5], [0.2, 0.2, 0.6, 0.6], [0, 0, 0, 0]])
    present = np.array([1, 1, 0])
    perfect = detection_ap(np.array([0.9, 0.8, 0.1]), boxes, present, boxes)
    assert perfect == pytest.approx({"ap50": 1.0, "ap50_95": 1.0})
    # The negative ranked first is a false positive: precision 0, 1/2, 2/3 at recall 0, ½, 1;
    # made monotone from the right it is 2/3 at every recall level.
    worse = detection_ap(np.array([0.5, 0.4, 0.9]), boxes, present, boxes)
    assert worse["ap50"] == pytest.approx(2 / 3)


def coco_reference(scores, pred, present, true, size=100.0) -> tuple[float, float]:
    """AP50-95 and AP50 from pycocotools for the same one-prediction-per-image case."""
    images = [{"id": i, "width": size, "height": size} for i in range(len(scores))]
    annotations = []
    for i, (p, box) in enumerate(zip(present, true * size, strict=True)):
        if p:
            w, h = box[2] - box[0], box[3] - box[1]
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": i,
                    "category_id": 1,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": 0,
                }
            )
    gt = COCO()
    gt.dataset = {"images": images, "annotations": annotations, "categories": [{"id": 1}]}
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        results = [
            {
                "image_id": i,
                "category_id": 1,
                "score": float(s),
                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
            }
            for i, (s, b) in enumerate(zip(scores, pred * size, strict=True))
        ]
        evaluation = COCOeval(gt, gt.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0]), float(evaluation.stats[1])


@pytest.mark.parametrize("seed", range(12))
def test_ap_matches_pycocotools_on_random_cases(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 40))
    present = rng.random(n) < 0.8
    present[0] = True
    xy = rng.uniform(0, 0.6, (n, 2))
    true = np.concatenate([xy, xy + rng.uniform(0.1, 0.4, (n, 2))], axis=1)
    jitter = rng.normal(0, rng.uniform(0.01, 0.1), (n, 4))
    pred = true + jitter
    pred[:, 2:] = np.maximum(pred[:, 2:], pred[:, :2] + 0.01)
    scores = np.round(rng.random(n), 2)  # ties included on purpose
    ours = detection_ap(scores, pred, present, np.where(present[:, None], true, 0))
    ap50_95, ap50 = coco_reference(scores, pred, present, true)
    assert ours["ap50"] == pytest.approx(ap50, abs=1e-6)
    assert ours["ap50_95"] == pytest.approx(ap50_95, abs=1e-6)


# --- classifier metrics on hand-built predictions ---

PROBA = np.array(
    [
        [0.8, 0.1, 0.1],  # actual 0, predicted 0
        [0.6, 0.3, 0.1],  # actual 0, predicted 0
        [0.2, 0.7, 0.1],  # actual 1, predicted 1
        [0.5, 0.28, 0.22],  # actual 1, predicted 0 (true class second: a top-2 hit)
        [0.1, 0.2, 0.7],  # actual 2, predicted 2
        [0.3, 0.3, 0.4],  # actual 2, predicted 2
    ]
)
ACTUAL = np.array([0, 0, 1, 1, 2, 2])


def test_classifier_scores_known_answers():
    scores = classifier_scores(ACTUAL, PROBA, top_k=2)
    assert scores["accuracy"] == pytest.approx(5 / 6)
    # class 0: precision 2/3, recall 1; class 1: 1, 1/2; class 2: 1, 1.
    assert scores["macro_precision"] == pytest.approx((2 / 3 + 1 + 1) / 3)
    assert scores["macro_recall"] == pytest.approx((1 + 0.5 + 1) / 3)
    f1 = [2 * (2 / 3) / (2 / 3 + 1), 2 * 0.5 / 1.5, 1.0]
    assert scores["macro_f1"] == pytest.approx(np.mean(f1))
    assert scores["top_2_accuracy"] == pytest.approx(1.0)
    # Class 0 vs rest: positives score 0.8, 0.6; negatives 0.2, 0.5, 0.1, 0.3 → AUC 1.
    # Class 1: positives 0.7, 0.28; negatives 0.1, 0.3, 0.2, 0.3 → 6 of 8 pairs ordered.
    assert per_class_auc(ACTUAL, PROBA)[:2] == pytest.approx([1.0, 6 / 8])
    assert "top_3_accuracy" not in classifier_scores(ACTUAL, PROBA, top_k=3)  # k = classes


def test_a_class_absent_from_the_test_set_is_left_out_of_every_macro_average():
    # Class 2 has no test row; one image of class 1 is predicted as class 2.
    actual = np.array([0, 0, 0, 1, 1])
    proba = np.array(
        [[0.9, 0.1, 0], [0.8, 0.2, 0], [0.3, 0.6, 0.1], [0.4, 0.6, 0], [0.1, 0.2, 0.7]]
    )
    scores = classifier_scores(actual, proba)
    assert np.isnan(per_class_auc(actual, proba)[2])
    # ROC AUC over classes 0 and 1 only. Class 0: positives 0.9, 0.8, 0.3 vs negatives 0.4,
    # 0.1 → 5 of 6 pairs ordered. Class 1: positives 0.6, 0.2 vs 0.1, 0.2, 0.6 → 3 ordered,
    # 2 ties (½ each), 1 reversed → 4/6.
    assert scores["roc_auc"] == pytest.approx((5 / 6 + 4 / 6) / 2)
    # Class 0: precision 2/2, recall 2/3; class 1: precision 1/2, recall 1/2. Class 2 (no
    # rows) is not averaged in, though the image predicted as class 2 still misses class 1.
    assert scores["macro_precision"] == pytest.approx((1 + 0.5) / 2)
    assert scores["macro_recall"] == pytest.approx((2 / 3 + 0.5) / 2)
    assert scores["macro_f1"] == pytest.approx((0.8 + 0.5) / 2)
    assert scores["classes_without_test_rows"] == 1


def test_macro_averages_weigh_classes_equally_whatever_their_support():
    # Unequal supports (8, 3, 1); the big class is served well, the small ones badly, so the
    # macro average (each class counts once) and the support-weighted one differ by far.
    rng = np.random.default_rng(4)
    actual = np.array([0] * 8 + [1] * 3 + [2])
    predicted = np.array([0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0])
    proba = rng.uniform(0.0, 0.3, (12, 3))
    proba[np.arange(12), predicted] = 0.9
    proba /= proba.sum(axis=1, keepdims=True)
    scores = classifier_scores(actual, proba)
    oracle = {
        "macro_f1": skm.f1_score(actual, predicted, average="macro"),
        "macro_precision": skm.precision_score(actual, predicted, average="macro"),
        "macro_recall": skm.recall_score(actual, predicted, average="macro"),
        "roc_auc": skm.roc_auc_score(actual, proba, multi_class="ovr", average="macro"),
    }
    weighted = skm.f1_score(actual, predicted, average="weighted")
    assert abs(oracle["macro_f1"] - weighted) > 0.1  # the case tells the two apart
    for name, value in oracle.items():
        assert scores[name] == pytest.approx(value, abs=1e-4), name


def test_a_test_split_of_one_class_has_no_roc_but_does_not_fail():
    actual, proba = np.array([1, 1]), np.array([[0.2, 0.8], [0.6, 0.4]])
    assert np.isnan(classifier_scores(actual, proba)["roc_auc"])
    assert roc_points(actual, proba, ["a", "b"]).empty
    assert roc_averages(actual, proba)["macro"].isna().all()


def test_per_class_report_and_confusion_table():
    classes = ["cat", "dog", "owl"]
    report = per_class_report(ACTUAL, PROBA, classes)
    assert list(report["class"]) == classes
    assert report["support"].tolist() == [2, 2, 2]
    assert report["recall"].tolist() == pytest.approx([1.0, 0.5, 1.0])
    confusion = confusion_table(ACTUAL, PROBA.argmax(axis=1), classes)
    assert len(confusion) == 9 and confusion["count"].sum() == 6
    dog_as_cat = confusion[(confusion["actual"] == "dog") & (confusion["predicted"] == "cat")]
    assert dog_as_cat["count"].item() == 1 and dog_as_cat["normalized"].item() == 0.5
    # Every actual class's row of shares sums to 1.
    assert confusion.groupby("actual")["normalized"].sum().tolist() == pytest.approx([1, 1, 1])


def test_roc_points_and_averages():
    roc = roc_points(ACTUAL, PROBA, ["a", "b", "c"])
    assert set(roc["class"]) == {"a", "b", "c"}
    for _, curve in roc.groupby("class"):
        assert curve["fpr"].iloc[0] == 0 and curve["tpr"].iloc[-1] == 1
        assert curve["fpr"].is_monotonic_increasing and curve["tpr"].is_monotonic_increasing
    averages = roc_averages(ACTUAL, PROBA)
    assert averages["fpr"].iloc[0] == 0 and averages["fpr"].iloc[-1] == 1
    # A perfect ranking gives a curve at TPR 1 from FPR 0 on.
    perfect = roc_averages(np.array([0, 1]), np.array([[0.9, 0.1], [0.2, 0.8]]))
    assert perfect["micro"].iloc[1:].tolist() == pytest.approx([1.0] * 100)


# --- detector scores and the PR curve ---


def test_detection_scores_known_answers():
    true = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0, 0, 0, 0], [0, 0, 0, 0]])
    pred = np.array([[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 0.75, 1.0], [0.1, 0.1, 0.2, 0.2], [0] * 4])
    present = np.array([1, 1, 0, 0])
    scores = np.array([0.9, 0.4, 0.7, 0.1])
    result = detection_scores(scores, pred, present, true, threshold=0.5)
    # Said present: images 0 and 2 → one right, one wrong; image 1 missed.
    assert result["presence_accuracy"] == pytest.approx(0.5)
    assert result["presence_precision"] == pytest.approx(0.5)
    assert result["presence_recall"] == pytest.approx(0.5)
    assert result["mean_iou"] == pytest.approx((1.0 + 0.5) / 2)
    # Ranked 0.9 (hit), 0.7 (negative: miss), 0.4 (IoU 0.5: hit) → envelope 1 then 2/3.
    assert result["ap50"] == pytest.approx((51 * 1.0 + 50 * 2 / 3) / 101)


def test_precision_recall_points_merge_tied_scores():
    points = precision_recall_points(
        np.array([0.9, 0.5, 0.5, 0.2]), np.array([True, False, True, True]), positives=4
    )
    expected = [[0.9, 1.0, 0.25], [0.5, 2 / 3, 0.5], [0.2, 0.75, 0.75]]
    assert np.allclose(points, expected)


def test_the_log_loss_of_a_subset_matches_scikit_learn_clipping_included():
    rng = np.random.default_rng(12)
    actual = np.repeat([0, 1, 2], [7, 4, 3])
    proba = rng.dirichlet(np.ones(3), size=len(actual)).astype("float32")
    proba[5] = [0.0, 1.0, 0.0]  # a confident miss: log(0) is clipped to log(float32 eps)
    proba[8] = [0.0, 1.0, 0.0]  # a confident hit: log(1) is clipped to log(1 - eps)
    statistics = classifier_statistics(actual, proba)
    for rows in (np.array([5, 5, 8, 0, 13]), rng.integers(0, len(actual), len(actual))):
        expected = skm.log_loss(actual[rows], proba[rows], labels=[0, 1, 2])
        assert statistics(rows)["log_loss"] == pytest.approx(expected, rel=1e-6)
    # Row 5 alone: -log(eps32) = 15.94, not -log(1e-15) = 34.5.
    assert statistics(np.array([5]))["log_loss"] == pytest.approx(-np.log(np.finfo("float32").eps))


def test_classifier_statistics_of_a_subset_with_repeats_match_scikit_learn():
    rng = np.random.default_rng(11)
    actual = np.repeat([0, 1, 2, 3], [9, 5, 2, 4])
    proba = rng.dirichlet(np.ones(4), size=len(actual))
    proba[np.arange(12), actual[:12]] += 1.0  # right on the first 12 rows, chance on the rest
    proba[17] = [0.1, 0.1, 0.7, 0.1]  # class 2 predicted for a row of class 3
    statistics = classifier_statistics(actual, proba)
    rows = np.array([0, 0, 3, 9, 9, 9, 13, 16, 17, 19])  # no class 2 in truth, repeats
    truth, guess = actual[rows], proba[rows].argmax(axis=1)
    got = statistics(rows)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, guess))
    present = np.unique(truth)
    assert 2 not in present and 2 in guess  # its F1 of 0 must not pull the average down
    expected_f1 = skm.f1_score(truth, guess, labels=present, average="macro", zero_division=0)
    assert got["macro_f1"] == pytest.approx(expected_f1)
    assert got["macro_f1"] != pytest.approx(skm.f1_score(truth, guess, average="weighted"))
    # Bootstrap-like draws: every one agrees with scikit-learn.
    for _ in range(200):
        rows = rng.integers(0, len(actual), len(actual))
        truth, guess = actual[rows], proba[rows].argmax(axis=1)
        got = statistics(rows)
        assert got["accuracy"] == pytest.approx(skm.accuracy_score(truth, guess))
        expected = skm.f1_score(truth, guess, labels=np.unique(truth), average="macro")
        assert got["macro_f1"] == pytest.approx(expected), rows


def test_detector_statistics_of_a_subset_match_the_metrics_of_that_subset():
    rng = np.random.default_rng(12)
    n = 30
    present = rng.random(n) < 0.6
    corners = np.sort(rng.uniform(size=(n, 2, 2)), axis=1)  # (x1, y1) ≤ (x2, y2) per box
    true_boxes = np.stack(
        [corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], 1
    )
    pred_boxes = np.clip(true_boxes + rng.normal(0, 0.08, size=(n, 4)), 0, 1)
    logits = rng.normal(size=n) + 2 * present
    scores = 1 / (1 + np.exp(-logits))
    statistics = detector_statistics(scores, logits, pred_boxes, present, true_boxes, 0.6)
    rows = np.concatenate([np.arange(0, n, 2), [1, 1, 3, 5, 5]])  # a subset with repeats
    got = statistics(rows)
    expected = detection_scores(
        scores[rows], pred_boxes[rows], present[rows], true_boxes[rows], 0.6, ranking=logits[rows]
    )
    assert 0 < expected["ap50"] < 1 and 0 < expected["presence_accuracy"] < 1
    for key in ("ap50", "ap50_95", "mean_iou", "presence_accuracy"):
        assert got[key] == pytest.approx(expected[key]), key
    none = statistics(np.flatnonzero(~present))
    assert np.isnan(none["mean_iou"]) and np.isnan(none["ap50"])


# --- inputs as the stages hand them over, and the edge cases of each report ---

# Four classes of unequal support (5, 3, 1, 0): "owl" has one row, "bat" none but is predicted.
CLASSES = ["cat", "dog", "owl", "bat"]
UNEQUAL_ACTUAL = np.array([0, 0, 0, 0, 0, 1, 1, 1, 2])
UNEQUAL_PREDICTED = np.array([0, 0, 0, 1, 3, 1, 0, 1, 2])


def onehot_proba(predicted: np.ndarray, classes: int = 4) -> np.ndarray:
    """Probabilities whose argmax is `predicted`, with distinct values for ranking."""
    rng = np.random.default_rng(5)
    proba = rng.uniform(0.0, 0.2, size=(len(predicted), classes))
    proba[np.arange(len(predicted)), predicted] += 0.7
    return proba / proba.sum(axis=1, keepdims=True)


def test_confusion_shares_are_per_actual_row_with_unequal_supports():
    table = confusion_table(UNEQUAL_ACTUAL, UNEQUAL_PREDICTED, CLASSES)
    assert len(table) == 16  # every cell of 4 × 4, the class never seen included
    cell = table.set_index(["actual", "predicted"])
    # By hand: cat row 3/5 cat, 1/5 dog, 1/5 bat; dog row 1/3 cat, 2/3 dog; owl 1/1; bat none.
    assert cell.loc[("cat", "cat"), "normalized"] == pytest.approx(3 / 5)
    assert cell.loc[("cat", "bat"), "normalized"] == pytest.approx(1 / 5)
    assert cell.loc[("dog", "cat"), "normalized"] == pytest.approx(1 / 3)
    assert cell.loc[("owl", "owl"), "normalized"] == pytest.approx(1.0)
    assert cell.loc["bat", "normalized"].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert cell.loc[("cat", "cat"), "count"] == 3 and cell.loc[("dog", "dog"), "count"] == 2


def test_a_class_never_seen_nor_predicted_keeps_its_rows_and_cells():
    classes = [*CLASSES, "emu"]
    assert len(confusion_table(UNEQUAL_ACTUAL, UNEQUAL_PREDICTED, classes)) == 25
    report = per_class_report(UNEQUAL_ACTUAL, onehot_proba(UNEQUAL_PREDICTED, 5), classes)
    assert report["class"].tolist() == classes and report["support"].tolist() == [5, 3, 1, 0, 0]


def test_per_class_report_columns_and_a_class_never_predicted_or_seen():
    proba = onehot_proba(UNEQUAL_PREDICTED)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no undefined-metric warning in the stage's log
        report = per_class_report(UNEQUAL_ACTUAL, proba, CLASSES)
    assert list(report.columns) == ["class", "precision", "recall", "f1", "support", "roc_auc"]
    bat = report.set_index("class").loc["bat"]
    assert bat["support"] == 0 and bat["precision"] == 0.0 and bat["recall"] == 0.0
    assert report["support"].tolist() == [5, 3, 1, 0]
    expected = skm.precision_score(
        UNEQUAL_ACTUAL, UNEQUAL_PREDICTED, labels=[0, 1, 2, 3], average=None, zero_division=0
    )
    assert report["precision"].tolist() == pytest.approx(expected.tolist())


def test_classifier_scores_with_a_tested_class_never_predicted_and_top_k():
    actual = np.array([0, 0, 0, 1, 1, 2, 2])
    predicted = np.array([0, 0, 1, 1, 1, 0, 0])  # class 2 is never predicted
    proba = onehot_proba(predicted, classes=5)  # classes 3 and 4 have no test rows
    proba[5] = [0.5, 0.3, 0.15, 0.05, 0.0]  # its class 2 ranks third: a top-3 hit, not top-2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = classifier_scores(actual, proba, top_k=3)
    expected_precision = skm.precision_score(
        actual, predicted, labels=[0, 1, 2], average="macro", zero_division=0
    )
    assert scores["macro_precision"] == pytest.approx(expected_precision)
    assert scores["top_3_accuracy"] == pytest.approx(
        skm.top_k_accuracy_score(actual, proba, k=3, labels=np.arange(5))
    )
    top_2 = skm.top_k_accuracy_score(actual, proba, k=2, labels=np.arange(5))
    assert scores["top_3_accuracy"] != pytest.approx(top_2)  # the case tells k apart
    assert scores["classes_without_test_rows"] == 2
    assert "top_1_accuracy" in classifier_scores(actual, proba, top_k=1)
    assert not any(k.startswith("top_") for k in classifier_scores(actual, proba, top_k=5))
    assert not any(k.startswith("top_") for k in classifier_scores(actual, proba))


def test_roc_points_are_scikit_learns_curves_and_keep_their_columns():
    proba = onehot_proba(UNEQUAL_PREDICTED)
    roc = roc_points(UNEQUAL_ACTUAL, proba, CLASSES)
    assert list(roc.columns) == ["class", "fpr", "tpr", "threshold"]
    assert list(roc.index) == list(range(len(roc)))  # one running index, as written to CSV
    for c, name in enumerate(CLASSES[:3]):  # bat has no test rows, so no curve
        fpr, tpr, _ = skm.roc_curve(np.equal(UNEQUAL_ACTUAL, c), proba[:, c])
        curve = roc[roc["class"] == name]
        assert curve["fpr"].tolist() == pytest.approx(fpr.tolist())
        assert curve["tpr"].tolist() == pytest.approx(tpr.tolist())
    assert "bat" not in set(roc["class"])
    empty = roc_points(np.array([1, 1]), onehot_proba(np.array([1, 0])), CLASSES)
    assert list(empty.columns) == ["class", "fpr", "tpr", "threshold"] and empty.empty


def test_roc_averages_enclose_the_areas_scikit_learn_reports():
    rng = np.random.default_rng(8)
    actual = np.repeat([0, 1, 2], [40, 25, 10])
    proba = rng.dirichlet(np.ones(3), size=len(actual))
    proba[np.arange(len(actual)), actual] += rng.uniform(0, 0.6, size=len(actual))
    proba /= proba.sum(axis=1, keepdims=True)
    curves = roc_averages(actual, proba, points=2001)
    onehot = np.eye(3)[actual]
    micro_auc = skm.roc_auc_score(onehot, proba, average="micro")
    macro_auc = skm.roc_auc_score(onehot, proba, average="macro")
    assert np.trapezoid(curves["micro"], curves["fpr"]) == pytest.approx(micro_auc, abs=2e-3)
    assert np.trapezoid(curves["macro"], curves["fpr"]) == pytest.approx(macro_auc, abs=2e-3)
    assert abs(micro_auc - macro_auc) > 0.01  # the two averages are told apart
    # Pointwise, not only in area: from the mean TPR at FPR 0 up to 1 at FPR 1.
    assert curves["macro"].is_monotonic_increasing and curves["macro"].iloc[-1] == 1.0
    assert curves["macro"].iloc[0] < 0.9 * macro_auc
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        one_class = roc_averages(np.array([0, 0]), np.array([[0.6, 0.4], [0.7, 0.3]]), points=5)
    assert one_class["macro"].isna().all()


def test_detector_metrics_take_columns_and_zero_one_flags_as_the_stages_do():
    # Keras predicts (N, 1) columns; manifests hold `present` as 0/1 integers.
    true = np.array(
        [[0.1, 0.2, 0.5, 0.4], [0.5, 0.5, 0.9, 1.0], [0, 0, 0, 0], [0.2, 0.1, 0.6, 0.3]]
    )
    pred = np.array([[0.1, 0.2, 0.5, 0.4], [0.5, 0.6, 0.9, 1.0], [0.3, 0.3, 0.4, 0.4], [0] * 4])
    present = [1, 1, 0, 1]
    scores = np.array([[0.9], [0.5], [0.7], [0.2]])  # 0.5 sits exactly on the threshold
    logits = np.array([[2.0], [-1.0], [1.0], [0.5]])  # ranks image 3 above image 1
    flat = detection_scores(
        scores.ravel(), pred, np.array(present, bool), true, 0.5, logits.ravel()
    )
    assert detection_scores(scores, pred, present, true, 0.5, ranking=logits) == flat
    column = np.array(present)[:, None]
    assert detection_scores(scores, pred, column, true, 0.5, ranking=logits) == flat
    # Said present: 0, 1 (on the threshold), 2 → two right of three; image 3 missed.
    assert flat["presence_precision"] == pytest.approx(2 / 3)
    assert flat["presence_recall"] == pytest.approx(2 / 3)
    assert flat["mean_iou"] == pytest.approx((1.0 + 0.8 + 0.0) / 3)  # 0.16 / 0.2 for image 1
    # Ranked by logits: 0 hit, 2 false, 3 miss (IoU 0), 1 hit → 2 of 3 positives found.
    assert flat["ap50"] == pytest.approx((34 * 1.0 + 33 * 2 / 4) / 101)
    by_scores = detection_scores(scores.ravel(), pred, present, true, 0.5)
    assert by_scores["ap50"] != pytest.approx(flat["ap50"])
    assert detection_scores(scores.ravel(), pred, present, true) == by_scores  # default 0.5
    statistics = detector_statistics(scores, logits, pred, present, true, 0.5)
    assert statistics(np.arange(4)) == {k: flat[k] for k in statistics(np.arange(4))}
    by_column = detector_statistics(scores, logits, pred, column, true, 0.5)
    assert by_column(np.arange(4)) == statistics(np.arange(4))


def test_detector_metrics_when_nothing_is_present_or_said():
    true = np.zeros((3, 4))
    pred = np.array([[0.1, 0.1, 0.3, 0.2]] * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "mean of empty slice" in the stage's log
        nothing = detection_scores(np.array([0.1, 0.2, 0.3]), pred, [0, 0, 0], true, 0.5)
        statistics = detector_statistics([0.1, 0.2, 0.3], [1, 2, 3], pred, [0, 0, 0], true, 0.5)
        assert np.isnan(statistics(np.arange(3))["mean_iou"])
        assert np.isnan(nanmean(np.array([np.nan, np.nan])))
    assert nothing["presence_accuracy"] == 1.0 and nothing["presence_precision"] == 0.0
    assert np.isnan(nothing["presence_recall"]) and np.isnan(nothing["mean_iou"])
    assert np.isnan(nothing["ap50"])


def test_box_iou_is_zero_for_boxes_apart_in_one_axis_only_or_of_no_area():
    side_by_side = box_iou([[0.1, 0.2, 0.3, 0.6]], [[0.4, 0.3, 0.7, 0.5]])  # apart in x
    stacked = box_iou([[0.2, 0.1, 0.6, 0.3]], [[0.3, 0.4, 0.5, 0.7]])  # apart in y
    points = box_iou([[0.5, 0.5, 0.5, 0.5]], [[0.5, 0.5, 0.5, 0.5]])  # no area at all
    assert side_by_side.tolist() == [0.0] and stacked.tolist() == [0.0]
    assert points.tolist() == [0.0]
    # Integer pixel corners give the same IoU as floats.
    assert box_iou([[0, 0, 4, 2]], [[2, 0, 6, 2]]).tolist() == pytest.approx([4 / 12])


def test_ap_and_pr_points_take_zero_one_hits_and_one_positive():
    assert average_precision([0.9, 0.8, 0.1], [0, 1, 1], 2) == pytest.approx(
        average_precision([0.9, 0.8, 0.1], [False, True, True], 2)
    )
    points = precision_recall_points([0.9, 0.8, 0.1], [0, 1, 0], positives=1)
    assert np.allclose(points, [[0.9, 0.0, 0.0], [0.8, 0.5, 1.0], [0.1, 1 / 3, 1.0]])


def test_detection_ap_at_the_thresholds_asked_for():
    true = np.array([[0.1, 0.2, 0.5, 0.6], [0.3, 0.1, 0.7, 0.4]])
    pred = np.array([[0.1, 0.2, 0.5, 0.6], [0.3, 0.1, 0.7, 0.3]])  # IoU 1 and 2/3
    strict = detection_ap([0.9, 0.8], pred, [1, 1], true, thresholds=np.array([0.8]))
    assert strict == {"ap50": pytest.approx(51 / 101), "ap50_95": pytest.approx(51 / 101)}
