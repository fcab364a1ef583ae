"""Every section's schema by its name in params.yaml, for what needs them all (the tests, a
reference of every key). A stage imports its own section's module only, so that DVC re-runs
it when that section's checks change and not when another's do."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.shared.core import config
from stages.shared.core.paths import PARAMS_FILE
from stages.shared.params.augment import AugmentParams
from stages.shared.params.data import DataParams
from stages.shared.params.evaluate import EvaluateParams
from stages.shared.params.export import ExportParams
from stages.shared.params.plot import PlotParams
from stages.shared.params.sample import SampleParams
from stages.shared.params.split import SplitParams
from stages.shared.params.train_classifier import TrainClassifierParams
from stages.shared.params.train_detector import TrainDetectorParams

SCHEMAS: dict[str, type[config.Section]] = {
    model.SECTION: model
    for model in (
        config.BaseParams,
        DataParams,
        SampleParams,
        SplitParams,
        AugmentParams,
        TrainClassifierParams,
        TrainDetectorParams,
        EvaluateParams,
        PlotParams,
        ExportParams,
    )
}


def load_params(section: str, path: Path = PARAMS_FILE) -> Any:
    """Load and check the section called `section`."""
    if section not in SCHEMAS:
        raise ValueError(f"unknown params section {section!r}; choices: {', '.join(SCHEMAS)}")
    return config.load_params(SCHEMAS[section], path)


def parse_section(section: str, data: Any, path: Path | str = PARAMS_FILE) -> Any:
    """Validate a mapping against the section called `section`, as one line on failure."""
    return config.parse_section(SCHEMAS[section], data, path)
