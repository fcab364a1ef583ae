"""A `dvc repro` killed with SIGKILL mid-training resumes at the next `dvc repro`."""

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


def test_sigkill_mid_training_then_repro_resumes_from_the_last_epoch(dvc_project):
    # Batches of 1 over a few hundred images: an epoch lasts seconds, long enough to land in.
    set_param(dvc_project, "sample.classification.per_class", 30)
    set_param(dvc_project, "train_classifier.batch_size", 1)
    set_param(dvc_project, "train_classifier.epochs", 4)
    set_param(dvc_project, "train_classifier.early_stopping_patience", 10)
    history = dvc_project / "reports/train/classifier/plots/metrics/train/loss.tsv"
    process = start_repro(dvc_project, "train-classifier")
    try:
        # The DVCLive history has a row once epoch 1 is done (and backed up).
        wait_for(
            lambda: history.exists() and len(history.read_text().splitlines()) >= 2, 600, "epoch 1"
        )
        time.sleep(0.5)  # well into epoch 2
        os.killpg(process.pid, signal.SIGKILL)
    finally:
        output = process.communicate()[0]
    assert process.returncode == -signal.SIGKILL, output[-2000:]
    assert "Epoch 4/4" not in output, "the run finished before the kill: nothing was tested"

    resumed = dvc("repro", "train-classifier", cwd=dvc_project)
    log = resumed.stdout + resumed.stderr
    assert "Epoch 1/4" not in log, log[-3000:]  # BackupAndRestore: no epoch is trained twice
    assert "Epoch 4/4" in log
    steps = pd.read_csv(history, sep="\t")["step"].tolist()
    assert steps == [0, 1, 2, 3], steps
    assert not list((dvc_project / ".work/train_classifier").glob("*")), "state not cleaned up"
    status = run_cli([sys.executable, "-m", "dvc", "status", "train-classifier"], dvc_project)
    assert "up to date" in status.stdout
