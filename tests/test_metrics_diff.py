"""`python -m stages.metrics_diff REV`: each changed metric set against its 95% interval."""

from __future__ import annotations

import json

import pytest

from stages import metrics_diff
from stages.shared.core.cli import UserError
from stages.shared.evaluation.metrics import split_report
from tests.conftest import git, help_text


def write_metrics(root, classifier: dict, detector: dict | None) -> None:
    """Each model's test report, split as `evaluate` splits it: the headline metrics in
    metrics.json, the rest in detail.json; None: no report of that model."""
    for name, scores in (("classifier", classifier), ("detector", detector)):
        if scores is None:
            continue
        headline, detail = split_report(name, scores)
        folder = root / f"reports/eval/{name}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps(headline))
        (folder / "detail.json").write_text(json.dumps(detail))


def commit_main(root, monkeypatch, classifier: dict, detector: dict | None) -> None:
    """`root`, the current directory, as a git repository whose `main` holds these reports."""
    monkeypatch.chdir(root)
    git("init", "-q", "-b", "main", cwd=root)
    write_metrics(root, classifier, detector)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "base", cwd=root)


def test_changes_within_and_beyond_their_interval(tmp_path, monkeypatch, capsys):
    commit_main(
        tmp_path,
        monkeypatch,
        {"accuracy": 0.90, "macro_f1": 0.88, "log_loss": 0.3, "roc_auc": 0.97},
        {"ap50": 0.91, "mean_iou": 0.70},
    )
    write_metrics(
        tmp_path,
        {
            "accuracy": 0.92,  # inside its interval: could be the test set
            "macro_f1": 0.95,  # beyond it
            "log_loss": 0.3,
            "roc_auc": 0.96,  # a detail figure: below the fold
            "ci95": {
                "accuracy": {"low": 0.86, "high": 0.96},
                "macro_f1": {"low": 0.91, "high": 0.98},
            },
        },
        {"ap50": 0.80, "mean_iou": 0.70, "ci95": {"ap50": {"low": 0.7, "high": 0.88}}},
    )
    git("checkout", "-q", "-b", "change", cwd=tmp_path)  # the pull request: a second commit
    git("commit", "-q", "-am", "change", cwd=tmp_path)
    metrics_diff.main(["main"])
    out = capsys.readouterr().out
    lines = {line.split(" | ")[0].strip("| "): line for line in out.splitlines()}
    assert lines["classifier accuracy"].endswith("| +0.0200 | within the noise |")
    assert "0.92 (0.86–0.96)" in lines["classifier accuracy"]
    assert lines["classifier macro_f1"].endswith("| +0.0700 | beyond the noise |")
    assert lines["classifier log_loss"].endswith("| unchanged |")
    assert lines["detector ap50"].endswith("| -0.1100 | beyond the noise |")
    assert "2 headline metric(s) moved beyond their 95% interval: classifier macro_f1, detector" \
        " ap50" in out  # fmt: skip
    # Headline first; the detail (roc_auc and the new intervals) folded below it.
    fold = out.index("<details>")
    assert out.index("| classifier accuracy |") < fold < out.index("| classifier roc_auc |")
    assert lines["classifier roc_auc"] == "| classifier roc_auc | 0.97 | 0.96 | -0.0100 |"
    assert "classifier ci95.accuracy.low" not in out  # shown with its headline already
    assert out.rstrip().endswith("</details>")


def test_an_unknown_revision_is_one_line(tmp_path, monkeypatch):
    commit_main(tmp_path, monkeypatch, {"accuracy": 0.9}, {"ap50": 0.9})
    with pytest.raises(UserError, match=r"nosuchbranch: no such revision"):
        metrics_diff.main(["nosuchbranch"])


def test_the_whole_report_for_new_removed_and_uninterval_metrics(tmp_path, monkeypatch, capfd):
    # At main: no detector report yet, and the classifier had a log-loss it no longer has.
    commit_main(tmp_path, monkeypatch, {"accuracy": 0.9, "log_loss": 0.3}, None)
    write_metrics(
        tmp_path,
        {"accuracy": 0.85, "macro_f1": 0.8, "ci95": {"macro_f1": {"low": 0.7, "high": 0.9}}},
        {"ap50": 0.8},
    )
    capfd.readouterr()
    metrics_diff.main(["main"])
    assert capfd.readouterr().out == (  # written by hand; nothing else on stdout
        "| metric | main | this change (95% CI) | change | verdict |\n"
        "| --- | --- | --- | --- | --- |\n"
        "| classifier accuracy | 0.9 | 0.85 | -0.0500 | changed (no interval) |\n"
        "| classifier macro_f1 | none | 0.8 (0.7–0.9) | - | new |\n"
        "| classifier log_loss | 0.3 | none | - | removed |\n"
        "| detector ap50 | none | 0.8 | - | new |\n"
        "\n"
        "No headline metric moved beyond its 95% interval: the changes could be test-set"
        " noise.\n"
        "\n"
        "<details><summary>Detail: 0 other figure(s) changed (other scores, baselines, slices,"
        " behaviour)</summary>\n"
        "\n"
        "None.\n"
        "\n"
        "</details>\n"
    )


def test_a_model_that_never_learned_is_flagged_above_the_table(tmp_path, monkeypatch, capsys):
    commit_main(tmp_path, monkeypatch, {"accuracy": 0.9}, {"ap50": 0.9})
    learned = {"learned": False, "metric": "mean_iou", "best": 0.0, "baseline": 0.2131,
               "baseline_name": "the mean train box"}  # fmt: skip
    (tmp_path / "models").mkdir()
    (tmp_path / "models/detector.json").write_text(json.dumps({"checks": {"learned": learned}}))
    (tmp_path / "models/classifier.json").write_text(
        json.dumps({"checks": {"learned": {**learned, "learned": True}}})
    )
    metrics_diff.main(["main"])
    out = capsys.readouterr().out
    assert out.startswith(
        "**Warning: the detector never learned: its best val mean_iou 0 is no better than"
        " 0.2131, the mean train box's — it answers no better than a constant.**\n\n| metric |"
    )
    assert "classifier never learned" not in out


def test_a_missing_workspace_report_names_the_file_and_the_fix(tmp_path, monkeypatch):
    commit_main(tmp_path, monkeypatch, {"accuracy": 0.9}, {"ap50": 0.9})
    (tmp_path / "reports/eval/detector/metrics.json").unlink()
    with pytest.raises(
        UserError, match=r"^reports/eval/detector/metrics.json: not found — run `dvc repro` first$"
    ):
        metrics_diff.main(["main"])


def test_help_says_what_the_tool_compares_and_what_rev_is():
    text = help_text(metrics_diff.main)
    assert "metrics_diff REV`: the test metrics of this workspace against revision" in text
    assert "rev branch, tag or commit to compare with, e.g. main" in text


def test_a_value_on_an_end_of_the_interval_is_within_it():
    interval = {"low": 0.8, "high": 0.9}
    assert metrics_diff.verdict(0.8, 0.85, interval) == "within the noise"
    assert metrics_diff.verdict(0.9, 0.85, interval) == "within the noise"
    assert metrics_diff.verdict(0.7999, 0.85, interval) == "beyond the noise"
    assert metrics_diff.verdict(0.9001, 0.85, interval) == "beyond the noise"
