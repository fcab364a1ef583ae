"""`augment`: offline augmented copies per task, written as shards."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from stages.shared.core.config import Copies, Section


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
    paste: float = Field(
        ge=0.0, le=1.0, description="share of a negative frame's copies given a pasted object"
    )


class AugmentParams(Section):
    SECTION: ClassVar[str] = "augment"

    workers: int = Field(ge=0, description="processes; 0 = one per CPU core")
    shard_size: int = Field(ge=1, le=1_000_000, description="records per TFRecord shard")
    classification: AugmentClassification
    detection: AugmentDetection
