"""Image files: which files count as images, content hashes, checked decoding to RGB."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MIN_SIDE = 8  # pixels: smaller images carry too little to learn from, even upscaled
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif"})


class ImageError(Exception):
    """An image file that cannot be used; the message is the reason."""


def is_hidden(path: Path, root: Path) -> bool:
    """True if any part of `path` below `root` starts with a dot."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def is_image_file(path: Path) -> bool:
    """True for files with an image extension (any case)."""
    return path.suffix.lower() in IMAGE_EXTENSIONS


def file_md5(path: Path) -> str:
    """The MD5 of a file's bytes (for duplicate detection, not security)."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def open_image(path: Path) -> Image.Image:
    """Open and fully decode an image, upright per its EXIF orientation, or raise ImageError."""
    try:
        with Image.open(path) as img:
            img.load()  # decodes every byte: catches truncated files that open() accepts
            upright = ImageOps.exif_transpose(img)
    except UnidentifiedImageError:
        raise ImageError("not an image file (unrecognised format)") from None
    except Image.DecompressionBombError as err:
        raise ImageError(f"too large to decode safely ({err}) — downscale it") from None
    except FileNotFoundError:
        raise ImageError("file not found") from None
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageError(f"truncated or corrupt image ({err})") from None
    if upright.width < 1 or upright.height < 1:
        raise ImageError("image has no pixels")
    return upright


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode (1, L, P, RGBA, CMYK, I;16, ...) as 8-bit RGB."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit (or 32-bit int) grey: scale the full range to 8 bits instead of clipping at 255.
        array = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if img.mode.startswith("I;16") else max(float(array.max()), 1.0)
        img = Image.fromarray(np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def read_rgb(path: Path) -> np.ndarray:
    """An image file as an upright uint8 array of shape (height, width, 3)."""
    return np.asarray(to_rgb(open_image(path)))


def check_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of an image of at least MIN_SIDE pixels a side, or ImageError."""
    if min(img.width, img.height) < MIN_SIDE:
        raise ImageError(
            f"too small ({img.width}×{img.height} px); images need {MIN_SIDE} px a side or more"
        )
    return img.width, img.height


def perceptual_hash(img: Image.Image) -> str:
    """imagehash's pHash as 16 hex digits: copies of an image that were resized, re-encoded or
    lightly edited land a few bits apart (see duplicates.py)."""
    import imagehash

    return str(imagehash.phash(to_rgb(img)))


def image_facts(path: Path, fingerprint: bool) -> tuple[tuple[int, int], str | None]:
    """((width, height), pHash or None) of a usable image, from one decode; ImageError else."""
    img = open_image(path)
    size = check_size(img)
    return size, perceptual_hash(img) if fingerprint else None
