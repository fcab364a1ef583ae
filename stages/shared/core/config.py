"""Reading `params.yaml`: the loader every stage calls, the frozen, strict `Section` base of
every schema, and `base`, the section every stage reads. The other sections' schemas live in
`stages.shared.params`, one module each, so editing one re-runs only the stage that reads it.

Only a stage's `main` calls `load_params`; library functions take plain arguments. Every
key is required, unknown keys are refused and nothing is coerced (`epochs: "15"`,
`deterministic: "no"` and `batch_size: true` are errors, not 15, False and 1), so a typo
(in the file or in `dvc exp run -S ...`) stops the stage before any work, with one line
naming the key. Settings that contradict each other are refused the same way.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from stages.shared.core.cli import UserError
from stages.shared.core.paths import PARAMS_FILE

# The sections of params.yaml, in its order; each has a schema (a Section with SECTION).
SECTIONS = (
    "base",
    "data",
    "sample",
    "split",
    "augment",
    "train_classifier",
    "train_detector",
    "evaluate",
    "plot",
    "export",
)


class Section(BaseModel):
    """A params block: frozen, no unknown keys, no type coercion (an int is still a float)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
    SECTION: ClassVar[str] = ""  # its key in params.yaml (top-level sections only)


def whole_or_auto(low: int, high: int, unit: str, value: Any) -> int | str:
    """A whole number of `unit` from `low` to `high`, or `auto` (a setting the stage derives
    from the data). Bound with functools.partial in the types below and called when params
    load, so that its checks run, and can be tested, then."""
    if value == "auto" or (type(value) is int and low <= value <= high):
        return value
    raise ValueError(f"must be a whole number of {unit} from {low} to {high}, or auto")


# A model input side (`auto`: manifest.input_size) and augmented copies (augment.auto_copies).
ClassificationSide = Annotated[
    Any, AfterValidator(functools.partial(whole_or_auto, 8, 1024, "pixels"))
]
DetectionSide = Annotated[Any, AfterValidator(functools.partial(whole_or_auto, 32, 1024, "pixels"))]
Copies = Annotated[Any, AfterValidator(functools.partial(whole_or_auto, 0, 1000, "copies"))]
# Training steps per call of the compiled step (`auto`: training.execution.choose_steps).
StepsPerCall = Annotated[Any, AfterValidator(functools.partial(whole_or_auto, 1, 100_000, "steps"))]


class ImageSizes(Section):
    """Pixels, or `auto` (manifest.input_size): classification, the median short side of the
    data within 32-64; detection, the side giving the small objects 12 px, within 64-192."""

    classification: ClassificationSide
    detection: DetectionSide


class DistributeParams(Section):
    strategy: Literal["auto", "mirrored", "multi_worker"]
    logical_cpus: int = Field(ge=0, le=64, description="mirrored with no GPU: CPU split in N")
    scale_learning_rate: bool = Field(description="learning rate × replicas (linear rule)")


class BaseParams(Section):
    SECTION: ClassVar[str] = "base"

    seed: int = Field(ge=0)
    image_size: ImageSizes
    distribute: DistributeParams
    mixed_precision: Literal["auto", "float32", "mixed_float16", "mixed_bfloat16"]
    jit_compile: bool
    steps_per_execution: StepsPerCall


class ParamsLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e-4` as a number as YAML 1.2 does (YAML 1.1, which
    PyYAML follows, wants `1.0e-4` and would hand the stage the string '1e-4')."""


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_params_file(path: Path = PARAMS_FILE) -> dict[str, Any]:
    """The raw params mapping, with unknown top-level sections refused."""
    try:
        raw = yaml.load(Path(path).read_text(), Loader=ParamsLoader)  # a SafeLoader
    except FileNotFoundError:
        raise UserError(f"{path}: not found — run stages from the project root") from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        where = f" (line {line + 1})" if line is not None else ""
        raise UserError(f"{path}: invalid YAML{where} — fix the syntax") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: must be a mapping of sections ({', '.join(SECTIONS)})")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise UserError(
            f"{path}: unknown section {unknown[0]!r}; valid sections: {', '.join(SECTIONS)}"
        )
    return raw


def dataset_root(task: str, path: Path = PARAMS_FILE) -> Path:
    """The folder `data.<task>` names, where the paths of a task's manifests start.

    Only `split` declares it to DVC (its scan reads the folder). The stages after it read the
    files the manifest lists, whose bytes it pins (an MD5 per file): the same bytes in another
    folder re-run `split` alone, which writes the same manifest, and nothing after it."""
    raw = read_params_file(path)
    folder = (raw.get("data") or {}).get(task) if isinstance(raw.get("data"), dict) else None
    if not isinstance(folder, str) or not folder:
        raise UserError(f"{path}: data.{task} must name the folder of your {task} images")
    return Path(folder)


def load_params(model: type[Section], path: Path = PARAMS_FILE) -> Any:
    """Load and check the section of params.yaml that `model` describes."""
    section = model.SECTION
    if section not in SECTIONS:
        choices = ", ".join(SECTIONS)
        raise ValueError(f"{model.__name__} is not a params section; choices: {choices}")
    raw = read_params_file(path)
    if section not in raw:
        raise UserError(f"{path}: missing section {section!r}")
    return parse_section(model, raw[section], path)


def parse_section(model: type[Section], data: Any, path: Path | str = PARAMS_FILE) -> Any:
    """Validate a mapping against a section's model, as one line on failure."""
    section = model.SECTION
    try:
        return model.model_validate(data)
    except ValidationError as err:
        # Unknown keys first: a typo shows up as "unknown" + "missing", and the typo is the news.
        errors = sorted(err.errors(), key=lambda e: e["type"] != "extra_forbidden")
        problems = [_describe(model, section, e) for e in errors]
        raise UserError(f"{path}: " + "; ".join(problems)) from None


def _describe(model: type[Section], section: str, error: dict[str, Any]) -> str:
    """One human phrase for one pydantic error, naming the key and the valid choices."""
    loc = tuple(str(part) for part in error["loc"])
    key = ".".join((section, *loc))
    if error["type"] == "extra_forbidden":
        return f"{key}: unknown key; valid keys: {', '.join(_fields_at(model, loc[:-1]))}"
    if error["type"] == "missing":
        return f"{key}: missing key; required keys: {', '.join(_fields_at(model, loc[:-1]))}"
    message = error["msg"].removeprefix("Value error, ")
    got = error.get("input")
    shown = "" if isinstance(got, dict) else f" (got {got!r})"
    return f"{key}: {message}{shown}"


def _fields_at(model: type[Section], loc: tuple[str, ...]) -> list[str]:
    """The field names of the (nested) model found at `loc`."""
    for part in loc:
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        if get_origin(annotation) is not None:
            annotation = next(a for a in get_args(annotation) if isinstance(a, type))
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return list(model.model_fields)
