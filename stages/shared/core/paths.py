"""Paths every stage shares, relative to the project root (stages run from there)."""

from __future__ import annotations

from pathlib import Path

import yaml

# The one list of where things are, also read by dvc.yaml (`vars: [paths.yaml]`); it sits at
# the root of the project this code belongs to.
PATHS_FILE = Path(__file__).resolve().parents[3] / "paths.yaml"
WHERE = {name: Path(path) for name, path in yaml.safe_load(PATHS_FILE.read_text())["paths"].items()}

PARAMS_FILE = Path("params.yaml")
SAMPLE_DIR = WHERE["sample"]
SPLIT_DIR = WHERE["split"]
AUGMENTED_DIR = WHERE["augmented"]
MODELS_DIR = WHERE["models"]
EXPORT_DIR = WHERE["exports"]
REPORTS_DIR = WHERE["reports"]
DATA_REPORTS_DIR = WHERE["data_reports"]
PRETRAINED_DIR = WHERE["pretrained"]  # weights files a training can start from (a DVC dependency)
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
EVAL_DIR = WHERE["eval_reports"]
TRAIN_REPORTS_DIR = WHERE["train_reports"]
FIGURES_DIR = WHERE["figures"]


def model_file(model: str) -> Path:
    """The saved Keras model of `classifier` or `detector`."""
    return MODELS_DIR / f"{model}.keras"


def section_file(model: str) -> Path:
    """The model's part of reports/summary.md (its section and warnings), written by plot."""
    return WHERE["sections"] / f"{model}.json"


def export_report(model: str) -> Path:
    """The export stage's report of `model`: sizes, agreement with Keras, latency."""
    return WHERE["export_reports"] / f"{model}.json"


def augmented_manifest(task: str) -> Path:
    """The augmented manifest of a task (its shards sit beside it)."""
    return AUGMENTED_DIR / task / "manifest.csv"


def throughput_dir(model: str) -> Path:
    """The training stage's speed per epoch (DVCLive), apart from its reports: speeds differ
    between machines and runs, the model's reports do not."""
    return WHERE["throughput"] / model


def inference_throughput(model: str) -> Path:
    """Evaluate's inference speed of `model` on the test images (machine-dependent)."""
    return WHERE["throughput"] / f"{model}-inference.json"


def training_paths(model: str) -> dict[str, str]:
    """What the training stage of `model` reads and writes (its command-line defaults)."""
    return {
        "manifest": augmented_manifest(MODELS[model]).as_posix(),
        "model": model_file(model).as_posix(),
        "batch": (MODELS_DIR / f"{model}_batch.npz").as_posix(),
        "live_dir": (TRAIN_REPORTS_DIR / model).as_posix(),
        "throughput_dir": throughput_dir(model).as_posix(),
        "tensorboard": (REPORTS_DIR / "tensorboard" / model).as_posix(),
    }
