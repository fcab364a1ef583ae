"""baselines.py: every baseline computed by hand on a small fixture; a constant model ties it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stages.shared.evaluation import baselines
from stages.shared.evaluation.metrics import classifier_scores, detection_scores

# Train: class 0 ×3, class 1 ×1, class 2 ×1 (prior 0.6, 0.2, 0.2). Test: 0, 1, 1, 2, 2, 2.
TRAIN = np.array([0, 0, 0, 1, 2])
ACTUAL = np.array([0, 1, 1, 2, 2, 2])


def test_classifier_baselines_by_hand():
    found = baselines.classifier_baselines(TRAIN, ACTUAL, 3)
    # Majority (class 0) is right once in six. F1: class 0 precision 1/6, recall 1 → 2/7;
    # classes 1 and 2 never predicted → 0. Macro over the three tested classes.
    assert found["majority"]["accuracy"] == pytest.approx(1 / 6)
    assert found["majority"]["macro_f1"] == pytest.approx((2 / 7) / 3)
    # The prior: every score tied → ROC AUC 0.5; log-loss = −mean log prior[actual].
    expected_log_loss = -(math.log(0.6) + 2 * math.log(0.2) + 3 * math.log(0.2)) / 6
    assert found["prior"]["roc_auc"] == pytest.approx(0.5)
    assert found["prior"]["log_loss"] == pytest.approx(expected_log_loss)


def test_a_classifier_that_outputs_the_prior_ties_its_baselines():
    prior = np.array([0.6, 0.2, 0.2])
    constant = classifier_scores(ACTUAL, np.tile(prior, (len(ACTUAL), 1)))
    found = baselines.classifier_baselines(TRAIN, ACTUAL, 3)
    for metric in ("accuracy", "macro_f1", "roc_auc", "log_loss"):
        assert constant[metric] == pytest.approx(found["prior"][metric]), metric
    lost = baselines.not_beaten("classifier", constant, found)
    assert [line.split()[0] for line in lost] == ["accuracy", "macro_f1", "roc_auc", "log_loss"]


def test_a_class_missing_from_train_gives_a_finite_log_loss():
    found = baselines.classifier_baselines(np.array([0, 0, 1]), np.array([0, 2]), 3)
    assert math.isfinite(found["prior"]["log_loss"]) and found["prior"]["log_loss"] > 10


def test_detector_baseline_by_hand():
    train_present = np.array([1, 1, 0, 1])
    train_boxes = np.array(
        [[0.0, 0.0, 0.4, 0.4], [0.2, 0.2, 0.6, 0.6], [0, 0, 0, 0], [0.1, 0.1, 0.5, 0.5]]
    )
    # Mean train box (positives only): (0.1, 0.1, 0.5, 0.5); presence rate 3/4.
    present = np.array([1, 1, 0, 1, 0])
    true = np.array(
        [
            [0.1, 0.1, 0.5, 0.5],
            [0.3, 0.1, 0.7, 0.5],
            [0, 0, 0, 0],
            [0.5, 0.5, 0.9, 0.9],
            [0, 0, 0, 0],
        ]
    )
    found = baselines.detector_baseline(train_present, train_boxes, present, true, 0.5)["mean_box"]
    # IoUs: identical box → 1; shifted by half its width → 0.08/0.24 = 1/3; disjoint → 0.
    assert found["mean_iou"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    # Rate 0.75 ≥ 0.5: says "object" everywhere; right on the 3 positives of 5.
    assert found["presence_rate"] == 0.75 and found["presence_accuracy"] == pytest.approx(3 / 5)
    # All scores tied: one PR point. At IoU 0.5 one hit of 3 objects among 5 predictions:
    # recall 1/3, precision 1/5 → 0.2 at the 34 recall points 0, 0.01, …, 0.33.
    assert found["ap50"] == pytest.approx(0.2 * 34 / 101)
    assert found["ap50_95"] == pytest.approx(0.2 * 34 / 101)  # the hit has IoU 1


def test_a_detector_that_answers_the_mean_box_ties_its_baseline():
    rng = np.random.default_rng(0)
    present = rng.random(40) < 0.7
    xy = rng.uniform(0, 0.5, (40, 2))
    true = np.where(present[:, None], np.concatenate([xy, xy + 0.3], axis=1), 0.0)
    train_present, train_boxes = present[:20], true[:20]
    box = train_boxes[train_present].mean(axis=0)
    rate = train_present.mean()
    scores = detection_scores(
        np.full(20, rate), np.tile(box, (20, 1)), present[20:], true[20:], 0.5
    )
    found = baselines.detector_baseline(train_present, train_boxes, present[20:], true[20:], 0.5)
    for metric in ("mean_iou", "presence_accuracy"):
        assert scores[metric] == pytest.approx(found["mean_box"][metric]), metric


def test_ties_at_the_boundaries_count_for_the_baseline():
    # Train: two of four frames hold an object, both boxes (0, 0, 0.5, 1): rate 0.5, the
    # threshold itself, says "object". The mean box covers exactly half of each test box:
    # IoU 0.5 on the nose, a hit at IoU 0.5.
    train_present = np.array([1, 0, 1, 0])
    train_boxes = np.array([[0.0, 0.0, 0.5, 1.0], [0] * 4, [0.0, 0.0, 0.5, 1.0], [0] * 4])
    present = np.array([1, 0, 1])
    true = np.array([[0.0, 0.0, 1.0, 1.0], [0.0] * 4, [0.0, 0.0, 1.0, 1.0]])
    found = baselines.detector_baseline(train_present, train_boxes, present, true, 0.5)["mean_box"]
    assert found["presence_accuracy"] == pytest.approx(2 / 3)  # right on both objects
    assert found["mean_iou"] == 0.5
    # Two hits of two objects among three predictions: precision 2/3 up to recall 1.
    assert found["ap50"] == pytest.approx(2 / 3)
    assert found["ap50_95"] == pytest.approx(2 / 3 / 10)  # hits at IoU 0.5 only
    none = baselines.detector_baseline(train_present, train_boxes, np.zeros(3), true * 0, 0.5)
    assert math.isnan(none["mean_box"]["mean_iou"]) and math.isnan(none["mean_box"]["ap50"])


def test_tied_ap_counts_the_recall_point_it_reaches():
    # One hit of two objects: recall exactly 0.5 reaches the points 0 … 0.5 (51 of 101).
    assert baselines.tied_ap(np.array([True, False, False]), 2) == pytest.approx(51 / 101 / 3)
    assert baselines.tied_ap(np.array([True, False]), 1) == pytest.approx(0.5)
    assert math.isnan(baselines.tied_ap(np.array([False]), 0))


def test_labels_as_numbers_of_any_kind_and_a_single_tested_class():
    prior = baselines.class_prior(np.array([0.0, 2.0, 2.0, 1.0]), 4)
    assert prior.tolist() == [0.25, 0.25, 0.5, 0.0]
    one_class = baselines.classifier_baselines(np.array([0, 1, 1]), np.array([1, 1]), 2)
    assert math.isnan(one_class["prior"]["roc_auc"])  # no negatives: AUC undefined
    assert one_class["majority"] == {"accuracy": 1.0, "macro_f1": 1.0}


def test_a_model_is_flagged_only_where_it_does_not_beat_its_baseline():
    baseline = {"majority": {"accuracy": 0.5, "macro_f1": 0.3},
                "prior": {"roc_auc": 0.5, "log_loss": 0.9}}  # fmt: skip
    scores = {"accuracy": 0.8, "macro_f1": 0.3, "roc_auc": 0.49, "log_loss": 0.95}
    assert baselines.not_beaten("classifier", scores, baseline) == [
        "macro_f1 0.3 vs 0.3 (majority)",
        "roc_auc 0.49 vs 0.5 (prior)",
        "log_loss 0.95 vs 0.9 (prior)",
    ]
    better = {"accuracy": 0.8, "macro_f1": 0.7, "roc_auc": 0.9, "log_loss": 0.2}
    assert baselines.not_beaten("classifier", better, baseline) == []
    # A metric without a baseline (or a baseline without the metric) is not compared.
    assert baselines.not_beaten("classifier", better, {"majority": {"accuracy": 0.9}}) == [
        "accuracy 0.8 vs 0.9 (majority)"
    ]
    assert baselines.not_beaten("detector", {"ap50": None}, {"mean_box": {"ap50": 0.2}}) == []
