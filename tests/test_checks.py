"""checks.py through the training stages: prior initialisation and the first-batch check,
debug modes, the NaN guard, and the training batch as the model sees it."""

from __future__ import annotations

import json
import logging
import math
import time
import zipfile

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages import augment, split, train_classifier, train_detector
from stages.shared.core.cli import UserError, run_stage
from stages.shared.params.sections import load_params
from stages.shared.review import plotting
from stages.shared.training import checks, loop
from tests.conftest import labelme, make_classification, run_paths, write_params

TRAIN = {"epochs": 1, "batch_size": 8}


@pytest.fixture
def imbalanced(workdir):
    """Three classes, 30 / 6 / 4 images: far from uniform, so a prior matters."""
    make_classification(workdir / "ds", {"a": 30, "b": 6, "c": 4})
    write_params(
        workdir,
        data={"classification": "ds"},
        base={"seed": 1, "image_size": {"classification": 16, "detection": 32}},
        train_classifier=TRAIN,
    )
    split.main(["classification"])
    augment.main(["classification"])
    return workdir


def classifier_cfg(**update):
    return load_params("train_classifier").model_copy(update=update)


def test_the_output_starts_at_the_prior_and_the_first_batch_loss_matches_it(imbalanced):
    loop.train(
        train_classifier.Classifier,
        classifier_cfg(),
        load_params("base"),
        run_paths("classification", "clf"),
    )
    meta = json.loads((imbalanced / "models/clf.json").read_text())
    check = meta["checks"]["first_batch"]
    rows = pd.read_csv(imbalanced / "data/augmented/classification/manifest.csv")
    prior = rows[rows["split"] == "train"]["label"].value_counts(normalize=True).sort_index()
    batch = np.load(imbalanced / "models/clf_batch.npz")["targets"]
    # The loss the prior gets on this batch's labels, by hand.
    by_hand = -np.log(prior.to_numpy()[batch.argmax(axis=1)]).mean()
    assert check["expected_from_prior"] == pytest.approx(by_hand, abs=1e-4)
    # At initialisation the model answers the prior whatever the image: the same loss.
    assert check["ok"] and check["first_batch"] == pytest.approx(by_hand, abs=1e-3)


def test_label_smoothing_is_accounted_for_in_the_expected_loss():
    prior = np.array([0.5, 0.25, 0.25])
    expected = checks.prior_cross_entropy(prior, 0.1)
    targets = 0.9 * prior + 0.1 / 3
    assert expected == pytest.approx(-(targets * np.log(prior)).sum())
    onehot = np.eye(3)[[0, 0, 2]]
    smoothed = 0.9 * onehot + 0.1 / 3
    assert checks.prior_cross_entropy(prior, 0.1, onehot) == pytest.approx(
        -(smoothed * np.log(prior)).sum(axis=1).mean()
    )
    assert checks.binary_cross_entropy(0.5) == pytest.approx(math.log(2))
    assert checks.binary_cross_entropy(0.8, [1, 1, 0]) == pytest.approx(
        -(2 * math.log(0.8) + math.log(0.2)) / 3
    )


def test_learned_means_beating_the_baseline_by_more_than_the_reported_precision(caplog):
    # A loss (lower is better) 5e-5 under its baseline is no better, to 4 decimals; 1.5e-4 is.
    with caplog.at_level(logging.WARNING):
        same = checks.learned_report("loss", 1.09855, 1.0986, "the train prior", higher=False)
    assert same == {"learned": False, "metric": "loss", "best": 1.0985, "baseline": 1.0986,
                    "baseline_name": "the train prior"}  # fmt: skip
    (record,) = caplog.records
    assert record.getMessage() == (
        "never learned: the best val loss 1.0985 is no better than 1.0986, the train prior's"
        " — check the labels, the learning rate and what the model can see"
    )
    assert checks.learned_report("loss", 1.09845, 1.0986, "x", higher=False)["learned"]
    # A score (higher is better): the other way round.
    assert checks.learned_report("mean_iou", 0.3, 0.2, "x", higher=True)["learned"]
    assert not checks.learned_report("mean_iou", 0.2, 0.3, "x", higher=True)["learned"]
    assert not checks.learned_report("mean_iou", 0.3, 0.3, "x", higher=True)["learned"]


def test_a_first_batch_far_from_the_prior_warns_in_one_line(caplog):
    with caplog.at_level(logging.WARNING):
        report = checks.first_batch_report(2.3, 0.73, "categorical cross-entropy")
    assert not report["ok"] and report["ratio"] == pytest.approx(3.151, abs=1e-3)
    (record,) = caplog.records
    assert "first-batch check: categorical cross-entropy 2.3000" in record.getMessage()
    assert "\n" not in record.getMessage()
    assert checks.first_batch_report(0.8, 0.73, "x")["ok"]


def test_fast_mode_runs_two_batches_one_epoch_and_says_it_is_a_debug_run(imbalanced):
    cfg = classifier_cfg(debug="fast", epochs=15)
    loop.train(
        train_classifier.Classifier, cfg, load_params("base"), run_paths("classification", "clf")
    )
    meta = json.loads((imbalanced / "models/clf.json").read_text())
    assert meta["debug"] == {"mode": "fast", "batches_per_epoch": 2} and meta["epochs_run"] == 1
    steps = (imbalanced / "reports/train/clf/plots/metrics/train/loss.tsv").read_text()
    assert len(steps.splitlines()) == 2  # header + one epoch


@pytest.mark.parametrize(("rate", "passes"), [(0.003, True), (1e-9, False)])
def test_overfit_mode_learns_one_batch_unless_training_is_broken(imbalanced, rate, passes):
    cfg = classifier_cfg(debug="overfit", learning_rate=rate)
    result = loop.train(
        train_classifier.Classifier, cfg, load_params("base"), run_paths("classification", "clf")
    )
    meta = json.loads((imbalanced / "models/clf.json").read_text())
    assert meta["debug"] == result and result["passed"] is passes
    summary = json.loads((imbalanced / "reports/train/clf/metrics.json").read_text())
    assert (
        summary["debug"] == result
        and summary["cost"]["model_bytes"] == (imbalanced / "models/clf.keras").stat().st_size
    )
    if passes:
        assert result["final_loss"] < 0.05 and result["steps"] < 300
    else:  # the loss has not moved: the check reports the failure
        assert result["steps"] == 300 and result["final_loss"] > 0.95 * result["first_loss"]


class Poison(keras.callbacks.Callback):
    """Turns a weight into NaN at the end of the first call past the first batch."""

    done = False

    def on_train_batch_end(self, batch, logs=None):
        if batch >= 1 and not self.done:
            kernel = self.model.layers[-1].kernel
            kernel.assign(kernel * float("nan"))
            self.done = True


@pytest.mark.parametrize("whole_epoch", [False, True])
def test_a_non_finite_loss_stops_training_with_one_line_and_no_model(
    imbalanced, capsys, whole_epoch
):
    # One step a call: poisoned after batch 2, batch 3's loss is NaN. The whole epoch in one
    # call: poisoned after epoch 1's call, epoch 2's one call is NaN.
    rows = pd.read_csv(imbalanced / "data/augmented/classification/manifest.csv")
    batches = math.ceil((rows["split"] == "train").sum() / TRAIN["batch_size"])
    steps, where = (
        (batches, f"epoch 2, batches 1–{batches}") if whole_epoch else (1, "epoch 1, batch 3")
    )
    cfg = classifier_cfg(epochs=3)
    base = load_params("base").model_copy(update={"steps_per_execution": steps})
    run = {**run_paths("classification", "clf"), "extra_callbacks": [Poison()]}
    with pytest.raises(SystemExit) as stop:
        run_stage(lambda argv: loop.train(train_classifier.Classifier, cfg, base, run), [])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err
    assert errors[0].startswith(f"error: training loss became nan at {where} — lower")
    assert "train_classifier.learning_rate (now 0.001)" in errors[0]
    assert not (imbalanced / "models/clf.keras").exists()
    logging.basicConfig(force=True)  # run_stage logged to the captured stream; let it go


def flipped_frames(workdir, count: int = 12):
    """Frames with a white square at the left (x 4–14 of 48, y 10–22 of 36), on black."""
    rng = np.random.default_rng(0)
    for i in range(count):
        pixels = rng.integers(0, 20, (36, 48, 3), dtype=np.uint8)  # dark, each frame its own
        pixels[10:22, 4:14] = 255
        path = workdir / f"cam/images/f{i:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(path)
        label = workdir / f"cam/labels/f{i:02d}.json"
        label.parent.mkdir(parents=True, exist_ok=True)
        label.write_text(json.dumps(labelme([[4, 10], [14, 22]], width=48, height=36)))
    write_params(
        workdir,
        data={"detection": "cam"},
        base={"seed": 2, "image_size": {"classification": 16, "detection": 32}},
        split={"near_duplicates": {"max_distance": 0}},
        augment={
            "detection": {
                "copies": 1,
                "keep_original": False,
                "format": "png",
                "min_visibility": 0.5,
                "paste": 0.0,
                "transforms": [{"name": "HorizontalFlip", "p": 1.0}],
            }
        },
        train_detector={"epochs": 1, "batch_size": 8, "head_width": 8, "debug": "fast"},
    )
    split.main(["detection"])
    augment.main(["detection"])


def test_the_saved_batch_has_its_boxes_on_the_flipped_objects(workdir):
    flipped_frames(workdir)
    loop.train(
        train_detector.Detector,
        load_params("train_detector"),
        load_params("base"),
        run_paths("detection", "det"),
    )
    batch = np.load(workdir / "models/det_batch.npz")
    assert batch["images"].shape == (8, 32, 32, 3) and batch["images"].dtype == np.uint8
    for image, box in zip(batch["images"], batch["boxes"], strict=True):
        x1, y1, x2, y2 = (round(v * 32) for v in box)
        inside = image[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].mean()
        mirrored = image[y1 + 1 : y2 - 1, 32 - x2 + 1 : 32 - x1 - 1].mean()
        assert x1 > 16 and inside > 200 and mirrored < 30  # flipped to the right, box with it


def test_the_train_batch_figure_draws_the_box_over_the_object(tmp_path):
    image = np.zeros((32, 32, 3), np.uint8)
    image[8:20, 18:29] = (255, 0, 255)  # a magenta object, right of centre
    box = np.array([18 / 32, 8 / 32, 29 / 32, 20 / 32])
    figure = plotting.train_batch_figure(image[None], ["object"], [box], columns=1)
    plotting.save_figure(figure, tmp_path / "batch.png", 100)
    pixels = np.asarray(Image.open(tmp_path / "batch.png").convert("RGB")).astype(int)
    red, green, blue = pixels[..., 0], pixels[..., 1], pixels[..., 2]
    drawn = (green > 200) & (red < 100) & (blue < 100)
    magenta = (red > 200) & (green < 60) & (blue > 200)
    gy, gx = np.nonzero(drawn)
    my, mx = np.nonzero(magenta)
    assert len(mx) > 100 and len(gx) > 50
    # The object's pixels lie inside the drawn box, which hugs it (a few pixels of line).
    assert gx.min() <= mx.min() and mx.max() <= gx.max() and gy.min() <= my.min()
    assert my.max() <= gy.max() and (gx.max() - gx.min()) < 1.25 * (mx.max() - mx.min())


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "task"),
    [(train_classifier.Classifier, "classification"), (train_detector.Detector, "detection")],
)
def test_overfit_reaches_its_threshold_on_the_sample_with_the_default_params(workdir, stage, task):
    from stages import sample

    for step in (sample, split, augment):
        step.main([task])
    section = "train_classifier" if task == "classification" else "train_detector"
    update = {"debug": "overfit"}
    cfg = load_params(section).model_copy(update=update)
    name = "clf" if task == "classification" else "det"
    result = loop.train(stage, cfg, load_params("base"), run_paths(task, name))
    assert result["passed"], result
    assert result["final_loss"] < cfg.overfit.loss <= result["first_loss"]
    assert result["images"] == cfg.overfit.batch < cfg.batch_size


def test_a_class_absent_from_the_batch_keeps_a_tiny_prior_that_sums_to_one():
    prior = checks.class_prior(np.array([[1, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0]], float))
    assert prior[2] == pytest.approx(1e-6, rel=1e-3) and prior.sum() == pytest.approx(1.0)
    assert prior[0] / prior[1] == pytest.approx(3.0)


def test_the_first_batch_report_is_ok_within_the_factor_both_ways(caplog):
    inside = checks.first_batch_report(1.5, 1.0, "x-entropy")
    assert inside == {"loss": "x-entropy", "first_batch": 1.5, "expected_from_prior": 1.0,
                      "ratio": 1.5, "within_factor": 1.5, "ok": True}  # fmt: skip
    assert checks.first_batch_report(1.0, 1.5, "x")["ok"]  # 1/1.5: the lower edge
    assert not caplog.records
    low = checks.first_batch_report(0.5, 1.0, "x")
    assert not low["ok"] and low["ratio"] == 0.5
    assert not checks.first_batch_report(0.3, 0.0, "x")["ok"]  # no expected loss
    (record, *_) = caplog.records
    assert record.levelname == "WARNING" and record.getMessage() == (
        "first-batch check: x 0.5000 at initialisation, expected 1.0000 from the data's prior"
        " (0.50×, beyond 1.5×) — check the labels, the loss and the input scaling"
    )


def test_binary_priors_by_hand():
    assert checks.logit(0.25) == pytest.approx(math.log(1 / 3))
    assert checks.binary_cross_entropy(0.25) == pytest.approx(
        -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    )
    assert checks.binary_cross_entropy(0.25, np.array([1, 1, 0])) == pytest.approx(
        -(2 * math.log(0.25) + math.log(0.75)) / 3
    )


def test_the_guard_names_the_epoch_batch_rate_and_mixed_precision():
    guard = checks.NonFiniteGuard("train_detector", 0.0025, mixed_precision=True)
    guard.on_epoch_begin(4)
    guard.on_train_batch_end(0, {"loss": 1.0})
    guard.on_train_batch_end(1, None)
    with pytest.raises(UserError) as stop:
        guard.on_train_batch_end(2, {"loss": float("inf")})
    assert str(stop.value) == (
        "training loss became inf at epoch 5, batch 3 — lower train_detector.learning_rate"
        " (now 0.0025) or set base.mixed_precision: float32, then `dvc repro`; no model was"
        " written"
    )


def test_with_several_steps_a_call_the_guard_names_the_batches_of_the_call():
    # Calls of 4 steps: Keras reports each call's last batch (0-based 3, 7, 11).
    guard = checks.NonFiniteGuard("train_classifier", 0.001, mixed_precision=False)
    guard.on_epoch_begin(0)
    guard.on_train_batch_end(3, {"loss": 2.0})
    guard.on_train_batch_end(7, {"loss": 1.5})
    with pytest.raises(UserError, match=r"became nan at epoch 1, batches 9–12 — lower "):
        guard.on_train_batch_end(11, {"loss": float("nan")})
    guard.on_epoch_begin(1)  # a new epoch counts from its first batch
    with pytest.raises(UserError, match=r"became nan at epoch 2, batches 1–4 — lower "):
        guard.on_train_batch_end(3, {"loss": float("nan")})


def test_saved_arrays_load_back_and_repeat_byte_for_byte(tmp_path):
    arrays = {"images": np.arange(24, dtype=np.uint8).reshape(2, 3, 4), "x": np.eye(2)}
    checks.save_arrays(tmp_path / "a/b/one.npz", **arrays)  # folders made as needed
    time.sleep(1.1)
    checks.save_arrays(tmp_path / "two.npz", **arrays)
    assert (tmp_path / "a/b/one.npz").read_bytes() == (tmp_path / "two.npz").read_bytes()
    loaded = np.load(tmp_path / "two.npz")
    assert sorted(loaded) == ["images", "x"] and np.array_equal(loaded["x"], np.eye(2))
    with zipfile.ZipFile(tmp_path / "two.npz") as archive:
        assert {i.compress_type for i in archive.infolist()} == {zipfile.ZIP_DEFLATED}


def test_overfitting_stops_at_the_threshold_with_dropout_off():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dropout(0.9), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    batch = (np.array([[1.0, 0.0], [0.0, 1.0]], "float32"), np.array([[1.0], [-1.0]], "float32"))
    result = checks.overfit_one_batch(model, batch, steps=500, threshold=1e-3)
    assert result["passed"] and result["final_loss"] < 1e-3 < result["first_loss"]
    assert 1 < result["steps"] < 500 and model.layers[0].rate == 0.0
    again = checks.overfit_one_batch(model, batch, steps=1, threshold=1e-9)
    assert again["steps"] == 1 and not again["passed"] and again["threshold"] == 1e-9


def test_the_overfit_report_and_its_line_say_passed_or_failed(caplog):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    batch = (np.array([[1.0, 0.0], [0.0, 1.0]], "float32"), np.array([[1.0], [-1.0]], "float32"))
    with caplog.at_level(logging.INFO, logger=checks.log.name):
        failed = checks.overfit_one_batch(model, batch, steps=2, threshold=1e-9)
    keys = ["mode", "images", "steps", "first_loss", "final_loss", "threshold", "passed"]
    assert list(failed) == keys and failed["images"] == 2
    assert failed["mode"] == "overfit" and failed["steps"] == 2 and not failed["passed"]
    (record,) = caplog.records
    assert record.getMessage() == (
        f"overfit check: train loss {failed['final_loss']:.4g} after 2 steps (threshold 1e-09):"
        " FAILED"
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=checks.log.name):
        passed = checks.overfit_one_batch(model, batch, steps=1, threshold=100.0)
    assert caplog.records[0].getMessage().endswith("after 1 steps (threshold 100): passed")
    assert passed["passed"] and passed["first_loss"] == passed["final_loss"]


def test_the_first_batch_report_rounds_to_four_decimals():
    report = checks.first_batch_report(1.234567, 1.0, "x")
    assert report["first_batch"] == 1.2346 and report["ratio"] == 1.235


def test_the_expected_loss_is_worked_in_float64_whatever_the_targets_dtype():
    prior = np.array([0.5, 0.3, 0.2])
    onehot = np.eye(3, dtype="float32")[[0, 0, 1, 2, 0]]
    # smoothed targets 0.9·y + 0.1/3, against the log of the prior, averaged over 5 rows
    rows = [(0.9 + 0.1 / 3) * math.log(p) + (0.1 / 3) * (math.log(prior.prod()) - math.log(p))
            for p in prior[[0, 0, 1, 2, 0]]]  # fmt: skip
    assert checks.prior_cross_entropy(prior, 0.1, onehot) == pytest.approx(
        -sum(rows) / 5, rel=1e-13
    )


def test_the_saved_batch_is_what_the_augmentation_layers_do_in_training():
    from stages.shared.models.classifiers import augmentation_layers, build_classifier

    keras.utils.set_random_seed(6)
    layers = augmentation_layers("horizontal", 0.0, 0.0)
    model = build_classifier("simple_cnn", size=8, num_classes=2, dropout=0.0, aug=layers)
    images = np.random.default_rng(6).uniform(0, 255, (16, 8, 8, 3)).astype("float32")
    seen = checks.seen_by_model(model, images, layers)
    again = checks.seen_by_model(model, images, layers)  # the random state was put back
    np.testing.assert_array_equal(seen, again)
    flipped = [not np.array_equal(s, i) for s, i in zip(seen, images, strict=True)]
    for s, i, flip in zip(seen, images, flipped, strict=True):
        np.testing.assert_allclose(s, i[:, ::-1] if flip else i, atol=1e-4)
    assert 0 < sum(flipped) < 16  # some mirrored, some not
    first_step = layers[0](images, training=True)  # what training's first step sees
    np.testing.assert_array_equal(seen, keras.ops.convert_to_numpy(first_step))
    np.testing.assert_array_equal(checks.seen_by_model(model, images, []), images)
