"""core/paths.py: every path a stage writes or reads is where dvc.yaml (through paths.yaml)
says it is."""

from __future__ import annotations

import subprocess

import yaml

from stages.shared.core import paths
from tests.conftest import ROOT
from tests.test_dvc_yaml import resolved


def stage(name: str) -> dict:
    definition = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"][name]
    return definition.get("do", definition)


def entries(body: dict, kind: str, key: str = "", item: str = "") -> set[str]:
    listed = {e if isinstance(e, str) else next(iter(e)) for e in body.get(kind, [])}
    return {resolved(e.replace("${item}", item), key) for e in listed}


def test_a_training_stage_writes_where_its_dvc_stage_tracks_it_and_reads_its_deps():
    for model, task in paths.MODELS.items():
        body = stage(f"train-{model}")
        found = paths.training_paths(model)
        outs = entries(body, "outs")
        assert {found["model"], found["batch"], found["live_dir"]} <= outs, (model, outs)
        assert found["model"] == paths.model_file(model).as_posix()
        assert found["manifest"] == paths.augmented_manifest(task).as_posix()
        assert paths.augmented_manifest(task).parent.as_posix() in entries(body, "deps")
        assert found["tensorboard"] not in outs  # git-ignored logs, not a DVC output
        ignored = subprocess.run(["git", "check-ignore", "-q", found["tensorboard"]], cwd=ROOT)
        assert ignored.returncode == 0, found["tensorboard"]


def test_augment_writes_its_manifest_where_training_and_evaluation_read_it(workdir):
    from stages import augment, split
    from tests.conftest import make_classification, write_params

    make_classification(workdir / "ds", {"cat": 12, "dog": 10})
    write_params(workdir, data={"classification": "ds"})
    split.main(["classification"])
    augment.main(["classification"])
    assert (workdir / paths.augmented_manifest("classification")).is_file()


def test_split_augment_evaluate_export_plot_paths_follow_dvc_yaml():
    for task in paths.TASKS:
        outs = entries(stage("split"), "outs", task)
        assert outs == {paths.split_manifest(task).as_posix(), paths.split_report(task).as_posix()}
        assert paths.split_manifest(task).as_posix() in entries(stage("augment"), "deps", item=task)
    for model, task in paths.MODELS.items():
        exported = entries(stage("export"), "outs", model)
        assert paths.export_report(model).as_posix() in exported
        assert (paths.EXPORT_DIR / model).as_posix() in exported
        plotted = entries(stage("plot"), "outs", model)
        assert paths.section_file(model).as_posix() in plotted
        summary_deps = entries(stage("summary"), "deps")
        assert paths.section_file(model).as_posix() in summary_deps
        assert paths.model_file(model).as_posix() in entries(stage("evaluate"), "deps", model, task)
