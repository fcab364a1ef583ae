"""A `dvc repro` killed with SIGKILL mid-training resumes at the next `dvc repro`, and ends in
the model and the history a run that was never killed produces."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from tests.conftest import dvc, run_cli
from tests.test_pipeline import set_param

pytestmark = pytest.mark.slow

HISTORY = {
    "classifier": "reports/train/classifier/plots/metrics",
    "detector": "reports/train/detector/plots/metrics",
}
STAGE = {"classifier": "train-classifier", "detector": "train-detector"}


def start_repro(project, *targets: str) -> subprocess.Popen:
    """`dvc repro` in its own process group, so the stage under it can be killed too."""
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "TQDM_DISABLE": "1"}
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env['PATH']}"
    return subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", *targets],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def history(project, model: str) -> dict[str, list]:
    """Every DVCLive series of a training run: step and value rows (timestamps left out)."""
    series = {}
    for path in sorted((project / HISTORY[model]).rglob("*.tsv")):
        frame = pd.read_csv(path, sep="\t").drop(columns="timestamp", errors="ignore")
        series[path.relative_to(project).as_posix()] = frame.to_numpy().tolist()
    return series


def slow_epochs(project, model: str) -> None:
    """Batches of 1 over a few hundred images: an epoch lasts seconds, long enough to land in;
    early stopping and the LR schedule both act within the run."""
    set_param(project, "sample.classification.per_class", 40)
    set_param(project, "sample.detection.frames", 150)
    section = f"train_{model}"
    set_param(project, f"{section}.batch_size", 1)
    set_param(project, f"{section}.epochs", 4)
    set_param(project, f"{section}.early_stopping_patience", 2)
    if model == "classifier":  # ReduceLROnPlateau acts (constant schedule), its counters too
        set_param(project, f"{section}.reduce_lr.patience", 1)


@pytest.mark.parametrize("model", ["classifier", "detector"])
def test_sigkill_mid_training_then_repro_ends_as_an_uninterrupted_run(dvc_project, model):
    slow_epochs(dvc_project, model)
    stage, model_file = STAGE[model], dvc_project / f"models/{model}.keras"
    dvc("repro", stage, cwd=dvc_project)
    uninterrupted = model_file.read_bytes(), history(dvc_project, model)
    epochs_run = len(uninterrupted[1][f"{HISTORY[model]}/train/loss.tsv"])
    assert epochs_run >= 3, "the run must last past the epoch the kill lands in"

    # Nothing of the finished run may pass for progress of the next one.
    loss = dvc_project / HISTORY[model] / "train/loss.tsv"
    loss.unlink()
    model_file.unlink()
    process = start_repro(dvc_project, "--force", "--single-item", stage)
    try:
        # The DVCLive history has rows once epochs are done (and backed up).
        wait_for(lambda: loss.exists() and len(loss.read_text().splitlines()) >= 3, 600, "epoch 2")
        time.sleep(0.3)  # into epoch 3 (an epoch takes seconds)
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        output = process.communicate()[0]
    assert process.returncode == -signal.SIGKILL, output[-2000:]
    assert not model_file.exists(), "the run finished before the kill: nothing was tested"

    resumed = dvc("repro", stage, cwd=dvc_project)
    log = resumed.stdout + resumed.stderr
    assert "Epoch 1/4" not in log, log[-3000:]  # BackupAndRestore: no epoch is trained twice
    assert model_file.read_bytes() == uninterrupted[0], "resumed weights differ"
    assert history(dvc_project, model) == uninterrupted[1]
    assert not list((dvc_project / ".work").rglob("*.keras")), "state not cleaned up"
    status = run_cli([sys.executable, "-m", "dvc", "status", stage], dvc_project)
    assert "up to date" in status.stdout
