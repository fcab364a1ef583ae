"""stages/train_classifier.py: deterministic, resumable training that saves its provenance."""

from __future__ import annotations

import json
import logging
import math

import keras
import numpy as np
import pandas as pd
import pytest

from stages import augment, split, train_classifier
from stages.shared.params.sections import load_params
from stages.shared.training import loop
from tests.conftest import (
    ROOT,
    make_classification,
    refuses,
    run_paths,
    scripted_validation,
    usage,
    write_image,
    write_params,
)

TINY = {
    "epochs": 2,
    "batch_size": 8,
    "early_stopping_patience": 5,
}


@pytest.fixture
def classification_data(workdir):
    make_classification(workdir / "ds", {"a": 12, "b": 12, "c": 12})
    write_params(
        workdir,
        data={"classification": "ds"},
        base={"seed": 1, "image_size": {"classification": 16, "detection": 32}},
        train_classifier=TINY,
    )
    split.main(["classification"])
    augment.main(["classification"])
    return workdir


def test_two_identical_runs_give_identical_weights(classification_data):
    cfg, base = load_params("train_classifier"), load_params("base")
    loop.train(train_classifier.Classifier, cfg, base, run_paths("classification", "one"))
    loop.train(train_classifier.Classifier, cfg, base, run_paths("classification", "two"))
    one = keras.models.load_model("models/one.keras").get_weights()
    two = keras.models.load_model("models/two.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    meta = json.loads((classification_data / "models/one.json").read_text())
    assert meta["classes"] == ["a", "b", "c"] and meta["params"]["epochs"] == 2
    assert meta["image_size"] == 16 and len(meta["manifest_md5"]) == 32
    summary = json.loads((classification_data / "reports/train/one/metrics.json").read_text())
    assert summary["step"] == 1 and "learning_rate" in summary["train"]
    assert summary["best"]["val_accuracy"] == meta["val_accuracy"]
    # Cost beside accuracy in the stage's metrics: what Keras counts, the file's bytes.
    assert (
        summary["cost"]["parameters"] == keras.models.load_model("models/one.keras").count_params()
    )
    assert (
        summary["cost"]["model_bytes"] == (classification_data / "models/one.keras").stat().st_size
    )
    assert summary["cost"]["flops_per_image"] > 2 * summary["cost"]["parameters"]
    # Speed apart from the reports: one row per epoch, FLOP/s from the model's own count.
    speed = classification_data / "reports/throughput/one"
    rates = pd.read_csv(speed / "plots/metrics/train/images_per_second.tsv", sep="\t")
    flops = pd.read_csv(speed / "plots/metrics/train/model_gflops_per_second.tsv", sep="\t")
    assert rates["step"].tolist() == flops["step"].tolist() == [0, 1]
    expected = rates["images_per_second"] * 3 * summary["cost"]["flops_per_image"] / 1e9
    assert flops["model_gflops_per_second"].tolist() == pytest.approx(expected.tolist(), rel=1e-2)
    speeds = json.loads((speed / "metrics.json").read_text())
    median = rates["images_per_second"].median()
    assert speeds["median"]["images_per_second"] == pytest.approx(median)
    assert speeds["flops_per_image"] == summary["cost"]["flops_per_image"]
    train_rows = pd.read_csv("data/augmented/classification/manifest.csv").query("split == 'train'")
    assert speeds["images_per_epoch"] == len(train_rows) and speeds["device"]
    assert not list((classification_data / "reports/train/one").rglob("*per_second*"))
    # Every epoch ran, each on a seeded shuffle: the saved first batch is not the first
    # records in their written order.
    assert meta["epochs_run"] == 2
    from stages.shared.data.tfdata import read_pixels

    saved = np.load(classification_data / "models/one_batch.npz")["images"]
    in_order = read_pixels(classification_data / "data/augmented/classification", "train")
    assert saved.shape == (8, 16, 16, 3) and not np.array_equal(saved, in_order[:8])


class Interrupt(keras.callbacks.Callback):
    """Stops training abruptly at the end of an epoch, after its backup, as a kill would."""

    def __init__(self, epoch: int):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def histories(live_dir) -> dict[str, list]:
    """Every DVCLive series (step, value), timestamps left out."""
    return {
        path.relative_to(live_dir).as_posix(): pd.read_csv(path, sep="\t")
        .drop(columns="timestamp", errors="ignore")
        .to_numpy()
        .tolist()
        for path in sorted(live_dir.rglob("*.tsv"))
    }


def plateau_after_first_epoch():
    """Validation set by hand: epoch 1 answers uniformly (val loss ln 3), every later epoch a
    confident "a" (val loss ~20): from epoch 2 on the val loss never improves, on any CPU."""
    from stages.shared.training.checks import output_layer

    return scripted_validation(
        output_layer, lambda model, epoch: [0.0] * 3 if epoch == 0 else [30.0, 0.0, 0.0]
    )


def test_an_interrupted_run_resumes_and_ends_as_an_uninterrupted_one(classification_data):
    # ReduceLROnPlateau with patience 1 and early stopping with patience 2 on a plateau built
    # from epoch 2: the rate halves after epochs 2 and 3 and the run stops after epoch 3. Killed
    # after epoch 2, the resumed run must carry both counters over: a lost early-stopping wait
    # would train a 4th epoch, a lost rate would train epoch 3 at 0.01.
    cfg = load_params("train_classifier").model_copy(
        update={
            "epochs": 5,
            "learning_rate": 0.01,
            "early_stopping_patience": 2,
            "reduce_lr": load_params("train_classifier").reduce_lr.model_copy(
                update={"patience": 1}
            ),
        }
    )
    # The whole epoch in one call of the compiled step (1000 is lowered to the epoch's steps):
    # a resume must not depend on what runs per call either.
    base = load_params("base").model_copy(update={"steps_per_execution": 1000})
    straight = run_paths("classification", "straight")
    loop.train(
        train_classifier.Classifier,
        cfg,
        base,
        {**straight, "extra_callbacks": [plateau_after_first_epoch()]},
    )
    run = run_paths("classification")
    with pytest.raises(KeyboardInterrupt):
        loop.train(
            train_classifier.Classifier,
            cfg,
            base,
            {**run, "extra_callbacks": [plateau_after_first_epoch(), Interrupt(1)]},
        )
    assert list((classification_data / ".work/train_classifier").glob("*/backup"))

    epochs: list[int] = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs.append(epoch))
    resumed = {**run, "extra_callbacks": [plateau_after_first_epoch(), record]}
    summary = loop.train(train_classifier.Classifier, cfg, base, resumed)
    assert epochs == [2]  # 0-based: the run goes on at epoch 3, its last
    one = keras.models.load_model("models/straight.keras").get_weights()
    two = keras.models.load_model("models/run.keras").get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(one, two, strict=True))
    live = classification_data / "reports/train"
    assert histories(live / "run") == histories(live / "straight")
    speeds = classification_data / "reports/throughput"
    rows = pd.read_csv(classification_data / "data/augmented/classification/manifest.csv")
    batches = math.ceil((rows["split"] == "train").sum() / TINY["batch_size"])
    for run_name in ("run", "straight"):  # one speed per epoch, none logged twice
        tsv = speeds / run_name / "plots/metrics/train/images_per_second.tsv"
        assert pd.read_csv(tsv, sep="\t")["step"].tolist() == [0, 1, 2], run_name
        calls = json.loads((speeds / run_name / "metrics.json").read_text())
        assert calls["steps_per_execution"] == {"steps": batches} and batches >= 2
    rates = pd.read_csv(live / "run/plots/metrics/train/learning_rate.tsv", sep="\t")
    # Logged at each epoch's end, after ReduceLROnPlateau: epoch 3 trained at 0.005.
    assert rates["learning_rate"].tolist() == pytest.approx([0.01, 0.005, 0.0025])
    meta = json.loads((classification_data / "models/straight.json").read_text())
    assert summary["epochs_run"] == meta["epochs_run"] == 3 and meta["best_epoch"] == 1
    assert not list((classification_data / ".work/train_classifier").iterdir())


def test_an_early_stop_records_the_epochs_really_run(classification_data):
    cfg = load_params("train_classifier").model_copy(update={"epochs": 6})

    class StopAtThree(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            self.model.stop_training = epoch == 2

    run = {**run_paths("classification"), "extra_callbacks": [StopAtThree()]}
    loop.train(train_classifier.Classifier, cfg, load_params("base"), run)
    meta = json.loads((classification_data / "models/run.json").read_text())
    assert meta["params"]["epochs"] == 6 and meta["epochs_run"] == 3
    losses = pd.read_csv("reports/train/run/plots/metrics/eval/loss.tsv", sep="\t")["loss"]
    assert meta["best_epoch"] == int(losses.to_numpy().argmin()) + 1


def test_exponential_schedule_really_lowers_the_rate(classification_data):
    cfg = load_params("train_classifier").model_copy(
        update={
            "schedule": "exponential",
            "decay_rate": 0.5,
            "learning_rate": 0.01,
            "reduce_lr": load_params("train_classifier").reduce_lr.model_copy(
                update={"patience": 0}
            ),
        }
    )
    loop.train(train_classifier.Classifier, cfg, load_params("base"), run_paths("classification"))
    rates = classification_data / "reports/train/run/plots/metrics/train/learning_rate.tsv"
    values = [float(line.split("\t")[1]) for line in rates.read_text().splitlines()[1:]]
    assert values[0] == pytest.approx(0.005, rel=1e-3) and values[1] == pytest.approx(
        0.0025, rel=1e-3
    )


class EpochWeights(keras.callbacks.Callback):
    """The weights (all, and the backbone's) at the end of every epoch, with the val loss."""

    def __init__(self, store: dict):
        super().__init__()
        self.store = store

    def on_epoch_end(self, epoch, logs=None):
        backbone = [w.copy() for w in self.model.get_layer("backbone").get_weights()]
        weights = [w.copy() for w in self.model.get_weights()]
        self.store[epoch] = (logs["val_loss"], weights, backbone)


def same(one, two) -> bool:
    return len(one) == len(two) and all(
        np.array_equal(a, b) for a, b in zip(one, two, strict=False)
    )


def test_fine_tuning_saves_the_best_epoch_of_either_phase(classification_data):
    """Phase 1 trains a head on a pretrained, frozen backbone; phase 2 unfreezes its top. The
    saved model must be the best epoch over both phases. Which epoch is best is set by the
    test, not by this CPU's trajectory: epoch 4 (phase 2, not the last) is validated on a
    uniform answer (val loss ln 3), every other epoch on a confident "a" (logits 30, 0, 0: val
    loss 30 times the val share of b and c); the saved weights must be epoch 4's."""
    from stages.shared.models.classifiers import build_classifier
    from stages.shared.models.store import save_model
    from stages.shared.training.checks import output_layer

    keras.utils.set_random_seed(1)
    donor = build_classifier("plain_cnn", size=16, num_classes=4, dropout=0.0, aug=[])
    save_model(donor, classification_data / "pretrained/donor.keras", {})
    base_cfg = load_params("train_classifier")
    cfg = base_cfg.model_copy(
        update={
            "architecture": "plain_cnn",
            "weights": "pretrained/donor.keras",
            "epochs": 2,
            "early_stopping_patience": 10,
            "fine_tune": base_cfg.fine_tune.model_copy(
                update={"layers": 6, "epochs": 3, "learning_rate": 1e-3}
            ),
        }
    )
    seen: dict = {}
    best = 3
    scripted = scripted_validation(
        output_layer, lambda model, epoch: [0.0] * 3 if epoch == best else [30.0, 0.0, 0.0]
    )
    run = {**run_paths("classification"), "extra_callbacks": [scripted, EpochWeights(seen)]}
    summary = loop.train(train_classifier.Classifier, cfg, load_params("base"), run)
    assert sorted(seen) == [0, 1, 2, 3, 4]
    val = pd.read_csv(classification_data / "data/split/classification.csv").query("split == 'val'")
    confident = np.log(np.exp(30.0) + 2) * (val["label"] != "a").mean()  # −log softmax
    assert seen[best][0] == pytest.approx(np.log(3), abs=1e-5)
    assert all(seen[e][0] == pytest.approx(confident, rel=1e-4) for e in (0, 1, 2, 4))
    saved = keras.models.load_model(classification_data / "models/run.keras")
    assert same(saved.get_weights(), seen[best][1])
    meta = json.loads((classification_data / "models/run.json").read_text())
    assert meta["epochs_run"] == 5 and meta["best_epoch"] == best + 1 == summary["best_epoch"]
    assert meta["val_loss"] == pytest.approx(seen[best][0], abs=1e-4)
    # Phase 1 kept the pretrained backbone as it was; phase 2 changed its top convolutions
    # (BatchNorm stays frozen) and nothing below them.
    donor_backbone = donor.get_layer("backbone")
    assert same(seen[1][2], donor_backbone.get_weights())
    tuned = saved.get_layer("backbone").layers
    changed = [
        i
        for i, layer in enumerate(tuned)
        if not same(layer.get_weights(), donor_backbone.layers[i].get_weights())
    ]
    convs = [i for i, layer in enumerate(tuned) if isinstance(layer, keras.layers.Conv2D)]
    assert changed == convs[-2:]


def test_a_classifier_that_cannot_learn_says_so_in_one_line(classification_data, caplog):
    """A learning rate of 1e-12 leaves the output at the train prior, the baseline itself:
    its val loss cannot beat the prior's, on any CPU."""
    cfg = load_params("train_classifier").model_copy(update={"learning_rate": 1e-12})
    with caplog.at_level(logging.WARNING):
        loop.train(
            train_classifier.Classifier, cfg, load_params("base"), run_paths("classification")
        )
    learned = json.loads((classification_data / "models/run.json").read_text())["checks"]
    learned = learned["learned"]
    split = pd.read_csv(classification_data / "data/split/classification.csv")
    prior = split.query("split == 'train'")["label"].value_counts(normalize=True)
    val = split.query("split == 'val'")["label"]
    expected = -np.log(prior[val].to_numpy()).mean()  # cross-entropy of the prior on val
    assert learned == {
        "learned": False,
        "metric": "loss",
        "best": pytest.approx(expected, abs=2e-4),
        "baseline": pytest.approx(expected, abs=1e-4),
        "baseline_name": "the train prior",
    }
    lines = [r.getMessage() for r in caplog.records if "never learned" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("never learned: the best val loss ")


def classifier_task(cfg, train_labels: str, val_labels: str = "") -> train_classifier.Classifier:
    """The classifier task on a manifest whose train / val rows carry these labels."""
    labels = [*train_labels, *val_labels]
    split = ["train"] * len(train_labels) + ["val"] * len(val_labels)
    return train_classifier.Classifier(cfg, pd.DataFrame({"label": labels, "split": split}))


def test_balanced_class_weights_are_samples_over_classes_times_count():
    cfg = load_params("train_classifier", ROOT / "params.yaml")
    none = cfg.model_copy(update={"class_weight": "none"})
    assert classifier_task(none, "abac").class_weight() is None
    balanced = cfg.model_copy(update={"class_weight": "balanced"})
    # val rows count for the classes, not for the weights
    weights = classifier_task(balanced, "aaabcc", "bbbbbb").class_weight()
    assert weights == pytest.approx({0: 6 / 9, 1: 2.0, 2: 1.0})


def test_the_model_starts_at_the_class_prior_with_augmentation_unless_overfitting(tmp_path):
    from stages.shared.training.checks import output_layer

    cfg = load_params("train_classifier", ROOT / "params.yaml")
    aug = cfg.in_model_augmentation.model_copy(update={"flip": "horizontal", "rotation": 0.1})
    cfg = cfg.model_copy(update={"in_model_augmentation": aug, "dropout": 0.25})
    prior = np.array([0.5, 0.3, 0.2])
    task = classifier_task(cfg, "aaaaabbbcc", "c")
    model, layers = task.build(16), task.layers
    assert model.input_shape == (None, 16, 16, 3) and model.output_shape == (None, 3)
    bias = keras.ops.convert_to_numpy(output_layer(model).bias)
    assert np.allclose(bias, np.log(prior))
    assert [type(layer).__name__ for layer in layers] == ["RandomFlip", "RandomRotation"]
    assert any(getattr(layer, "rate", None) == 0.25 for layer in model.layers)  # the dropout
    overfit = cfg.model_copy(update={"debug": "overfit"})
    task = classifier_task(overfit, "aaaaabbbcc", "c")
    task.build(16)
    assert task.layers == []


def test_the_first_batch_check_compares_the_loss_with_the_priors_and_saves_the_batch(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(2, activation="softmax")])  # fmt: skip
    model.layers[-1].kernel.assign(np.zeros((48, 2), "float32"))
    model.layers[-1].bias.assign(np.log([0.75, 0.25]).astype("float32"))
    images = np.full((4, 4, 4, 3), 300.4, "float32")
    images[0] = -2.0
    targets = np.array([[1, 0], [1, 0], [1, 0], [0, 1]], "float32")
    cfg = load_params("train_classifier", ROOT / "params.yaml").model_copy(
        update={"label_smoothing": 0.2}
    )
    task = classifier_task(cfg, "aaab")  # the prior: 0.75, 0.25
    task.layers = []
    report, saved = task.first_batch(model, images, targets)
    # Smoothed targets (0.9, 0.1) ×3 and (0.1, 0.9): −mean Σ t·log p, by hand.
    by_hand = -(3 * (0.9 * np.log(0.75) + 0.1 * np.log(0.25))
                + (0.1 * np.log(0.75) + 0.9 * np.log(0.25))) / 4  # fmt: skip
    assert report["first_batch"] == pytest.approx(by_hand, abs=1e-4)
    assert report["expected_from_prior"] == pytest.approx(by_hand, abs=1e-4)
    assert report["loss"] == "categorical cross-entropy"
    assert saved["images"].dtype == np.uint8
    assert saved["images"][0].max() == 0 and saved["images"][1].min() == 255  # clipped
    assert np.array_equal(saved["targets"], targets)


def test_the_command_line_says_what_the_stage_does_and_refuses_other_arguments(capsys):
    assert usage(train_classifier.main) == (
        "[-h] [--manifest MANIFEST] [--model MODEL] [--batch BATCH] [--live-dir "
        "LIVE_DIR] [--throughput-dir THROUGHPUT_DIR] [--tensorboard TENSORBOARD] "
        "Stage `train-classifier`: train a Keras "
        "3 classifier on the augmented classification data. options: -h, --help show "
        "this help message and exit --manifest MANIFEST --model MODEL --batch BATCH "
        "--live-dir LIVE_DIR --throughput-dir THROUGHPUT_DIR --tensorboard TENSORBOARD"
    )
    assert refuses(train_classifier.main, ["--epochs", "3"], capsys).endswith(
        "unrecognized arguments: --epochs 3"
    )


def test_the_stage_trains_from_params_yaml_and_says_where_the_model_went(
    classification_data, capsys
):
    write_params(
        classification_data,
        data={"classification": "ds"},
        base={
            "seed": 1,
            "image_size": {"classification": 16, "detection": 32},
            "jit_compile": True,
        },
        train_classifier={**TINY, "epochs": 1, "label_smoothing": 0.1},
    )
    capsys.readouterr()
    train_classifier.main(["--model", "models/clf.keras", "--live-dir", "reports/train/clf"])
    meta = json.loads((classification_data / "models/clf.json").read_text())
    assert meta["task"] == "classification" and meta["params"]["label_smoothing"] == 0.1
    summary = {k: meta[k] for k in ("val_loss", "val_accuracy", "epochs_run", "best_epoch")}
    last = capsys.readouterr().out.splitlines()[-1]  # after Keras' progress lines
    assert last == f"train-classifier: best {summary} → models/clf.keras"
    # The model goes on (resume, fine-tuning) with the loss and compiler it was trained with.
    compiled = keras.models.load_model("models/clf.keras").get_compile_config()
    assert compiled["loss"]["config"]["label_smoothing"] == 0.1 and compiled["jit_compile"]
    assert (classification_data / "reports/train/clf/metrics.json").exists()


def test_a_manifest_without_val_rows_is_named_in_one_line(classification_data):
    from stages.shared.core.cli import UserError
    from stages.shared.data.manifest import write_manifest

    manifest = classification_data / "data/augmented/classification/manifest.csv"
    frame = pd.read_csv(manifest)
    frame["split"] = frame["split"].replace("val", "train")
    write_manifest(manifest, frame, "classification", extra=("source",))
    with pytest.raises(
        UserError,
        match=r"^data/augmented/classification/manifest\.csv: no val rows"
        r" — set split\.fractions\.val above 0$",
    ):
        train_classifier.main([])
    assert not (classification_data / "models/classifier.keras").exists()


def test_auto_size_augments_and_trains_at_the_median_short_side_of_the_users_images(workdir):
    # Portrait and landscape pictures whose short sides have a median of 44.5 px -> 40 px input.
    rng = np.random.default_rng(3)
    shapes = [(45, 70), (90, 40), (52, 47), (38, 60), (70, 45), (44, 100)]
    for label in ("a", "b"):
        for i in range(12):
            write_image(workdir / "ds" / label / f"{i:02d}.png", rng, size=shapes[i % 6])
    write_params(
        workdir,
        data={"classification": "ds"},
        base={"seed": 1, "image_size": {"classification": "auto", "detection": 32}},
        train_classifier={**TINY, "epochs": 1},
    )
    split.main(["classification"])
    augment.main(["classification"])
    out = pd.read_csv(workdir / "data/augmented/classification/manifest.csv")
    copies = out[out["path"] != out["source"]]
    assert len(copies) > 0 and set(copies["width"]) == set(copies["height"]) == {40}
    report = json.loads((workdir / "reports/data/augment-classification.json").read_text())
    assert report["image_size"] == 40
    train_classifier.main([])
    meta = json.loads((workdir / "models/classifier.json").read_text())
    model = keras.models.load_model(workdir / "models/classifier.keras")
    assert meta["image_size"] == 40 and model.input_shape == (None, 40, 40, 3)


def test_shards_written_at_another_size_name_the_folder_and_the_fix(classification_data):
    from stages.shared.core.cli import UserError
    from stages.shared.data.manifest import read_manifest
    from stages.shared.training import inputs

    manifest = "data/augmented/classification/manifest.csv"
    frame = read_manifest(classification_data / manifest, "classification")
    cfg = load_params("train_classifier")
    message = (
        r"^data/augmented/classification: shards hold 16 px images, training expects 24 — re-run"
        r" `dvc repro` so augment writes them at the current size$"
    )
    with pytest.raises(UserError, match=message):
        inputs.train_val_data(frame, manifest, lambda rows: None, 24, cfg, 1, 8)
