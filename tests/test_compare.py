"""`python -m stages.compare`: the paired verdict by hand, and A/B through the real DVC queue."""

from __future__ import annotations

import numpy as np
import pytest

from stages import compare
from stages.shared.cli import UserError
from tests.conftest import dvc, git, run_cli
from tests.test_pipeline import set_param


def test_the_paired_interval_and_verdict_by_hand():
    a, b = np.array([0.90, 0.92, 0.91]), np.array([0.93, 0.94, 0.95])
    row = compare.verdict_row("accuracy", a, b)
    # Differences 0.03, 0.02, 0.04: mean 0.03, sd 0.01, t(0.975, 2) = 4.3027 → ±0.0248.
    assert row[3] == "+0.0300 (+0.0052 to +0.0548)" and row[4] == "B better"
    assert compare.verdict_row("log_loss", a, b)[4] == "B worse"  # higher log-loss is worse
    noisy = compare.verdict_row("accuracy", a, np.array([0.95, 0.90, 0.92]))
    assert noisy[4] == "cannot tell"
    assert compare.verdict_row("accuracy", a, a.copy())[4] == "cannot tell"


def test_an_unknown_revision_or_too_few_seeds_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    git("init", "-q", "-b", "main", cwd=tmp_path)
    (tmp_path / "a.txt").write_text("a")
    git("add", "-A", cwd=tmp_path)
    git("commit", "-q", "-m", "a", cwd=tmp_path)
    dvc("init", "-q", cwd=tmp_path)
    with pytest.raises(
        UserError, match=r"B: 'nowhere' is neither a git revision nor a DVC experiment"
    ):
        compare.main(["main", "nowhere", "--seeds", "2"])
    with pytest.raises(UserError, match=r"--seeds: 1 — an interval needs at least 2 seeds"):
        compare.main(["main", "main", "--seeds", "1"])


@pytest.mark.slow
def test_identical_configurations_cannot_be_told_apart_and_a_broken_one_is_worse(
    reproduced_project,
):
    project = reproduced_project
    # Enough digits and epochs that a trained classifier is far from chance on the test split.
    set_param(project, "sample.classification.per_class", 30)
    set_param(project, "train_classifier.epochs", 5)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "run", cwd=project)
    git("checkout", "-q", "-b", "frozen", cwd=project)
    set_param(project, "train_classifier.learning_rate", 1.0e-12)  # a learning rate of ~0
    git("commit", "-q", "-am", "no learning", cwd=project)
    git("checkout", "-q", "main", cwd=project)
    same = run_cli(["python", "-m", "stages.compare", "main", "main", "--seeds", "2"], cwd=project)
    rows = {line.split(" | ")[0].strip("| "): line for line in same.stdout.splitlines()}
    assert rows.get("accuracy", "").endswith("| cannot tell |"), same.stdout + same.stderr
    # B is A's commit: its seeds are A's experiments, not trained again.
    assert same.stdout.count(", already run") == 2, same.stdout
    worse = run_cli(
        ["python", "-m", "stages.compare", "main", "frozen", "--seeds", "2", "--fail-if-worse"],
        cwd=project,
        check=False,
    )
    rows = {line.split(" | ")[0].strip("| "): line for line in worse.stdout.splitlines()}
    assert rows.get("accuracy", "").endswith("| B worse |"), worse.stdout + worse.stderr
    assert worse.returncode == 1
    assert worse.stdout.count(", already run") == 2, worse.stdout  # main's two seeds
    # Four trainings in all: main's two seeds and frozen's two.
    listed = dvc("exp", "list", "--all-commits", "--name-only", cwd=project).stdout.split()
    assert len([name for name in listed if name.startswith("compare-")]) == 4, listed
    assert git("rev-parse", "--abbrev-ref", "HEAD", cwd=project).stdout.strip() == "main"
