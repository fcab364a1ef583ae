"""baselines.py: every baseline computed by hand on a small fixture; a constant model ties it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stages.shared import baselines
from stages.shared.metrics import classifier_scores, detection_scores

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
