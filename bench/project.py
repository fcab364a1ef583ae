"""The pipeline in a temporary git + DVC repository, for the end-to-end tests and the
benchmarks alike: its code, dvc.yaml and params committed, and the real CLIs run in it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def copy_dvc_setup(repo: Path) -> None:
    """The project's DVC config (no analytics, the offline page template), its plot templates
    and the page template, into `repo`: what `dvc plots` and the `plot` stage read."""
    (repo / ".dvc").mkdir(exist_ok=True)
    shutil.copy(ROOT / ".dvc/config", repo / ".dvc/config")
    shutil.copytree(ROOT / ".dvc/plots", repo / ".dvc/plots")
    shutil.copytree(ROOT / "review", repo / "review")


TINY_PARAMS = {
    "base": {"image_size": {"classification": 16, "detection": 32}},
    "augment": {
        "classification": {
            "copies": 1,
            "keep_original": True,
            "format": "png",
            "transforms": [{"name": "HorizontalFlip", "p": 0.5}],
        },
        "detection": {
            "copies": 1,
            "keep_original": True,
            "format": "raw",
            "min_visibility": 0.5,
            "paste": 0.0,
            "transforms": [{"name": "HorizontalFlip", "p": 0.5}],
        },
    },
    "train_classifier": {"epochs": 1, "batch_size": 16},
    "train_detector": {"epochs": 1, "batch_size": 8},
    "sample": {
        "classification": {"image_size": 16, "per_class": 8},
        "detection": {
            "frames": 24,
            "negative_fraction": 0.2,
            "frame_width": 64,
            "frame_height": 48,
            "face_min": 16,
            "face_max": 32,
        },
    },
}


def run_cli(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run a CLI command with the test interpreter's environment; failures show stderr.

    Its output goes through files, not pipes: the call ends when the command does, even when
    it leaves a process behind that still holds its output open (`dvc exp run --run-all`
    starts a queue worker that may outlive it)."""
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "TQDM_DISABLE": "1",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@example.com",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@example.com",
    }
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        code = subprocess.run(args, cwd=cwd, env=env, stdout=out, stderr=err).returncode
        out.seek(0), err.seek(0)
        result = subprocess.CompletedProcess(args, code, out.read(), err.read())
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout[-4000:]}\nstderr:\n{result.stderr[-4000:]}"
        )
    return result


def dvc(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real `dvc` CLI of this environment."""
    return run_cli([sys.executable, "-m", "dvc", *args], cwd, check)


def git(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_cli(["git", *args], cwd)


def tiny_params() -> dict:
    """The project's params with TINY_PARAMS merged in: tiny data, one epoch."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section, values in TINY_PARAMS.items():
        params[section].update(values)
    return params


def new_pipeline_repo(project: Path, params: dict | None = None) -> Path:
    """The pipeline's code, dvc.yaml and `params` (default: `tiny_params()`), committed in a
    new git + DVC repository; the end-to-end tests and `bench/` run the real CLIs in it."""
    project.mkdir(parents=True, exist_ok=True)
    shutil.copytree(
        ROOT / "stages", project / "stages", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("dvc.yaml", "paths.yaml", ".gitignore"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "pretrained", project / "pretrained")
    params = tiny_params() if params is None else params
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git("init", "-q", "-b", "main", cwd=project)
    dvc("init", "-q", cwd=project)
    copy_dvc_setup(project)
    git("add", "-A", cwd=project)
    git("commit", "-q", "-m", "pipeline", cwd=project)
    return project
