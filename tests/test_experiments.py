"""Experiments and review through the real `dvc` and `git` CLIs (tiny data, 1 epoch)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from stages.shared.evaluation.metrics import HEADLINES
from tests.conftest import dvc, git, run_cli

pytestmark = pytest.mark.slow

DATA_STAGES = ("sample@", "split@", "augment@")


def commit_run(project: Path, message: str) -> None:
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", message, cwd=project)


def experiments(project: Path) -> dict[str, dict]:
    """{experiment name: {"params": ..., "metrics": ...}} from `dvc exp show --json`."""
    shown = json.loads(dvc("exp", "show", "--json", cwd=project).stdout)
    found = {}
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                data = rev.get("data") or {}
                found[rev.get("name") or data.get("name")] = data
    return found


def header(table: str) -> list[str]:
    """The column names of a Markdown table (its first line)."""
    return [cell.strip() for cell in table.splitlines()[0].strip().strip("|").split("|")]


def flat(data: dict, prefix: str = "") -> list[str]:
    """The dotted keys of a nested dict's leaves, as `dvc exp show` makes columns of them."""
    keys = []
    for key, value in data.items():
        keys += flat(value, f"{prefix}{key}.") if isinstance(value, dict) else [prefix + key]
    return keys


def metric(data: dict, path: str, key: str):
    return data["metrics"][path]["data"][key]


def test_experiments_run_queue_refuse_typos_and_diff(reproduced_project):
    dvc_project = reproduced_project
    commit_run(dvc_project, "baseline")

    # Each experiment up to the classifier's test metrics (as `make compare` runs them):
    # export and plot add nothing here but minutes.
    dvc(
        "exp",
        "run",
        "-n",
        "lr-high",
        "-S",
        "train_classifier.learning_rate=0.003",
        "evaluate@classifier",
        cwd=dvc_project,
    )
    found = experiments(dvc_project)
    assert "lr-high" in found, list(found)
    params = found["lr-high"]["params"]["params.yaml"]["data"]
    assert params["train_classifier"]["learning_rate"] == 0.003
    accuracy = metric(found["lr-high"], "reports/eval/classifier/metrics.json", "accuracy")
    assert 0.0 <= accuracy <= 1.0
    # One classifier param changed: the table a reviewer reads fits a screen, headline first.
    changed = header(dvc("exp", "show", "--only-changed", "--md", cwd=dvc_project).stdout)
    assert len(changed) <= 12, changed
    assert "train_classifier.learning_rate" in changed and "log_loss" in changed, changed

    # A wrong type passes DVC's own check; the stage refuses it before any training.
    wrong = dvc("exp", "run", "-S", "train_classifier.epochs=ten", cwd=dvc_project, check=False)
    output = wrong.stdout + wrong.stderr
    assert wrong.returncode != 0
    assert "error: params.yaml: train_classifier.epochs: Input should be a valid integer" in output
    assert "Traceback" not in output and "Epoch 1/" not in output
    git("checkout", "--", "params.yaml", cwd=dvc_project)
    # A key that does not exist is refused by DVC itself.
    typo = dvc(
        "exp", "run", "-S", "train_classifier.lerning_rate=0.1", cwd=dvc_project, check=False
    )
    assert typo.returncode != 0 and "lerning_rate" in typo.stdout + typo.stderr

    # A grid over three params of both models, queued.
    for dropout in ("0.1", "0.2"):
        dvc(
            "exp",
            "run",
            "--queue",
            "-S",
            f"train_classifier.dropout={dropout}",
            "-S",
            f"train_detector.dropout={dropout}",
            "-S",
            "train_detector.head_width=12",
            "evaluate@classifier",
            "evaluate@detector",
            cwd=dvc_project,
        )
    dvc("exp", "run", "--run-all", cwd=dvc_project)
    dropouts = {
        data["params"]["params.yaml"]["data"]["train_classifier"]["dropout"]
        for data in experiments(dvc_project).values()
        if data.get("metrics")
    }
    assert {0.1, 0.2} <= dropouts, dropouts
    changed = header(dvc("exp", "show", "--only-changed", "--md", cwd=dvc_project).stdout)
    assert len(changed) <= 20, changed
    # Every headline metric whose value differs between the rows is a column; no other metric.
    values: dict[str, set] = {}
    for data in experiments(dvc_project).values():
        for found in (data.get("metrics") or {}).values():
            for key, value in (found.get("data") or {}).items():
                values.setdefault(key, set()).add(value)
    differ = {key for key, seen in values.items() if len(seen) > 1}
    headlines = {*HEADLINES["classifier"], *HEADLINES["detector"]}
    assert differ & headlines and differ <= headlines, values
    assert differ <= set(changed), changed
    shown = {
        (path, key)
        for data in experiments(dvc_project).values()
        for path, found in (data.get("metrics") or {}).items()
        for key in flat(found.get("data") or {})
    }
    assert len(shown) <= 20, sorted(shown)  # the metric columns of a plain `dvc exp show`

    # Keep the winner as a commit; `dvc metrics diff` between the two commits shows the change.
    dvc("exp", "apply", "lr-high", cwd=dvc_project)
    commit_run(dvc_project, "higher learning rate")
    diff = json.loads(dvc("metrics", "diff", "HEAD~1", "HEAD", "--json", cwd=dvc_project).stdout)
    rows = [(path, key) for path, entries in diff.items() for key in entries]
    assert 0 < len(rows) <= 8, rows  # one changed model: its headline metrics
    assert {path for path, _ in rows} == {"reports/eval/classifier/metrics.json"}, rows
    table = dvc("metrics", "diff", "HEAD~1", "HEAD", "--md", cwd=dvc_project).stdout
    assert "| Path" in table and "reports/eval/classifier/metrics.json" in table
    # The detail, on request: one command away.
    detail = "reports/eval/classifier/detail.json"
    more = json.loads(
        dvc("metrics", "diff", "HEAD~1", "HEAD", "--json", "--targets", detail,
            cwd=dvc_project).stdout
    )  # fmt: skip
    assert any(key.startswith("ci95.") for key in more.get(detail, {})), more


def data_stage_hashes(lock: dict) -> dict[str, list]:
    """The output hashes of the data stages in a dvc.lock."""
    return {
        name: sorted((out["path"], out["md5"]) for out in stage.get("outs", []))
        for name, stage in lock["stages"].items()
        if name.startswith(DATA_STAGES)
    }


def test_a_forced_rerun_on_a_clone_reproduces_the_committed_results(reproduced_project, tmp_path):
    dvc_project = reproduced_project
    commit_run(dvc_project, "run")
    clone = tmp_path / "clone"
    run_cli(["git", "clone", "-q", str(dvc_project), str(clone)], cwd=tmp_path)
    # Up to the test metrics. export and plot are left alone: their dependencies are unchanged
    # only if every model, prediction and metric came back byte for byte (export's own outputs
    # were never in this clone's cache, which is all `dvc status` may say of it).
    forced = dvc("repro", "--force", "evaluate@classifier", "evaluate@detector", cwd=clone)
    assert "Running stage 'train-detector'" in forced.stdout
    status = json.loads(dvc("status", "--json", cwd=clone).stdout)
    assert status == {
        f"export@{model}": [
            {
                "changed outs": {
                    f"models/export/{model}": "not in cache",
                    f"models/export/{model}.tflite": "not in cache",
                }
            }
        ]
        for model in ("classifier", "detector")
    }, status
    for path in ("reports/eval/classifier/metrics.json", "reports/eval/detector/metrics.json"):
        committed = json.loads((dvc_project / path).read_text())
        assert json.loads((clone / path).read_text()) == committed, path
    committed_lock = yaml.safe_load((dvc_project / "dvc.lock").read_text())
    clone_lock = yaml.safe_load((clone / "dvc.lock").read_text())
    assert data_stage_hashes(clone_lock) == data_stage_hashes(committed_lock)
    assert len(data_stage_hashes(committed_lock)) == 6
