"""A change re-runs only what it touches: a comment-only edit of each module under stages/, in
turn, and the stages `dvc status` then lists, through the real CLI, against the committed
table (tests/reruns.json). `UPDATE_RERUNS=1` rewrites the table (review its diff)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.project import ROOT, dvc, new_pipeline_repo

TABLE = ROOT / "tests/reruns.json"
# Modules that serve one model only, and the stages of the other model.
DETECTOR_ONLY = (
    "stages/train_detector.py",
    "stages/shared/models/detectors.py",
    "stages/shared/models/losses.py",
    "stages/shared/params/train_detector.py",
)
CLASSIFIER_ONLY = (
    "stages/train_classifier.py",
    "stages/shared/models/classifiers.py",
    "stages/shared/params/train_classifier.py",
)
CLASSIFIER_STAGES = ("train-classifier", "evaluate@classifier", "export@classifier")
DETECTOR_STAGES = ("train-detector", "evaluate@detector", "export@detector")


def placeholder_outputs(project: Path) -> None:
    """Something at every output of the pipeline, so that `dvc commit` records a lock whose
    deps are the code as it is: what a repository looks like after `dvc repro`."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        outs = [Path(out.fs_path) for stage in repo.index.stages for out in stage.outs]
    for out in outs:
        if out.suffix:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("placeholder\n")
        else:
            out.mkdir(parents=True, exist_ok=True)
            (out / "placeholder.txt").write_text("placeholder\n")


def invalidated(project: Path) -> list[str]:
    """The stages `dvc status` says have a changed dependency."""
    status = json.loads(dvc("status", "--json", cwd=project).stdout or "{}")
    return sorted(
        stage
        for stage, changes in status.items()
        if any(isinstance(c, dict) and "changed deps" in c for c in changes)
    )


@pytest.fixture(scope="module")
def reruns(tmp_path_factory) -> dict[str, list[str]]:
    project = new_pipeline_repo(tmp_path_factory.mktemp("reruns") / "project")
    placeholder_outputs(project)
    dvc("commit", "-f", "-q", cwd=project)
    assert invalidated(project) == []
    table = {}
    for path in sorted((project / "stages").rglob("*.py")):
        text = path.read_text()
        path.write_text(text + "# a comment-only edit\n")
        table[path.relative_to(project).as_posix()] = invalidated(project)
        path.write_text(text)
    return table


@pytest.mark.slow
def test_each_module_edit_reruns_the_stages_of_the_committed_table(reruns):
    if os.environ.get("UPDATE_RERUNS"):
        TABLE.write_text(json.dumps(reruns, indent=1) + "\n")
    assert reruns == json.loads(TABLE.read_text())


@pytest.mark.slow
def test_no_module_of_one_model_reruns_the_other_models_stages(reruns):
    for module in DETECTOR_ONLY:  # seen by its own model's training, by none of the other's
        assert "train-detector" in reruns[module], module
        assert not set(reruns[module]) & set(CLASSIFIER_STAGES), module
    for module in CLASSIFIER_ONLY:
        assert "train-classifier" in reruns[module], module
        assert not set(reruns[module]) & set(DETECTOR_STAGES), module
    # each stage's own params checks re-run that stage and nothing upstream of it
    assert reruns["stages/shared/params/train_classifier.py"] == ["train-classifier"]
    assert reruns["stages/shared/params/train_detector.py"] == ["train-detector"]
    assert reruns["stages/shared/params/evaluate.py"] == [
        "evaluate@classifier",
        "evaluate@detector",
    ]
    assert reruns["stages/shared/params/export.py"] == ["export@classifier", "export@detector"]
    # docstring-only package files re-run nothing
    assert all(
        reruns[m] == []
        for m in reruns
        if m.startswith("stages/shared") and m.endswith("__init__.py")
    )
