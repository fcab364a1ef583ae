"""Stage `sample@<task>`: build the embedded demo dataset from images shipped in packages.

No network: the digits come with scikit-learn, the faces (LFW subset) and backgrounds with
scikit-image. Deterministic: every image is drawn from a generator seeded by base.seed and
the image's index.

Out: data/sample/classification/<digit>/digit_<index>.png  (RGB, recoloured, upscaled digits;
     <index>: the digit's row in scikit-learn's set, its source)
     data/sample/detection/images/frame_<n>_face<id>.jpg + labels/frame_<n>_face<id>.json
     (labelme; <id>: which LFW face was pasted, the frame's source; negatives are
     frame_<n>.jpg, without JSON)
Params: base.seed, sample.<task>.
The file names carry each image's source so that `split` can keep a source in one split
(split.group_pattern): the same face pasted into two frames never sits in train and test.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from stages.shared.core.cli import run_stage
from stages.shared.core.config import BaseParams, load_params
from stages.shared.core.paths import SAMPLE_DIR, TASKS
from stages.shared.core.seeding import make_rng
from stages.shared.params.sample import SampleParams

# Colour and texture backgrounds without faces (astronaut and camera show people).
BACKGROUNDS = (
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "colorwheel",
    "coins",
    "moon",
    "page",
    "text",
    "grass",
    "gravel",
    "brick",
)


def write_digits(out: Path, per_class: int, size: int, seed: int) -> int:
    """Write up to `per_class` recoloured digits per class as size×size RGB PNGs."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    written = 0
    for label in range(10):
        (out / str(label)).mkdir(parents=True)
        indices = np.flatnonzero(digits.target == label)[:per_class]
        for index in indices:
            rng = make_rng(seed, "digit", int(index))
            ink = digits.images[index] / 16.0  # sklearn ships 8x8 grey levels 0..16
            fg = rng.integers(140, 256, 3)
            bg = rng.integers(0, 90, 3)
            rgb = bg + (fg - bg) * ink[..., None]
            img = Image.fromarray(rgb.astype(np.uint8)).resize((size, size), Image.BILINEAR)
            img.save(out / str(label) / f"digit_{index:04d}.png")
            written += 1
    return written


def load_backgrounds() -> list[np.ndarray]:
    """The scikit-image background pictures as RGB uint8 arrays."""
    import skimage.data

    pictures = []
    for name in BACKGROUNDS:
        array = np.asarray(getattr(skimage.data, name)())
        if array.ndim == 2:
            array = np.stack([array] * 3, axis=-1)
        pictures.append(np.ascontiguousarray(array[..., :3]).astype(np.uint8))
    return pictures


def make_frame(rng: np.random.Generator, backgrounds, width: int, height: int) -> Image.Image:
    """A width×height crop of a randomly scaled background picture."""
    picture = Image.fromarray(backgrounds[rng.integers(len(backgrounds))])
    scale = max(width / picture.width, height / picture.height) * rng.uniform(1.0, 2.0)
    picture = picture.resize((int(picture.width * scale) + 1, int(picture.height * scale) + 1))
    left = int(rng.integers(0, picture.width - width + 1))
    top = int(rng.integers(0, picture.height - height + 1))
    return picture.crop((left, top, left + width, top + height))


def labelme_doc(image_name: str, box: tuple[int, int, int, int], size, rng) -> dict:
    """A labelme 5.x document with one `face` rectangle, corners in a random order."""
    x1, y1, x2, y2 = box
    corners = [[x1, y1], [x2, y2]] if rng.random() < 0.5 else [[x2, y2], [x1, y1]]
    shape = {
        "label": "face",
        "points": corners,
        "group_id": None,
        "shape_type": "rectangle",
        "flags": {},
    }
    return {
        "version": "5.2.1",
        "flags": {},
        "shapes": [shape],
        "imagePath": f"../images/{image_name}",
        "imageData": None,
        "imageHeight": size[1],
        "imageWidth": size[0],
    }


def write_faces(out: Path, cfg, seed: int) -> int:
    """Write frames with one pasted LFW face each (labelme JSON), or none (negatives)."""
    import skimage.data

    faces = skimage.data.lfw_subset()[:100]  # the first 100 of the subset are faces
    backgrounds = load_backgrounds()
    (out / "images").mkdir(parents=True)
    (out / "labels").mkdir()
    for index in tqdm(range(cfg.frames), desc="sample@detection", unit="frame"):
        rng = make_rng(seed, "frame", index)
        frame = make_frame(rng, backgrounds, cfg.frame_width, cfg.frame_height)
        stem = f"frame_{index:04d}"
        if rng.random() >= cfg.negative_fraction:
            side = int(rng.integers(cfg.face_min, cfg.face_max + 1))
            face_id = int(rng.integers(len(faces)))
            face = (faces[face_id] * 255).astype(np.uint8)
            face = Image.fromarray(face).resize((side, side), Image.BILINEAR).convert("RGB")
            x = int(rng.integers(0, cfg.frame_width - side + 1))
            y = int(rng.integers(0, cfg.frame_height - side + 1))
            frame.paste(face, (x, y))
            stem += f"_face{face_id:03d}"
            doc = labelme_doc(f"{stem}.jpg", (x, y, x + side, y + side), frame.size, rng)
            (out / "labels" / f"{stem}.json").write_text(json.dumps(doc, indent=1))
        frame.save(out / "images" / f"{stem}.jpg", quality=92)
    return cfg.frames


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("task", choices=TASKS)
    task = parser.parse_args(argv).task
    base, cfg = load_params(BaseParams), getattr(load_params(SampleParams), task)
    out = SAMPLE_DIR / task
    shutil.rmtree(out, ignore_errors=True)
    if task == "classification":
        count = write_digits(out, cfg.per_class, cfg.image_size, base.seed)
    else:
        count = write_faces(out, cfg, base.seed)
    print(f"sample@{task}: {count} images in {out}")


if __name__ == "__main__":
    run_stage(main)
