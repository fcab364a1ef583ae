"""What both training sections share: optimizer, schedule, callbacks, data feed, debug
modes, and the weights a backbone starts from."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from stages.shared.core.config import Section
from stages.shared.core.paths import PRETRAINED_DIR as PRETRAINED
from stages.shared.training.optim import OPTIMIZERS, SCHEDULES


def check_weights(value: str | None) -> str | None:
    """null, `imagenet`, or a weights file inside pretrained/ (a DVC dependency of training)."""
    if value is None or value == "imagenet":
        return value
    if not value.endswith((".keras", ".h5")):
        raise ValueError(
            "must be null, imagenet, or a .keras model of this pipeline / a keras.applications"
            f" .h5 weights file in {PRETRAINED}/"
        )
    parts = PurePosixPath(value).parts
    if len(parts) < 2 or parts[0] != PRETRAINED.as_posix() or ".." in parts:
        raise ValueError(
            f"{value!r} must be inside {PRETRAINED}/ (a dependency of the training stages"
            f" in dvc.yaml) — move the file there and set weights: {PRETRAINED}/<file>"
        )
    return value


Weights = Annotated[str | None, AfterValidator(check_weights)]


def check_backbone_weights(backbone: str, weights: str | None) -> None:
    """Refuse weights a backbone cannot take: plain_cnn has no imagenet / .h5 file."""
    if backbone == "plain_cnn" and weights is not None and not weights.endswith(".keras"):
        raise ValueError(
            f"weights: plain_cnn has no {weights} weights — set weights: null or a .keras"
            f" model in {PRETRAINED}/"
        )


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
    optimizer: Literal[tuple(OPTIMIZERS)]  # type: ignore[valid-type]
    learning_rate: float = Field(gt=0.0, lt=1.0)
    schedule: Literal[tuple(SCHEDULES)]  # type: ignore[valid-type]
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
