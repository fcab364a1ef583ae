"""`export`: how many test images the exports are checked on, and how closely."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from stages.shared.core.config import Section


class ExportParams(Section):
    SECTION: ClassVar[str] = "export"

    max_images: int = Field(ge=1, description="test images the exports are checked on")
    tolerance: float = Field(gt=0.0, description="largest accepted difference from Keras")
