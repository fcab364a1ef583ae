"""Stage `export@<model>`: a model as SavedModel (TF Serving) and TFLite, checked on test images.

In:  models/<model>.keras + .json, data/split/<task>.csv (test rows) and their images.
Out: models/export/<model>/ (SavedModel, endpoint `serve`, metadata in assets.extra/),
     models/export/<model>.tflite (metadata in its flatbuffer); both order box corners;
     reports/export/<model>.json: per format, size, the largest difference from the Keras
     outputs on up to `export.max_images` test images, and CPU latency per image.
Params: export.*. Stops (one line) when an export disagrees with Keras beyond the tolerance.
The exports' metadata records what the model was trained from (its dvc.lock entry: the md5s
of its data and params), and, for a registered model, its version and git revision:

    python -m stages.export classifier --model classifier@prod --out served/
exports a registered version (fetched by name, checked on this project's test images) into
`served/` instead of models/export/, and writes no report.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.config import dataset_root, load_params
from stages.shared.core.paths import EXPORT_DIR, MODELS, export_report, model_file, split_manifest
from stages.shared.data.manifest import read_manifest, write_json
from stages.shared.params.export import ExportParams


def check_pixels(name: str, size: int, count: int):
    """Up to `count` readable test images of the model's task, decoded as in training."""
    from stages.shared.models.inference import read_batch

    task = MODELS[name]
    frame = read_manifest(split_manifest(task), task)
    paths = sorted(frame.loc[frame["split"] == "test", "path"])[:count]
    root = dataset_root(task)  # params.yaml read once, not once a file
    _, pixels, _ = read_batch([(root / path).as_posix() for path in paths], size)
    if not len(pixels):
        raise UserError(f"{split_manifest(task)}: no readable test image to check the export on")
    return pixels


def export_model(name: str, cfg, source=None, out=EXPORT_DIR) -> dict:
    """Export one model (this project's, or `source`, a model fetched by name) in both
    formats into `out`, compare with Keras, time them; the report entry."""
    from stages.shared.evaluation.metrics import ordered_corners
    from stages.shared.models import exporting, registry
    from stages.shared.models.inference import as_list
    from stages.shared.models.store import load_model

    path = model_file(name) if source is None else source.path
    model, meta = load_model(path)
    if source is None:
        meta = {**meta, "trained_from": registry.provenance(name, meta.get("model_md5"))}
    else:
        record = json.loads((path.parent / "registry.json").read_text())
        meta = {**meta, "trained_from": record.pop("trained_from"), "registry": record}
    pixels = check_pixels(name, meta["image_size"], cfg.max_images)
    saved, lite = out / name, out / f"{name}.tflite"
    exporting.export_saved_model(model, saved, meta)
    exporting.convert_tflite(saved, lite, meta)
    expected = as_list(model.predict_on_batch(pixels))
    if meta["task"] == "detection":  # the exports order the corners in their graph
        expected[1] = ordered_corners(expected[1]).astype(np.float32)
    runners = {
        "saved_model": exporting.SavedModelRunner(saved),
        "tflite": exporting.TFLiteRunner(lite),
    }
    report = {"images_checked": len(pixels), "keras_bytes": path.stat().st_size}
    for fmt, runner in runners.items():
        difference = exporting.max_difference(expected, runner.predict_on_batch(pixels))
        if difference > cfg.tolerance:
            raise UserError(
                f"{name}: {fmt} export differs from the Keras model by {difference:.2e}, more than"
                f" export.tolerance={cfg.tolerance:g} — check custom layers or raise the tolerance"
            )
        path = saved if fmt == "saved_model" else lite
        report[fmt] = {"bytes": exporting.folder_bytes(path), "max_abs_difference": difference}
    report["latency_ms_per_image"] = {
        "keras": exporting.median_ms(model.predict_on_batch, pixels),
        "tflite": exporting.median_ms(runners["tflite"].predict_on_batch, pixels),
    }
    return report


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", choices=list(MODELS))
    parser.add_argument("--model", dest="source", help="a registered model: [repo:]name@version")
    parser.add_argument("--out", type=Path, help="with --model: the folder for its exports")
    args = parser.parse_args(argv)
    name, source, out = args.model, None, EXPORT_DIR
    if args.source:
        from stages.shared.models import registry

        ref = registry.parse_reference(args.source)
        if ref is None or ref.name != name:
            raise UserError(f"--model {args.source}: not a registered {name} (`{name}@v1.0.0`)")
        if args.out is None:
            raise UserError("--model needs --out: the folder for the exports of that version")
        source, out = registry.fetch(ref), args.out
    cfg = load_params(ExportParams)
    shutil.rmtree(out / name, ignore_errors=True)
    (out / f"{name}.tflite").unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    entry = export_model(name, cfg, source, out)
    if source is None:
        write_json(export_report(name), entry)
    else:
        print(f"export@{name}: {source.describe()} into {out}")
    ms = entry["latency_ms_per_image"]
    worst = max(entry[fmt]["max_abs_difference"] for fmt in ("saved_model", "tflite"))
    print(
        f"export@{name}: SavedModel and TFLite agree with Keras within {worst:.1e};"
        f" {ms['keras']} ms (Keras) vs {ms['tflite']} ms (TFLite) per image"
    )


if __name__ == "__main__":
    run_stage(main)
