"""End to end through the real `dvc` CLI in a temporary git repository (tiny data)."""

from __future__ import annotations

import json

import pytest
import yaml

from stages.shared.core.paths import TASKS
from stages.shared.evaluation.metrics import HEADLINES
from tests.conftest import dvc, git

pytestmark = pytest.mark.slow


ALL_STAGES = [
    *(f"{stage}@{task}" for stage in ("sample", "split", "augment") for task in TASKS),
    "train-classifier",
    "train-detector",
    "evaluate@classifier",
    "evaluate@detector",
    "export@classifier",
    "export@detector",
    "plot@classifier",
    "plot@detector",
    "summary",
]


def ran_stages(output: str) -> list[str]:
    """The stage names a `dvc repro` printed as run."""
    return [line.split("'")[1] for line in output.splitlines() if line.startswith("Running stage")]


def test_repro_then_nothing_to_do_then_a_split_param_reruns_only_split(
    reproduced, reproduced_project
):
    dvc_project = reproduced_project
    assert sorted(ran_stages(reproduced["stdout"])) == sorted(ALL_STAGES)
    manifests = {
        task: (dvc_project / f"data/split/{task}.csv").read_bytes()
        for task in ("classification", "detection")
    }
    again = dvc("repro", cwd=dvc_project)
    assert ran_stages(again.stdout) == [], again.stdout
    assert "Data and pipelines are up to date" in again.stdout
    status = dvc("status", "--json", cwd=dvc_project)
    assert status.stdout.strip() == "{}"
    git("add", "-A", cwd=dvc_project)
    git("commit", "-q", "-m", "run", cwd=dvc_project)

    forced = dvc("repro", "--force", "--single-item", "split@classification", cwd=dvc_project)
    assert ran_stages(forced.stdout) == ["split@classification"]
    assert (dvc_project / "data/split/classification.csv").read_bytes() == manifests[
        "classification"
    ]

    params_path = dvc_project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["split"]["fractions"] = {"train": 0.6, "val": 0.2, "test": 0.2}
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    # Up to the splits (what follows them is the other tests' business): the samples they
    # depend on are up to date and must not run again.
    changed = dvc("repro", "split@classification", "split@detection", cwd=dvc_project)
    assert sorted(ran_stages(changed.stdout)) == ["split@classification", "split@detection"]
    for task, before in manifests.items():
        assert (dvc_project / f"data/split/{task}.csv").read_bytes() != before


def test_a_params_typo_stops_the_stage_with_one_line(dvc_project):
    params_path = dvc_project / "params.yaml"
    params = yaml.safe_load(params_path.read_text())
    params["split"]["small_clases"] = params["split"].pop("small_classes")
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    result = dvc("repro", "split@classification", cwd=dvc_project, check=False)
    assert result.returncode != 0
    assert "error: params.yaml: split.small_clases: unknown key; valid keys: fractions," in (
        result.stderr + result.stdout
    )
    assert "Traceback" not in result.stderr + result.stdout


def changed_stages(project) -> set[str]:
    """The stages `dvc status` reports as changed."""
    status = json.loads(dvc("status", "--json", cwd=project).stdout or "{}")
    return set(status)


def set_param(project, dotted: str, value) -> None:
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    *parents, leaf = dotted.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def test_an_augment_param_touches_only_its_own_branch(reproduced_project):
    dvc_project = reproduced_project
    assert changed_stages(dvc_project) == set()
    set_param(dvc_project, "augment.detection.copies", 2)
    assert changed_stages(dvc_project) == {"augment@detection"}
    rerun = dvc("repro", cwd=dvc_project)
    ran = ran_stages(rerun.stdout)
    assert ran[0] == "augment@detection" and "train-detector" in ran, ran
    assert not [n for n in ran if "classif" in n or n.startswith(("sample", "split"))], ran
    set_param(dvc_project, "augment.classification.keep_original", False)
    assert changed_stages(dvc_project) == {"augment@classification"}
    set_param(dvc_project, "augment.workers", 1)  # speed only: changes no stage
    assert changed_stages(dvc_project) == {"augment@classification"}


def test_a_training_param_touches_only_its_own_model(reproduced_project):
    dvc_project = reproduced_project
    set_param(dvc_project, "train_detector.head_width", 8)
    assert changed_stages(dvc_project) == {"train-detector"}
    set_param(dvc_project, "train_classifier.dropout", 0.1)
    assert changed_stages(dvc_project) == {"train-detector", "train-classifier"}
    rerun = dvc("repro", cwd=dvc_project)
    ran = sorted(ran_stages(rerun.stdout))
    assert set(ran) - {"summary"} == {  # summary: if a section's text changed
        "evaluate@classifier",
        "evaluate@detector",
        "export@classifier",
        "export@detector",
        "plot@classifier",
        "plot@detector",
        "train-classifier",
        "train-detector",
    }, ran
    metrics = json.loads(dvc("metrics", "show", "--json", cwd=dvc_project).stdout)
    shown = {
        path: sorted(found["data"]) for path, found in metrics[""]["data"].items()
    }  # what `dvc metrics show` lists: the headline of each model, nothing else
    assert shown == {
        "reports/eval/classifier/metrics.json": sorted(HEADLINES["classifier"]),
        "reports/eval/detector/metrics.json": sorted(HEADLINES["detector"]),
    }, shown


PLOT_IDS = [
    "Classifier loss",
    "Detector localization loss",
    "Classifier confusion matrix (test)",
    "Classifier confusion matrix, row-normalised (test)",
    "Classifier ROC, micro and macro average over classes (test)",
    "Detector precision-recall at IoU 0.5 (test)",
    "reports/figures/detector/detector_gallery.png",
    "reports/figures/classifier/classifier_confusion.png",
]


def test_evaluate_and_plot_params_never_retrain_and_plots_render(reproduced_project, tmp_path):
    dvc_project = reproduced_project
    set_param(dvc_project, "train_classifier.learning_rate", 0.002)
    assert changed_stages(dvc_project) == {"train-classifier"}  # not the detector, split, augment
    set_param(dvc_project, "train_classifier.learning_rate", 0.001)
    assert changed_stages(dvc_project) == set()
    set_param(dvc_project, "plot.gallery_size", 4)
    assert changed_stages(dvc_project) == {"plot@classifier", "plot@detector"}
    ran = ran_stages(dvc("repro", cwd=dvc_project).stdout)
    assert ran[:2] == ["plot@classifier", "plot@detector"] and set(ran[2:]) <= {"summary"}
    set_param(dvc_project, "evaluate.detector.presence_threshold", 0.6)
    assert changed_stages(dvc_project) == {"evaluate@detector"}
    # plot follows only if the threshold changed a prediction of this tiny model
    ran = ran_stages(dvc("repro", cwd=dvc_project).stdout)
    assert ran[0] == "evaluate@detector"
    assert set(ran) <= {"evaluate@detector", "plot@detector", "summary"}  # nothing classifier
    out = tmp_path / "html"
    dvc("plots", "show", "-o", str(out), cwd=dvc_project)
    html = (out / "index.html").read_text()
    for plot_id in PLOT_IDS:
        assert plot_id in html, plot_id
    assert "<script src=" not in html  # the offline template: Vega is inline, nothing fetched
    assert (
        "figures/detector/detector_gallery.png" in (dvc_project / "reports/summary.md").read_text()
    )
