"""The params reference page: every key of params.yaml with its type, its range or choices, its
value in params.yaml and what it does, from the schemas (stages/shared/params/, core/config)
and the comments in params.yaml. `python -m stages.params_reference` writes docs/params.md;
`--check` exits 1 when the page is stale or a key has no description.

A key's description is its comment in params.yaml (the comment ending its line, with the
comment lines under it), else the schema's `Field(description=...)`, else the comment on the
same key of another section that shares the schema field (the two training sections, the two
tasks of a section), so that a shared key is described once.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import sys
import types
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import annotated_types
import yaml
from pydantic import BaseModel
from ruamel.yaml import YAML

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.config import Section, read_params_file, whole_or_auto
from stages.shared.core.paths import PARAMS_FILE
from stages.shared.params.sections import SCHEMAS

PAGE = Path("docs/params.md")
HEADER = """# Params reference

Every key of `params.yaml`, generated from the params schemas (`stages/shared/params/`, `base`
in `stages/shared/core/config.py`) and the comments in `params.yaml` by
`python -m stages.params_reference` (`make docs` runs it; a test fails when this page is
stale). Every key is required: a stage refuses a missing or unknown key, a wrong type and a
value out of range with one line naming it, before any work. "Value" is the one in the
committed `params.yaml`, the default run's.

Set a key for one experiment with `dvc exp run -S section.key=value`; each section lists the
stages of `dvc.yaml` that depend on it, the ones a change of it re-runs.
"""


def readers(dvc_yaml: Path = Path("dvc.yaml")) -> dict[str, list[str]]:
    """Per params section, the stages of dvc.yaml that depend on it (a key of it in their
    `params`, or a `foreach` over it): the stages a change of it re-runs."""
    stages = yaml.safe_load(dvc_yaml.read_text())["stages"]
    found: dict[str, list[str]] = {}
    for name, stage in stages.items():
        body = stage.get("do", stage)
        label = f"{name}@*" if "foreach" in stage else name
        sections = {str(entry).split(".")[0] for entry in body.get("params", [])}
        foreach = str(stage.get("foreach", ""))
        if foreach.startswith("${") and foreach.endswith("}"):
            sections.add(foreach[2:-1].split(".")[0])
        for section in sorted(sections):
            found.setdefault(section, []).append(label)
    return found


def comments(path: Path) -> dict[tuple[str, ...], str]:
    """The comment of every key of a YAML file, by its path of keys (ruamel keeps them)."""
    found: dict[tuple[str, ...], str] = {}

    def walk(node: Any, where: tuple[str, ...]) -> None:
        if not hasattr(node, "ca"):
            return
        for key in node if isinstance(node, dict) else ():
            token = node.ca.items.get(key, [None, None, None, None])[2]
            if token is not None:
                lines = [line.strip().lstrip("#").strip() for line in token.value.splitlines()]
                found[(*where, key)] = " ".join(line for line in lines if line)
            walk(node[key], (*where, key))

    walk(YAML().load(path.read_text()), ())
    return found


def constraint_text(metadata: list[Any]) -> str:
    signs = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<"}
    parts = []
    for item in metadata:
        for name, sign in signs.items():
            bound = getattr(item, name, None)
            if isinstance(item, annotated_types.BaseMetadata) and bound is not None:
                parts.append(f"{sign} {bound:g}" if isinstance(bound, float) else f"{sign} {bound}")
    return ", ".join(parts)


def type_text(annotation: Any, metadata: list[Any] = ()) -> str:
    """A type as a reader says it: choices, a range, or what else it takes."""
    origin = get_origin(annotation)
    if origin is Annotated:
        base, *extra = get_args(annotation)
        for item in extra:
            func = getattr(item, "func", None)
            if isinstance(func, functools.partial) and func.func is whole_or_auto:
                low, high, unit = func.args
                return f"`auto`, or whole {unit} {low}–{high}"
        return type_text(base, metadata)
    if origin is Literal:
        return "one of " + ", ".join(f"`{choice}`" for choice in get_args(annotation))
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        text = " or ".join(type_text(a, metadata) for a in options)
        return f"{text}, or `null`" if len(options) < len(get_args(annotation)) else text
    if origin is list:
        (item,) = get_args(annotation)
        return f"list of {type_text(item)}" if get_origin(item) is not dict else "list of mappings"
    names = {bool: "`true` / `false`", int: "integer", float: "number", str: "text"}
    text = names.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = constraint_text(list(metadata))
    return f"{text}, {bounds}" if bounds else text


def value_text(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return ", ".join(f"`{v.get('name', '?')}`" for v in value)
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def field_owner(model: type[BaseModel], name: str) -> str:
    """The class that declares a field, so that keys it shares are described once."""
    for cls in model.__mro__:
        if name in inspect.get_annotations(cls):
            return f"{cls.__module__}.{cls.__qualname__}.{name}"
    return f"{model.__qualname__}.{name}"


def rows(
    model: type[BaseModel], values: dict, where: tuple[str, ...]
) -> list[tuple[tuple[str, ...], str, Any, str, str]]:
    """(key path, type, value, schema description, owner) for every key, in the order of
    params.yaml, nested ones after their parent."""
    out = []
    fields = model.model_fields
    for name in [*[k for k in values if k in fields], *[k for k in fields if k not in values]]:
        field = fields[name]
        path = (*where, name)
        annotation = field.annotation
        nested = isinstance(annotation, type) and issubclass(annotation, Section)
        kind = "mapping" if nested else type_text(field.rebuild_annotation(), field.metadata)
        value = None if nested else values.get(name)
        out.append((path, kind, value, field.description or "", field_owner(model, name)))
        if nested:
            out += rows(annotation, values.get(name) or {}, path)
    return out


def render(params: Path = PARAMS_FILE) -> tuple[str, list[str]]:
    """The page, and the keys that have no description."""
    said = comments(params)
    raw = read_params_file(params)
    table = {s: rows(schema, raw.get(s) or {}, (s,)) for s, schema in SCHEMAS.items()}
    by_owner: dict[str, str] = {}
    for entries in table.values():
        for path, _, _, description, owner in entries:
            text = said.get(path) or description
            if text:
                by_owner.setdefault(owner, text)
    page, missing, read_by = [HEADER], [], readers()
    for section, entries in table.items():
        page.append(f"\n## `{section}`\n")
        if said.get((section,)):
            page.append(f"\n{said[(section,)]}\n")
        stages = ", ".join(f"`{stage}`" for stage in read_by.get(section, [])) or "no stage"
        page.append(f"\nStages that depend on it (a change re-runs them): {stages}.\n")
        page.append("\n| key | type | value | what it does |\n| --- | --- | --- | --- |\n")
        for path, kind, value, description, owner in entries:
            text = said.get(path) or description or by_owner.get(owner, "")
            if not text:
                missing.append(".".join(path))
            shown = "" if kind == "mapping" else value_text(value)
            cell = text.replace("|", "\\|")
            kind = kind.replace("|", "\\|")
            page.append(f"| `{'.'.join(path)}` | {kind} | {shown} | {cell} |\n")
    return "".join(page), missing


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the page is stale")
    parser.add_argument("--out", type=Path, default=PAGE, help=f"where to write (default {PAGE})")
    args = parser.parse_args(argv)
    page, missing = render()
    if missing:
        raise UserError(
            f"{PARAMS_FILE}: no description for {', '.join(missing)} — add a comment after"
            " the key (or a Field description in its schema)"
        )
    if args.check:
        if not args.out.exists() or args.out.read_text() != page:
            print(f"{args.out} is stale: run python -m stages.params_reference", file=sys.stderr)
            raise SystemExit(1)
        return
    args.out.write_text(page)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    run_stage(main)
