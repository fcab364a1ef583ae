"""`python -m stages.predict`: run a trained model on new images (not a pipeline stage).

    python -m stages.predict --model models/classifier.keras photos/ 'more/*.png' a.jpg
    python -m stages.predict --model models/detector.keras frames/ --draw boxed/ --out faces.csv

    python -m stages.predict --model classifier@prod photos/        # a registered model by name
    python -m stages.predict --model ../other-project:detector@v1.2.0 frames/

In:  image files, folders (searched recursively) and globs; the model: a `.keras` file (with
     the JSON beside it), an export: a SavedModel folder or a `.tflite` file (metadata
     inside), or a registered model by name, `[repo:]name@version|stage|latest`, fetched
     into a cache and checked against its metadata (stages/shared/models/registry.py). The
     same images give the same answers whichever form of the model serves them.
Out: a CSV on stdout (or `--out`): classifier: path, predicted, confidence (+ top-k columns
     with `--top-k`); detector: path, present, score, x1, y1, x2, y2 in pixels of the image
     (empty when no object is found). `--draw DIR` saves each image with its box drawn.
Preprocessing is the training one (stages/shared/models/inference.py). Unreadable files are skipped
and listed on stderr.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.paths import model_file
from stages.shared.data.images import HASH_SIDE, decode, is_hidden, is_image_file, read_rgb
from stages.shared.evaluation.metrics import ordered_corners


def expand_inputs(items: list[str]) -> list[str]:
    """Files as given, folders searched recursively for images, globs expanded; sorted."""
    found: list[str] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found += sorted(
                p.as_posix()
                for p in path.rglob("*")
                if p.is_file() and is_image_file(p) and not is_hidden(p, path)
            )
        elif path.exists():
            found.append(path.as_posix())
        else:
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise UserError(f"{item}: no such file, folder or matching glob")
            found += [m for m in matches if Path(m).is_file()]
    return list(dict.fromkeys(found))  # each file once, first mention first


def resolve_model(text: str) -> Path:
    """The local path of the model `text` names: a path as given, or a registered model
    fetched by name (its version and revision said on stderr)."""
    from stages.shared.models import registry

    ref = registry.parse_reference(text)
    if ref is None:
        return Path(text)
    fetched = registry.fetch(ref)
    print(f"predict: {ref} is {fetched.describe()}", file=sys.stderr)
    return fetched.path


def open_model(path: Path):
    """(runner with `predict_on_batch`, metadata) for a `.keras` model or one of its exports."""
    from stages.shared.models import exporting
    from stages.shared.models.store import load_model

    if path.is_dir():
        if not (path / exporting.SAVED_MODEL_METADATA).exists():
            raise UserError(f"{path}: not a SavedModel written by the export stage")
        return exporting.SavedModelRunner(path), None
    if path.suffix == ".tflite":
        if not path.exists():
            raise UserError(
                f"{path}: not found — run the export stage (`dvc repro export@<model>`)"
            )
        runner = exporting.TFLiteRunner(path)
        if runner.meta is None:
            raise UserError(f"{path}: no metadata inside — export it with the export stage")
        return runner, None
    return load_model(path)


def classifier_rows(paths: list[str], outputs: list[np.ndarray], meta: dict, top_k: int):
    """path, predicted, confidence (+ top-k classes and probabilities)."""
    proba, classes = outputs[0], np.asarray(meta["classes"])
    frame = pd.DataFrame(
        {"path": paths, "predicted": classes[proba.argmax(1)], "confidence": proba.max(1)}
    )
    ranked = np.argsort(-proba, axis=1, kind="stable")
    for k in range(min(top_k, len(classes))):
        frame[f"top{k + 1}"] = classes[ranked[:, k]]
        frame[f"top{k + 1}_p"] = proba[np.arange(len(proba)), ranked[:, k]]
    return frame


def detector_rows(paths: list[str], outputs: list[np.ndarray], threshold: float):
    """path, present, score, box in pixels of each original image (empty if absent)."""
    scores, boxes = outputs[0].reshape(-1), ordered_corners(outputs[1])
    rows = []
    for path, score, box in zip(paths, scores, boxes, strict=True):
        width, height = decode(Path(path), HASH_SIDE).size  # the full image's size
        present = bool(score >= threshold)
        pixels = np.clip(box, 0, 1) * [width, height, width, height]
        rows.append([path, int(present), score, *(np.round(pixels, 1) if present else [None] * 4)])
    return pd.DataFrame(rows, columns=["path", "present", "score", "x1", "y1", "x2", "y2"])


def draw_boxes(frame: pd.DataFrame, out_dir: Path) -> None:
    """Save each image with its predicted box (red) and score, as PNG, in `out_dir`."""
    from PIL import Image, ImageDraw

    out_dir.mkdir(parents=True, exist_ok=True)
    for row in frame.itertuples(index=False):
        image = Image.fromarray(read_rgb(Path(row.path)))
        draw = ImageDraw.Draw(image)
        if row.present:
            draw.rectangle([row.x1, row.y1, row.x2, row.y2], outline=(255, 0, 0), width=2)
        draw.text((3, 3), f"{row.score:.2f}", fill=(255, 0, 0))
        image.save(out_dir / f"{Path(row.path).stem}.png")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("images", nargs="+", help="image files, folders or globs")
    parser.add_argument(
        "--model",
        default=model_file("classifier").as_posix(),
        help="a .keras file, an export, or a registered model: [repo:]name@version|stage|latest",
    )
    parser.add_argument("--out", help="CSV file to write (default: stdout)")
    parser.add_argument("--top-k", type=int, default=0, help="classifier: top-k columns")
    parser.add_argument("--threshold", type=float, default=0.5, help="detector: presence score")
    parser.add_argument("--draw", help="detector: folder for images with their box drawn")
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args(argv)
    paths = expand_inputs(args.images)
    if not paths:
        raise UserError("no image files found in " + ", ".join(args.images))
    from stages.shared.models.inference import predict_files

    model, meta = open_model(resolve_model(args.model))
    meta = meta or model.meta
    found = predict_files(model, paths, meta["image_size"], args.batch_size)
    for skipped in found.skipped:
        print(f"skipped {skipped['path']}: {skipped['reason']}", file=sys.stderr)
    read = [paths[i] for i in found.index]
    if meta.get("task") == "detection":
        frame = detector_rows(read, found.outputs, args.threshold)
        if args.draw:
            draw_boxes(frame, Path(args.draw))
    else:
        frame = classifier_rows(read, found.outputs, meta, args.top_k)
    text = frame.to_csv(index=False, float_format="%.4f", lineterminator="\n")
    if args.out:
        Path(args.out).write_text(text)
    else:
        sys.stdout.write(text)
    print(f"predict: {len(read)} images, {len(found.skipped)} skipped", file=sys.stderr)


if __name__ == "__main__":
    run_stage(main)
