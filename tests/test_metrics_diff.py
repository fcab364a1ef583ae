"""`python -m stages.metrics_diff REV`: each changed metric set against its 95% interval."""

from __future__ import annotations

import json

import pytest

from stages import metrics_diff
from stages.shared.cli import UserError
from tests.conftest import git


def write_metrics(root, classifier: dict, detector: dict) -> None:
    for name, scores in (("classifier", classifier), ("detector", detector)):
        path = root / f"reports/eval/{name}/metrics.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(scores))


def test_changes_within_and_beyond_their_interval(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    git("init", "-q", "-b", "main", cwd=tmp_path)
    write_metrics(
        tmp_path,
        {"accuracy": 0.90, "macro_f1": 0.88, "roc_auc": 0.97},
        {"ap50": 0.91, "mean_iou": 0.70},
    )
    git("add", "-A", cwd=tmp_path)
    git("commit", "-q", "-m", "base", cwd=tmp_path)
    write_metrics(
        tmp_path,
        {
            "accuracy": 0.92,  # inside its interval: could be the test set
            "macro_f1": 0.95,  # beyond it
            "roc_auc": 0.97,
            "ci95": {
                "accuracy": {"low": 0.86, "high": 0.96},
                "macro_f1": {"low": 0.91, "high": 0.98},
            },
        },
        {"ap50": 0.80, "mean_iou": 0.70, "ci95": {"ap50": {"low": 0.7, "high": 0.88}}},
    )
    metrics_diff.main(["main"])
    out = capsys.readouterr().out
    lines = {line.split(" | ")[0].strip("| "): line for line in out.splitlines()}
    assert lines["classifier accuracy"].endswith("| +0.0200 | within the interval |")
    assert "0.92 (0.86–0.96)" in lines["classifier accuracy"]
    assert lines["classifier macro_f1"].endswith("| +0.0700 | beyond the interval |")
    assert lines["classifier roc_auc"].endswith("| unchanged |")
    assert lines["detector ap50"].endswith("| -0.1100 | beyond the interval |")
    assert "2 metric(s) moved beyond their 95% interval: classifier macro_f1, detector ap50" in out


def test_an_unknown_revision_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    git("init", "-q", "-b", "main", cwd=tmp_path)
    write_metrics(tmp_path, {"accuracy": 0.9}, {"ap50": 0.9})
    git("add", "-A", cwd=tmp_path)
    git("commit", "-q", "-m", "base", cwd=tmp_path)
    with pytest.raises(UserError, match=r"nosuchbranch: no such revision"):
        metrics_diff.main(["nosuchbranch"])
