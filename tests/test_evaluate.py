"""The `evaluate` stage: a model with known behaviour on a tiny test split, and its errors."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
import yaml
from keras import ops
from PIL import Image

from stages import evaluate
from stages.shared.core.cli import UserError
from stages.shared.data.manifest import write_manifest
from stages.shared.evaluation.metrics import HEADLINES, detection_ap
from stages.shared.models.inference import predict_files
from stages.shared.models.store import save_model
from stages.shared.params.sections import load_params
from tests.conftest import (
    ROOT,
    read_eval_report,
    refuses_choice,
    shard_split,
    usage,
    write_params,
)


def colour_classifier() -> keras.Model:
    """Outputs (blue, red) from the mean colour: a model whose right answers are known."""
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    dense = keras.layers.Dense(2, activation="softmax")
    model = keras.Model(inputs, dense(pooled))
    dense.set_weights([np.array([[-0.05, 0.05], [0, 0], [0.05, -0.05]]), np.zeros(2)])
    return model


def write_square(path: Path, colour: str, size=(12, 9)) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return str(path)


def classification_split(root: Path) -> None:
    rows = []
    for i in range(3):
        for colour in ("red", "blue"):
            path = write_square(root / "data" / colour / f"{i}.png", colour)
            md5 = f"{colour}{i}"
            rows.append(
                {
                    "path": path,
                    "label": colour,
                    "md5": md5,
                    "group": md5,
                    "split": "test",
                    "width": 12,
                    "height": 9,
                }
            )
    rows.append(
        {
            "path": rows[0]["path"],
            "label": "red",
            "md5": "t",
            "group": "t",
            "split": "train",
            "width": 12,
            "height": 9,
        }
    )
    write_manifest(root / "data/split/classification.csv", pd.DataFrame(rows), "classification")
    shard_split(root, "classification", 8)


def test_evaluate_classifier_on_a_model_with_known_answers(workdir):
    classification_split(workdir)
    meta = {"classes": ["blue", "red"], "image_size": 8}
    save_model(colour_classifier(), workdir / "models/classifier.keras", meta)
    evaluate.main(["classifier"])
    out = workdir / "reports/eval/classifier"
    scores = read_eval_report(out)
    assert scores["test_images"] == 6
    assert scores["accuracy"] == 1.0 and scores["macro_f1"] == 1.0 and scores["roc_auc"] == 1.0
    assert "top_3_accuracy" not in scores  # only 2 classes
    # The train split holds one red image: "always red" is right on 3 of the 6 test images.
    assert scores["baseline"]["majority"] == {
        "accuracy": 0.5,
        "macro_f1": pytest.approx(1 / 3, abs=1e-4),
    }
    assert scores["baseline"]["prior"]["roc_auc"] == 0.5
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 6 and (predictions["actual"] == predictions["predicted"]).all()
    assert predictions["confidence"].between(0.5, 1.0).all()
    confusion = pd.read_csv(out / "confusion.csv")
    assert confusion["count"].tolist() == [3, 0, 0, 3]
    assert set(pd.read_csv(out / "roc.csv")["class"]) == {"blue", "red"}
    assert pd.read_csv(out / "per_class.csv")["support"].tolist() == [3, 3]
    # 6 test images, one batch: it is timed again, once traced
    speed = json.loads((workdir / "reports/throughput/classifier-inference.json").read_text())
    assert (speed["images_timed"], speed["batches_timed"]) == (6, 1)


def test_evaluate_scores_the_shards_which_hold_what_predict_sees_in_the_files(workdir):
    classification_split(workdir)
    meta = {"classes": ["blue", "red"], "image_size": 8}
    model = colour_classifier()
    save_model(model, workdir / "models/classifier.keras", meta)
    test = pd.read_csv(workdir / "data/split/classification.csv").query("split == 'test'")
    expected = predict_files(model, list(test["path"]), 8).outputs[0].max(axis=1)
    for path in test["path"]:  # evaluate reads the shards, not the files
        Path(path).unlink()
    evaluate.main(["classifier"])
    predictions = pd.read_csv(workdir / "reports/eval/classifier/predictions.csv")
    assert predictions["path"].tolist() == test["path"].tolist()
    np.testing.assert_allclose(predictions["confidence"], expected, atol=1e-6)


def test_evaluate_detector_metrics_agree_with_its_predictions(workdir):
    from stages.shared.models.detectors import FaceTracker

    rng = np.random.default_rng(0)
    rows = []
    for i in range(6):
        path = workdir / f"data/det/{i}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)).save(path)
        present = int(i < 4)
        box = [0.1, 0.2, 0.6, 0.7] if present else [0.0] * 4
        rows.append([str(path), present, *box, f"m{i}", 32, 24, f"m{i}", "test"])
    columns = [
        "path",
        "present",
        "x1",
        "y1",
        "x2",
        "y2",
        "md5",
        "width",
        "height",
        "group",
        "split",
    ]
    write_manifest(
        workdir / "data/split/detection.csv", pd.DataFrame(rows, columns=columns), "detection"
    )
    shard_split(workdir, "detection", 32)
    model = FaceTracker("plain_cnn", 32, head_width=8)
    model(np.zeros((1, 32, 32, 3), "float32"))
    save_model(model, workdir / "models/detector.keras", {"image_size": 32})
    evaluate.main(["detector"])
    out = workdir / "reports/eval/detector"
    scores = read_eval_report(out)
    predictions = pd.read_csv(out / "predictions.csv")
    assert scores["test_images"] == 6 and scores["positives"] == 4
    assert scores["mean_iou"] == pytest.approx(predictions["iou"].mean(), abs=1e-4)
    assert predictions["iou"].isna().sum() == 2  # negatives have no IoU
    pred = predictions[["pred_x1", "pred_y1", "pred_x2", "pred_y2"]].to_numpy()
    truth = predictions[["x1", "y1", "x2", "y2"]].to_numpy()
    again = detection_ap(predictions["logit"], pred, predictions["present"], truth)
    assert scores["ap50"] == pytest.approx(again["ap50"], abs=1e-4)
    assert (predictions["predicted_present"] == (predictions["score"] >= 0.5)).all()
    curve = pd.read_csv(out / "pr_curve.csv")
    assert curve["threshold"].is_monotonic_decreasing and curve["recall"].is_monotonic_increasing


@keras.saving.register_keras_serializable(package="tests")
class BrightnessDetector(keras.Model):
    """Presence = sigmoid(0.05 × (mean red − 128)), box (0.1, 0.2, 0.6, 0.7) for any image."""

    def call(self, images, training=False):
        logits = self.presence_logits(images)
        box = ops.ones_like(logits) * ops.convert_to_tensor([[0.1, 0.2, 0.6, 0.7]])
        return ops.sigmoid(logits), box

    def presence_logits(self, images):
        return 0.05 * (ops.mean(images[..., :1], axis=(1, 2)) - 128.0)


def brightness_detector() -> keras.Model:
    model = BrightnessDetector()
    model(np.zeros((1, 32, 32, 3), "float32"))
    return model


def detection_split(workdir, train: int = 0) -> None:
    """Six grey test frames 40×24 (greys 40 … 220), objects in the 3rd, 4th and 5th, and
    `train` train frames with an object, sharded at 32 px: `brightness_detector` scores the
    test frames 0.012 … 0.993."""
    rows = []
    greys, objects = (40, 90, 120, 140, 170, 220, 60, 80)[: 6 + train], (0, 0, 1, 1, 1, 0, 1, 1)
    for i, (grey, present) in enumerate(zip(greys, objects, strict=False)):
        path = write_square(workdir / f"data/det/{i}.png", (grey, grey, grey), size=(40, 24))
        box = [0.1, 0.2, 0.6, 0.7] if present else [0.0] * 4
        split = "test" if i < 6 else "train"
        rows.append([path, present, *box, f"m{i}", 40, 24, f"m{i}", split])
    columns = ["path", "present", "x1", "y1", "x2", "y2", "md5", "width", "height", "group"]
    frame = pd.DataFrame(rows, columns=[*columns, "split"])
    write_manifest(workdir / "data/split/detection.csv", frame, "detection")
    shard_split(workdir, "detection", 32)


@pytest.mark.parametrize(
    ("threshold", "expected"),
    [
        # scores 0.012, 0.130, 0.401, 0.646, 0.891, 0.993; objects in the 3rd, 4th, 5th image.
        (0.3, {"presence_accuracy": 5 / 6, "presence_precision": 3 / 4, "presence_recall": 1.0}),
        (0.5, {"presence_accuracy": 4 / 6, "presence_precision": 2 / 3, "presence_recall": 2 / 3}),
        (0.95, {"presence_accuracy": 2 / 6, "presence_precision": 0.0, "presence_recall": 0.0}),
    ],
)
def test_the_presence_threshold_param_decides_what_counts_as_an_object(
    workdir, threshold, expected
):
    detection_split(workdir)
    save_model(brightness_detector(), workdir / "models/detector.keras", {"image_size": 32})
    params = load_params("evaluate").model_dump()
    params["detector"]["presence_threshold"] = threshold
    write_params(workdir, evaluate=params)
    evaluate.main(["detector"])
    scores = read_eval_report(workdir / "reports/eval/detector")
    for name, value in expected.items():
        assert scores[name] == pytest.approx(value, abs=1e-4), name
    predictions = pd.read_csv(workdir / "reports/eval/detector/predictions.csv")
    flagged = predictions.sort_values("path")["predicted_present"].tolist()
    assert flagged == [int(s >= threshold) for s in (0.012, 0.130, 0.401, 0.646, 0.891, 0.993)]
    # AP does not depend on the threshold. Ranked by score the brightest negative comes
    # first, then the three objects (boxes exact): precision 1/2, 2/3, 3/4 at their ranks,
    # made monotone from the right 3/4 at every recall level, so AP50 = 0.75.
    assert scores["ap50"] == pytest.approx(0.75, abs=1e-4)


def test_evaluate_without_test_rows_shards_or_model_says_what_to_do(workdir):
    with pytest.raises(UserError, match=r"models/classifier.keras: not found — train the model"):
        evaluate.main(["classifier"])
    save_model(colour_classifier(), workdir / "models/classifier.keras", {"image_size": 8})
    with pytest.raises(
        UserError, match=r"data/augmented/classification/manifest.csv: manifest not found"
    ):
        evaluate.main(["classifier"])
    classification_split(workdir)
    frame = pd.read_csv(workdir / "data/split/classification.csv")
    frame["split"] = "train"
    write_manifest(workdir / "data/split/classification.csv", frame, "classification")
    shard_split(workdir, "classification", 8)
    with pytest.raises(UserError, match=r"no test rows — set split.fractions.test above 0"):
        evaluate.main(["classifier"])
    # Shards written at another size than the model takes: retrain, never resize silently.
    classification_split(workdir)
    shard_split(workdir, "classification", 16)
    with pytest.raises(
        UserError,
        match=r"^data/augmented/classification: shards hold 16 px images, the model takes 8 px"
        r" — re-run `dvc repro` to retrain it$",
    ):
        evaluate.main(["classifier"])


def test_predict_files_is_the_same_whatever_the_batch_size(tmp_path):
    paths = [write_square(tmp_path / f"{i}.png", c) for i, c in enumerate(["red", "blue"] * 3)]
    paths.insert(2, str(tmp_path / "missing.png"))
    model = colour_classifier()
    one = predict_files(model, paths, 8, batch_size=1)
    four = predict_files(model, paths, 8, batch_size=4)
    assert one.index == four.index == [0, 1, 3, 4, 5, 6]
    assert np.allclose(one.outputs[0], four.outputs[0])
    assert [s["path"] for s in one.skipped] == [paths[2]]


def noisy_classification_split(root: Path, seed: int = 0) -> None:
    """30 test squares, a third of them labelled with the other colour: accuracy 2/3."""
    rows = []
    for i in range(30):
        colour = "red" if i % 2 else "blue"
        label = colour if i % 3 else ("blue" if colour == "red" else "red")
        path = write_square(root / "data" / f"{i:02d}.png", colour)
        rows.append(
            {"path": path, "label": label, "md5": str(i), "group": str(i), "split": "test"}
            | {"width": 12, "height": 9}
        )
    write_manifest(root / "data/split/classification.csv", pd.DataFrame(rows), "classification")
    shard_split(root, "classification", 8)


def test_intervals_hold_the_point_value_and_repeat_byte_for_byte(workdir):
    noisy_classification_split(workdir)
    meta = {"classes": ["blue", "red"], "image_size": 8}
    save_model(colour_classifier(), workdir / "models/classifier.keras", meta)
    evaluate.main(["classifier"])
    out = workdir / "reports/eval/classifier"
    first = [(out / name).read_bytes() for name in ("metrics.json", "detail.json")]
    scores = read_eval_report(out)
    assert scores["accuracy"] == pytest.approx(2 / 3, abs=1e-4)
    for metric in ("accuracy", "macro_f1", "log_loss"):  # every headline metric has one
        interval = scores["ci95"][metric]
        assert interval["low"] < scores[metric] < interval["high"], metric
    # 30 images at 2/3: the binomial standard error is 0.086, so the interval spans ~±0.17.
    width = scores["ci95"]["accuracy"]["high"] - scores["ci95"]["accuracy"]["low"]
    assert 0.25 < width < 0.45
    evaluate.main(["classifier"])
    assert [(out / name).read_bytes() for name in ("metrics.json", "detail.json")] == first
    write_params(workdir, base={"seed": 99})
    evaluate.main(["classifier"])
    assert read_eval_report(out)["ci95"] != scores["ci95"]  # seeded by base.seed


@pytest.mark.parametrize("model", ["classifier", "detector"])
def test_metrics_json_holds_the_headline_alone_and_detail_json_the_rest(workdir, model):
    """What `dvc metrics diff` and `dvc exp show` read (metrics.json) is the headline list,
    nothing else; the rest, the headline's intervals included, is in detail.json."""
    if model == "classifier":
        classification_split(workdir)
        meta = {"classes": ["blue", "red"], "image_size": 8}
        save_model(colour_classifier(), workdir / "models/classifier.keras", meta)
    else:
        detection_split(workdir, train=2)
        save_model(brightness_detector(), workdir / "models/detector.keras", {"image_size": 32})
    section = yaml.safe_load((ROOT / "params.yaml").read_text())["evaluate"]
    section[model]["batch_size"] = 2  # several batches, so the first is set apart
    write_params(workdir, evaluate=section)
    evaluate.main([model])
    out = workdir / "reports/eval" / model
    headline = json.loads((out / "metrics.json").read_text())
    detail = json.loads((out / "detail.json").read_text())
    assert list(headline) == list(HEADLINES[model])
    assert not set(headline) & set(detail)
    assert set(detail["ci95"]) >= set(HEADLINES[model])
    assert {"test_images", "baseline", "behaviour", "slices"} <= set(detail)
    # Speed apart (it differs between runs): the full batches but the first, which traces.
    speed = json.loads((workdir / f"reports/throughput/{model}-inference.json").read_text())
    assert detail["test_images"] > 4
    assert speed["images_timed"] == 2 * (detail["test_images"] // 2 - 1)
    assert speed["batches_timed"] == detail["test_images"] // 2 - 1
    assert speed["images_per_second"] > 0 and speed["device"] and speed["batch_size"] == 2


def test_the_bootstrap_matches_the_binomial_interval_of_a_proportion():
    from stages.shared.evaluation.intervals import bootstrap

    hits = np.array([1] * 280 + [0] * 120)  # p = 0.7, n = 400: 1.96 × SE = 0.0449
    interval = bootstrap(400, lambda rows: {"p": hits[rows].mean()}, 4000, seed=5)["p"]
    # Tight enough to tell a 95% interval from a 90% one (1.645 × SE = 0.0377).
    assert interval["low"] == pytest.approx(0.7 - 0.0449, abs=0.005)
    assert interval["high"] == pytest.approx(0.7 + 0.0449, abs=0.005)


def detection_rows(paths: list[str]) -> pd.DataFrame:
    """Ten test rows: eight objects, two negatives."""
    present = [1] * 8 + [0] * 2
    boxes = [[0.1, 0.1, 0.5, 0.6] if p else [0.0] * 4 for p in present]
    rows = [[path, p, *box] for path, p, box in zip(paths, present, boxes, strict=True)]
    return pd.DataFrame(rows, columns=["path", "present", "x1", "y1", "x2", "y2"])


def test_ap_ranks_by_logits_so_renaming_the_files_changes_nothing(workdir):
    """Every probability is exactly 1.0 (saturated); only the logits tell them apart. Ranked
    by probability, AP would depend on file-name order."""
    cfg = load_params("evaluate").detector
    rows = detection_rows([f"img_{i}.jpg" for i in range(10)])
    # Boxes: objects 0-3 hit (IoU 1), objects 4-7 miss; logits: the misses rank highest.
    hit, miss = [0.1, 0.1, 0.5, 0.6], [0.6, 0.7, 0.9, 0.9]
    boxes = np.array([hit] * 4 + [miss] * 4 + [hit] * 2, "float32")
    logits = np.array([20, 21, 22, 23, 30, 31, 32, 33, 40, 41], "float32")
    outputs = [np.ones((10, 1), "float32"), boxes, logits[:, None]]
    train = detection_rows([f"train_{i}.jpg" for i in range(10)])
    scores, _ = evaluate.evaluate_detector(rows, outputs, {}, cfg, workdir, train)
    # Renamed (reverse name order) and listed in another order: the same AP.
    order = np.random.default_rng(0).permutation(10)
    renamed = detection_rows([f"z{9 - i}.jpg" for i in range(10)]).iloc[order]
    shuffled = [o[order] for o in outputs]
    again, _ = evaluate.evaluate_detector(
        renamed.reset_index(drop=True), shuffled, {}, cfg, workdir, train
    )
    assert again["ap50"] == scores["ap50"] and again["ap50_95"] == scores["ap50_95"]
    # By hand: ranked by logit, negatives first (2 false positives), then 4 misses, then 4
    # hits: precision at recall 0.125..0.5 is 1/7, 2/8, 3/9, 4/10 → envelope 0.4 up to 0.5.
    assert scores["ap50"] == pytest.approx(0.4 * 51 / 101, abs=1e-6)
    by_probability = [
        detection_ap(np.ones(10), b, r["present"], r[["x1", "y1", "x2", "y2"]].to_numpy())["ap50"]
        for r, b in ((rows, boxes), (renamed.reset_index(drop=True), boxes[order]))
    ]
    assert by_probability[0] != by_probability[1]  # the file-order dependence logits remove


PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"


def test_classifier_outputs_name_each_image_its_actual_and_predicted_class(tmp_path):
    """Three classes with unequal supports and two mistakes, from probabilities set by hand."""
    cfg = load_params("evaluate", PARAMS).classifier.model_copy(update={"bootstrap": 100})
    classes = ["ant", "bee", "cow"]
    labels = ["ant", "ant", "ant", "bee", "bee", "cow"]
    rows = pd.DataFrame(
        {"path": [f"p{i}.png" for i in range(6)], "label": labels}
        | {"width": [30, 40, 50, 60, 70, 80], "height": [10, 20, 30, 40, 30, 20]}
    )
    proba = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.25, 0.5, 0.25],
            [0.6, 0.3, 0.1],
            [0.1, 0.8, 0.1],
            [0.1, 0.3, 0.6],
            [0.2, 0.2, 0.6],
        ]
    )
    train = pd.DataFrame({"label": ["bee", "bee", "ant", "yak"]})  # "yak": not a model class
    meta = {"classes": classes, "image_size": 15}
    scores, statistics = evaluate.evaluate_classifier(rows, [proba], meta, cfg, tmp_path, train)
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert predictions.to_dict("list") == {
        "path": [f"p{i}.png" for i in range(6)],
        "actual": labels,
        "predicted": ["ant", "bee", "ant", "bee", "cow", "cow"],
        "confidence": [0.7, 0.5, 0.6, 0.8, 0.6, 0.6],
    }
    assert (tmp_path / "predictions.csv").read_text().splitlines()[1] == "p0.png,ant,ant,0.700000"
    confusion = pd.read_csv(tmp_path / "confusion.csv")
    counts = confusion.pivot(index="actual", columns="predicted", values="count")
    assert counts.to_numpy().tolist() == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    per_class = pd.read_csv(tmp_path / "per_class.csv")
    assert per_class["support"].tolist() == [3, 2, 1]
    assert set(pd.read_csv(tmp_path / "roc.csv")["class"]) == set(classes)
    assert list(pd.read_csv(tmp_path / "roc_average.csv").columns) == ["fpr", "micro", "macro"]
    assert scores["accuracy"] == pytest.approx(4 / 6)
    # Trained on two bees and an ant (the yak left out): "always bee" is right on 2 of 6.
    assert scores["baseline"]["majority"]["accuracy"] == pytest.approx(2 / 6)
    # One image smaller than the 15 px input (right), five larger (three right).
    by_size = scores["slices"]["source_size"]
    assert by_size["smaller_than_input"]["images"] == 1
    assert by_size["smaller_than_input"]["accuracy"] == 1.0
    assert by_size["input_size_or_larger"]["images"] == 5
    assert by_size["input_size_or_larger"]["accuracy"] == pytest.approx(3 / 5)
    assert statistics(np.arange(6))["accuracy"] == pytest.approx(4 / 6)
    no_train = evaluate.evaluate_classifier(rows, [proba], meta, cfg, tmp_path, train.iloc[3:])[0]
    assert "baseline" not in no_train
    with pytest.raises(UserError, match=r"^test split has classes the model was not trained on: "
                       r"\['cow'\] — re-run training$"):  # fmt: skip
        evaluate.evaluate_classifier(rows, [proba[:, :2]], {**meta, "classes": classes[:2]},
                                     cfg, tmp_path, train)  # fmt: skip


def test_detector_predictions_say_presence_by_the_threshold_and_the_curve_in_probabilities(
    tmp_path,
):
    cfg = load_params("evaluate", PARAMS).detector.model_copy(
        update={"presence_threshold": 0.6, "bootstrap": 100}
    )
    rows = detection_rows([f"i{i}.jpg" for i in range(10)])
    logits = np.linspace(-2.0, 2.5, 10).astype("float32")
    scores = 1 / (1 + np.exp(-logits))
    boxes = np.tile(np.array([[0.5, 0.6, 0.1, 0.1]], "float32"), (10, 1))  # corners swapped
    outputs = [scores[:, None], boxes, logits[:, None]]
    train = detection_rows([f"t{i}.jpg" for i in range(10)])
    found, _ = evaluate.evaluate_detector(rows, outputs, {}, cfg, tmp_path, train)
    predictions = pd.read_csv(tmp_path / "predictions.csv")
    assert list(predictions.columns) == [
        "path", "present", "x1", "y1", "x2", "y2", "score", "logit", "predicted_present",
        "pred_x1", "pred_y1", "pred_x2", "pred_y2", "iou",
    ]  # fmt: skip
    assert predictions["predicted_present"].tolist() == [int(s >= 0.6) for s in scores]
    assert predictions[["pred_x1", "pred_y1", "pred_x2", "pred_y2"]].iloc[0].tolist() == [
        pytest.approx(v) for v in (0.1, 0.1, 0.5, 0.6)
    ]  # ordered corners: the box the truth is compared with
    assert predictions["iou"].iloc[:8].round(6).eq(1.0).all()
    assert predictions["iou"].iloc[8:].isna().all()
    assert predictions["logit"].round(5).tolist() == [pytest.approx(v, abs=1e-5) for v in logits]
    assert found["positives"] == 8 and found["presence_recall"] == pytest.approx(3 / 8)
    assert "baseline" in found and set(found["slices"])
    curve = pd.read_csv(tmp_path / "pr_curve.csv")
    assert list(curve.columns) == ["threshold", "precision", "recall"]
    assert curve["threshold"].between(0, 1).all()
    assert curve["threshold"].max() == pytest.approx(scores.max(), abs=1e-6)
    negatives_only = train.assign(present=0)
    assert (
        "baseline"
        not in evaluate.evaluate_detector(rows, outputs, {}, cfg, tmp_path, negatives_only)[0]
    )
    assert found["slices"]["negatives"]["false_positive_rate"] == 1.0  # both above 0.6
    # A score exactly on the threshold counts as "object": the first negative's own score.
    on_the_line = cfg.model_copy(update={"presence_threshold": float(scores[8])})
    found, _ = evaluate.evaluate_detector(rows, outputs, {}, on_the_line, tmp_path, train)
    assert found["slices"]["negatives"]["false_positive_rate"] == 1.0
    assert found["presence_recall"] == 0.0  # every object scores below the first negative
    flags = (tmp_path / "predictions.csv").read_text().splitlines()
    assert [line.split(",")[8] for line in flags[1:]] == ["0"] * 8 + ["1", "1"]  # integers


def test_reported_numbers_have_four_decimals_and_undefined_ones_are_null():
    scores = {"a": 0.123456, "b": float("nan"), "c": None, "d": {"e": 2 / 3, "f": 7}}
    assert evaluate.rounded(scores) == {"a": 0.1235, "b": None, "c": None,
                                        "d": {"e": 0.6667, "f": 7}}  # fmt: skip


def test_the_command_line_says_what_the_stage_does_and_refuses_other_arguments(capsys):
    assert usage(evaluate.main) == (
        "[-h] {classifier,detector} Stage `evaluate@<model>`: score a trained model on "
        "the test split, never seen in training. positional arguments: "
        "{classifier,detector} options: -h, --help show this help message and exit"
    )
    refuses_choice(evaluate.main, "classification", ("classifier", "detector"), capsys)
