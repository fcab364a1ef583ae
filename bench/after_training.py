"""The work around a classifier experiment's training: what `dvc repro` runs after
`train-classifier` when only the classifier changed (evaluate@classifier, export@classifier,
plot@classifier, summary), each stage's start-up (the interpreter and the libraries it
imports) apart from its work. Measured on a copy of this workspace after a full `dvc repro`
of the default pipeline (the sample): `python -m bench.after_training` writes
bench/AFTER_TRAINING.md; `make bench` includes it."""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, SMOKE, machine, row, run_measured, table
from bench.project import copy_dvc_setup, dvc, git, new_pipeline_repo

# (stage, its command, the imports that are its start-up: what it loads before any work)
STAGES = [
    ("evaluate@classifier", ["-m", "stages.evaluate", "classifier"], "stages.evaluate, keras"),
    ("export@classifier", ["-m", "stages.export", "classifier"], "stages.export, keras"),
    ("plot@classifier", ["-m", "stages.plot", "classifier"], "stages.plot, matplotlib.pyplot"),
    ("summary", ["-m", "stages.summary"], "stages.summary"),
]
TARGET_S = 30.0  # the work (start-up apart) around a classifier experiment's training
COPIED = ("stages", "params.yaml", "dvc.yaml", "paths.yaml", "data", "models", "reports")


def workspace_copy(into: Path) -> Path:
    """This workspace's code, data, models and reports in a new git + DVC repository."""
    for name in COPIED:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, into / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, into / name)
    git("init", "-q", cwd=into)
    dvc("init", "-q", cwd=into)
    copy_dvc_setup(into)
    return into


def best_of(command: list[str], cwd: Path, runs: int) -> float:
    return min(run_measured(command, cwd)[0] for _ in range(runs))


def measure(project: Path, runs: int = 2, stages=STAGES) -> list[dict]:
    """Per stage: wall seconds, start-up seconds, work = the difference (best of `runs`)."""
    found = []
    for stage, args, imports in stages:
        total = best_of([sys.executable, *args], project, runs)
        startup = best_of([sys.executable, "-c", f"import {imports}"], project, runs)
        found.append({"stage": stage, "total_s": total, "startup_s": startup,
                      "work_s": max(total - startup, 0.0)})  # fmt: skip
    return found


def run() -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        if SMOKE:  # no default run to copy: the tiny pipeline, run here
            project = new_pipeline_repo(Path(tmp) / "project")
            dvc("repro", "-q", "export@classifier", "plot@classifier", cwd=project)
            found = measure(project, runs=1, stages=STAGES[:-1])  # summary: both models
        elif not (ROOT / "models/classifier.keras").exists():
            raise SystemExit("after_training: run the default pipeline first (`make run`)")
        else:
            found = measure(workspace_copy(Path(tmp)))
    work = sum(f["work_s"] for f in found)
    startup = sum(f["startup_s"] for f in found)
    for f in found:
        print(f"after_training: {f['stage']}: {f['total_s']:.1f} s = start-up"
              f" {f['startup_s']:.1f} s + work {f['work_s']:.1f} s")  # fmt: skip
    return [
        row(
            "work around a classifier experiment's training, s (4 stages)",
            round(work, 1),
            f"<= {TARGET_S:g}",
            work <= TARGET_S,
        ),
        row("their start-up (interpreter + imports), s", round(startup, 1)),
        *(row(f"{f['stage']}: work, s", round(f["work_s"], 1)) for f in found),
    ]


def main() -> None:
    rows = run()
    Path(ROOT / "bench/AFTER_TRAINING.md").write_text(
        "# The work around a classifier experiment's training\n\n"
        f"{time.strftime('%Y-%m-%d')}, {machine()}; written by `python -m bench.after_training`"
        " on a copy of the workspace after `make run` (the default pipeline on the sample).\n\n"
        + table(rows)
        + "\n"
    )


if __name__ == "__main__":
    main()
