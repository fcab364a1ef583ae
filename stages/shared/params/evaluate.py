"""`evaluate`: batch size, intervals, behaviour checks and slices per model."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from stages.shared.core.config import Section
from stages.shared.evaluation.behaviour import CHECKS

Behaviour = Literal[tuple(CHECKS)]  # type: ignore[valid-type]


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
        check_slice_sizes(self.size)
        return self


def check_slice_sizes(size: list[float]) -> None:
    """Two rising box-area shares in (0, 1), so that no size slice is empty by definition. A
    plain function (the validator above calls it), so that its check can be mutated."""
    if len(size) != 2 or not 0 < size[0] < size[1] < 1:
        raise ValueError(
            f"size: two rising box-area shares in (0, 1), e.g. [0.05, 0.15], got {size}"
            " — otherwise a size slice is empty by definition"
        )


class EvaluateDetector(Section):
    batch_size: int = Field(ge=1)
    presence_threshold: float = Field(gt=0.0, lt=1.0, description="score that says 'object'")
    bootstrap: int = Field(ge=100, le=100_000, description="resamples for the 95% intervals")
    behaviour: list[Behaviour] = Field(description="checks on transformed test images")
    slices: DetectorSlices


class EvaluateParams(Section):
    SECTION: ClassVar[str] = "evaluate"

    classifier: EvaluateClassifier
    detector: EvaluateDetector
