"""Moving the data moves nothing: the same images in another folder re-run `split` alone,
whose outputs come out byte-identical, and no stage after it runs (through the real CLI)."""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from tests.conftest import dvc


@pytest.mark.slow
def test_the_same_images_in_another_folder_rerun_split_alone(reproduced_project, tmp_path):
    project = reproduced_project
    outputs = ("data/split/classification.csv", "reports/data/classification.json")
    before = {name: (project / name).read_bytes() for name in outputs}
    lock = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    # A teammate keeps the digits somewhere else, outside the project, by an absolute path.
    elsewhere = tmp_path / "elsewhere" / "digits"
    shutil.copytree(project / "data/sample/classification", elsewhere)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["data"]["classification"] = elsewhere.as_posix()
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    ran = re.findall(r"Running stage '([^']+)'", dvc("repro", cwd=project).stdout)
    assert ran == ["split@classification"]
    assert {name: (project / name).read_bytes() for name in outputs} == before
    after = yaml.safe_load((project / "dvc.lock").read_text())["stages"]
    assert after["split@classification"]["outs"] == lock["split@classification"]["outs"]
    assert json_status(project) == {}


def json_status(project) -> dict:
    import json

    return json.loads(dvc("status", "--json", cwd=project).stdout or "{}")
