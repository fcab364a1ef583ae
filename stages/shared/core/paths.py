"""Paths every stage shares, relative to the project root (stages run from there)."""

from __future__ import annotations

from pathlib import Path

PARAMS_FILE = Path("params.yaml")
SAMPLE_DIR = Path("data/sample")
SPLIT_DIR = Path("data/split")
AUGMENTED_DIR = Path("data/augmented")
MODELS_DIR = Path("models")
REPORTS_DIR = Path("reports")
DATA_REPORTS_DIR = REPORTS_DIR / "data"
PRETRAINED_DIR = Path("pretrained")  # weights files a training can start from (a DVC dependency)
WORK_DIR = Path(".work")  # git-ignored and outside every DVC output: survives a stage restart

TASKS = ("classification", "detection")


def split_manifest(task: str) -> Path:
    """The split manifest of a task."""
    return SPLIT_DIR / f"{task}.csv"


def split_report(task: str) -> Path:
    """The split report (counts, skipped files) of a task."""
    return DATA_REPORTS_DIR / f"{task}.json"


# The models and the task each is trained on.
MODELS = {"classifier": "classification", "detector": "detection"}
EVAL_DIR = REPORTS_DIR / "eval"
TRAIN_REPORTS_DIR = REPORTS_DIR / "train"
FIGURES_DIR = REPORTS_DIR / "figures"


def model_file(model: str) -> Path:
    """The saved Keras model of `classifier` or `detector`."""
    return MODELS_DIR / f"{model}.keras"


def export_report(model: str) -> Path:
    """The export stage's report of `model`: sizes, agreement with Keras, latency."""
    return REPORTS_DIR / "export" / f"{model}.json"


def augmented_manifest(task: str) -> Path:
    """The augmented manifest of a task (its shards sit beside it)."""
    return AUGMENTED_DIR / task / "manifest.csv"


def training_paths(model: str) -> dict[str, str]:
    """What the training stage of `model` reads and writes (its command-line defaults)."""
    return {
        "manifest": augmented_manifest(MODELS[model]).as_posix(),
        "model": model_file(model).as_posix(),
        "batch": (MODELS_DIR / f"{model}_batch.npz").as_posix(),
        "live_dir": (TRAIN_REPORTS_DIR / model).as_posix(),
        "tensorboard": (REPORTS_DIR / "tensorboard" / model).as_posix(),
    }
