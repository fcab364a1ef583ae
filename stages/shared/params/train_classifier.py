"""`train_classifier`: the classifier's architecture, regularisation and fine-tuning."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from stages.shared.core.config import Section
from stages.shared.models.backbones import BACKBONES
from stages.shared.models.classifiers import ARCHITECTURES
from stages.shared.params.training import FineTune, Training, Weights, check_backbone_weights


class InModelAugmentation(Section):
    flip: Literal["none", "horizontal", "vertical", "horizontal_and_vertical"]
    rotation: float = Field(ge=0.0, le=0.5, description="fraction of a full turn")
    zoom: float = Field(ge=0.0, lt=1.0)


class TrainClassifierParams(Training):
    SECTION: ClassVar[str] = "train_classifier"

    monitor: Literal["val_loss", "val_accuracy"] = Field(description="picks the best epoch")
    architecture: Literal[tuple(ARCHITECTURES)]  # type: ignore[valid-type]
    weights: Weights = Field(description="null, imagenet, or pretrained/<file>; backbones only")
    width: int = Field(ge=1, le=64, description="mini_inception filter multiplier")
    dropout: float = Field(ge=0.0, lt=1.0)
    label_smoothing: float = Field(ge=0.0, lt=1.0)
    class_weight: Literal["none", "balanced"]
    in_model_augmentation: InModelAugmentation
    fine_tune: FineTune

    @model_validator(mode="after")
    def _backbone_settings(self) -> TrainClassifierParams:
        check_backbone_settings(self.architecture, self.weights, self.fine_tune)
        return self


def check_backbone_settings(architecture: str, weights: str | None, tune: FineTune) -> None:
    """Refuse weights or fine-tuning for an architecture without a backbone, weights the
    backbone cannot take, and a fine-tuning phase with layers but no epochs (or the reverse).
    A plain function (the validator above calls it), so that its checks can be mutated."""
    has_backbone = architecture in BACKBONES
    if weights is not None and not has_backbone:
        raise ValueError(
            f"weights: {architecture} has no backbone to load weights into — set"
            f" weights: null, or architecture: one of {', '.join(BACKBONES)}"
        )
    check_backbone_weights(architecture, weights)
    if (tune.layers > 0) != (tune.epochs > 0):
        raise ValueError(
            f"fine_tune: layers ({tune.layers}) and epochs ({tune.epochs}) go together —"
            " set both above 0 for a fine-tuning phase, or both to 0"
        )
    if tune.layers and not has_backbone:
        raise ValueError(
            f"fine_tune: {architecture} has no backbone to unfreeze — set"
            f" fine_tune.layers: 0, or architecture: one of {', '.join(BACKBONES)}"
        )
