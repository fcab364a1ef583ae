"""Offline augmentation with albumentations: pipelines declared in params, checked, seeded.

A pipeline is a list of `{name: <albumentations transform>, <argument>: <value>, ...}`.
Names and arguments are checked against albumentations before any image is touched. Every
(image, copy) pair gets its own seed derived from the global seed and the image's content
hash, so the output does not depend on file order or on how many workers share the work.
"""

from __future__ import annotations

import difflib
import inspect
import math
import os
import warnings
from functools import cache
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # no version check over the network

import albumentations as A
import numpy as np

from stages.shared.core.cli import UserError
from stages.shared.core.seeding import derive_seed

# Compositions and the final resize are ours to add; users list leaf transforms only.
# Base classes are not transforms a user can list.
EXCLUDED = frozenset({"BasicTransform", "DualTransform", "ImageOnlyTransform", "Transform3D"})


@cache
def transform_registry() -> dict[str, type]:
    """Every public albumentations transform class, by name."""
    return {
        name: obj
        for name, obj in vars(A).items()
        if isinstance(obj, type)
        and issubclass(obj, A.BasicTransform)
        and not inspect.isabstract(obj)
        and name not in EXCLUDED
        and not name.startswith("_")
    }


def _close(word: str, choices: list[str]) -> str:
    """'close matches: ...' for a misspelt name, else the choices (or a pointer to them)."""
    matches = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    if matches:
        return f"close matches: {', '.join(matches)}"
    if len(choices) <= 20:
        return f"choices: {', '.join(choices)}"
    return f"no close match among {len(choices)} albumentations transforms (see its docs)"


def build_transform(spec: dict[str, Any], where: str) -> A.BasicTransform:
    """One transform from its params spec, or a UserError naming the entry and the fix."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise UserError(f"{where}: each transform needs a 'name', e.g. {{name: HorizontalFlip}}")
    args = {k: v for k, v in spec.items() if k != "name"}
    registry = transform_registry()
    name = spec["name"]
    if name not in registry:
        raise UserError(
            f"{where}: unknown transform {name!r}; {_close(str(name), sorted(registry))}"
        )
    cls = registry[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self",)]
    for key in args:
        if key not in accepted:
            raise UserError(f"{where}.{key}: not an argument of {name}; {_close(key, accepted)}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(**args)
    except (ValueError, TypeError) as err:
        detail = " ".join(str(err).split())
        raise UserError(f"{where}: invalid arguments for {name}: {detail}") from None


def build_pipeline(
    specs: list[dict[str, Any]], size: int, with_boxes: bool, min_visibility: float, where: str
) -> A.Compose:
    """The Compose for a params list, ending with a resize to size×size."""
    transforms = [build_transform(spec, f"{where}[{i}]") for i, spec in enumerate(specs)]
    transforms.append(A.Resize(size, size))
    bbox_params = None
    if with_boxes:
        bbox_params = A.BboxParams(
            format="albumentations", label_fields=["labels"], min_visibility=min_visibility
        )
    return A.Compose(transforms, bbox_params=bbox_params)


# Transforms whose arguments are pixel sizes of the input image: decoding a photo at reduced
# scale would change what they cut, so with one of them images are decoded in full.
# (CropAndPad counts only with `px`; with `percent` it cuts a share of each side.)
PIXEL_SIZED = frozenset(
    {"RandomCrop", "CenterCrop", "Crop", "RandomSizedCrop", "CropNonEmptyMaskIfExists"}
    | {"RandomCropNearBBox", "PadIfNeeded", "AtLeastOneBBoxRandomCrop"}
)


def pixel_sized(spec: dict) -> bool:
    """Does this transform take pixel sizes of the input image?"""
    name = spec.get("name")
    return name in PIXEL_SIZED or (name == "CropAndPad" and "percent" not in spec)


def largest(value) -> float:
    """The largest number in a param value: a number, a range, or an {x, y} mapping."""
    if isinstance(value, dict):
        return max(largest(v) for v in value.values())
    if isinstance(value, list | tuple):
        return max(largest(v) for v in value)
    return float(value)


def smallest(value) -> float:
    """The smallest number in a param value: a number or a (nested) range."""
    if isinstance(value, list | tuple):
        return min(smallest(v) for v in value)
    return float(value)


def zoom_of(spec: dict) -> float:
    """How far a transform can magnify the image (1 for those that cannot)."""
    name = spec.get("name")
    if name == "CropAndPad" and "percent" in spec:  # negative: that share cut off each side
        return 1.0 / max(1.0 + 2.0 * min(smallest(spec["percent"]), 0.0), 0.01)
    if name == "Affine" and "scale" in spec:
        return max(largest(spec["scale"]), 1.0)
    if name in ("RandomScale", "ShiftScaleRotate") and "scale_limit" in spec:
        return 1.0 + max(largest(spec["scale_limit"]), 0.0)
    if name == "RandomResizedCrop":  # a crop of `scale` of the area, resized to the output
        low = spec.get("scale", (0.08, 1.0))
        return 1.0 / math.sqrt(min(low) if isinstance(low, list | tuple) else low)
    return 1.0


def decode_side(specs: list[dict], size: int) -> int | None:
    """The smallest side a photo must keep for these transforms to yield `size` pixels at
    full detail: `size` times the largest zoom; None (decode in full) with pixel-sized crops."""
    if any(pixel_sized(spec) for spec in specs):
        return None
    return math.ceil(size * max((zoom_of(spec) for spec in specs), default=1.0))


def reseed(pipeline: A.Compose, seed: int) -> None:
    """Seed a pipeline for one (image, copy).

    `Compose.set_random_seed` hands the *same* seed to every child, so their first draws are
    equal and `p=0.5` flips would always coincide with `p=0.5` colour changes. Each child gets
    its own derived seed instead.
    """
    pipeline.set_random_seed(seed)
    for index, transform in enumerate(pipeline.transforms):
        transform.set_random_seed(derive_seed(seed, "transform", index))


def augment(
    pipeline: A.Compose, image: np.ndarray, box: tuple[float, ...] | None, seed: int
) -> tuple[np.ndarray, tuple[float, ...] | None]:
    """One augmented copy of an image (and its normalised box, None if absent or lost)."""
    reseed(pipeline, seed)
    if pipeline.processors.get("bboxes") is None:
        return pipeline(image=image)["image"], None
    boxes = [box] if box is not None else []
    out = pipeline(image=image, bboxes=boxes, labels=[1] * len(boxes))
    kept = out["bboxes"]
    new_box = tuple(round(float(v), 6) for v in kept[0]) if len(kept) else None
    return out["image"], new_box


def object_cut(source: np.ndarray, box: tuple[float, ...]) -> tuple[np.ndarray, tuple]:
    """What copy-paste takes of a frame: its pixels around the normalised `box` with a margin
    of a quarter of the box's sides (within the frame), and (the cut's left, top, right, bottom
    as shares of the frame, the box as shares of the frame), for `paste_cut`."""
    src_h, src_w = source.shape[:2]
    x1, y1, x2, y2 = box[0] * src_w, box[1] * src_h, box[2] * src_w, box[3] * src_h
    margin_x, margin_y = (x2 - x1) / 4, (y2 - y1) / 4
    cx1, cy1 = max(int(x1 - margin_x), 0), max(int(y1 - margin_y), 0)
    cx2, cy2 = min(math.ceil(x2 + margin_x), src_w), min(math.ceil(y2 + margin_y), src_h)
    where = (cx1 / src_w, cy1 / src_h, cx2 / src_w, cy2 / src_h)
    return source[cy1:cy2, cx1:cx2].copy(), (where, tuple(box))


def paste_cut(
    frame: np.ndarray, cut_of: tuple[np.ndarray, tuple], rng: np.random.Generator
) -> tuple[np.ndarray, tuple[float, ...]]:
    """Copy-paste: `frame` with what `object_cut` took of another frame pasted in at a random
    place, at the same share of the frame's sides as in its source, and the object's new box.

    The cut's margin fades linearly from the box's edge to the cut's, so the pasted object
    carries no hard rectangular seam.
    """
    from PIL import Image

    pixels, ((cx1, cy1, cx2, cy2), (x1, y1, x2, y2)) = cut_of
    height, width = frame.shape[:2]
    # The same share of this frame's sides as of the source's.
    cut_w = min(max(round((cx2 - cx1) * width), 1), width)
    cut_h = min(max(round((cy2 - cy1) * height), 1), height)
    cut = np.asarray(
        Image.fromarray(pixels).resize((cut_w, cut_h), Image.BILINEAR), dtype=np.float32
    )
    # The box inside the cut, in the cut's pixels.
    bx1, by1 = (x1 - cx1) * width, (y1 - cy1) * height
    bx2, by2 = (x2 - cx1) * width, (y2 - cy1) * height

    def ramp(count: int, low: float, high: float) -> np.ndarray:
        """1 between low and high, falling linearly to 0 at the cut's edges."""
        at = np.arange(count, dtype=np.float32) + 0.5
        rise = np.clip(at / low, 0, 1) if low > 0.5 else np.ones(count, np.float32)
        fall = np.clip((count - at) / (count - high), 0, 1) if count - high > 0.5 else 1.0
        return np.minimum(rise, fall)

    alpha = (ramp(cut_h, by1, by2)[:, None] * ramp(cut_w, bx1, bx2)[None, :])[..., None]
    left = int(rng.integers(0, width - cut_w + 1))
    top = int(rng.integers(0, height - cut_h + 1))
    out = frame.copy()
    region = out[top : top + cut_h, left : left + cut_w].astype(np.float32)
    out[top : top + cut_h, left : left + cut_w] = np.rint(
        alpha * cut + (1 - alpha) * region
    ).astype(np.uint8)
    pasted = (
        (left + bx1) / width,
        (top + by1) / height,
        min((left + bx2) / width, 1.0),
        min((top + by2) / height, 1.0),
    )
    return out, tuple(round(float(v), 6) for v in pasted)


# --- running a pipeline over manifest rows, in worker processes ---

_worker: dict[str, Any] = {}


def _init_worker(config: dict[str, Any]) -> None:
    """Build the pipeline once per process (albumentations objects are not shared)."""
    _worker.clear()
    _worker.update(config)
    _worker["pipeline"] = build_pipeline(
        config["transforms"],
        config["size"],
        config["with_boxes"],
        config["min_visibility"],
        config["where"],
    )


def _changed(path: str, err: Exception) -> UserError:
    return UserError(
        f"{path}: {err} — the file changed after `split` checked it; re-run `dvc repro`"
    )


def _frame_images(job: tuple[dict[str, Any], bool, bool]) -> list[tuple[np.ndarray, dict]]:
    """The model-input images of one manifest row: the image as every stage prepares it
    (`keep`), then its augmented copies (`copies`); each with its manifest row."""
    from stages.shared.data.images import ImageError, model_pixels, read_rgb

    row, keep, copies = job
    file = (Path(_worker.get("root", "")) / row["path"]).as_posix()  # from the dataset root
    out = []
    if keep:
        try:
            pixels = model_pixels(file, _worker["size"])
        except (ImageError, OSError) as err:
            raise _changed(file, str(err).removeprefix(f"{file}: ")) from None
        out.append((pixels.astype(np.uint8), row))
    if copies:
        try:
            image = read_rgb(file, _worker["decode_side"])
        except (ImageError, OSError) as err:
            raise _changed(file, err) from None
        out += _copies(row, image, _worker)
    return out


def _augment_copy(cfg: dict[str, Any], image: np.ndarray, box, seed: int, path: str):
    """One augmented copy; a transform that cannot handle this image is one clear line."""
    try:
        return augment(cfg["pipeline"], image, box, seed)
    except Exception as err:  # albumentations raises many types for args that misfit an image
        height, width = image.shape[:2]
        raise UserError(
            f"{cfg['where']} failed on {path} ({width}×{height} px): "
            f"{type(err).__name__}: {' '.join(str(err).split())} — adjust the transform"
            " arguments to fit images of this size (e.g. pad_if_needed: true on crops)"
        ) from None


def _copies(row: dict[str, Any], image: np.ndarray, cfg: dict[str, Any]):
    """Each augmented copy of one image with its manifest row (md5: of its pixels)."""
    import hashlib

    from stages.shared.data.manifest import BOX

    box = tuple(row[k] for k in BOX) if row.get("present") == 1 else None
    out = []
    for copy in range(1, cfg["copies"] + 1):
        seed = derive_seed(cfg["seed"], row["md5"], copy)
        file = (Path(cfg.get("root", "")) / row["path"]).as_posix()
        frame, frame_box = image, box
        if box is None and cfg.get("bank"):  # a bank only when paste > 0
            rng = np.random.default_rng(derive_seed(seed, "paste"))
            if rng.random() < cfg["paste"]:
                cut = _bank_object(cfg, int(rng.integers(len(cfg["bank"]))))
                frame, frame_box = paste_cut(image, cut, rng)
        pixels, new_box = _augment_copy(cfg, frame, frame_box, seed, file)
        pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
        new = {**row, "path": None, "md5": hashlib.md5(pixels.tobytes()).hexdigest()}
        new.update(width=pixels.shape[1], height=pixels.shape[0])
        if cfg["with_boxes"]:
            lost = int(frame_box is not None and not new_box)
            new.update(present=int(new_box is not None), lost=lost)
            new.update(zip(BOX, new_box or (0.0, 0.0, 0.0, 0.0), strict=True))
        out.append((pixels, new))
    return out


def _bank_object(cfg: dict[str, Any], index: int) -> tuple[np.ndarray, tuple]:
    """The copy-paste bank's object `index` as `object_cut` gives it, decoded once a process
    (only the cut is kept: a few kB, not the frame)."""
    from stages.shared.data.images import ImageError, read_rgb

    cached = cfg.setdefault("bank_images", {})
    if index not in cached:
        path, box = cfg["bank"][index]
        file = (Path(cfg.get("root", "")) / path).as_posix()
        try:
            cached[index] = object_cut(read_rgb(file, cfg["decode_side"]), tuple(box))
        except (ImageError, OSError) as err:
            raise _changed(file, err) from None
    return cached[index]


def augment_rows(
    jobs: list[tuple[dict[str, Any], bool, bool]], config: dict[str, Any], workers: int
):
    """Each job's (pixels, row) list, in input order, from `workers` processes; a job is
    (manifest row, keep the image itself, add its augmented copies).

    The processes start here, before the caller loads TensorFlow to write the shards: a
    process forked from one with TensorFlow's threads running could inherit a held lock.
    """
    if workers <= 1:
        _init_worker(config)
        return map(_frame_images, jobs)
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(config,))
    results = pool.map(_frame_images, jobs, chunksize=8)  # submits all: every process starts

    def drain():
        try:
            yield from results
        finally:
            pool.shutdown(cancel_futures=True)

    return drain()
