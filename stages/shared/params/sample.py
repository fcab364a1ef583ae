"""`sample`: the embedded demo data (`stages.sample`)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from stages.shared.core.config import Section


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
        check_face_fits(self.face_min, self.face_max, self.frame_width, self.frame_height)
        return self


def check_face_fits(face_min: int, face_max: int, width: int, height: int) -> None:
    """A pasted face fits its frame: face_min <= face_max <= the frame's shorter side. A plain
    function (the validator above calls it), so that its check can be mutated."""
    if not face_min <= face_max <= min(width, height):
        raise ValueError("need face_min <= face_max <= the frame's shorter side")


class SampleParams(Section):
    SECTION: ClassVar[str] = "sample"

    classification: SampleClassification
    detection: SampleDetection
