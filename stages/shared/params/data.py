"""`data`: where each task's images are (a folder, relative to the project or absolute)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from stages.shared.core.config import Section


class DataParams(Section):
    SECTION: ClassVar[str] = "data"

    classification: str = Field(min_length=1)
    detection: str = Field(min_length=1)
