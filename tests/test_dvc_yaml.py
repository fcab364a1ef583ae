"""dvc.yaml: every stage depends on exactly the code it runs, and on the params it reads.

A module a stage imports but does not list is a change DVC would not notice (a stale model);
one it lists but does not import re-runs the stage for nothing.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT


def imported_modules(module: str) -> set[str]:
    """`module` and every `stages.*` module it imports, at any depth, at any place in a file."""
    seen: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        tree = ast.parse((ROOT / (name.replace(".", "/") + ".py")).read_text())
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("stages")
            ):
                names = [f"{node.module}.{alias.name}" for alias in node.names]
                found = [n for n in names if (ROOT / (n.replace(".", "/") + ".py")).exists()]
                pending += found or [node.module]
            elif isinstance(node, ast.Import):
                pending += [a.name for a in node.names if a.name.startswith("stages.")]
    return {n for n in seen if (ROOT / (n.replace(".", "/") + ".py")).exists()}


def stage_definitions() -> dict[str, dict]:
    return yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


@pytest.mark.parametrize("stage", list(stage_definitions()))
def test_a_stage_lists_exactly_the_code_it_imports(stage):
    definition = stage_definitions()[stage]
    body = definition.get("do", definition)
    module = re.search(r"python -m (stages\.\w+)", body["cmd"]).group(1)
    expected = {m.replace(".", "/") + ".py" for m in imported_modules(module)}
    expected = {path for path in expected if not path.endswith("__init__.py")}  # docstrings
    listed = {d for d in body["deps"] if isinstance(d, str) and d.startswith("stages/")}
    assert listed == expected, (
        f"missing: {sorted(expected - listed)}; not imported: {sorted(listed - expected)}"
    )


def test_the_import_walk_sees_function_level_imports():
    # predict imports inference inside main(): the walk must find it, or the test above
    # would pass on a stage that forgets a lazily imported module.
    assert "stages.shared.models.inference" in imported_modules("stages.predict")
    assert Path(ROOT / "stages/shared/models/inference.py").exists()


def test_package_files_hold_a_docstring_and_no_code():
    # The walk above leaves __init__.py files out of the deps: they must not hold code.
    for path in sorted((ROOT / "stages/shared").rglob("__init__.py")):
        tree = ast.parse(path.read_text())
        assert all(
            isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            for node in tree.body
        ), path


def outs_of(definition: dict, key: str = "") -> set[str]:
    body = definition.get("do", definition)
    outs = {o if isinstance(o, str) else next(iter(o)) for o in body.get("outs", [])}
    return {o.replace("${key}", key) for o in outs}


def test_the_stages_write_where_dvc_yaml_tracks_their_outputs():
    from stages.shared.core import paths

    stages = stage_definitions()
    for task in paths.TASKS:
        split = outs_of(stages["split"], task)
        assert str(paths.split_manifest(task)) in split, split
        assert str(paths.split_report(task)) in split, split
    for model, stage in (("classifier", "train-classifier"), ("detector", "train-detector")):
        assert str(paths.model_file(model)) in outs_of(stages[stage]), model
