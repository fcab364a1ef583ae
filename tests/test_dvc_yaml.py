"""dvc.yaml: every stage depends on exactly the code it runs, and on the params it reads.

A module a stage imports but does not list is a change DVC would not notice (a stale model);
one it lists but does not import re-runs the stage for nothing.
"""

from __future__ import annotations

import ast
import re
import shutil
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


def resolved(text: str, key: str = "") -> str:
    """A dvc.yaml string with `${key}` and `${paths.<name>}` filled as DVC fills them."""
    from stages.shared.core.paths import WHERE

    text = text.replace("${key}", key)
    return re.sub(r"\$\{paths\.(\w+)\}", lambda m: WHERE[m.group(1)].as_posix(), text)


def outs_of(definition: dict, key: str = "") -> set[str]:
    body = definition.get("do", definition)
    outs = {o if isinstance(o, str) else next(iter(o)) for o in body.get("outs", [])}
    return {resolved(o, key) for o in outs}


def test_the_stages_write_where_dvc_yaml_tracks_their_outputs():
    from stages.shared.core import paths

    stages = stage_definitions()
    for task in paths.TASKS:
        split = outs_of(stages["split"], task)
        assert str(paths.split_manifest(task)) in split, split
        assert str(paths.split_report(task)) in split, split
    for model, stage in (("classifier", "train-classifier"), ("detector", "train-detector")):
        assert str(paths.model_file(model)) in outs_of(stages[stage]), model
    for model in ("classifier", "detector"):
        assert str(paths.export_report(model)) in outs_of(stages["export"], model)
        assert str(paths.section_file(model)) in outs_of(stages["plot"], model)
        assert str(paths.EVAL_DIR / model) in outs_of(stages["evaluate"], model)
        assert str(paths.FIGURES_DIR / model) in outs_of(stages["plot"], model)


@pytest.mark.slow  # the real dvc CLI in a new repository
def test_paths_yaml_moves_dvc_yaml_and_the_stages_together(tmp_path):
    # One file says where things are: move the models elsewhere and both readers follow.
    import subprocess
    import sys

    from bench.project import dvc

    for name in ("dvc.yaml", "params.yaml"):
        (tmp_path / name).write_text((ROOT / name).read_text())
    shutil.copytree(ROOT / "stages", tmp_path / "stages")
    moved = (ROOT / "paths.yaml").read_text().replace("  models: models ", "  models: trained ")
    assert moved != (ROOT / "paths.yaml").read_text()
    (tmp_path / "paths.yaml").write_text(moved)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    dvc("init", "-q", cwd=tmp_path)
    listed = dvc("stage", "list", "train-classifier", cwd=tmp_path).stdout
    assert "trained/classifier.keras" in listed and "models/classifier" not in listed
    code = "from stages.shared.core.paths import model_file; print(model_file('classifier'))"
    printed = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert printed.strip() == "trained/classifier.keras"
