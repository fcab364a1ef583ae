"""The review page `reports/summary.md`: headline metrics, key params and the figures,
one section per model, in Markdown that renders on any git host."""

from __future__ import annotations

from collections.abc import Sequence

from stages.shared.evaluation.baselines import COMPARED
from stages.shared.evaluation.intervals import describe
from stages.shared.evaluation.metrics import HEADLINES

# The params worth a glance in review, per model (all of them are in models/<model>.json).
KEY_PARAMS = {
    "classifier": (
        "architecture",
        "weights",
        "epochs",
        "batch_size",
        "optimizer",
        "learning_rate",
        "schedule",
    ),
    "detector": (
        "backbone",
        "weights",
        "pooling",
        "box_head",
        "localization_loss",
        "epochs",
        "batch_size",
        "learning_rate",
        "schedule",
    ),
}
# The test metrics a review shows per model: the headline ones (metrics.HEADLINES, those of
# `dvc metrics diff`) first, then the other scores `evaluate` keeps in detail.json.
SHOWN = {
    "classifier": (*HEADLINES["classifier"], "macro_precision", "macro_recall", "roc_auc"),
    "detector": (*HEADLINES["detector"], "presence_precision", "presence_recall"),
}


def fmt(value) -> str:
    """A table cell: floats to 4 decimals (small ones to 4 significant digits)."""
    if value is None:
        return "none"
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 else f"{round(value, 4):g}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(headers) + " |", "|" + " --- |" * len(headers)]
    lines += ["| " + " | ".join(fmt(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def baseline_cell(name: str, key: str, scores: dict) -> str:
    """The baseline a headline metric is compared with, e.g. '0.1 (majority)', or '-'."""
    compared = COMPARED[name].get(key)
    value = scores.get("baseline", {}).get(compared[0], {}).get(key) if compared else None
    return "-" if value is None else f"{fmt(value)} ({compared[0]})"


def headline_rows(name: str, scores: dict) -> list[tuple[str, object, str]]:
    """(metric, value, baseline) for the model's headline metrics, then any top-k accuracy;
    a metric with a bootstrap interval reads "0.992 (95% CI 0.981–0.999)"."""
    keys = [k for k in SHOWN[name] if k in scores]
    keys += sorted(k for k in scores if k.startswith("top_"))
    ci95 = scores.get("ci95", {})
    return [
        (
            key,
            describe(scores[key], ci95[key]) if key in ci95 else scores[key],
            baseline_cell(name, key, scores),
        )
        for key in keys
    ]


def never_learned(name: str, meta: dict) -> str | None:
    """One line when a model's training never beat its input-independent baseline on val
    (`checks.learned` of models/<model>.json), else None."""
    found = meta.get("checks", {}).get("learned")
    if not found or found["learned"]:
        return None
    return (
        f"the {name} never learned: its best val {found['metric']} {fmt(found['best'])} is no"
        f" better than {fmt(found['baseline'])}, {found['baseline_name']}'s — it answers no"
        " better than a constant."
    )


def checks_text(meta: dict) -> str:
    """The training run's own checks in a sentence or two: the first-batch loss, debug runs."""
    lines = []
    first = meta.get("checks", {}).get("first_batch")
    if first:
        verdict = "within" if first["ok"] else "BEYOND"
        lines.append(
            f"First-batch check: {first['loss']} {fmt(first['first_batch'])} at initialisation,"
            f" {fmt(first['expected_from_prior'])} expected from the data's prior"
            f" ({first['ratio']}×, {verdict} {first['within_factor']}×)."
        )
    debug = meta.get("debug")
    if debug and debug["mode"] == "overfit":
        outcome = "passed" if debug["passed"] else "FAILED"
        lines.append(
            f"**Debug run (`debug: overfit`), not a trained model**: one fixed batch, train"
            f" loss {fmt(debug['final_loss'])} after {debug['steps']} steps, threshold"
            f" {fmt(debug['threshold'])}: {outcome}."
        )
    elif debug:
        lines.append(
            f"**Debug run (`debug: {debug['mode']}`), not a trained model**: one epoch of"
            f" {debug.get('batches_per_epoch')} batches, to check the plumbing."
        )
    return "\n\n".join(lines)


def behaviour_table(name: str, scores: dict) -> str:
    """The behaviour checks: one row per check, its agreement figures."""
    checks = scores.get("behaviour") or {}
    if not checks:
        return ""
    keys = list(next(iter(checks.values())))
    rows = [(check, *(values.get(k) for k in keys)) for check, values in checks.items()]
    return "Behaviour on transformed test images:\n\n" + table(("check", *keys), rows)


def slices_table(name: str, scores: dict) -> str:
    """Metrics by slice: size and position (detector), source size (classifier), negatives."""
    found = scores.get("slices") or {}
    rows = []
    for grouping, slices in found.items():
        if grouping == "negatives":
            rows.append(
                (
                    "negatives",
                    slices.get("images"),
                    "false-positive rate",
                    describe(
                        slices.get("false_positive_rate"), (slices.get("ci95") or {}).get("fpr")
                    ),
                )
            )
            continue
        for slice_name, entry in slices.items():
            metric = "mean_iou" if "mean_iou" in entry else "accuracy"
            interval = (entry.get("ci95") or {}).get(metric)
            rows.append(
                (
                    f"{grouping}: {slice_name}",
                    entry.get("images"),
                    metric,
                    describe(entry.get(metric), interval),
                )
            )
    if not rows:
        return ""
    return "Metrics by slice:\n\n" + table(("slice", "test images", "metric", "value"), rows)


def model_section(
    name: str, scores: dict, meta: dict, figures: list[tuple[str, str]], extra: str = ""
) -> str:
    """One model's section: test metrics, what produced it, `extra` Markdown, its figures."""
    params = meta.get("params", {})
    best = {k: v for k, v in meta.items() if k.startswith("val_")}
    made_of = [(key, params.get(key)) for key in KEY_PARAMS[name] if key in params]
    made_of += [
        ("image_size", meta.get("image_size")),
        ("seed", meta.get("seed")),
        ("train manifest md5", str(meta.get("manifest_md5", ""))[:12]),
    ]
    parts = [
        f"## {name.capitalize()}",
        f"Test split: {scores.get('test_images')} images"
        + (f", {scores['positives']} with an object" if "positives" in scores else "")
        + (f"; {scores['skipped']} unreadable, skipped" if scores.get("skipped") else "")
        + ".",
        table(("test metric", "value", "input-independent baseline"), headline_rows(name, scores)),
        table(("best val score", "value"), sorted(best.items())) if best else "",
        slices_table(name, scores),
        behaviour_table(name, scores),
        table(("param", "value"), made_of),
        checks_text(meta),
        extra,
    ]
    parts += [f"![{caption}](figures/{name}/{file})" for caption, file in figures]
    return "\n\n".join(part for part in parts if part)


def summary_page(sections: list[str], warnings: list[str] = ()) -> str:
    """The whole page; `warnings` (one line each) come first, above everything else."""
    intro = (
        "# Model review\n\n"
        "Written by the `plot` stage from the reports of this revision. Compare revisions with "
        "`dvc metrics diff --md` and `dvc plots diff`; the headline test metrics are in "
        "`reports/eval/<model>/metrics.json`, the rest in `detail.json` beside it. Baselines "
        "ignore the image: `majority` always answers the most frequent train class, `prior` "
        "its train frequencies, `mean_box` the mean train box at the train presence rate."
    )
    flagged = [f"**Warning: {line}**" for line in warnings]
    return "\n\n".join([*flagged, intro, *sections]) + "\n"


USE = {
    "classifier": (
        "Sorts an image into one of the classes it was trained on. It always answers with one of"
        " them: an image of something else still gets a class, so check `confidence`."
    ),
    "detector": (
        "Says whether an image holds the object it was trained on and, if so, where (one box"
        " per image). Several objects in one image are not supported: the box lands on one of"
        " them or between them."
    ),
}
LIMITS = (
    "Trained and tested on the data below only: expect lower scores on images that differ from"
    " it (camera, lighting, size, background). Test metrics come from a held-out split of the"
    " same collection, so they measure generalisation within it, not beyond. Re-evaluate on"
    " your own data before relying on it."
)


def flatten(params: dict, prefix: str = "") -> list[tuple[str, object]]:
    """Nested params as (dotted key, value) rows."""
    rows: list[tuple[str, object]] = []
    for key, value in params.items():
        if isinstance(value, dict):
            rows += flatten(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", value))
    return rows


def data_rows(report: dict) -> list[tuple[str, object]]:
    """(what, value) rows from a split report: counts per split, classes, skips."""
    rows: list[tuple[str, object]] = []
    rows += [(f"{split} images", count) for split, count in report.get("splits", {}).items()]
    rows.append(("classes", ", ".join(report.get("classes", {}))))
    rows.append(("files skipped by split", report.get("skipped", {}).get("count", 0)))
    return rows


def provenance_text(name: str, trained_from: dict | None) -> str:
    """The card's provenance: the md5s dvc.lock records for the training of these weights."""
    if not trained_from:
        return (
            "not recorded: dvc.lock does not describe these weights (trained outside"
            " `dvc repro`, or the lock is not this run's)"
        )
    rows = [(f"`{path}`", f"`{md5}`") for path, md5 in trained_from["data"].items()]
    rows.append((f"params of `train-{name}`", f"`{trained_from['params_md5']}`"))
    rows.append((f"`models/{name}.keras` (these weights)", f"`{trained_from['model_md5']}`"))
    return (
        f"From the `train-{name}` entry of dvc.lock (the row of `dvc exp show` with these"
        " md5s):\n\n"
        + table(("input", "md5"), rows)
        + "\n\nA registered version (`make release`) is a git tag on the commit holding this"
        f" card: `gto show {name}` lists them; a copy fetched by name (`--model {name}@prod`)"
        " carries its version and git revision in `registry.json` and in the card beside it."
    )


def model_card(
    name: str, scores: dict, meta: dict, data_report: dict, trained_from: dict | None = None
) -> str:
    """A model card: what the model is, what data and params made it, how well it did, and
    what it must not be used for."""
    params = meta.get("params", {})
    made_of = flatten(params)
    kind = meta.get("architecture") or meta.get("backbone")
    debug = meta.get("debug")
    lost = never_learned(name, meta)
    parts = [
        f"# Model card: {name}",
        f"**Warning: {lost}**" if lost else "",
        f"**Debug run (`debug: {debug['mode']}`): not a model to use.**" if debug else "",
        f"`models/{name}.keras` ({kind}, input {meta.get('image_size')}×{meta.get('image_size')}"
        " RGB pixels in [0, 255]; the model normalises them itself). Written by the `plot` stage"
        f" from `models/{name}.json` and the reports of this revision.",
        "## Intended use\n\n" + USE[name],
        "## Limitations\n\n" + LIMITS,
        "## Data\n\n"
        + table(("", "value"), data_rows(data_report))
        + f"\n\nTrain manifest md5: `{meta.get('manifest_md5')}`; seed {meta.get('seed')}.",
        "## Test metrics\n\n"
        + table(("metric", "value", "input-independent baseline"), headline_rows(name, scores)),
        "## Training params\n\n" + table(("param", "value"), made_of),
        "## Checks\n\n" + (checks_text(meta) or "none recorded"),
        "## Provenance\n\n" + provenance_text(name, trained_from),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"
