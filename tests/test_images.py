"""images.py: decoding any common image file to upright RGB, and refusing broken ones."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from stages.shared.images import ImageError, image_facts, is_image_file, read_rgb


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
