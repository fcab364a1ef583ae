"""The `plot` stage and plotting.py: every figure and the summary page from small fake reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages import plot
from stages.shared import plotting
from stages.shared.cli import UserError
from stages.shared.metrics import confusion_table, per_class_report, roc_averages, roc_points
from tests.conftest import refuses, usage, write_image

FIGURES = [
    "classifier_training.png",
    "classifier_confusion.png",
    "classifier_roc.png",
    "classifier_mistakes.png",
    "detector_training.png",
    "detector_pr.png",
    "detector_iou.png",
    "detector_gallery.png",
    "classifier_train_batch.png",
    "detector_train_batch.png",
    "classifier_behaviour.png",
    "detector_behaviour.png",
    "detector_slices.png",
]


def write_history(live_dir: Path, metrics: list[str], epochs: int = 4) -> None:
    """DVCLive-shaped TSVs: plots/metrics/{train,eval}/<metric>.tsv with step + value."""
    for phase in ("train", "eval"):
        for metric in metrics:
            path = live_dir / "plots" / "metrics" / phase / f"{metric}.tsv"
            path.parent.mkdir(parents=True, exist_ok=True)
            values = np.linspace(1.0, 0.2, epochs)
            pd.DataFrame({"step": range(epochs), metric: values}).to_csv(
                path, sep="\t", index=False
            )


def fake_reports(root: Path) -> None:
    """Training history, evaluation reports and model metadata for both models, tiny."""
    rng = np.random.default_rng(0)
    write_history(root / "reports/train/classifier", ["loss", "accuracy", "learning_rate"])
    write_history(root / "reports/train/detector", ["loss", "class_loss", "box_loss", "mean_iou"])
    classes = ["cat", "dog", "owl"]
    actual = np.array([0, 0, 1, 1, 2, 2])
    proba = rng.dirichlet(np.ones(3), 6)
    proba[np.arange(6), actual] += 1.0
    proba[3] = [0.7, 0.2, 0.1]  # one mistake: a dog taken for a cat
    proba /= proba.sum(axis=1, keepdims=True)
    ev = root / "reports/eval/classifier"
    ev.mkdir(parents=True)
    paths = [str(write_image(root / f"data/c/{i}.png", rng, (16, 16))) for i in range(6)]
    names = np.array(classes)
    pd.DataFrame(
        {
            "path": paths,
            "actual": names[actual],
            "predicted": names[proba.argmax(1)],
            "confidence": proba.max(1),
        }
    ).to_csv(ev / "predictions.csv", index=False)
    per_class_report(actual, proba, classes).to_csv(ev / "per_class.csv", index=False)
    confusion_table(actual, proba.argmax(1), classes).to_csv(ev / "confusion.csv", index=False)
    roc_points(actual, proba, classes).to_csv(ev / "roc.csv", index=False)
    roc_averages(actual, proba).to_csv(ev / "roc_average.csv", index=False)
    (ev / "metrics.json").write_text(
        json.dumps(
            {
                "test_images": 6,
                "skipped": 0,
                "accuracy": 0.8333,
                "ci95": {"accuracy": {"low": 0.5, "high": 1.0}},
                "baseline": {"majority": {"accuracy": 0.9, "macro_f1": 0.3}},
            }
        )
    )
    dv = root / "reports/eval/detector"
    dv.mkdir(parents=True)
    rows = []
    for i in range(5):
        path = str(write_image(root / f"data/d/{i}.jpg", rng, (40, 30)))
        present = int(i < 4)
        rows.append(
            [
                path,
                present,
                0.2,
                0.2,
                0.6,
                0.7,
                0.9 - 0.1 * i,
                int(i < 3),
                0.25,
                0.2,
                0.6,
                0.6,
                0.8 if present else np.nan,
            ]
        )
    columns = [
        "path",
        "present",
        "x1",
        "y1",
        "x2",
        "y2",
        "score",
        "predicted_present",
        "pred_x1",
        "pred_y1",
        "pred_x2",
        "pred_y2",
        "iou",
    ]
    pd.DataFrame(rows, columns=columns).to_csv(dv / "predictions.csv", index=False)
    curve = {
        "threshold": [0.9, 0.8, 0.5],
        "precision": [1.0, 1.0, 0.75],
        "recall": [0.25, 0.5, 0.75],
    }
    pd.DataFrame(curve).to_csv(dv / "pr_curve.csv", index=False)
    scores = {"test_images": 5, "positives": 4, "skipped": 1, "ap50": 0.6931, "mean_iou": 0.8}
    scores["behaviour"] = {"flip": {"box_iou": 0.61, "presence_agreement": 1.0}}
    iou = {
        "images": 2,
        "mean_iou": 0.7,
        "recall50": 1.0,
        "ci95": {"mean_iou": {"low": 0.6, "high": 0.8}},
    }
    empty = {"images": 0, "mean_iou": None, "recall50": None}
    scores["slices"] = {
        "size": {"small": empty, "medium": iou, "large": iou},
        "position": {"border": iou, "central": iou},
        "negatives": {"images": 1, "false_positive_rate": 0.0},
    }
    (dv / "metrics.json").write_text(json.dumps(scores))
    pd.DataFrame(
        [
            ("flip", p, v)
            for p, v in zip(
                pd.read_csv(dv / "predictions.csv")["path"][:2], (0.2, 0.9), strict=True
            )
        ],
        columns=["check", "path", "score"],
    ).to_csv(dv / "behaviour.csv", index=False)
    ev_dir = root / "reports/eval/classifier"
    pd.DataFrame(
        [("jpeg", p, -0.3) for p in pd.read_csv(ev_dir / "predictions.csv")["path"][:3]],
        columns=["check", "path", "score"],
    ).to_csv(ev_dir / "behaviour.csv", index=False)
    for task, classes in (("classification", ["cat", "dog", "owl"]), ("detection", ["object"])):
        report = {
            "dataset": f"data/{task}",
            "splits": {"train": 9, "val": 3, "test": 6},
            "classes": {c: {} for c in classes},
            "skipped": {"count": 2},
        }
        path = root / f"reports/data/{task}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(report))
    (root / "models").mkdir()
    from stages.shared.checks import save_arrays

    images = rng.integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    save_arrays(
        root / "models/classifier_batch.npz", images=images, targets=np.eye(3)[[0, 1, 2, 0, 1]]
    )
    boxes = np.tile([0.1, 0.2, 0.6, 0.7], (5, 1))
    present = np.array([[1.0], [1.0], [0.0], [1.0], [0.0]])
    save_arrays(root / "models/detector_batch.npz", images=images, present=present, boxes=boxes)
    for name, params in (
        ("classifier", {"architecture": "simple_cnn", "epochs": 3}),
        ("detector", {"backbone": "plain_cnn", "loss_weights": {"localization": 1.0}}),
    ):
        meta = {"image_size": 16, "seed": 1, "manifest_md5": "ab" * 16, "params": params}
        meta["classes"] = ["cat", "dog", "owl"] if name == "classifier" else None
        (root / f"models/{name}.json").write_text(json.dumps({**meta, "val_loss": 0.25}))


def test_plot_stage_writes_every_figure_and_the_summary(plots_project):
    workdir = plots_project
    fake_reports(workdir)
    plot.main([])
    for name in FIGURES:
        path = workdir / "reports/figures" / name
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width > 250 and img.height > 150, name
            # Not a blank canvas: a figure has many distinct colours.
            assert len(img.convert("RGB").getcolors(maxcolors=1 << 20)) > 50, name
    page = (workdir / "reports/summary.md").read_text()
    for name in FIGURES:
        assert f"(figures/{name})" in page
    assert "| accuracy | 0.8333 (95% CI 0.5–1) | 0.9 (majority) |" in page
    assert "| ap50 | 0.6931 | - |" in page
    assert "| size: small | 0 | mean_iou | none |" in page
    assert "| size: medium | 2 | mean_iou | 0.7 (95% CI 0.6–0.8) |" in page
    assert "| negatives | 1 | false-positive rate | 0 |" in page
    assert "| flip | 0.61 | 1 |" in page
    # The model loses to "always the majority class" on accuracy: said first, in one line.
    first = page.splitlines()[0]
    expected = "the classifier does not beat its baseline on accuracy 0.8333 vs 0.9 (majority)."
    assert first == f"**Warning: {expected}**"
    assert "| architecture | simple_cnn |" in page and "| backbone | plain_cnn |" in page
    assert "| dog | 1 | 0.5 | 0.6667 | 2 | 0.75 |" in page  # per-class table
    assert "1 unreadable, skipped" in page
    card = (workdir / "reports/model_card_classifier.md").read_text()
    for expected in (
        "## Intended use",
        "## Limitations",
        "| test images | 6 |",
        "| cat, dog, owl",
        "| accuracy | 0.8333 (95% CI 0.5–1) | 0.9 (majority) |",
        "| architecture | simple_cnn |",
        "abababab",
    ):
        assert expected in card, expected
    detector_card = (workdir / "reports/model_card_detector.md").read_text()
    assert (
        "| ap50 | 0.6931 |" in detector_card
        and "| loss_weights.localization | 1 |" in detector_card
    )


def test_plot_is_byte_stable(plots_project):
    workdir = plots_project
    fake_reports(workdir)
    plot.main([])
    first = {p.name: p.read_bytes() for p in (workdir / "reports/figures").iterdir()}
    plot.main([])
    assert first == {p.name: p.read_bytes() for p in (workdir / "reports/figures").iterdir()}


def test_plot_without_evaluation_reports_names_the_missing_file(workdir):
    with pytest.raises(UserError, match=r"reports/eval/classifier/metrics.json: not found"):
        plot.main([])


def test_gallery_draws_the_predicted_box_where_it_says(tmp_path):
    path = tmp_path / "white.png"
    Image.new("RGB", (100, 80), "white").save(path)
    row = {
        "path": str(path),
        "present": 1,
        "x1": 0.1,
        "y1": 0.1,
        "x2": 0.3,
        "y2": 0.3,
        "score": 0.9,
        "predicted_present": 1,
        "pred_x1": 0.5,
        "pred_y1": 0.25,
        "pred_x2": 0.9,
        "pred_y2": 0.75,
        "iou": 0.0,
    }
    fig = plotting.detection_gallery(pd.DataFrame([row]), columns=1)
    ax = fig.axes[0]
    red = [p for p in ax.patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
    assert len(red) == 1
    # Pixel i is drawn centred at i: the box's left edge (0.5 of 100 px) sits at 49.5.
    assert red[0].get_xy() == pytest.approx((49.5, 19.5))
    assert red[0].get_width() == pytest.approx(40)
    assert red[0].get_height() == pytest.approx(40)
    plotting.save_figure(fig, tmp_path / "g.png", 60)


def test_spread_picks_evenly_and_stably():
    rows = pd.DataFrame({"path": [f"{i:02d}" for i in range(10)][::-1]})
    assert list(plot.spread(rows, 5)["path"]) == ["00", "02", "04", "06", "08"]
    assert len(plot.spread(rows, 20)) == 10


def test_a_debug_run_is_marked_everywhere_a_reader_looks(plots_project):
    workdir = plots_project
    fake_reports(workdir)
    meta_path = workdir / "models/detector.json"
    meta = json.loads(meta_path.read_text())
    meta["debug"] = {
        "mode": "overfit",
        "steps": 120,
        "first_loss": 2.3,
        "final_loss": 0.08,
        "threshold": 0.2,
        "passed": True,
    }
    meta_path.write_text(json.dumps(meta))
    plot.main([])
    page = (workdir / "reports/summary.md").read_text()
    assert "**Warning: the detector is a debug run (debug: overfit), not a model.**" in page
    assert "train loss 0.08 after 120 steps, threshold 0.2: passed" in page
    card = (workdir / "reports/model_card_detector.md").read_text()
    assert card.splitlines()[2] == "**Debug run (`debug: overfit`): not a model to use.**"
    assert "debug run" not in (workdir / "reports/model_card_classifier.md").read_text().lower()


def test_the_command_line_says_what_the_stage_does_and_refuses_other_arguments(capsys):
    assert usage(plot.main) == (
        "[-h] Stage `plot`: the figures and the page a reviewer reads, from the "
        "training and test reports. options: -h, --help show this help message and exit"
    )
    assert refuses(plot.main, ["extra"], capsys).endswith("unrecognized arguments: extra")
