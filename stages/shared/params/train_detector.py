"""`train_detector`: the detector's backbone, heads and losses."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from stages.shared.core.config import Section
from stages.shared.models.backbones import BACKBONES
from stages.shared.models.detectors import BOX_HEADS, POOLING
from stages.shared.models.losses import LOCALIZATION_ERRORS
from stages.shared.params.training import Training, Weights, check_backbone_weights


class LossWeights(Section):
    localization: float = Field(ge=0.0)
    classification: float = Field(ge=0.0)


class TrainDetectorParams(Training):
    SECTION: ClassVar[str] = "train_detector"

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
    pooling: Literal[tuple(POOLING)]  # type: ignore[valid-type]
    box_head: Literal[BOX_HEADS]  # type: ignore[valid-type]
    dropout: float = Field(ge=0.0, lt=1.0)
    localization_loss: Literal[tuple(LOCALIZATION_ERRORS)]  # type: ignore[valid-type]
    loss_weights: LossWeights

    @model_validator(mode="after")
    def _backbone_weights(self) -> TrainDetectorParams:
        check_backbone_weights(self.backbone, self.weights)
        return self
