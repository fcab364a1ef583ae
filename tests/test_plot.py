"""The `plot` stage and plotting.py: every figure and the summary page from small fake reports."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages import plot
from stages import summary as summary_stage
from stages.shared.core.cli import UserError
from stages.shared.evaluation.metrics import (
    confusion_table,
    per_class_report,
    roc_averages,
    roc_points,
)
from stages.shared.params.sections import load_params
from stages.shared.review import plotting
from tests.conftest import (
    ROOT,
    read_eval_report,
    refuses_choice,
    usage,
    write_eval_report,
    write_image,
)

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
    write_eval_report(
        ev,
        "classifier",
        {
            "test_images": 6,
            "skipped": 0,
            "accuracy": 0.8333,
            "ci95": {"accuracy": {"low": 0.5, "high": 1.0}},
            "baseline": {"majority": {"accuracy": 0.9, "macro_f1": 0.3}},
        },
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
    write_eval_report(dv, "detector", scores)
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
    from stages.shared.training.checks import save_arrays

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


def plot_all() -> None:
    """What `dvc repro` runs after evaluation: plot@classifier, plot@detector, summary."""
    plot.main(["classifier"])
    plot.main(["detector"])
    summary_stage.main([])


def figure_file(root, name: str):
    """Where plot@<model> writes figure `name` (its file name starts with the model)."""
    return root / "reports/figures" / name.split("_")[0] / name


def test_plot_stage_writes_every_figure_and_the_summary(plots_project):
    workdir = plots_project
    fake_reports(workdir)
    plot_all()
    for name in FIGURES:
        path = figure_file(workdir, name)
        with Image.open(path) as img:
            assert img.format == "PNG" and img.width > 250 and img.height > 150, name
            # Not a blank canvas: a figure has many distinct colours.
            assert len(img.convert("RGB").getcolors(maxcolors=1 << 20)) > 50, name
    page = (workdir / "reports/summary.md").read_text()
    for name in FIGURES:
        assert f"(figures/{name.split('_')[0]}/{name})" in page
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
    plot_all()
    first = {p.name: p.read_bytes() for p in (workdir / "reports/figures").rglob("*.png")}
    plot_all()
    assert first == {p.name: p.read_bytes() for p in (workdir / "reports/figures").rglob("*.png")}
    assert len(first) >= 8


def test_plot_without_evaluation_reports_names_the_missing_file(workdir):
    with pytest.raises(UserError, match=r"reports/eval/classifier/metrics.json: not found"):
        plot.main(["classifier"])


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
    # An overfit run trains one batch, no epoch: it leaves no training history to draw.
    shutil.rmtree(workdir / "reports/train/detector/plots")
    plot_all()
    assert not figure_file(workdir, "detector_training.png").exists()
    assert figure_file(workdir, "detector_pr.png").exists()
    assert figure_file(workdir, "classifier_training.png").exists()  # the other model's run
    detector_section = json.loads((workdir / "reports/summary/detector.json").read_text())
    assert "detector_training.png" not in detector_section["section"]
    assert "detector_pr.png" in detector_section["section"]
    page = (workdir / "reports/summary.md").read_text()
    assert "**Warning: the detector is a debug run (debug: overfit), not a model.**" in page
    assert "train loss 0.08 after 120 steps, threshold 0.2: passed" in page
    card = (workdir / "reports/model_card_detector.md").read_text()
    assert card.splitlines()[2] == "**Debug run (`debug: overfit`): not a model to use.**"
    assert "debug run" not in (workdir / "reports/model_card_classifier.md").read_text().lower()


def test_a_model_that_never_learned_is_flagged_at_the_top_of_the_page_and_its_card(
    plots_project,
):
    workdir = plots_project
    fake_reports(workdir)
    meta_path = workdir / "models/detector.json"
    meta = json.loads(meta_path.read_text())
    meta.setdefault("checks", {})["learned"] = {
        "learned": False,
        "metric": "mean_iou",
        "best": 0.0,
        "baseline": 0.2131,
        "baseline_name": "the mean train box",
    }
    meta_path.write_text(json.dumps(meta))
    plot_all()
    line = (
        "**Warning: the detector never learned: its best val mean_iou 0 is no better than"
        " 0.2131, the mean train box's — it answers no better than a constant.**"
    )
    page = (workdir / "reports/summary.md").read_text()
    assert line in page.split("# Model review")[0]  # with the warnings, above the page
    card = (workdir / "reports/model_card_detector.md").read_text()
    assert card.splitlines()[2] == line
    assert "never learned" not in (workdir / "reports/model_card_classifier.md").read_text()


def test_the_command_line_says_what_the_stage_does_and_refuses_other_arguments(capsys):
    assert usage(plot.main) == (
        "[-h] {classifier,detector} Stage `plot@<model>`: a model's figures, its section "
        "of the review page and its model card. positional arguments: {classifier,detector} "
        "options: -h, --help show this help message and exit"
    )
    refuses_choice(plot.main, "both", ("classifier", "detector"), capsys)


def test_the_summary_stage_says_what_it_wrote(plots_project, capsys):
    fake_reports(plots_project)
    plot_all()
    printed = capsys.readouterr().out.splitlines()
    assert printed[-1] == "summary: reports/summary.md, 2 sections, 1 warnings on top"
    assert usage(summary_stage.main) == (
        "[-h] Stage `summary`: reports/summary.md, the page a reviewer reads, from each "
        "model's section. options: -h, --help show this help message and exit"
    )


def test_the_summary_stage_names_a_missing_section(workdir):
    with pytest.raises(UserError, match=r"^reports/summary/classifier\.json: not found — run"):
        summary_stage.main([])


@pytest.fixture
def drawn(workdir, monkeypatch) -> dict:
    """The reports of `fake_reports`, and every figure the stage's functions save, by file
    name, instead of the PNGs."""
    fake_reports(workdir)
    figures = {}
    monkeypatch.setattr(plot.plotting, "save_figure", lambda fig, path, dpi: figures.update(
        {Path(path).name: (fig, dpi)}))  # fmt: skip
    return figures


PLOT_CFG = {"dpi": 77, "gallery_size": 3, "gallery_columns": 2}


def plot_cfg(**values):
    return load_params("plot", ROOT / "params.yaml").model_copy(update={**PLOT_CFG, **values})


def titles(fig) -> list[str]:
    return [ax.get_title() for ax in fig.axes if ax.get_title()]


def test_the_classifier_gallery_shows_the_surest_mistakes_first(drawn, workdir):
    predictions = pd.read_csv(workdir / "reports/eval/classifier/predictions.csv")
    wrong = [("0.png", "cat", "owl", 0.6), ("4.png", "owl", "dog", 0.95),
             ("5.png", "owl", "cat", 0.6), ("1.png", "cat", "dog", 0.99)]  # fmt: skip
    for name, actual, predicted, confidence in wrong:
        row = predictions["path"].str.endswith("/" + name)
        predictions.loc[row, ["actual", "predicted", "confidence"]] = [
            actual,
            predicted,
            confidence,
        ]
    predictions.to_csv(workdir / "reports/eval/classifier/predictions.csv", index=False)
    per_class = pd.read_csv(workdir / "reports/eval/classifier/per_class.csv")
    per_class.loc[len(per_class)] = ["yak", 0.0, 0.0, 0.0, 0, None]
    per_class.to_csv(workdir / "reports/eval/classifier/per_class.csv", index=False)
    captions, table = plot.classifier_figures(plot_cfg(gallery_size=5), workdir / "figures")
    assert captions == [
        ("Training curves", "classifier_training.png"),
        ("Confusion matrix", "classifier_confusion.png"),
        ("ROC curves", "classifier_roc.png"),
        ("Mistakes", "classifier_mistakes.png"),
    ]
    fig, dpi = drawn["classifier_mistakes.png"]
    assert dpi == 77
    # The five mistakes, surest first; equal confidence in path order.
    assert titles(fig) == ["1.png\ncat → dog (0.99)", "4.png\nowl → dog (0.95)",
                           "3.png\ndog → cat (0.70)", "0.png\ncat → owl (0.60)",
                           "5.png\nowl → cat (0.60)"]  # fmt: skip
    assert len(fig.axes) == 6  # two columns
    plot.classifier_figures(plot_cfg(gallery_size=2), workdir / "figures")
    assert len(titles(drawn["classifier_mistakes.png"][0])) == 2  # gallery_size of them
    assert table.splitlines()[0].split("|")[1:-1] == [
        " class ",
        " precision ",
        " recall ",
        " f1 ",
        " support ",
        " roc_auc ",
    ]
    assert table.endswith("\n\nClasses without test rows (not in the macro averages): yak.")


def test_the_detector_figures_spread_the_gallery_and_mark_the_mean_iou(drawn, workdir):
    captions = plot.detector_figures(plot_cfg(), workdir / "figures", {"mean_iou": 0.8125})
    assert captions == [
        ("Training curves", "detector_training.png"),
        ("Precision-recall", "detector_pr.png"),
        ("IoU histogram", "detector_iou.png"),
        ("Test predictions", "detector_gallery.png"),
    ]
    histogram, _ = drawn["detector_iou.png"]
    (ax,) = histogram.axes
    assert list(ax.get_lines()[0].get_xdata()) == [0.8125, 0.8125]
    assert sum(p.get_height() for p in ax.patches) == 4  # the four objects' IoUs, no NaN
    gallery, _ = drawn["detector_gallery.png"]
    names = [title.split("\n")[0] for title in titles(gallery)]
    assert names == ["0.jpg", "1.jpg", "3.jpg"]  # 3 of 5, evenly spread by path


def test_the_worst_cases_are_the_lowest_scores_of_each_check(drawn, workdir):
    meta = {"image_size": 16, "classes": ["cat", "dog", "owl"]}
    table = workdir / "reports/eval/detector/behaviour.csv"
    paths = pd.read_csv(workdir / "reports/eval/detector/predictions.csv")["path"]
    rows = [
        ("flip", paths[0], 0.9),
        ("flip", paths[1], 0.2),
        ("flip", paths[2], 0.5),
        ("shift", paths[3], 0.7),
        ("shift", "gone.jpg", 0.1),
        ("shift", paths[4], 0.8),
    ]
    pd.DataFrame(rows, columns=["check", "path", "score"]).to_csv(table, index=False)
    found = plot.behaviour_figure("detector", meta, plot_cfg(), workdir / "figures")
    assert found == [("Worst cases of the behaviour checks", "detector_behaviour.png")]
    fig, _ = drawn["detector_behaviour.png"]
    # Two columns: the two worst of each check, worst first; an unreadable one is left out
    # (and not replaced by the third worst).
    assert titles(fig) == ["flip: IoU 0.20", "flip: IoU 0.50", "shift: IoU 0.70"]
    shifted = fig.axes[2].get_images()[0].get_array()
    assert shifted.dtype == np.uint8 and shifted.shape == (16, 16, 3)
    plot.behaviour_figure("classifier", meta, plot_cfg(), workdir / "figures")
    fig, _ = drawn["classifier_behaviour.png"]
    assert titles(fig) == ["jpeg: Δp 0.30", "jpeg: Δp 0.30"]
    pd.DataFrame(columns=["check", "path", "score"]).to_csv(table, index=False)
    assert plot.behaviour_figure("detector", meta, plot_cfg(), workdir / "figures") == []
    pd.DataFrame([("shift", "gone.jpg", 0.1)], columns=["check", "path", "score"]).to_csv(
        table, index=False
    )
    assert plot.behaviour_figure("detector", meta, plot_cfg(), workdir / "figures") == []


def test_slices_are_drawn_by_size_and_position_or_by_source_size(drawn, workdir):
    scores = read_eval_report(workdir / "reports/eval/detector")
    assert plot.slices_figure("detector", scores, plot_cfg(), workdir) == [
        ("Metrics by slice", "detector_slices.png")
    ]
    fig, dpi = drawn["detector_slices.png"]
    assert titles(fig) == ["by size", "by position"] and dpi == 77
    # Mean IoU per slice: small is empty, medium and large 0.7 (fake_reports).
    assert [round(bar.get_height(), 3) for bar in fig.axes[0].patches] == [0.0, 0.7, 0.7]
    assert fig.axes[0].get_ylabel() == "mean IoU"
    by_size = {"images": 3, "accuracy": 0.5}
    source = {"slices": {"source_size": {"smaller_than_input": by_size}}}
    assert plot.slices_figure("classifier", source, plot_cfg(), workdir)
    fig, _ = drawn["classifier_slices.png"]
    assert titles(fig) == ["by source size"] and fig.axes[0].get_ylabel() == "accuracy"
    assert plot.slices_figure("classifier", {"slices": {}}, plot_cfg(), workdir) == []
    assert plot.slices_figure("detector", {}, plot_cfg(), workdir) == []


def test_the_training_batch_is_titled_by_its_targets(drawn, workdir):
    meta = {"classes": ["cat", "dog", "owl"]}
    assert plot.train_batch_figure("classifier", meta, plot_cfg(), workdir) == (
        "One training batch, as the model sees it",
        "classifier_train_batch.png",
    )
    fig, _ = drawn["classifier_train_batch.png"]
    assert titles(fig) == ["cat", "dog", "owl", "cat", "dog"]
    assert len(fig.axes) == 8  # four columns (2 × gallery_columns): two rows
    plot.train_batch_figure("detector", meta, plot_cfg(), workdir)
    fig, _ = drawn["detector_train_batch.png"]
    assert titles(fig) == ["object", "object", "no object", "object", "no object"]
    boxed = [bool(ax.patches) for ax in fig.axes[:5]]
    assert boxed == [True, True, False, True, False]
    (workdir / "models/detector_batch.npz").unlink()
    with pytest.raises(UserError, match=r"detector_batch\.npz: not found — run `dvc repro`"):
        plot.train_batch_figure("detector", meta, plot_cfg(), workdir)
