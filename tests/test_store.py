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
