"""Stage `evaluate@<model>`: score a trained model on the test split, never seen in training.

In:  models/<model>.keras + .json, data/augmented/<task>/ (the test rows of its manifest
     and their images, from its shards), data/split/<task>.csv (its `train` rows, as the
     user brought them, for the baselines).
Out: reports/eval/<model>/metrics.json: the headline metrics alone (metrics.HEADLINES,
     rounded), what `dvc exp show` and `dvc metrics diff` show;
     reports/eval/<model>/detail.json: the rest (`ci95`: a seeded bootstrap 95% interval of
     each headline metric over the test images; `baseline`: what predictors that ignore the
     image score, from the train split; slices, behaviour, the other scores), on request:
     `dvc metrics diff --targets reports/eval/<model>/detail.json`; and plot data:
     reports/throughput/<model>-inference.json: images per second of the model on the test
     batches (`predict_on_batch`; the first of each batch size apart: it traces) and the
     device — apart
     from the reports above, which are the same on every run;
     classifier: predictions.csv (path, actual, predicted, confidence), per_class.csv,
                 confusion.csv (counts + row-normalised), roc.csv (per class), roc_average.csv;
     detector:   predictions.csv (path, presence, score and its logit, said present, true
                 and predicted boxes, IoU),
                 pr_curve.csv (precision / recall per score threshold at IoU 0.5).
Params: base.seed (the bootstrap's), evaluate.<model>.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.config import BaseParams, load_params
from stages.shared.core.paths import (
    EVAL_DIR,
    MODELS,
    augmented_manifest,
    inference_throughput,
    model_file,
    split_manifest,
)
from stages.shared.data.manifest import BOX, atomic_write_text, read_manifest, write_json
from stages.shared.evaluation import baselines, behaviour, intervals, metrics, slices
from stages.shared.params.evaluate import EvaluateParams

PRED_BOX = [f"pred_{c}" for c in BOX]


def rounded(scores: dict) -> dict:
    """4 decimals, so `dvc metrics diff` reads well; NaN (undefined) becomes null."""

    def one(value):
        if isinstance(value, dict):
            return rounded(value)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return round(value, 4)

    return {key: one(value) for key, value in scores.items()}


def write_csv(path: Path, frame: pd.DataFrame) -> None:
    """A plot-data CSV in a byte-stable format."""
    atomic_write_text(path, frame.to_csv(index=False, float_format="%.6f", lineterminator="\n"))


def evaluate_classifier(
    rows: pd.DataFrame, outputs: list[np.ndarray], meta: dict, cfg, out: Path, train, seed=0
):
    """Classifier scores beside the majority and prior baselines, per-class report,
    confusion, ROC; returns (metrics, the statistics of a subset of rows for the bootstrap)."""
    classes = meta["classes"]
    unknown = sorted(set(rows["label"]) - set(classes))
    if unknown:
        raise UserError(
            f"test split has classes the model was not trained on: {unknown} — re-run training"
        )
    actual = rows["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
    proba = outputs[0]
    predicted = proba.argmax(axis=1)
    names = np.asarray(classes)
    predictions = pd.DataFrame(
        {
            "path": rows["path"].to_numpy(),
            "actual": names[actual],
            "predicted": names[predicted],
            "confidence": proba.max(axis=1),
        }
    )
    write_csv(out / "predictions.csv", predictions)
    write_csv(out / "per_class.csv", metrics.per_class_report(actual, proba, classes))
    write_csv(out / "confusion.csv", metrics.confusion_table(actual, predicted, classes))
    write_csv(out / "roc.csv", metrics.roc_points(actual, proba, classes))
    write_csv(out / "roc_average.csv", metrics.roc_averages(actual, proba))
    scores = metrics.classifier_scores(actual, proba, cfg.top_k)
    sizes = rows[["width", "height"]].to_numpy()
    size = meta["image_size"]
    scores["slices"] = slices.classifier_slices(actual, predicted, sizes, size, cfg.bootstrap, seed)
    known = train[train["label"].isin(classes)]
    if not known.empty:
        train_labels = known["label"].map({c: i for i, c in enumerate(classes)}).to_numpy()
        scores["baseline"] = baselines.classifier_baselines(train_labels, actual, len(classes))
    return scores, metrics.classifier_statistics(actual, proba)


def evaluate_detector(
    rows: pd.DataFrame, outputs: list[np.ndarray], meta: dict, cfg, out: Path, train, seed=0
):
    """Presence scores, IoU, AP50 / AP50-95 and the PR curve, predictions ranked by their
    logits, beside the mean-box baseline; returns (metrics, the statistics of a subset of
    rows for the bootstrap)."""
    scores, boxes = outputs[0].reshape(-1), metrics.ordered_corners(outputs[1])
    logits = outputs[2].reshape(-1)
    present = rows["present"].to_numpy().astype(bool)
    true_boxes = rows[BOX].to_numpy("float64")
    ious = metrics.box_iou(true_boxes, boxes)
    predictions = rows[["path", "present", *BOX]].reset_index(drop=True)
    predictions["score"] = scores
    predictions["logit"] = logits
    predictions["predicted_present"] = (scores >= cfg.presence_threshold).astype(int)
    predictions[PRED_BOX] = boxes
    predictions["iou"] = np.where(present, ious, np.nan)
    write_csv(out / "predictions.csv", predictions)
    hits = present & (ious >= 0.5)
    curve = metrics.precision_recall_points(logits, hits, int(present.sum()))
    curve[:, 0] = 1 / (1 + np.exp(-curve[:, 0]))  # thresholds as probabilities, for reading
    write_csv(
        out / "pr_curve.csv", pd.DataFrame(curve, columns=["threshold", "precision", "recall"])
    )
    threshold = cfg.presence_threshold
    found = metrics.detection_scores(scores, boxes, present, true_boxes, threshold, logits)
    statistics = metrics.detector_statistics(scores, logits, boxes, present, true_boxes, threshold)
    said = scores >= threshold
    found = {"positives": int(present.sum()), **found}
    found["slices"] = slices.detector_slices(
        true_boxes, present, ious, said, cfg.slices, cfg.bootstrap, seed
    )
    if train["present"].any():
        found["baseline"] = baselines.detector_baseline(
            train["present"].to_numpy(), train[BOX].to_numpy(), present, true_boxes, threshold
        )
    return found, statistics


def detector_outputs(model, predict):
    """Presence, box (`predict(pixels)`) and the presence logit of a batch (the logit ranks
    predictions)."""
    from stages.shared.models.inference import as_list

    return lambda pixels: [*as_list(predict(pixels)), model.presence_logits(pixels)]


EVALUATORS = {"classifier": evaluate_classifier, "detector": evaluate_detector}


def behaviour_of(name: str, model, rows: pd.DataFrame, pixels: np.ndarray, cfg, out: Path) -> dict:
    """The behaviour checks of `evaluate.<model>.behaviour` on the test images; per-image
    scores (IoU, or minus the probability change: lowest is worst) to behaviour.csv."""
    from stages.shared.models.inference import as_list

    def predict(batch: np.ndarray) -> list[np.ndarray]:
        parts = [
            as_list(model.predict_on_batch(batch[i : i + cfg.batch_size]))
            for i in range(0, len(batch), cfg.batch_size)
        ]
        return [np.concatenate(column) for column in zip(*parts, strict=True)]

    if name == "detector":
        present = rows["present"].to_numpy().astype(bool)
        threshold = cfg.presence_threshold
        summary, scored = behaviour.detector_behaviour(
            predict, pixels, present, cfg.behaviour, threshold
        )
    else:
        summary, scored = behaviour.classifier_behaviour(predict, pixels, cfg.behaviour)
    table = pd.DataFrame(scored, columns=["check", "row", "score"])
    table.insert(1, "path", rows["path"].to_numpy()[table.pop("row").to_numpy(dtype=int)])
    write_csv(out / "behaviour.csv", table)
    return summary


def test_images(name: str, meta: dict) -> tuple[pd.DataFrame, np.ndarray]:
    """The test rows of the model's task and their pixels, read from augment's shards (the
    pixels `predict` gives the same files: shared/shards.py)."""
    from stages.shared.data import shards, tfdata

    manifest = augmented_manifest(MODELS[name])
    folder = manifest.parent
    frame = read_manifest(manifest, MODELS[name])
    test = frame[frame["split"] == "test"].reset_index(drop=True)
    if test.empty:
        raise UserError(f"{manifest}: no test rows — set split.fractions.test above 0")
    written = shards.read_spec(folder)["image_size"]
    if written != meta["image_size"]:
        raise UserError(
            f"{folder}: shards hold {written} px images, the model takes"
            f" {meta['image_size']} px — re-run `dvc repro` to retrain it"
        )
    return test, tfdata.read_pixels(folder, "test")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=list(MODELS))
    name = parser.parse_args(argv).model
    cfg, seed = getattr(load_params(EvaluateParams), name), load_params(BaseParams).seed
    from stages.shared.core.machine import device
    from stages.shared.models.inference import Timed, predict_pixels
    from stages.shared.models.store import load_model

    model, meta = load_model(model_file(name))
    rows, pixels = test_images(name, meta)
    split = read_manifest(split_manifest(MODELS[name]), MODELS[name])
    train = split[split["split"] == "train"]
    timed = Timed(model.predict_on_batch)
    run = detector_outputs(model, timed) if name == "detector" else timed
    outputs = predict_pixels(model, pixels, cfg.batch_size, run)
    if not timed.steady():  # the test set is one batch (and a short one): time it again
        timed(pixels[: cfg.batch_size])
    speed = {**timed.report(), "batch_size": cfg.batch_size, "device": device()}
    write_json(inference_throughput(name), speed)  # apart: it differs between machines
    out = EVAL_DIR / name
    out.mkdir(parents=True, exist_ok=True)
    scores, statistics = EVALUATORS[name](rows, outputs, meta, cfg, out, train, seed)
    summary = {"test_images": len(rows), **rounded(scores)}
    summary["ci95"] = intervals.bootstrap(len(rows), statistics, cfg.bootstrap, seed)
    summary["behaviour"] = rounded(behaviour_of(name, model, rows, pixels, cfg, out))
    headline, detail = metrics.split_report(name, summary)
    write_json(out / "metrics.json", headline)
    write_json(out / "detail.json", detail)
    print(f"evaluate@{name}: {headline} (detail: {out / 'detail.json'})")


if __name__ == "__main__":
    run_stage(main)
