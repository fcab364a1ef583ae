"""images.py: decoding any common image file to upright RGB, and refusing broken ones."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stages.shared.data.images import (
    READ_FORMATS,
    ImageError,
    decode,
    image_facts,
    is_hidden,
    is_image_file,
    read_extensions,
    read_rgb,
    skip_reason,
    to_rgb,
    upright_size,
)


def test_modes_all_become_uint8_rgb(tmp_path):
    grey = np.full((6, 5), 100, np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    Image.fromarray(np.zeros((6, 5, 4), np.uint8), "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(grey, "L").convert("P").save(tmp_path / "palette.gif")
    # 16-bit values that tell scaling (v / 257) from clipping (min(v, 255)) and from
    # taking the high byte's neighbours: 25700 → 100 and 200 → 0 or 1, never 255 or 200.
    deep = np.full((6, 5), 25700, np.uint16)
    deep[:, 3:] = 200
    Image.fromarray(deep).save(tmp_path / "deep.png")
    Image.new("CMYK", (5, 6), (0, 0, 0, 0)).save(tmp_path / "cmyk.jpg")
    for name in ("grey.png", "rgba.png", "palette.gif", "deep.png", "cmyk.jpg"):
        rgb = read_rgb(tmp_path / name)
        assert rgb.shape == (6, 5, 3) and rgb.dtype == np.uint8, name
    assert read_rgb(tmp_path / "grey.png")[0, 0].tolist() == [100, 100, 100]
    deep_rgb = read_rgb(tmp_path / "deep.png")
    assert deep_rgb[0, 0].tolist() == [100, 100, 100]
    assert deep_rgb[0, 4].max() <= 1


def test_exif_orientation_is_honoured(tmp_path):
    img = Image.new("RGB", (16, 8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(tmp_path / "rotated.jpg", exif=exif)
    assert image_facts(tmp_path / "rotated.jpg", False).size == (8, 16)


def test_broken_files_raise_with_a_reason(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "page.png").write_text("<html><body>404</body></html>")
    Image.new("RGB", (64, 64), "red").save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="not an image file"):
        image_facts(tmp_path / "empty.jpg", False)
    with pytest.raises(ImageError, match="not an image file"):
        image_facts(tmp_path / "page.png", False)
    with pytest.raises(ImageError, match=r"truncated or corrupt image \(Truncated File Read\)"):
        image_facts(tmp_path / "cut.jpg", False)


def test_extensions_are_case_insensitive(tmp_path):
    assert is_image_file(tmp_path / "A.JPG") and is_image_file(tmp_path / "b.Png")
    assert not is_image_file(tmp_path / "notes.txt")


def test_tiny_missing_and_oversized_images_raise_with_a_reason(tmp_path, monkeypatch):
    Image.new("RGB", (7, 30)).save(tmp_path / "thin.png")
    with pytest.raises(ImageError, match=r"too small \(7×30 px\); images need 8 px a side"):
        image_facts(tmp_path / "thin.png", False)
    with pytest.raises(ImageError, match="file not found"):
        image_facts(tmp_path / "gone.png", False)
    Image.new("RGB", (300, 300)).save(tmp_path / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # PIL refuses over twice this
    with pytest.raises(ImageError, match=r"too large to decode safely .* downscale it"):
        image_facts(tmp_path / "big.png", False)


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I;16L"])
def test_every_16_bit_mode_scales_the_full_range_to_8_bits(mode):
    # v × 255 / 65535 rounded: 25700 → 100, 51529 → 201 (200.50 + 0.5), 65000 → 253, 200 → 1.
    values = np.array([[25700, 51529, 65000, 200, 0, 65535]], np.uint16)
    if mode == "I;16":
        img = Image.fromarray(values)
    else:
        img = Image.frombytes(mode, (6, 1), values.astype(">u2" if mode == "I;16B" else "<u2"))
    assert img.mode == mode
    assert np.asarray(to_rgb(img))[0, :, 0].tolist() == [100, 201, 253, 1, 0, 255]


def test_32_bit_integer_images_scale_by_their_own_peak():
    # Mode I: 1000 is the peak → 255; negatives clip to 0 (−500 → −127, not 129 wrapped);
    # a 0/1 image scales 1 → 255.
    img = Image.fromarray(np.array([[-500, 0, 500, 1000]], np.int32), "I")
    assert np.asarray(to_rgb(img))[0, :, 0].tolist() == [0, 0, 128, 255]
    flags = Image.fromarray(np.array([[0, 1]], np.int32), "I")
    assert np.asarray(to_rgb(flags))[0, :, 0].tolist() == [0, 255]


def test_a_palette_image_with_transparency_converts_without_a_warning(tmp_path):
    img = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), "P")
    img.putpalette([10, 20, 30, 200, 100, 50, 0, 0, 255])
    img.info["transparency"] = b"\x00\xff\xff"  # palette entry 0 transparent, as bytes
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rgb = np.asarray(to_rgb(img))
    assert rgb[0, 0].tolist() == [10, 20, 30] and rgb[0, 1].tolist() == [200, 100, 50]


@pytest.mark.parametrize(
    ("orientation", "swapped"),
    [(1, False), (2, False), (3, False)] + [(o, True) for o in (5, 6, 7, 8)],
)
def test_the_upright_size_swaps_sides_for_every_quarter_turn(orientation, swapped):
    img = Image.new("RGB", (30, 20))
    exif = img.getexif()
    exif[0x0112] = orientation
    img.info["exif"] = exif.tobytes()
    reopened = Image.open(io.BytesIO(save_jpeg(img, exif)))
    assert upright_size(reopened) == ((20, 30) if swapped else (30, 20))
    assert upright_size(Image.new("RGB", (30, 20))) == (30, 20)  # no EXIF at all


def save_jpeg(img: Image.Image, exif) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", exif=exif)
    return buffer.getvalue()


def test_a_one_pixel_image_decodes():
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1), (9, 8, 7)).save(buffer, "PNG")
    buffer.seek(0)
    assert decode(buffer).size == (1, 1)


def test_the_extensions_read_are_the_photo_formats_and_heif():
    extensions = read_extensions()
    assert extensions[".jpg"] == "JPEG" and extensions[".png"] == "PNG"
    assert extensions[".heic"] == "HEIF" and extensions[".hif"] == "HEIF"
    assert ".pdf" not in extensions and ".eps" not in extensions
    assert set(extensions.values()) <= {*READ_FORMATS}


def test_hidden_files_and_folders_and_skip_reasons(tmp_path):
    assert is_hidden(tmp_path / ".cache" / "a.png", tmp_path)
    assert is_hidden(tmp_path / "cats" / ".a.png", tmp_path)
    assert not is_hidden(tmp_path / "cats" / "a.png", tmp_path)
    assert not is_hidden(tmp_path / "cats" / "a.b.png", tmp_path)
    assert skip_reason(Path("notes")) == "not an image (no extension)"
    assert skip_reason(Path("notes.txt")) == "not an image (.txt)"
    assert skip_reason(Path("scan.PSD")) == "unsupported format (.psd)"


def test_facts_carry_a_hash_only_when_asked(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (40, 50, 3), np.uint8)).save(tmp_path / "a.png")
    with_hash = image_facts(tmp_path / "a.png", fingerprint=True)
    assert with_hash.size == (50, 40) and with_hash.frames == 1
    assert len(with_hash.phash) == 16 and int(with_hash.phash, 16) >= 0
    assert image_facts(tmp_path / "a.png", fingerprint=False).phash is None


def test_a_missing_file_is_named_as_such(tmp_path):
    with pytest.raises(ImageError) as error:
        decode(tmp_path / "gone.png")
    assert str(error.value) == "file not found"
