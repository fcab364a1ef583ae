"""Typed, checked params: one frozen pydantic model per `params.yaml` section.

Only a stage's `main` calls `load_params`; library functions take plain arguments. Every
key is required and unknown keys are refused, so a typo (in the file or in
`dvc exp run -S ...`) stops the stage before any work, with one line naming the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from stages.shared.cli import UserError
from stages.shared.paths import PARAMS_FILE


class Section(BaseModel):
    """A params block: frozen, no unknown keys, no silent type coercion of strings to numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class ImageSizes(Section):
    classification: int = Field(ge=8, le=1024)
    detection: int = Field(ge=32, le=1024)


class DistributeParams(Section):
    strategy: Literal["auto", "mirrored", "multi_worker"]
    logical_cpus: int = Field(ge=0, le=64, description="mirrored with no GPU: CPU split in N")
    scale_learning_rate: bool = Field(description="learning rate × replicas (linear rule)")


class BaseParams(Section):
    seed: int = Field(ge=0)
    image_size: ImageSizes
    distribute: DistributeParams
    mixed_precision: bool
    jit_compile: bool


class DataParams(Section):
    classification: str = Field(min_length=1)
    detection: str = Field(min_length=1)


class SampleClassification(Section):
    image_size: int = Field(ge=8, le=256)
    per_class: int = Field(ge=2, description="images per digit class, at most what sklearn ships")


class SampleDetection(Section):
    frames: int = Field(ge=10)
    negative_fraction: float = Field(ge=0.0, lt=1.0)
    frame_width: int = Field(ge=32)
    frame_height: int = Field(ge=32)
    face_min: int = Field(ge=8)
    face_max: int = Field(ge=8)

    @model_validator(mode="after")
    def _face_fits(self) -> SampleDetection:
        if not self.face_min <= self.face_max <= min(self.frame_width, self.frame_height):
            raise ValueError("need face_min <= face_max <= the frame's shorter side")
        return self


class SampleParams(Section):
    classification: SampleClassification
    detection: SampleDetection


class Fractions(Section):
    train: float = Field(gt=0.0, lt=1.0)
    val: float = Field(ge=0.0, lt=1.0)
    test: float = Field(ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _sum_to_one(self) -> Fractions:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must sum to 1, got {total:g}")
        return self


class SplitParams(Section):
    fractions: Fractions
    min_per_class: int = Field(ge=1, description="fewer unique images in a class is 'small'")
    small_classes: Literal["error", "drop"]
    folds: int = Field(ge=1, le=50, description="k-fold cross-validation; 1 = the plain split")
    fold: int = Field(ge=0, description="which fold is the val split (0 .. folds - 1)")

    @model_validator(mode="after")
    def _fold_exists(self) -> SplitParams:
        if self.fold >= self.folds:
            raise ValueError(f"fold must be below folds ({self.folds}), got {self.fold}")
        return self


class AugmentClassification(Section):
    copies: int = Field(ge=0, le=1000, description="augmented copies per training image")
    keep_original: bool
    size: int = Field(ge=8, le=1024, description="output side, pixels (square)")
    format: Literal["png", "jpg"]
    transforms: list[dict[str, Any]]


class AugmentDetection(AugmentClassification):
    min_visibility: float = Field(ge=0.0, le=1.0, description="box share that must survive")


class AugmentParams(Section):
    workers: int = Field(ge=0, description="processes; 0 = one per CPU core")
    classification: AugmentClassification
    detection: AugmentDetection


class InModelAugmentation(Section):
    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"]
    rotation: float = Field(ge=0.0, le=0.5, description="fraction of a full turn")
    zoom: float = Field(ge=0.0, lt=1.0)


class ReduceLR(Section):
    patience: int = Field(ge=0, description="0 turns ReduceLROnPlateau off")
    factor: float = Field(gt=0.0, lt=1.0)
    min_lr: float = Field(ge=0.0)


class FineTune(Section):
    layers: int = Field(ge=0, description="top backbone layers to unfreeze; 0 = no phase 2")
    epochs: int = Field(ge=0)
    learning_rate: float = Field(gt=0.0, lt=1.0)


class Training(Section):
    """Knobs both training stages share."""

    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"]
    learning_rate: float = Field(gt=0.0, lt=1.0)
    schedule: Literal["constant", "exponential", "inverse_time", "cosine"]
    decay_rate: float = Field(gt=0.0, le=1.0, description="rate kept after one epoch")
    early_stopping_patience: int = Field(ge=1)
    reduce_lr: ReduceLR
    cache: Literal["auto", "memory", "none"]
    deterministic: bool


class TrainClassifierParams(Training):
    monitor: Literal["val_loss", "val_accuracy"] = Field(description="picks the best epoch")
    architecture: Literal["simple_cnn", "mini_inception", "mobilenet_v2", "efficientnet_b0"]
    weights: Literal["imagenet"] | None = Field(description="backbones only; null = from scratch")
    width: int = Field(ge=1, le=64, description="mini_inception filter multiplier")
    dropout: float = Field(ge=0.0, lt=1.0)
    label_smoothing: float = Field(ge=0.0, lt=1.0)
    class_weight: Literal["none", "balanced"]
    in_model_augmentation: InModelAugmentation
    fine_tune: FineTune


class LossWeights(Section):
    localization: float = Field(ge=0.0)
    classification: float = Field(ge=0.0)


class TrainDetectorParams(Training):
    monitor: Literal["val_loss", "val_box_loss", "val_mean_iou"] = Field(
        description="picks the best epoch"
    )
    backbone: Literal["plain_cnn", "vgg16", "mobilenet_v2", "efficientnet_b0"]
    weights: Literal["imagenet"] | None = Field(description="keras.applications backbones only")
    trainable_backbone: bool
    bn_momentum: float | None = Field(
        ge=0.0, lt=1.0, description="override keras.applications BatchNorm momentum; null = keep"
    )
    head_width: int = Field(ge=1)
    pooling: Literal["max", "avg", "flatten", "softargmax"]
    dropout: float = Field(ge=0.0, lt=1.0)
    localization_loss: Literal["corners", "giou"]
    loss_weights: LossWeights


class EvaluateClassifier(Section):
    batch_size: int = Field(ge=1)
    top_k: int = Field(ge=0, description="top-k accuracy, reported with more than k classes")


class EvaluateDetector(Section):
    batch_size: int = Field(ge=1)
    presence_threshold: float = Field(gt=0.0, lt=1.0, description="score that says 'object'")


class EvaluateParams(Section):
    classifier: EvaluateClassifier
    detector: EvaluateDetector


class PlotParams(Section):
    dpi: int = Field(ge=50, le=400)
    gallery_size: int = Field(ge=1, le=64, description="test images per gallery figure")
    gallery_columns: int = Field(ge=1, le=16)


class ExportParams(Section):
    max_images: int = Field(ge=1, description="test images the exports are checked on")
    tolerance: float = Field(gt=0.0, description="largest accepted difference from Keras")


SECTIONS: dict[str, type[Section]] = {
    "base": BaseParams,
    "data": DataParams,
    "sample": SampleParams,
    "split": SplitParams,
    "augment": AugmentParams,
    "train_classifier": TrainClassifierParams,
    "train_detector": TrainDetectorParams,
    "evaluate": EvaluateParams,
    "plot": PlotParams,
    "export": ExportParams,
}


def read_params_file(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """The raw params mapping, with unknown top-level sections refused."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise UserError(f"{path}: not found — run stages from the project root") from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise UserError(f"{path}: invalid YAML{where} — fix the syntax") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: must be a mapping of sections ({', '.join(SECTIONS)})")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise UserError(
            f"{path}: unknown section {unknown[0]!r}; valid sections: {', '.join(SECTIONS)}"
        )
    return raw


def load_params(section: str, path: Path = PARAMS_FILE) -> Any:
    """Load and check one section of params.yaml into its frozen model."""
    if section not in SECTIONS:
        raise ValueError(f"unknown params section {section!r}; choices: {', '.join(SECTIONS)}")
    raw = read_params_file(path)
    if section not in raw:
        raise UserError(f"{path}: missing section {section!r}")
    return parse_section(section, raw[section], path)


def parse_section(section: str, data: Any, path: Path | str = PARAMS_FILE) -> Any:
    """Validate a mapping against a section's model, as one line on failure."""
    model = SECTIONS[section]
    try:
        return model.model_validate(data)
    except ValidationError as err:
        # Unknown keys first: a typo shows up as "unknown" + "missing", and the typo is the news.
        errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
        problems = [_describe(model, section, e) for e in errors]
        raise UserError(f"{path}: " + "; ".join(problems)) from None


def _describe(model: type[Section], section: str, error: dict[str, Any]) -> str:
    """One human phrase for one pydantic error, naming the key and the valid choices."""
    loc = tuple(str(part) for part in error["loc"])
    key = ".".join((section, *loc))
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key; valid keys: {', '.join(_fields_at(model, loc[:-1]))}"
    if error["type"] == "missing":
        return f"{key}: missing key; required keys: {', '.join(_fields_at(model, loc[:-1]))}"
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{key}: {message}{shown}"


def _fields_at(model: type[Section], loc: tuple[str, ...]) -> list[str]:
    """The field names of the (nested) model found at `loc`."""
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        if get_origin(annotation) is not None:
            annotation = next(a for a in get_args(annotation) if isinstance(a, type))
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
