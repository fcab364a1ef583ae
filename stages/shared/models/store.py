"""A model on disk: the `.keras` archive and, beside it, the JSON that says what produced it
(classes, image size, params, seeds, checks) and the MD5 of the archive it describes.

The JSON is small and lives in git; the archive lives in DVC. After `git checkout` of another
revision without `dvc checkout`, the two disagree: loading checks the archive's MD5 against
the one its JSON records and stops with one line naming `dvc checkout`, before Keras fails on
a shape somewhere inside.

Loading imports the model module an archive names (`classifiers` or `detectors`), which
registers its custom layers: a classifier's stages never import the detector's code, nor the
other way round.
"""

from __future__ import annotations

import importlib
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import keras

from stages.shared.core.cli import UserError
from stages.shared.data.images import file_md5
from stages.shared.data.manifest import write_json
from stages.shared.models.backbones import BACKBONES, copy_backbone_weights, find_backbone

CHECKSUM = "model_md5"  # the metadata key that holds the archive's MD5
MODEL_MODULES = ("stages.shared.models.classifiers", "stages.shared.models.detectors")


def register_classes(path: Path) -> None:
    """Import the model modules whose classes the archive at `path` uses (its config.json
    names them), so that Keras finds them. An archive from before the layout by concern names
    `stages.shared.<module>`; it maps to `stages.shared.models.<module>`."""
    try:
        with zipfile.ZipFile(path) as archive:
            config = archive.read("config.json").decode()
    except (OSError, KeyError, zipfile.BadZipFile):
        return  # not a readable archive: keras.models.load_model says so in one line below
    for module in set(re.findall(r'"module": "(stages\.shared\.[\w.]+)"', config)):
        name = module.rsplit(".", 1)[-1]
        wanted = f"stages.shared.models.{name}"
        if wanted in MODEL_MODULES:
            importlib.import_module(wanted)


def metadata_file(path: Path) -> Path:
    """The JSON that describes the model at `path`."""
    return Path(path).with_suffix(".json")


def load_model_file(path: Path):
    """A saved `.keras` model of this pipeline, loaded in safe mode, or one clear line."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found — train the model first (`dvc repro`)")
    register_classes(path)
    try:
        return keras.models.load_model(path, safe_mode=True)
    except (ValueError, OSError, TypeError) as err:
        detail = " ".join(str(err).split())[:200]
        raise UserError(f"{path}: cannot load the model ({detail}) — re-run its training") from None


def read_metadata(path: Path) -> dict:
    """The metadata of the model at `path`, checked against the archive's bytes."""
    path = Path(path)
    meta_path = metadata_file(path)
    if not path.exists():
        raise UserError(f"{path}: not found — train the model first (`dvc repro`)")
    if not meta_path.exists():
        raise UserError(f"{meta_path}: not found — train the model first (`dvc repro`)")
    meta = json.loads(meta_path.read_text())
    recorded = meta.get(CHECKSUM)
    if recorded is not None and recorded != file_md5(path):
        raise UserError(
            f"{path} is not the model {meta_path} describes (its MD5 differs) — run"
            " `dvc checkout` to bring the weights in line with this revision"
        )
    return meta


def load_model(path: Path) -> tuple[Any, dict]:
    """A saved `.keras` model (safe mode) and its metadata, the two checked to belong together."""
    meta = read_metadata(path)
    return load_model_file(path), meta


def save_model(model: keras.Model, path: Path, metadata: dict[str, Any]) -> None:
    """Save a model and, beside it, the JSON that says what produced it, with the archive's MD5.

    The `.keras` archive is written without Keras' save date or file times, so the same
    weights give the same bytes and DVC does not re-run the stages downstream for nothing.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model.save(path)
    strip_save_times(path)
    write_json(metadata_file(path), {**metadata, CHECKSUM: file_md5(path)})


def strip_save_times(path: Path) -> None:
    """Rewrite a `.keras` zip with fixed entry times and no `date_saved` in metadata.json."""
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(tmp, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "metadata.json":
                meta = json.loads(data)
                meta.pop("date_saved", None)
                data = json.dumps(meta).encode()
            fixed = zipfile.ZipInfo(info.filename, date_time=(1980, 1, 1, 0, 0, 0))
            fixed.compress_type, fixed.external_attr = info.compress_type, info.external_attr
            target.writestr(fixed, data)
    tmp.replace(path)


def copy_pretrained(model: keras.Model, weights: str | None) -> None:
    """With `weights` a `.keras` model of this pipeline, copy its backbone into `model`'s."""
    if weights is None or not weights.endswith(".keras"):
        return
    path = Path(weights)
    source = find_backbone(load_model_file(path))
    if source is None:
        raise UserError(
            f"{path}: this model has no backbone (simple_cnn / mini_inception) — pretrain"
            f" with a backbone architecture ({', '.join(BACKBONES)})"
        )
    copy_backbone_weights(path, source, find_backbone(model))
