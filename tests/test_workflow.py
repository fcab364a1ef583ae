"""The pull-request workflow: valid for GitHub Actions (its JSON schema), and doing its job."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github/workflows/pipeline-report.yml"


def check_schema(path: Path) -> subprocess.CompletedProcess:
    """Validate against the GitHub workflow schema that check-jsonschema ships (no network)."""
    command = [sys.executable, "-m", "check_jsonschema", "--builtin-schema"]
    return subprocess.run(
        [*command, "vendor.github-workflows", str(path)], capture_output=True, text=True
    )


def test_workflow_matches_the_github_actions_schema(tmp_path):
    result = check_schema(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    # The check is real: a job without `runs-on` is refused.
    broken = yaml.safe_load(WORKFLOW.read_text())
    del broken["jobs"]["report"]["runs-on"]
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert check_schema(tmp_path / "broken.yml").returncode != 0


def test_workflow_reproduces_and_reports_the_metrics_diff():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert "pull_request" in triggers
    steps = workflow["jobs"]["report"]["steps"]
    runs = {step.get("name"): step.get("run", "") for step in steps}
    assert runs["Install"] == "pip install --require-hashes -r requirements.lock"
    assert runs["Reproduce"] == "dvc repro"
    report = runs["Post the report"]
    # The headline first, with its intervals: the tool's report leads the comment.
    assert report.index("python -m stages.metrics_diff main") < report.index("dvc params diff")
    assert "cml comment" in runs["Post the report"]
    pulls = next(step for step in steps if step.get("name") == "Pull cached data and models")
    assert "vars.DVC_REMOTE_URL" in pulls["if"] and "dvc pull" in pulls["run"]
    assert any(step.get("uses", "").startswith("actions/checkout") for step in steps)
