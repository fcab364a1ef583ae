"""`python -m stages.metrics_diff REV`: the test metrics of this workspace against revision
REV, headline first, each change set beside its 95% interval (a review tool, not a stage).

    python -m stages.metrics_diff main            # Markdown, for a pull-request comment

First, a warning for a model whose training never beat its baseline (models/<model>.json).
Then one row per headline metric of both models (metrics.HEADLINES, reports/eval/<model>/
metrics.json): REV's value, this workspace's value with its bootstrap interval (written by
`evaluate`), the change, and a verdict. "within the noise" means the new interval still holds
REV's value: another test set of the same size could move the number that much on its own, so
the change is no evidence of a better or worse model. Below, folded (`<details>`), every other
figure of `detail.json` that changed: other scores, baselines, slices, behaviour.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.paths import EVAL_DIR, MODELS, model_file
from stages.shared.evaluation.metrics import HEADLINES
from stages.shared.review.summary import flatten, fmt, never_learned, table

REPORTS = ("detail.json", "metrics.json")  # headline last: it wins a key both hold


def check_revision(rev: str) -> None:
    """One line when `rev` names no commit."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"], capture_output=True
    )
    if found.returncode != 0:
        raise UserError(f"{rev}: no such revision — give a branch, tag or commit")


def metrics_at(rev: str, path: Path) -> dict | None:
    """A metrics JSON as committed at `rev` (None if it was not there)."""
    shown = subprocess.run(
        ["git", "show", f"{rev}:{path.as_posix()}"], capture_output=True, text=True
    )
    return json.loads(shown.stdout) if shown.returncode == 0 else None


def report_at(rev: str | None, model: str) -> dict:
    """A model's whole test report (detail and headline) at `rev`, or in the workspace."""
    report: dict = {}
    for name in REPORTS:
        path = EVAL_DIR / model / name
        if rev is not None:
            report.update(metrics_at(rev, path) or {})
        elif path.exists():
            report.update(json.loads(path.read_text()))
    return report


def verdict(old, new, interval: dict | None) -> str:
    """Where the change lies against the new value's 95% interval."""
    if old is None or new is None:
        return "new" if old is None else "removed"
    if old == new:
        return "unchanged"
    if not interval or interval.get("low") is None:
        return "changed (no interval)"
    inside = interval["low"] <= old <= interval["high"]
    return "within the noise" if inside else "beyond the noise"


def change(before, after) -> str:
    """The signed difference of two numbers, or '-'."""
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (before, after))
    return f"{after - before:+.4f}" if numbers else "-"


def rows_for(model: str, old: dict, new: dict) -> list[tuple]:
    """One row per headline metric of a model."""
    rows = []
    for key in HEADLINES[model]:
        before, after = old.get(key), new.get(key)
        if before is None and after is None:
            continue
        interval = new.get("ci95", {}).get(key)
        shown = fmt(after) + (
            f" ({fmt(interval['low'])}–{fmt(interval['high'])})" if interval else ""
        )
        rows.append(
            (f"{model} {key}", fmt(before), shown, change(before, after),
             verdict(before, after, interval))
        )  # fmt: skip
    return rows


def detail_rows(model: str, old: dict, new: dict) -> list[tuple]:
    """One row per figure outside the headline (and its interval) whose value changed."""
    shown = set(HEADLINES[model]) | {f"ci95.{key}.{end}" for key in HEADLINES[model]
                                     for end in ("low", "high")}  # fmt: skip
    before, after = dict(flatten(old)), dict(flatten(new))
    keys = sorted(k for k in before.keys() | after.keys() if k not in shown)
    return [
        (f"{model} {key}", fmt(before.get(key)), fmt(after.get(key)),
         change(before.get(key), after.get(key)))
        for key in keys
        if before.get(key) != after.get(key)
    ]  # fmt: skip


def warnings() -> list[str]:
    """One line per model of this workspace whose training never beat its baseline."""
    lines = []
    for model in MODELS:
        path = model_file(model).with_suffix(".json")
        if path.exists():
            line = never_learned(model, json.loads(path.read_text()))
            lines += [f"**Warning: {line}**"] if line else []
    return lines


def report(rev: str) -> str:
    """The whole Markdown report against `rev`."""
    headline, detail = [], []
    for model in MODELS:
        path = EVAL_DIR / model / "metrics.json"
        if not path.exists():
            raise UserError(f"{path}: not found — run `dvc repro` first")
        old, new = report_at(rev, model), report_at(None, model)
        headline += rows_for(model, old, new)
        detail += detail_rows(model, old, new)
    moved = [row[0] for row in headline if row[4] == "beyond the noise"]
    note = (
        f"{len(moved)} headline metric(s) moved beyond their 95% interval: " + ", ".join(moved)
        if moved
        else "No headline metric moved beyond its 95% interval: the changes could be test-set"
        " noise."
    )
    parts = [
        *warnings(),
        table(("metric", rev, "this change (95% CI)", "change", "verdict"), headline),
        note,
        f"<details><summary>Detail: {len(detail)} other figure(s) changed (other scores,"
        " baselines, slices, behaviour)</summary>\n\n"
        + (table(("figure", rev, "this change", "change"), detail) if detail else "None.")
        + "\n\n</details>",
    ]
    return "\n\n".join(parts) + "\n"


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="branch, tag or commit to compare with, e.g. main")
    rev = parser.parse_args(argv).rev
    check_revision(rev)
    sys.stdout.write(report(rev))


if __name__ == "__main__":
    run_stage(main)
