"""`python -m stages.metrics_diff REV`: the test metrics of this workspace against revision
REV, each change set beside its 95% interval (a review tool, not a pipeline stage).

    python -m stages.metrics_diff main            # Markdown, for a pull-request comment

For every headline metric of both models: REV's value, this workspace's value with its
bootstrap interval (written by `evaluate`), the change, and a verdict. "within the interval"
means the new interval still holds REV's value: another test set of the same size could move
the number that much on its own, so the change is no evidence of a better or worse model.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from stages.shared.cli import UserError, run_stage
from stages.shared.paths import EVAL_DIR, MODELS
from stages.shared.summary import HEADLINES, fmt, table


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


def verdict(old, new, interval: dict | None) -> str:
    """Where the change lies against the new value's 95% interval."""
    if old is None or new is None:
        return "new" if old is None else "removed"
    if old == new:
        return "unchanged"
    if not interval or interval.get("low") is None:
        return "changed (no interval)"
    inside = interval["low"] <= old <= interval["high"]
    return "within the interval" if inside else "beyond the interval"


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
        change = f"{after - before:+.4f}" if None not in (before, after) else "-"
        rows.append(
            (f"{model} {key}", fmt(before), shown, change, verdict(before, after, interval))
        )
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev", help="branch, tag or commit to compare with, e.g. main")
    rev = parser.parse_args(argv).rev
    check_revision(rev)
    rows = []
    for model in MODELS:
        path = EVAL_DIR / model / "metrics.json"
        if not path.exists():
            raise UserError(f"{path}: not found — run `dvc repro` first")
        rows += rows_for(model, metrics_at(rev, path) or {}, json.loads(path.read_text()))
    headers = ("metric", rev, "this change (95% CI)", "change", "verdict")
    sys.stdout.write(table(headers, rows) + "\n")
    moved = [r for r in rows if r[4] == "beyond the interval"]
    note = (
        f"{len(moved)} metric(s) moved beyond their 95% interval: " + ", ".join(r[0] for r in moved)
        if moved
        else "No metric moved beyond its 95% interval: the changes could be test-set noise."
    )
    sys.stdout.write(f"\n{note}\n")


if __name__ == "__main__":
    run_stage(main)
