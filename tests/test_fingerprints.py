"""Each model's reports, card, summary and files come from that model's own inputs, never the
other's: each task's data carries a fingerprint the other lacks (its folder and class names, and
its own count of train, val and test images), and after a real `dvc repro` no output of one
model shows the other's, while each shows its own."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from bench.project import dvc, new_pipeline_repo, tiny_params
from tests.conftest import make_classification, make_detection

pytestmark = pytest.mark.slow

MODELS = {"classifier": "classification", "detector": "detection"}
CLASSES = ("okapi", "quokka", "axolotl")
FRAMES = "narwhal_frames"
# What each task's data puts in an output, and what the other's must never show.
FINGERPRINT = {"classifier": re.compile("|".join(CLASSES)), "detector": re.compile("narwhal")}
TEXT = {".json", ".csv", ".tsv", ".md", ".yaml", ".txt", ".html"}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The pipeline at toy size on a user's two folders: 3 classes of 14 images (zoo/) and 20
    frames named narwhal_NN, 16 with a box (narwhal_frames/): split counts that differ in every
    split."""
    params = tiny_params()
    params["data"] = {"classification": "zoo", "detection": FRAMES}
    params["split"]["group_by"] = {"classification": "none", "detection": "none"}
    root = new_pipeline_repo(tmp_path_factory.mktemp("fingerprints") / "project", params)
    make_classification(root / "zoo", dict.fromkeys(CLASSES, 14))
    make_detection(root / FRAMES, positives=16, negatives=4)
    for path in (root / FRAMES).rglob("im_*"):  # im_03.jpg, im_03.json: narwhal_03.*
        path.rename(path.with_name(path.name.replace("im_", "narwhal_")))
    dvc("repro", cwd=root)
    return root


def texts(project: Path, model: str) -> dict[str, str]:
    """The text of every output that belongs to `model`: the files under reports/ and models/
    whose path names the model or its task, with the JSON members of its .keras archives."""
    found = {}
    for path in sorted([*(project / "reports").rglob("*"), *(project / "models").rglob("*")]):
        name = path.relative_to(project).as_posix()
        if not path.is_file() or not (model in name or MODELS[model] in name):
            continue
        if path.suffix in TEXT:
            found[name] = path.read_text()
        elif path.suffix == ".keras":
            with zipfile.ZipFile(path) as archive:
                for member in archive.namelist():
                    if member.endswith(".json"):
                        found[f"{name}:{member}"] = archive.read(member).decode()
    return found


def split_counts(project: Path, task: str) -> dict[str, int]:
    return pd.read_csv(project / f"data/split/{task}.csv")["split"].value_counts().to_dict()


def test_no_output_of_a_model_shows_the_other_models_data(project):
    for model, other in (("classifier", "detector"), ("detector", "classifier")):
        found = texts(project, model)
        assert len(found) >= 15, sorted(found)  # reports, card, metadata, history, exports
        assert any(FINGERPRINT[model].search(text) for text in found.values()), model
        leaks = [name for name, text in found.items() if FINGERPRINT[other].search(text)]
        assert leaks == [], f"{model}'s outputs show {other}'s data: {leaks}"


def test_each_card_and_summary_section_counts_its_own_images(project):
    counts = {model: split_counts(project, task) for model, task in MODELS.items()}
    for split in ("train", "val", "test"):  # the premise: the two tasks differ in every split
        assert counts["classifier"][split] != counts["detector"][split], counts
    summary = (project / "reports/summary.md").read_text()
    for model, task in MODELS.items():
        card = (project / f"reports/model_card_{model}.md").read_text()
        for split in ("train", "val", "test"):
            assert f"| {split} images | {counts[model][split]} |" in card, (model, split, card)
        manifest = project / f"data/augmented/{task}/manifest.csv"
        assert hashlib.md5(manifest.read_bytes()).hexdigest() in card, model
        section = summary.split(f"## {model.capitalize()}\n", 1)[1].split("\n## ", 1)[0]
        assert f"Test split: {counts[model]['test']} images" in section, (model, section)
        report = json.loads((project / f"reports/eval/{model}/detail.json").read_text())
        assert report.get("test_images", counts[model]["test"]) == counts[model]["test"]
