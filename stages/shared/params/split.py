"""`split`: fractions, folds, groups and near-duplicates of the split stage."""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import AfterValidator, Field, model_validator

from stages.shared.core.config import Section
from stages.shared.data.splitting import GROUP_BY


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


GroupBy = Literal[GROUP_BY]  # type: ignore[valid-type]


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
    SECTION: ClassVar[str] = "split"

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
