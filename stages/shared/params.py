"""Typed, checked params: one frozen pydantic model per `params.yaml` section.

Only a stage's `main` calls `load_params`; library functions take plain arguments. Every
key is required, unknown keys are refused and nothing is coerced (`epochs: "15"`,
`deterministic: "no"` and `batch_size: true` are errors, not 15, False and 1), so a typo
(in the file or in `dvc exp run -S ...`) stops the stage before any work, with one line
naming the key. Settings that contradict each other are refused the same way.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from stages.shared.cli import UserError
from stages.shared.paths import PARAMS_FILE


class Section(BaseModel):
    """A params block: frozen, no unknown keys, no type coercion (an int is still a float)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# Backbones a classifier can sit on and a detector can use (backbones.BACKBONES builds them).
BACKBONES = ("plain_cnn", "vgg16", "mobilenet_v2", "efficientnet_b0")
PRETRAINED_DIR = "pretrained"


def check_weights(value: str | None) -> str | None:
    """null, `imagenet`, or a weights file inside pretrained/ (a DVC dependency of training)."""
    if value is None or value == "imagenet":
        return value
    if not value.endswith((".keras", ".h5")):
        raise ValueError(
            "must be null, imagenet, or a .keras model of this pipeline / a keras.applications"
            f" .h5 weights file in {PRETRAINED_DIR}/"
        )
    parts = PurePosixPath(value).parts
    if len(parts) < 2 or parts[0] != PRETRAINED_DIR or ".." in parts:
        raise ValueError(
            f"{value!r} must be inside {PRETRAINED_DIR}/ (a dependency of the training stages"
            f" in dvc.yaml) — move the file there and set weights: {PRETRAINED_DIR}/<file>"
        )
    return value


Weights = Annotated[str | None, AfterValidator(check_weights)]


def check_backbone_weights(backbone: str, weights: str | None) -> None:
    """Refuse weights a backbone cannot take: plain_cnn has no imagenet / .h5 file."""
    if backbone == "plain_cnn" and weights is not None and not weights.endswith(".keras"):
        raise ValueError(
            f"weights: plain_cnn has no {weights} weights — set weights: null or a .keras"
            f" model in {PRETRAINED_DIR}/"
        )


def whole_or_auto(low: int, high: int, unit: str, value: Any) -> int | str:
    """A whole number of `unit` from `low` to `high`, or `auto` (a setting the stage derives
    from the data). Bound with functools.partial in the types below and called when params
    load, so that its checks run, and can be tested, then."""
    if value == "auto" or (type(value) is int and low <= value <= high):
        return value
    raise ValueError(f"must be a whole number of {unit} from {low} to {high}, or auto")


# A model input side (`auto`: manifest.input_size) and augmented copies (augment.auto_copies).
ClassificationSide = Annotated[
    Any, AfterValidator(functools.partial(whole_or_auto, 8, 1024, "pixels"))
]
DetectionSide = Annotated[Any, AfterValidator(functools.partial(whole_or_auto, 32, 1024, "pixels"))]
Copies = Annotated[Any, AfterValidator(functools.partial(whole_or_auto, 0, 1000, "copies"))]


class ImageSizes(Section):
    """Pixels, or `auto` (manifest.input_size): classification, the median short side of the
    data within 32-64; detection, the side giving the small objects 12 px, within 64-128."""

    classification: ClassificationSide
    detection: DetectionSide


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


GroupBy = Literal["none", "folder", "pattern"]


class GroupByTask(Section):
    classification: GroupBy
    detection: GroupBy


def check_pattern(value: str) -> str:
    """A regular expression with a capture group (the group name), or "" (unused)."""
    if not value:
        return value
    try:
        compiled = re.compile(value)
    except re.error as err:
        raise ValueError(f"not a valid regular expression ({err}): {value!r}") from None
    if compiled.groups < 1:
        raise ValueError(f"needs a capture group, e.g. 'patient_(\\d+)', got {value!r}")
    return value


class GroupPatternTask(Section):
    classification: Annotated[str, AfterValidator(check_pattern)]
    detection: Annotated[str, AfterValidator(check_pattern)]


class NearDuplicates(Section):
    max_distance: int = Field(ge=0, le=24, description="pHash bits apart; 0 turns the check off")


class SplitParams(Section):
    fractions: Fractions
    min_per_class: int = Field(ge=1, description="fewer unique images in a class is 'small'")
    small_classes: Literal["error", "drop"]
    folds: int = Field(ge=1, le=50, description="k-fold cross-validation; 1 = the plain split")
    fold: int = Field(ge=0, description="which fold is the val split (0 .. folds - 1)")
    group_by: GroupByTask = Field(description="per task: what keeps images in one split")
    group_pattern: GroupPatternTask = Field(description="per task: regex, capture = group")
    near_duplicates: NearDuplicates

    @model_validator(mode="after")
    def _consistent(self) -> SplitParams:
        if self.fold >= self.folds:
            raise ValueError(f"fold must be below folds ({self.folds}), got {self.fold}")
        for task in ("classification", "detection"):
            if getattr(self.group_by, task) == "pattern" and not getattr(self.group_pattern, task):
                raise ValueError(
                    f"group_by.{task} is pattern: set group_pattern.{task} to a regular"
                    " expression whose first capture group names the source"
                )
        return self


class AugmentClassification(Section):
    copies: int = Field(ge=0, le=1000, description="augmented copies per training image")
    keep_original: bool
    format: Literal["raw", "png"] = Field(
        description="how shards store images: raw (fastest to read) | png (lossless, smaller)"
    )
    transforms: list[dict[str, Any]]


class AugmentDetection(AugmentClassification):
    copies: Copies
    min_visibility: float = Field(ge=0.0, le=1.0, description="box share that must survive")


class AugmentParams(Section):
    workers: int = Field(ge=0, description="processes; 0 = one per CPU core")
    shard_size: int = Field(ge=1, le=1_000_000, description="records per TFRecord shard")
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


class Overfit(Section):
    batch: int = Field(ge=1, description="images in the one batch of debug: overfit")
    steps: int = Field(ge=1, le=10_000, description="step budget of debug: overfit")
    loss: float = Field(gt=0.0, description="train loss the one batch must fall below")


class Training(Section):
    """Knobs both training stages share."""

    seed: int | None = Field(ge=0, description="initialisation, order, dropout; null = base.seed")
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"]
    learning_rate: float = Field(gt=0.0, lt=1.0)
    schedule: Literal["constant", "exponential", "inverse_time", "cosine"]
    decay_rate: float = Field(gt=0.0, le=1.0, description="rate kept after one epoch")
    early_stopping_patience: int = Field(ge=1)
    reduce_lr: ReduceLR
    cache: Literal["auto", "memory", "none"]
    shuffle_buffer: int = Field(ge=1, description="records an epoch's shuffle draws from")
    deterministic: bool
    debug: Literal["none", "fast", "overfit"] = Field(
        description="fast: 2 batches, 1 epoch; overfit: one fixed batch until its loss is low"
    )
    overfit: Overfit

    @model_validator(mode="after")
    def _one_owner_of_the_rate(self) -> Training:
        if self.reduce_lr.patience > 0 and self.schedule != "constant":
            raise ValueError(
                f"reduce_lr.patience: the {self.schedule} schedule sets the learning rate"
                " itself — set reduce_lr.patience: 0, or schedule: constant"
            )
        return self


class TrainClassifierParams(Training):
    monitor: Literal["val_loss", "val_accuracy"] = Field(description="picks the best epoch")
    architecture: Literal["simple_cnn", "mini_inception", *BACKBONES]  # type: ignore[valid-type]
    weights: Weights = Field(description="null, imagenet, or pretrained/<file>; backbones only")
    width: int = Field(ge=1, le=64, description="mini_inception filter multiplier")
    dropout: float = Field(ge=0.0, lt=1.0)
    label_smoothing: float = Field(ge=0.0, lt=1.0)
    class_weight: Literal["none", "balanced"]
    in_model_augmentation: InModelAugmentation
    fine_tune: FineTune

    @model_validator(mode="after")
    def _backbone_settings(self) -> TrainClassifierParams:
        has_backbone = self.architecture in BACKBONES
        if self.weights is not None and not has_backbone:
            raise ValueError(
                f"weights: {self.architecture} has no backbone to load weights into — set"
                f" weights: null, or architecture: one of {', '.join(BACKBONES)}"
            )
        check_backbone_weights(self.architecture, self.weights)
        tune = self.fine_tune
        if (tune.layers > 0) != (tune.epochs > 0):
            raise ValueError(
                f"fine_tune: layers ({tune.layers}) and epochs ({tune.epochs}) go together —"
                " set both above 0 for a fine-tuning phase, or both to 0"
            )
        if tune.layers and not has_backbone:
            raise ValueError(
                f"fine_tune: {self.architecture} has no backbone to unfreeze — set"
                f" fine_tune.layers: 0, or architecture: one of {', '.join(BACKBONES)}"
            )
        return self


class LossWeights(Section):
    localization: float = Field(ge=0.0)
    classification: float = Field(ge=0.0)


class TrainDetectorParams(Training):
    monitor: Literal["val_loss", "val_box_loss", "val_mean_iou"] = Field(
        description="picks the best epoch"
    )
    backbone: Literal[BACKBONES]  # type: ignore[valid-type]
    weights: Weights = Field(description="null, imagenet, or pretrained/<file>")
    trainable_backbone: bool
    bn_momentum: float | None = Field(
        ge=0.0, lt=1.0, description="override keras.applications BatchNorm momentum; null = keep"
    )
    head_width: int = Field(ge=1)
    pooling: Literal["max", "avg", "flatten", "softargmax"]
    box_head: Literal["dense", "center"]
    dropout: float = Field(ge=0.0, lt=1.0)
    localization_loss: Literal["corners", "giou"]
    loss_weights: LossWeights

    @model_validator(mode="after")
    def _backbone_weights(self) -> TrainDetectorParams:
        check_backbone_weights(self.backbone, self.weights)
        return self


Behaviour = Literal["flip", "shift", "brightness", "jpeg"]  # behaviour.CHECKS


class EvaluateClassifier(Section):
    batch_size: int = Field(ge=1)
    top_k: int = Field(ge=0, description="top-k accuracy, reported with more than k classes")
    bootstrap: int = Field(ge=100, le=100_000, description="resamples for the 95% intervals")
    behaviour: list[Behaviour] = Field(description="checks on transformed test images")


class DetectorSlices(Section):
    size: list[float] = Field(description="box area shares: small below the first, large from")
    border: float = Field(gt=0.0, lt=0.5, description="a box this close to an edge is 'border'")

    @model_validator(mode="after")
    def _no_empty_slice(self) -> DetectorSlices:
        if len(self.size) != 2 or not 0 < self.size[0] < self.size[1] < 1:
            raise ValueError(
                f"size: two rising box-area shares in (0, 1), e.g. [0.05, 0.15], got {self.size}"
                " — otherwise a size slice is empty by definition"
            )
        return self


class EvaluateDetector(Section):
    batch_size: int = Field(ge=1)
    presence_threshold: float = Field(gt=0.0, lt=1.0, description="score that says 'object'")
    bootstrap: int = Field(ge=100, le=100_000, description="resamples for the 95% intervals")
    behaviour: list[Behaviour] = Field(description="checks on transformed test images")
    slices: DetectorSlices


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


class ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e-4` as a number as YAML 1.2 does (YAML 1.1, which
    PyYAML follows, wants `1.0e-4` and would hand the stage the string '1e-4')."""


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_params_file(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """The raw params mapping, with unknown top-level sections refused."""
    try:
        raw = yaml.load(Path(path).read_text(), Loader=ParamsLoader)  # a SafeLoader
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
