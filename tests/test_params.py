"""params.py: the typed loader and its one-line errors."""

from __future__ import annotations

import pydantic
import pytest
import yaml

from stages.shared.cli import UserError
from stages.shared.params import SECTIONS, load_params, parse_section
from tests.conftest import ROOT, write_params


def test_project_params_load_for_every_section():
    for section in SECTIONS:
        assert load_params(section, ROOT / "params.yaml") is not None


def test_loaded_params_are_typed_and_frozen(workdir):
    cfg = load_params("split")
    assert cfg.fractions.train == pytest.approx(0.7)
    with pytest.raises(pydantic.ValidationError):
        cfg.min_per_class = 5


def test_typo_names_the_key_and_the_valid_keys(workdir):
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    params["split"]["min_per_clas"] = params["split"].pop("min_per_class")
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(UserError) as err:
        load_params("split")
    message = str(err.value)
    assert "split.min_per_clas: unknown key; valid keys: fractions, min_per_class" in message
    assert "split.min_per_class: missing key" in message
    assert "\n" not in message


def test_wrong_type_is_refused(workdir):
    write_params(workdir, split={"min_per_class": "ten"})
    with pytest.raises(UserError, match=r"split\.min_per_class: .*valid integer.*'ten'"):
        load_params("split")


def test_fractions_must_sum_to_one():
    bad = {"fractions": {"train": 0.8, "val": 0.15, "test": 0.15}}
    bad.update(min_per_class=3, small_classes="error")
    with pytest.raises(UserError, match=r"split\.fractions: train \+ val \+ test must sum to 1"):
        parse_section("split", bad)


def test_out_of_range_and_choice_errors():
    data = {"fractions": {"train": 1.0, "val": 0, "test": 0}, "min_per_class": 0}
    data["small_classes"] = "ignore"
    with pytest.raises(UserError) as err:
        parse_section("split", data)
    message = str(err.value)
    assert "split.fractions.train: Input should be less than 1" in message
    assert "split.min_per_class: Input should be greater than or equal to 1" in message
    assert "split.small_classes: Input should be 'error' or 'drop'" in message


def test_nested_unknown_key_lists_the_nested_keys(workdir):
    write_params(workdir, base={"image_size": {"classification": 32, "detection": 96, "x": 1}})
    with pytest.raises(
        UserError,
        match=r"base\.image_size\.x: unknown key; valid keys: "
        r"classification, detection",
    ):
        load_params("base")


def test_unknown_section_and_missing_section(workdir):
    path = workdir / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["splitt"] = params.pop("split")
    path.write_text(yaml.safe_dump(params))
    with pytest.raises(UserError, match=r"unknown section 'splitt'; valid sections: base, "):
        load_params("base")


def test_invalid_yaml_and_missing_file(workdir):
    (workdir / "params.yaml").write_text("base: [unclosed\n")
    with pytest.raises(UserError, match=r"params.yaml: invalid YAML \(line \d+\)"):
        load_params("base")
    (workdir / "params.yaml").unlink()
    with pytest.raises(UserError, match=r"params\.yaml: not found"):
        load_params("base")


def test_a_fold_must_exist(workdir):
    write_params(workdir, split={"folds": 5, "fold": 5})
    with pytest.raises(
        UserError, match=r"params.yaml: split: fold must be below folds \(5\), got 5"
    ):
        load_params("split")
