"""`plot`: figure resolution and galleries."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from stages.shared.core.config import Section


class PlotParams(Section):
    SECTION: ClassVar[str] = "plot"

    dpi: int = Field(ge=50, le=400)
    gallery_size: int = Field(ge=1, le=64, description="test images per gallery figure")
    gallery_columns: int = Field(ge=1, le=16)
