"""metrics.py: IoU and AP on hand-built cases, and AP against pycocotools on random cases."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from stages.shared.metrics import average_precision, box_iou, detection_ap


def test_box_iou_known_values():
    true = np.array([[0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 1, 1]], float)
    pred = np.array([[1, 1, 3, 3], [0, 0, 1, 1], [2, 2, 3, 3]], float)
    assert np.allclose(box_iou(true, pred), [1 / 7, 1.0, 0.0])


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
