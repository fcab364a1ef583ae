"""Image files: which files count as images, content hashes, checked decoding to RGB.

Every raster photo format the installed Pillow decodes is read (JPEG and the MPO of phone
cameras, PNG, BMP, GIF, WebP, TIFF, AVIF, JPEG 2000, PNM, QOI, TGA), plus HEIC/HEIF through
the pillow-heif plugin, registered here once. Multi-frame files (animated GIF/WebP,
multi-page TIFF) are read at their first frame. Large JPEGs are decoded at reduced scale
(libjpeg's DCT scaling: 1/2, 1/4 or 1/8) when the caller needs fewer pixels, never below
what it asked for; sizes reported are always those of the full, upright image.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError, features

from stages.shared.core.cli import UserError

MIN_SIDE = 8  # pixels: smaller images carry too little to learn from, even upscaled
HASH_SIDE = 64  # pixels `split` decodes for checking and hashing (the pHash uses 32)
HEIF_PACKAGE = "pillow-heif==1.8.1"

try:  # HEIC/HEIF (phone photos) through the maintained plugin; one registration per process
    import pillow_heif

    pillow_heif.register_heif_opener()
    HEIF_READY = True
except ImportError:  # pragma: no cover - the plugin is a pinned requirement
    HEIF_READY = False

# Raster photo formats we read, by Pillow's format name.
READ_FORMATS = frozenset(
    {"JPEG", "MPO", "PNG", "BMP", "DIB", "GIF", "WEBP", "TIFF", "AVIF", "JPEG2000", "PPM", "QOI"}
    | {"TGA", "HEIF"}
)
HEIF_EXTENSIONS = frozenset({".heic", ".heics", ".heif", ".heifs", ".hif"})
# Formats that need a codec Pillow may have been built without: (feature, what to install).
CODECS = {
    "WEBP": ("webp", "Pillow built with WebP (the PyPI wheels of requirements.txt have it)"),
    "AVIF": ("avif", "Pillow built with AVIF (the PyPI wheels of requirements.txt have it)"),
    "JPEG2000": ("jpg_2000", "Pillow built with OpenJPEG (the PyPI wheels have it)"),
}
# Image formats people have, that we do not read (layered, vector, camera raw, HDR, icons).
OTHER_IMAGE_EXTENSIONS = frozenset(
    {".psd", ".psb", ".xcf", ".svg", ".eps", ".ai", ".pdf", ".ico", ".icns", ".cur", ".exr"}
    | {".hdr", ".jxl", ".cr2", ".cr3", ".nef", ".arw", ".dng", ".orf", ".rw2", ".raf", ".dcm"}
)


class ImageError(Exception):
    """An image file that cannot be used; the message is the reason."""


def read_extensions() -> dict[str, str]:
    """{extension: Pillow format} of every file we read."""
    registered = Image.registered_extensions()
    found = {ext: fmt for ext, fmt in registered.items() if fmt in READ_FORMATS}
    return {**found, **dict.fromkeys(HEIF_EXTENSIONS, "HEIF")}


EXTENSIONS = read_extensions()


def is_hidden(path: Path, root: Path) -> bool:
    """True if any part of `path` below `root` starts with a dot."""
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def is_image_file(path: Path) -> bool:
    """True for files with the extension of a format we read (any case)."""
    return path.suffix.lower() in EXTENSIONS


def skip_reason(path: Path) -> str:
    """Why a file that is not read is skipped: another image format, or not an image."""
    suffix = path.suffix.lower()
    if suffix in OTHER_IMAGE_EXTENSIONS or suffix in Image.registered_extensions():
        return f"unsupported format ({suffix})"
    return f"not an image ({suffix or 'no extension'})"


def check_codec(path: Path) -> None:
    """One line naming what to install when the codec of an image file is missing."""
    fmt = EXTENSIONS.get(path.suffix.lower())
    if fmt == "HEIF" and not HEIF_READY:
        raise UserError(
            f"{path}: HEIC/HEIF photos need the pillow-heif package — pip install {HEIF_PACKAGE}"
        )
    if fmt in CODECS and not features.check(CODECS[fmt][0]):
        raise UserError(f"{path}: {fmt} images need {CODECS[fmt][1]} — reinstall Pillow")


def file_md5(path: Path) -> str:
    """The MD5 of a file's bytes (for duplicate detection, not security)."""
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


@dataclass(frozen=True)
class Decoded:
    """An upright image, the size of the full upright image, and its frame count."""

    image: Image.Image
    size: tuple[int, int]
    frames: int


def upright_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the full image as displayed: EXIF orientations 5–8 swap them."""
    orientation = img.getexif().get(0x0112, 1)
    return (img.height, img.width) if orientation in (5, 6, 7, 8) else img.size


def decode(path: Path, min_side: int | None = None) -> Decoded:
    """Open and decode an image, upright per its EXIF orientation, or raise ImageError.

    With `min_side`, a JPEG is decoded at the largest DCT reduction that keeps both sides at
    least `min_side` (other formats decode in full); every byte is still read, so a truncated
    file is caught either way.
    """
    try:
        with Image.open(path) as img:
            size, frames = upright_size(img), getattr(img, "n_frames", 1)
            if min_side:
                img.draft(img.mode, (min_side, min_side))  # a no-op but for JPEG
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
    return Decoded(upright, size, frames)


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


def read_rgb(path: Path, min_side: int | None = None) -> np.ndarray:
    """An image file as an upright uint8 array of shape (height, width, 3); with `min_side`,
    possibly decoded at reduced scale (both sides still ≥ min_side, see `decode`)."""
    return np.asarray(to_rgb(decode(path, min_side).image))


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) of an image of at least MIN_SIDE pixels a side, or ImageError."""
    width, height = size
    if min(width, height) < MIN_SIDE:
        raise ImageError(
            f"too small ({width}×{height} px); images need {MIN_SIDE} px a side or more"
        )
    return width, height


def perceptual_hash(img: Image.Image) -> str:
    """imagehash's pHash as 16 hex digits: copies of an image that were resized, re-encoded or
    lightly edited land a few bits apart (see duplicates.py)."""
    import imagehash

    return str(imagehash.phash(to_rgb(img)))


@dataclass(frozen=True)
class Facts:
    """What `split` learns of a usable image from one (reduced) decode."""

    size: tuple[int, int]  # full upright size
    phash: str | None
    frames: int


def image_facts(path: Path, fingerprint: bool) -> Facts:
    """Size, pHash (with `fingerprint`) and frame count of a usable image; ImageError else.
    Decodes at reduced scale where the format allows: the hash needs 32 pixels."""
    decoded = decode(path, HASH_SIDE)
    size = check_size(decoded.size)
    phash = perceptual_hash(decoded.image) if fingerprint else None
    return Facts(size, phash, decoded.frames)


def model_pixels(path: Path, size: int) -> np.ndarray:
    """An image as a model receives it: float32 (size, size, 3) RGB in [0, 255], resized
    (bilinear) from a decode at reduced scale where possible; the one resize every stage uses."""
    try:
        rgb = read_rgb(Path(path), size)  # a large JPEG decodes at reduced scale, ≥ size
    except ImageError as err:
        raise ImageError(f"{path}: {err}") from None
    if rgb.shape[:2] != (size, size):
        rgb = np.asarray(Image.fromarray(rgb).resize((size, size), Image.BILINEAR))
    return rgb.astype(np.float32)
