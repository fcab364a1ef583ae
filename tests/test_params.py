"""params.py: the typed loader and its one-line errors."""

from __future__ import annotations

import re

import pydantic
import pytest
import yaml

from stages.shared.core.cli import UserError
from stages.shared.core.config import SECTIONS
from stages.shared.params.sections import SCHEMAS, load_params, parse_section
from stages.shared.params.training import check_weights
from tests.conftest import ROOT, write_params

PROJECT = yaml.safe_load((ROOT / "params.yaml").read_text())


def written_values(written, loaded, where=""):
    """(key, written, loaded) for every value written in params.yaml that loads differently."""
    if isinstance(written, dict):
        loaded = loaded if isinstance(loaded, dict) else {}
        for key, value in written.items():
            yield from written_values(value, loaded.get(key, "<missing>"), f"{where}.{key}")
    elif isinstance(written, list) and isinstance(loaded, list) and len(written) == len(loaded):
        for i, (value, got) in enumerate(zip(written, loaded, strict=True)):
            yield from written_values(value, got, f"{where}[{i}]")
    elif written != loaded and not (isinstance(loaded, tuple) and list(loaded) == written):
        yield where, written, loaded


def test_every_section_of_params_yaml_has_one_schema_and_the_loader_knows_it():
    written = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert list(SCHEMAS) == list(SECTIONS) == list(written)


def test_project_params_load_for_every_section_with_every_written_value():
    written = yaml.safe_load((ROOT / "params.yaml").read_text())
    for section in SECTIONS:
        loaded = load_params(section, ROOT / "params.yaml").model_dump()
        # Every value the file sets arrives as set: nothing dropped, renamed or defaulted.
        assert list(written_values(written[section], loaded, section)) == [], section


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


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (
            "train_classifier",
            {"epochs": "15"},
            r"train_classifier\.epochs: Input should be a valid integer \(got '15'\)",
        ),
        (
            "train_classifier",
            {"deterministic": "no"},
            r"deterministic: Input should be a valid boolean \(got 'no'\)",
        ),
        (
            "train_detector",
            {"batch_size": True},
            r"train_detector\.batch_size: Input should be a valid integer \(got True\)",
        ),
        (
            "train_detector",
            {"learning_rate": "0.001"},
            r"learning_rate: Input should be a valid number",
        ),
        ("split", {"folds": 2.0}, r"split\.folds: Input should be a valid integer \(got 2\.0\)"),
        (
            "base",
            {"image_size": {"classification": 32.0, "detection": 64}},
            r"base\.image_size\.classification: must be a whole number of pixels from 8 to 1024,"
            r" or auto \(got 32\.0\)$",
        ),
        (
            "base",
            {"image_size": {"classification": "auto", "detection": "Auto"}},
            r"base\.image_size\.detection: must be a whole number of pixels from 32 to 1024,"
            r" or auto \(got 'Auto'\)$",
        ),
        (
            "base",
            {"image_size": {"classification": 16, "detection": 16}},
            r"detection: must be a whole number of pixels from 32 to 1024, or auto \(got 16\)$",
        ),
    ],
)
def test_values_are_never_coerced(workdir, section, values, message):
    write_params(workdir, **{section: values})
    with pytest.raises(UserError, match=message):
        load_params(section)


def test_numbers_in_exponent_notation_are_numbers(workdir):
    # YAML 1.1 (PyYAML) reads `1e-4` as a string; with strict params that would be an error.
    path = write_params(workdir, train_classifier={"epochs": 17})
    text = path.read_text().replace("learning_rate: 0.001", "learning_rate: 1e-4", 1)
    path.write_text(text)
    assert load_params("train_classifier").learning_rate == pytest.approx(1e-4)
    epochs = load_params("train_classifier").epochs
    assert epochs == 17 and isinstance(epochs, int)  # integers stay integers


@pytest.mark.parametrize(
    ("section", "values", "message"),
    [
        (
            "train_classifier",
            {"architecture": "simple_cnn", "weights": "imagenet"},
            r"train_classifier: weights: simple_cnn has no backbone to load weights into",
        ),
        (
            "train_classifier",
            {"architecture": "plain_cnn", "weights": "imagenet"},
            r"weights: plain_cnn has no imagenet weights",
        ),
        (
            "train_classifier",
            {
                "architecture": "mobilenet_v2",
                "fine_tune": {"layers": 10, "epochs": 0, "learning_rate": 1e-5},
            },
            r"fine_tune: layers \(10\) and epochs \(0\) go together",
        ),
        (
            "train_classifier",
            {
                "architecture": "mobilenet_v2",
                "fine_tune": {"layers": 0, "epochs": 3, "learning_rate": 1e-5},
            },
            r"fine_tune: layers \(0\) and epochs \(3\) go together",
        ),
        (
            "train_classifier",
            {
                "architecture": "mini_inception",
                "fine_tune": {"layers": 2, "epochs": 3, "learning_rate": 1e-5},
            },
            r"fine_tune: mini_inception has no backbone to unfreeze",
        ),
        (
            "train_classifier",
            {"schedule": "cosine", "reduce_lr": {"patience": 2, "factor": 0.5, "min_lr": 0.0}},
            r"reduce_lr\.patience: the cosine schedule sets the learning rate itself",
        ),
        (
            "train_detector",
            {"weights": "models/detector.keras"},
            r"train_detector\.weights: .*must be inside pretrained/",
        ),
        (
            "train_detector",
            {"weights": "pretrained/../models/x.keras"},
            r"must be inside pretrained/",
        ),
        (
            "train_detector",
            {"weights": "pretrained/weights.bin"},
            r"must be null, imagenet, or a \.keras model",
        ),
        (
            "sample",
            {"detection": {**PROJECT["sample"]["detection"], "face_max": 130}},  # frames 120 high
            r"^params\.yaml: sample\.detection: need face_min <= face_max <= the frame.s"
            r" shorter side$",
        ),
        (
            "evaluate",
            {
                "detector": {
                    **PROJECT["evaluate"]["detector"],
                    "slices": {"size": [0.3, 0.1], "border": 0.05},
                }
            },
            r"two rising box-area shares in \(0, 1\), e\.g\. \[0\.05, 0\.15\], got \[0\.3, 0\.1\]",
        ),
    ],
)
def test_contradictory_settings_are_one_line(workdir, section, values, message):
    write_params(workdir, **{section: values})
    with pytest.raises(UserError, match=message) as err:
        load_params(section)
    assert "\n" not in str(err.value)


def test_a_weights_file_in_pretrained_is_accepted(workdir):
    write_params(workdir, train_detector={"weights": "pretrained/digits.keras"})
    assert load_params("train_detector").weights == "pretrained/digits.keras"


def project_split() -> dict:
    return yaml.safe_load((ROOT / "params.yaml").read_text())["split"]


def split_error(data) -> str:
    with pytest.raises(UserError) as error:
        parse_section("split", data, "p.yaml")
    return str(error.value)


def test_split_errors_are_whole_sentences():
    missing = project_split()
    del missing["group_pattern"]["detection"]
    assert split_error(missing) == (
        "p.yaml: split.group_pattern.detection: missing key;"
        " required keys: classification, detection"
    )
    # An unknown key is listed first, before the other problems it comes with.
    both = project_split()
    both["min_per_class"] = "ten"
    both["near_duplicats"] = both.pop("near_duplicates")
    message = split_error(both)
    assert message.startswith(
        "p.yaml: split.near_duplicats: unknown key; valid keys: fractions, min_per_class,"
    )
    assert "; split.min_per_class: " in message and "(got 'ten')" in message
    nested = project_split()
    nested["fractions"] = {"train": 0.7, "val": 0.15}
    assert split_error(nested).startswith(
        "p.yaml: split.fractions.test: missing key; required keys: train, val, test"
    )
    as_dict = project_split()
    as_dict["group_by"]["classification"] = {"folder": 1}
    assert split_error(as_dict) == (  # a mapping given is not echoed back
        "p.yaml: split.group_by.classification: Input should be 'none', 'folder' or 'pattern'"
    )


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("patient_(", "not a valid regular expression (missing ), unterminated subpattern at"),
        ("patient_\\d+", "needs a capture group, e.g. 'patient_(\\d+)', got 'patient_\\\\d+'"),
    ],
)
def test_group_patterns_are_checked_and_empty_means_unused(pattern, message):
    data = project_split()
    data["group_pattern"]["classification"] = pattern
    assert f"split.group_pattern.classification: {message}" in split_error(data)
    data["group_pattern"]["classification"] = ""
    data["group_by"]["classification"] = "folder"
    assert parse_section("split", data).group_pattern.classification == ""


def test_weights_files_and_their_message():
    data = yaml.safe_load((ROOT / "params.yaml").read_text())["train_classifier"]
    assert check_weights("pretrained/backbone.h5") == "pretrained/backbone.h5"
    data["weights"] = "pretrained/backbone.ckpt"
    with pytest.raises(UserError) as error:
        parse_section("train_classifier", data, "p.yaml")
    assert str(error.value).startswith(
        "p.yaml: train_classifier.weights: must be null, imagenet, or a .keras model of this"
        " pipeline / a keras.applications .h5 weights file in pretrained/ (got 'pretrained/"
    )


def test_file_level_errors_are_whole_sentences(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("split:\n  folds: 1\n  fold: [0\n")  # the bracket is never closed
    with pytest.raises(UserError) as error:
        load_params("split", path)
    assert str(error.value) == f"{path}: invalid YAML (line 4) — fix the syntax"
    path.write_text("- split\n")
    with pytest.raises(UserError) as error:
        load_params("split", path)
    assert str(error.value) == (f"{path}: must be a mapping of sections ({', '.join(SECTIONS)})")
    path.write_text("base:\n  seed: 1\n")
    with pytest.raises(UserError) as error:
        load_params("split", path)
    assert str(error.value) == f"{path}: missing section 'split'"
    with pytest.raises(ValueError) as error:
        load_params("splits", path)
    assert str(error.value) == f"unknown params section 'splits'; choices: {', '.join(SECTIONS)}"


def test_a_missing_key_three_levels_deep_lists_its_own_siblings():
    data = yaml.safe_load((ROOT / "params.yaml").read_text())["evaluate"]
    del data["detector"]["slices"]["border"]
    with pytest.raises(UserError) as error:
        parse_section("evaluate", data, "p.yaml")
    assert str(error.value) == (
        "p.yaml: evaluate.detector.slices.border: missing key; required keys: size, border"
    )


def test_errors_name_the_params_file_given_and_unreadable_yaml_has_no_line(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text("split:\n  folds: 1\n")
    with pytest.raises(UserError, match=rf"^{path}: split\.fractions: missing key"):
        load_params("split", path)
    path.write_bytes(b"split:\n  folds: \x07\n")  # a control character: a reader error
    with pytest.raises(UserError) as error:
        load_params("split", path)
    assert str(error.value) == f"{path}: invalid YAML — fix the syntax"


@pytest.mark.parametrize(
    ("task", "value", "message"),
    [
        (
            "detection",
            "Auto",
            r"augment\.detection\.copies: must be a whole number of copies"
            r" from 0 to 1000, or auto \(got 'Auto'\)$",
        ),
        ("detection", 2.0, r"augment\.detection\.copies: .* or auto \(got 2\.0\)$"),
        ("detection", -1, r"augment\.detection\.copies: .* or auto \(got -1\)$"),
        ("detection", 1001, r"augment\.detection\.copies: .* or auto \(got 1001\)$"),
        ("classification", "auto", r"augment\.classification\.copies: Input should be a valid"),
    ],
)
def test_augment_copies_are_a_count_or_auto_for_detection_only(workdir, task, value, message):
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["augment"][task]["copies"] = value
    write_params(workdir, augment=params["augment"])
    with pytest.raises(UserError, match=message):
        load_params("augment")
    for accepted in (0, 5, 1000, *(["auto"] if task == "detection" else [])):
        params["augment"][task]["copies"] = accepted
        write_params(workdir, augment=params["augment"])
        assert getattr(load_params("augment"), task).copies == accepted


@pytest.mark.parametrize(("task", "low"), [("classification", 8), ("detection", 32)])
def test_an_input_side_is_accepted_from_its_lowest_to_1024_pixels(workdir, task, low):
    sizes = {"classification": 32, "detection": 64}
    for accepted in (low, 1024):
        write_params(workdir, base={"image_size": {**sizes, task: accepted}})
        assert getattr(load_params("base").image_size, task) == accepted
    for refused in (low - 1, 1025):
        write_params(workdir, base={"image_size": {**sizes, task: refused}})
        with pytest.raises(UserError, match=rf"{task}: must be .* \(got {refused}\)$"):
            load_params("base")


def test_the_dataset_folder_is_read_from_data_and_a_missing_one_is_one_line(workdir):
    from pathlib import Path

    from stages.shared.core.config import dataset_root

    write_params(workdir, data={"classification": "/mnt/photos", "detection": "faces"})
    assert dataset_root("classification") == Path("/mnt/photos")
    assert dataset_root("detection") == Path("faces")
    for data in ({"classification": "x"}, {"classification": "x", "detection": ""}, None, []):
        params = yaml.safe_load((workdir / "params.yaml").read_text())
        params["data"] = data
        (workdir / "params.yaml").write_text(yaml.safe_dump(params))
        with pytest.raises(
            UserError,
            match=r"^params\.yaml: data\.detection must name the folder of your detection images$",
        ):
            dataset_root("detection")


def test_backbone_settings_are_refused_with_the_key_and_the_fix():
    from stages.shared.params.train_classifier import FineTune, check_backbone_settings

    def tune(layers: int, epochs: int) -> FineTune:
        return FineTune(layers=layers, epochs=epochs, learning_rate=1e-4)

    backbones = "plain_cnn, mobilenet_v2, efficientnet_b0, vgg16"
    check_backbone_settings("plain_cnn", None, tune(1, 1))  # one layer for one epoch: a phase
    check_backbone_settings("simple_cnn", None, tune(0, 0))  # no backbone and no phase
    for layers, epochs in ((1, 0), (0, 1)):
        with pytest.raises(
            ValueError,
            match=rf"^fine_tune: layers \({layers}\) and epochs \({epochs}\) go together — set"
            r" both above 0 for a fine-tuning phase, or both to 0$",
        ):
            check_backbone_settings("plain_cnn", None, tune(layers, epochs))
    with pytest.raises(
        ValueError,
        match=rf"^fine_tune: simple_cnn has no backbone to unfreeze — set fine_tune\.layers: 0,"
        rf" or architecture: one of {backbones}$",
    ):
        check_backbone_settings("simple_cnn", None, tune(2, 2))
    with pytest.raises(
        ValueError,
        match=rf"^weights: simple_cnn has no backbone to load weights into — set weights: null,"
        rf" or architecture: one of {backbones}$",
    ):
        check_backbone_settings("simple_cnn", "imagenet", tune(0, 0))


def test_a_face_must_fit_its_frame_at_the_boundaries():
    from stages.shared.params.sample import check_face_fits

    check_face_fits(8, 8, 40, 30)  # equal sizes, not the frame's side
    check_face_fits(10, 30, 40, 30)  # the largest face is the shorter side (height)
    check_face_fits(10, 30, 30, 40)  # the shorter side is the width
    message = r"^need face_min <= face_max <= the frame's shorter side$"
    for face_min, face_max, width, height in ((11, 10, 40, 30), (10, 31, 40, 30), (10, 31, 30, 40)):
        with pytest.raises(ValueError, match=message):
            check_face_fits(face_min, face_max, width, height)


def test_detector_size_slices_are_two_rising_shares_inside_zero_and_one():
    from stages.shared.params.evaluate import check_slice_sizes

    check_slice_sizes([0.05, 0.15])
    check_slice_sizes([1e-9, 1 - 1e-9])
    for size in ([0.05], [0.05, 0.1, 0.2], [0.0, 0.1], [0.1, 0.1], [0.2, 0.1], [0.1, 1.0]):
        with pytest.raises(
            ValueError,
            match=rf"^size: two rising box-area shares in \(0, 1\), e\.g\. \[0\.05, 0\.15\], got"
            rf" {re.escape(str(size))} — otherwise a size slice is empty by definition$",
        ):
            check_slice_sizes(size)
