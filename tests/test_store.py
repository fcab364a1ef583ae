"""A model on disk travels with its metadata: after `git checkout` of another revision without
`dvc checkout`, every entry point that loads a model stops with one line naming the fix."""

from __future__ import annotations

import shutil

import pytest

from stages import evaluate, export, predict
from stages.shared.core.cli import run_stage
from stages.shared.models import store
from tests.conftest import save_tiny_classifier, save_tiny_detector, write_image, write_params

ENTRY_POINTS = {
    "evaluate": lambda model: evaluate.main([model]),
    "export": lambda model: export.main([model]),
    "predict": lambda model: predict.main(["--model", f"models/{model}.keras", "photo.png"]),
}
SAVERS = {
    "classifier": lambda path, size: save_tiny_classifier(path, size=size),
    "detector": lambda path, size: save_tiny_detector(path, size=size),
}


def out_of_sync(root, model: str) -> None:
    """models/<model>.json of one revision beside the .keras of another (other input size)."""
    SAVERS[model](root / f"models/{model}.keras", 32)
    SAVERS[model](root / f"other/{model}.keras", 48)
    shutil.copy(root / f"other/{model}.keras", root / f"models/{model}.keras")


@pytest.mark.parametrize("model", ["classifier", "detector"])
@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_weights_that_are_not_the_ones_the_metadata_describes_are_one_line(
    workdir, capsys, entry, model
):
    import numpy as np

    write_params(workdir)
    write_image(workdir / "photo.png", np.random.default_rng(0), (40, 30))
    out_of_sync(workdir, model)
    capsys.readouterr()  # what building the models logged (TensorFlow's retracing notes)
    with pytest.raises(SystemExit) as exit_code:
        run_stage(lambda argv: ENTRY_POINTS[entry](model), [])
    assert exit_code.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: models/{model}.keras is not the model models/{model}.json describes (its MD5"
        " differs) — run `dvc checkout` to bring the weights in line with this revision\n"
    )


def test_the_metadata_records_the_md5_of_the_archive_it_was_saved_with(tmp_path):
    path = save_tiny_classifier(tmp_path / "m.keras")
    model, meta = store.load_model(path)  # in sync: loads
    assert meta[store.CHECKSUM] == store.file_md5(path) and model.output_shape == (None, 2)
    path.write_bytes(path.read_bytes() + b"\0")  # one byte more: no longer the same weights
    with pytest.raises(store.UserError, match=r"is not the model .* describes .*dvc checkout"):
        store.load_model(path)


def test_metadata_without_a_recorded_md5_still_loads(tmp_path):
    # A model saved before the check existed: nothing to compare with, loaded as before.
    path = save_tiny_classifier(tmp_path / "m.keras")
    meta_path = path.with_suffix(".json")
    meta_path.write_text(meta_path.read_text().replace('"model_md5"', '"other_key"'))
    assert store.load_model(path)[1]["classes"] == ["blue", "red"]


LOAD_ALONE = """
import sys
from stages.shared.models.store import load_model_file
model = load_model_file(sys.argv[1])
loaded = sorted(m for m in sys.modules if m.startswith("stages.shared.models."))
print(type(model).__name__, " ".join(loaded))
"""


def load_alone(path) -> str:
    """What a fresh process that imports only the store makes of the archive at `path`."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {"PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [sys.executable, "-c", LOAD_ALONE, str(path)], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_loading_imports_the_model_module_the_archive_names_and_only_that_one(tmp_path):
    import zipfile

    from stages.shared.models.classifiers import build_classifier

    detector = save_tiny_detector(tmp_path / "detector.keras")
    assert load_alone(detector) == (
        "FaceTracker stages.shared.models.backbones stages.shared.models.detectors"
        " stages.shared.models.losses stages.shared.models.store"
    )
    inception = build_classifier("mini_inception", size=16, num_classes=2, dropout=0.0, aug=[])
    store.save_model(inception, tmp_path / "inception.keras", {})
    assert load_alone(tmp_path / "inception.keras") == (
        "Functional stages.shared.models.backbones stages.shared.models.classifiers"
        " stages.shared.models.store"
    )
    # An archive saved before the layout by concern names `stages.shared.detectors`.
    legacy = tmp_path / "legacy.keras"
    with zipfile.ZipFile(detector) as old, zipfile.ZipFile(legacy, "w") as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename == "config.json":
                data = data.replace(b"stages.shared.models.detectors", b"stages.shared.detectors")
                assert b'"stages.shared.detectors"' in data
            new.writestr(info, data)
    assert load_alone(legacy).startswith("FaceTracker ")


def test_a_missing_archive_or_metadata_is_one_line_and_saving_makes_the_folder(tmp_path):
    path = save_tiny_classifier(tmp_path / "deep/er/m.keras")  # folders made on the way
    path.with_suffix(".json").unlink()
    with pytest.raises(store.UserError, match=r"m\.json: not found — train the model first"):
        store.load_model(path)
    path.unlink()
    with pytest.raises(store.UserError, match=r"m\.keras: not found — train the model first"):
        store.load_model(path)
