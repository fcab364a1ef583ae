"""Photos as users bring them: every common format read, true skip reasons, large JPEGs
decoded at the size needed with EXIF orientation and boxes exactly right."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from stages import split
from stages.shared.core.cli import UserError
from stages.shared.data import images
from stages.shared.data.tfdata import load_image
from tests.conftest import labelme, write_params

COLOURS = {"red": (220, 30, 30), "blue": (20, 40, 210)}


def flat(colour, size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, COLOURS[colour])


def write_every_format(folder, colour: str) -> dict[str, str]:
    """One image per format (name → how it was written) in a class folder."""
    folder.mkdir(parents=True, exist_ok=True)
    img = flat(colour)
    img.save(folder / "photo.webp", lossless=True)
    img.save(folder / "scan.tiff")
    img.save(folder / "phone.heic", quality=95)
    img.save(folder / "modern.avif", quality=95)
    img.save(folder / "still.png")
    img.save(folder / "camera.JPG", quality=95)
    level = 40000 if colour == "red" else 20000  # 16-bit grey: scaled, not clipped, to 8 bits
    deep = np.full((30, 40), level, np.uint16)
    Image.fromarray(deep).save(folder / "deep16.tif")
    pages = [flat(colour), flat("blue" if colour == "red" else "red")]
    pages[0].save(folder / "pages.tif", save_all=True, append_images=pages[1:])
    pages[0].save(folder / "animated.gif", save_all=True, append_images=pages[1:], duration=100)
    return {p.name: p.suffix for p in folder.iterdir()}


def test_every_common_format_is_read_and_multi_frame_files_are_counted(workdir):
    for colour in COLOURS:
        written = write_every_format(workdir / "ds" / colour, colour)
    (workdir / "ds/red/layers.psd").write_bytes(b"8BPS not really")
    (workdir / "ds/red/logo.svg").write_text("<svg/>")
    (workdir / "ds/red/notes.txt").write_text("hello")
    write_params(workdir, data={"classification": "ds"}, split={"min_per_class": 1})
    split.main(["classification"])
    frame = pd.read_csv(workdir / "data/split/classification.csv")
    assert len(frame) == 2 * len(written) == 18
    report = json.loads((workdir / "reports/data/classification.json").read_text())
    assert report["notes"] == {"multi-frame file: first frame used": 4}
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in report["skipped"]["files"]}
    assert reasons == {
        "layers.psd": "unsupported format (.psd)",
        "logo.svg": "unsupported format (.svg)",
        "notes.txt": "not an image (.txt)",
    }
    red = workdir / "ds/red"
    for name in ("photo.webp", "scan.tiff", "still.png", "pages.tif", "animated.gif"):
        assert images.read_rgb(red / name)[5, 5].tolist() == list(COLOURS["red"]), name
    for name in ("phone.heic", "modern.avif", "camera.JPG"):  # lossy: close
        assert np.abs(images.read_rgb(red / name)[15, 20] - COLOURS["red"]).max() < 12, name
    assert images.read_rgb(red / "deep16.tif")[0, 0].tolist() == [156] * 3  # 40000 / 65535 × 255


def test_detection_photos_in_these_formats_work_with_labelme(workdir):
    (workdir / "cam/images").mkdir(parents=True)
    (workdir / "cam/labels").mkdir()
    for shade, name in enumerate(("a.webp", "b.heic", "c.tiff", "d.avif")):
        pixels = np.full((30, 40, 3), 10 * shade, np.uint8)
        pixels[5:20, 10:30] = 255
        Image.fromarray(pixels).save(workdir / "cam/images" / name)
        label = workdir / "cam/labels" / f"{name.split('.')[0]}.json"
        label.write_text(json.dumps(labelme([[10, 5], [30, 20]])))
    write_params(workdir, data={"detection": "cam"}, split={"near_duplicates": {"max_distance": 0}})
    split.main(["detection"])
    frame = pd.read_csv(workdir / "data/split/detection.csv")
    assert len(frame) == 4 and frame["present"].all()
    assert np.allclose(frame[["x1", "y1", "x2", "y2"]], [0.25, 5 / 30, 0.75, 20 / 30], atol=1e-6)


def test_a_missing_codec_is_one_line_naming_what_to_install(workdir, monkeypatch):
    (workdir / "ds/a").mkdir(parents=True)
    flat("red").save(workdir / "ds/a/phone.heic")
    write_params(workdir, data={"classification": "ds"})
    monkeypatch.setattr(images, "HEIF_READY", False)
    with pytest.raises(
        UserError, match=r"phone\.heic: HEIC/HEIF photos need the pillow-heif"
    ) as err:
        split.main(["classification"])
    assert "pip install pillow-heif==" in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setattr(images, "HEIF_READY", True)
    flat("red").save(workdir / "ds/a/modern.avif")
    monkeypatch.setattr(images.features, "check", lambda name: name != "avif")
    with pytest.raises(UserError, match=r"modern\.avif: AVIF images need Pillow built with AVIF"):
        split.main(["classification"])


def big_rotated_jpeg(path, object_box) -> None:
    """A 4000×3000 photo stored sideways (EXIF orientation 6, "rotate 90° clockwise to
    display"): upright it is 3000×4000 with a white object at `object_box` (x1, y1, x2, y2
    in upright pixels), on dark grey."""
    upright = np.full((4000, 3000, 3), 40, np.uint8)
    x1, y1, x2, y2 = object_box
    upright[y1:y2, x1:x2] = 250
    stored = Image.fromarray(np.rot90(upright, k=1))  # what the camera wrote: 4000 wide
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(path, quality=90, exif=exif)


def test_a_12_megapixel_photo_decodes_reduced_upright_with_its_box_on_the_object(workdir):
    box = (600, 2400, 1500, 3400)  # upright pixels, lower left
    big_rotated_jpeg(workdir / "cam/images/big.jpg", box)
    (workdir / "cam/labels").mkdir(parents=True)
    doc = labelme([[box[0], box[1]], [box[2], box[3]]], width=3000, height=4000)
    (workdir / "cam/labels/big.json").write_text(json.dumps(doc))
    decoded = images.decode(workdir / "cam/images/big.jpg", 256)
    assert decoded.size == (3000, 4000)  # the full upright size, as labelme saw it
    assert decoded.image.size == (375, 500)  # an eighth of it, both sides still ≥ 256
    facts = images.image_facts(workdir / "cam/images/big.jpg", fingerprint=True)
    assert facts.size == (3000, 4000) and facts.frames == 1
    # The model's input (64 px), from the reduced decode: the box lands on the object.
    pixels = load_image(workdir / "cam/images/big.jpg", 64)
    x1, y1, x2, y2 = (round(v) for v in np.array(box) / [3000, 4000, 3000, 4000] * 64)
    assert pixels[y1 + 1 : y2 - 1, x1 + 1 : x2 - 1].mean() > 240
    outside = np.ones((64, 64), bool)
    outside[max(y1 - 1, 0) : y2 + 1, max(x1 - 1, 0) : x2 + 1] = False
    assert pixels[outside].mean() < 50
    write_params(workdir, data={"detection": "cam"})
    split.main(["detection"])
    row = pd.read_csv(workdir / "data/split/detection.csv").iloc[0]
    assert [row.x1, row.y1, row.x2, row.y2] == pytest.approx([0.2, 0.6, 0.5, 0.85])


def test_a_truncated_large_jpeg_is_still_reported(tmp_path):
    noise = np.random.default_rng(0).integers(0, 255, (3000, 4000, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "JPEG", quality=90)
    (tmp_path / "cut.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(images.ImageError, match=r"truncated or corrupt image"):
        images.image_facts(tmp_path / "cut.jpg", fingerprint=False)
    with pytest.raises(images.ImageError, match=r"truncated or corrupt image"):
        images.decode(tmp_path / "cut.jpg", 64)
