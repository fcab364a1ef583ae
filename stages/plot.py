"""Stage `plot@<model>`: a model's figures, its section of the review page and its model card.

In:  reports/train/<model>/ (DVCLive history), reports/eval/<model>/ (headline metrics,
     detail and plot data),
     models/<model>.json (the params that produced each model), reports/data/<task>.json
     (split counts), the test images (galleries).
In (also): models/<model>_batch.npz (the first training batch, as the model received it).
Out: reports/figures/<model>/*.png (training curves, confusion matrix, ROC, PR curve, IoU
     histogram, galleries of test predictions, one training batch), reports/summary/<model>.json
     (its section of reports/summary.md: metrics beside their baselines, key params, checks,
     figures; and its warnings; the `summary` stage joins them) and
     reports/model_card_<model>.md (use, limits, data, params, test metrics).
Params: plot.*.

The curves, confusion matrix, ROC and PR figures are the plots `dvc.yaml` defines (`FROM_DVC`),
filled by DVC and drawn by vl-convert: the same definitions `dvc plots show` renders. The
galleries, histogram and slices have no `dvc.yaml` twin and are drawn with matplotlib.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.config import dataset_root, load_params
from stages.shared.core.paths import (
    DATA_REPORTS_DIR,
    EVAL_DIR,
    FIGURES_DIR,
    MODELS,
    MODELS_DIR,
    REPORTS_DIR,
    model_file,
    section_file,
)
from stages.shared.data.manifest import atomic_write_text, read_json, write_json
from stages.shared.evaluation import baselines
from stages.shared.params.plot import PlotParams
from stages.shared.review import dvcplots, plotting, summary

# figure file -> (the `plots:` ids of dvc.yaml it shows, columns)
FROM_DVC = {
    "classifier_training.png": (
        ["Classifier loss", "Classifier accuracy", "Classifier learning rate"],
        3,
    ),
    "classifier_confusion.png": (["Classifier confusion matrix"], 1),
    "classifier_roc.png": (["Classifier ROC", "Classifier ROC by class"], 2),
    "detector_training.png": (
        [
            "Detector total loss",
            "Detector classification loss",
            "Detector localization loss",
            "Detector mean IoU",
        ],
        2,
    ),
    "detector_pr.png": (["Detector precision-recall"], 1),
}


def dvc_figures(cfg, out: Path, model: str, skip: set[str]) -> None:
    """Draw the model's figures of FROM_DVC, but those in `skip`, from the specs DVC fills for
    this workspace (one DVC query for all of them)."""
    mine = {
        file: spec
        for file, spec in FROM_DVC.items()
        if file.startswith(f"{model}_") and file not in skip
    }
    specs = dvcplots.specs([plot for plots, _ in mine.values() for plot in plots])
    for name, (plots, columns) in mine.items():
        dvcplots.to_png([specs[plot] for plot in plots], out / name, cfg.dpi, columns)


def evaluation(name: str) -> dict:
    """A model's whole test report: its detail with its headline metrics (evaluate)."""
    folder = EVAL_DIR / name
    headline = read_json(folder / "metrics.json")
    return {**read_json(folder / "detail.json"), **headline}


def spread(rows: pd.DataFrame, count: int) -> pd.DataFrame:
    """`count` rows evenly spread over `rows` sorted by path: a stable, representative pick."""
    rows = rows.sort_values("path", kind="mergesort").reset_index(drop=True)
    if len(rows) <= count:
        return rows
    step = len(rows) / count
    return rows.iloc[[int(i * step) for i in range(count)]]


def in_dataset(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """`table` with its `path`s (relative to the dataset folder) as files to open."""
    root = dataset_root(MODELS[name])
    return table.assign(path=[(root / path).as_posix() for path in table["path"]])


def classifier_figures(cfg, out: Path) -> tuple[list[tuple[str, str]], str]:
    """The classifier's figures; (caption, file) pairs and its per-class table."""
    ev = EVAL_DIR / "classifier"
    per_class = pd.read_csv(ev / "per_class.csv", dtype={"class": str})
    predictions = pd.read_csv(ev / "predictions.csv", dtype={"actual": str, "predicted": str})
    wrong = predictions[predictions["actual"] != predictions["predicted"]]
    wrong = wrong.sort_values(["confidence", "path"], ascending=[False, True], kind="mergesort")
    from_dvc = ["classifier_training.png", "classifier_confusion.png", "classifier_roc.png"]
    shown = in_dataset(wrong.head(cfg.gallery_size), "classifier")
    mistakes = plotting.misclassified_gallery(shown, cfg.gallery_columns)
    plotting.save_figure(mistakes, out / "classifier_mistakes.png", cfg.dpi)
    figures = [*from_dvc, "classifier_mistakes.png"]
    captions = ["Training curves", "Confusion matrix", "ROC curves", "Mistakes"]
    per_class_table = summary.table(
        ("class", "precision", "recall", "f1", "support", "roc_auc"),
        per_class.itertuples(index=False),
    )
    untested = per_class.loc[per_class["support"] == 0, "class"].tolist()
    if untested:
        names = ", ".join(untested)
        per_class_table += f"\n\nClasses without test rows (not in the macro averages): {names}."
    return list(zip(captions, figures, strict=True)), per_class_table


def detector_figures(cfg, out: Path, scores: dict) -> list[tuple[str, str]]:
    """The detector's figures; (caption, file) pairs."""
    ev = EVAL_DIR / "detector"
    predictions = pd.read_csv(ev / "predictions.csv")
    from_dvc = ["detector_training.png", "detector_pr.png"]  # drawn by dvc_figures
    figures = {
        "detector_iou.png": plotting.iou_histogram(
            predictions["iou"].dropna().to_numpy(), scores.get("mean_iou")
        ),
        "detector_gallery.png": plotting.detection_gallery(
            in_dataset(spread(predictions, cfg.gallery_size), "detector"), cfg.gallery_columns
        ),
    }
    for name, fig in figures.items():
        plotting.save_figure(fig, out / name, cfg.dpi)
    captions = ["Training curves", "Precision-recall", "IoU histogram", "Test predictions"]
    return list(zip(captions, [*from_dvc, *figures], strict=True))


def behaviour_figure(name: str, meta: dict, cfg, out: Path) -> list[tuple[str, str]]:
    """The worst test images of each behaviour check, as the model saw them."""
    from stages.shared.data.images import ImageError, model_pixels
    from stages.shared.evaluation.behaviour import CHECKS

    table = pd.read_csv(EVAL_DIR / name / "behaviour.csv")
    if table.empty:
        return []
    table = table.sort_values(["check", "score", "path"], kind="mergesort")
    cases, root = [], dataset_root(MODELS[name])  # params.yaml read once
    for row in table.groupby("check", sort=False).head(cfg.gallery_columns).itertuples():
        try:
            pixels = model_pixels(root / row.path, meta["image_size"])
        except ImageError:
            continue
        seen = CHECKS[row.check].transform(pixels[None])[0]
        score = f"IoU {row.score:.2f}" if name == "detector" else f"Δp {-row.score:.2f}"
        cases.append((row.check, np.clip(seen, 0, 255).astype(np.uint8), score))
    if not cases:
        return []
    figure = plotting.worst_cases_figure(cases, cfg.gallery_columns)
    plotting.save_figure(figure, out / f"{name}_behaviour.png", cfg.dpi)
    return [("Worst cases of the behaviour checks", f"{name}_behaviour.png")]


def slices_figure(name: str, scores: dict, cfg, out: Path) -> list[tuple[str, str]]:
    """Mean IoU (detector) or accuracy (classifier) by slice, with intervals."""
    found = scores.get("slices") or {}
    if name == "detector" and found:
        groups, metric, label = {k: found[k] for k in ("size", "position")}, "mean_iou", "mean IoU"
    elif found.get("source_size"):
        groups, metric, label = {"source size": found["source_size"]}, "accuracy", "accuracy"
    else:
        return []
    plotting.save_figure(
        plotting.slices_figure(groups, metric, label), out / f"{name}_slices.png", cfg.dpi
    )
    return [("Metrics by slice", f"{name}_slices.png")]


def train_batch_figure(name: str, meta: dict, cfg, out: Path) -> tuple[str, str]:
    """The first training batch saved by the training stage, drawn with its labels."""
    path = MODELS_DIR / f"{name}_batch.npz"
    try:
        batch = np.load(path)
    except FileNotFoundError:
        raise UserError(f"{path}: not found — run `dvc repro` to produce it") from None
    images = batch["images"]
    if name == "classifier":
        titles = [meta["classes"][i] for i in batch["targets"].argmax(axis=1)]
        boxes = None
    else:
        present = batch["present"].reshape(-1) > 0.5
        titles = ["object" if p else "no object" for p in present]
        boxes = [box if p else None for box, p in zip(batch["boxes"], present, strict=True)]
    figure = plotting.train_batch_figure(images, titles, boxes, cfg.gallery_columns * 2)
    plotting.save_figure(figure, out / f"{name}_train_batch.png", cfg.dpi)
    return "One training batch, as the model sees it", f"{name}_train_batch.png"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=list(MODELS))
    name = parser.parse_args(argv).model
    cfg = load_params(PlotParams)
    out = FIGURES_DIR / name
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    scores = evaluation(name)
    meta = read_json(model_file(name).with_suffix(".json"))
    # `debug: overfit` trains one batch for some steps, no epoch: there are no training curves.
    overfit = (meta.get("debug") or {}).get("mode") == "overfit"
    skip = {f"{name}_training.png"} if overfit else set()
    dvc_figures(cfg, out, name, skip)
    warnings = []
    lost = baselines.not_beaten(name, scores, scores.get("baseline", {}))
    if lost:
        warnings.append(f"the {name} does not beat its baseline on {'; '.join(lost)}.")
    warnings += [line for line in [summary.never_learned(name, meta)] if line]
    if name == "classifier":
        figures, extra = classifier_figures(cfg, out)
    else:
        figures, extra = detector_figures(cfg, out, scores), ""
    figures = [(caption, file) for caption, file in figures if file not in skip]
    figures.append(train_batch_figure(name, meta, cfg, out))
    figures += slices_figure(name, scores, cfg, out)
    figures += behaviour_figure(name, meta, cfg, out)
    if meta.get("debug"):
        warnings.append(f"the {name} is a debug run (debug: {meta['debug']['mode']}), not a model.")
    section = summary.model_section(name, scores, meta, figures, extra)
    write_json(section_file(name), {"section": section, "warnings": warnings})
    data_report = read_json(DATA_REPORTS_DIR / f"{MODELS[name]}.json")
    from stages.shared.models.registry import provenance

    trained_from = provenance(name, meta.get("model_md5"))
    card = summary.model_card(name, scores, meta, data_report, trained_from)
    atomic_write_text(REPORTS_DIR / f"model_card_{name}.md", card)
    print(f"plot@{name}: {len(list(out.glob('*.png')))} figures in {out}, {section_file(name)}")


if __name__ == "__main__":
    run_stage(main)
