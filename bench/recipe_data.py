"""The recipe check's datasets: real photographs that ship inside installed packages
(scikit-image, scikit-learn, matplotlib), cut and laid out as a user would bring them.

- `textures`: 6 classes of texture photographs (brick, grass, gravel, moon, the Hubble deep
  field, a stained tissue slide), 120 patches each of 64-200 px, non-square, in mixed modes
  (greyscale, RGB, RGBA and palette PNG, JPEG) plus 3 broken files. Each source is cut into a
  4×4 grid of regions and a patch stays inside one region; the region is the group
  (`<class>_r<k>`), so test patches come from parts of the photo training never saw.
- `scenes`: 6 classes of scene photographs (astronaut, cat, coffee, rocket, a Chinese temple,
  a flower), 24 "shots" each (a random window of 40-80 % of the photo), 5 pictures per shot
  (small shifts, zoom, light, blur, a flip), 64-200 px; the shot is the group
  (`<class>_shot<k>`), as a burst of phone photos of one subject, plus 2 broken files.
- `coins`: detection frames of 192×144 to 320×240 with one of scikit-image's 24 coins (cut
  out with its own mask, tinted) pasted at 12-45 % of the short side on a scene photograph,
  0-2 distractor objects (cut-outs of other photos, not labelled), 15 % negatives; labelme
  JSON beside each image (rectangles, some circles and polygons, as annotators draw); the
  coin is the group (`_coin<id>`), so test coins are coins training never saw.
- `small-faces`: small objects among look-alikes. 600 frames of 320×240 or 400×300 on ten
  photographs; at most one face from scikit-image's `lfw_subset` (100 grey 25×25 faces), at
  8-20 % of the short side (0.5-3.5 % of the frame's area), blended with a feathered edge and
  tinted to the background around it; 0-3 distractors cut the same way from the subset's 100
  non-face patches and from grey photographs without people, each matched to a face's grey
  mean and contrast; backgrounds without people; blur on a third of the frames, sensor
  noise, JPEG quality 45-90, 20 % negatives.
  The face is the group (`_face<id>`), so test faces are people training never saw.

The same seed gives the same files. Nothing here is committed: `make recipe-check` builds
them under `.work/recipe-check/data/`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter

from bench.common import toy

TEXTURES = ("brick", "grass", "gravel", "moon", "hubble_deep_field", "immunohistochemistry")
SCENES = ("astronaut", "chelsea", "coffee", "rocket", "china", "flower")
GROUP_PATTERNS = {  # split.group_pattern for each dataset: capture group 1 = the source
    "textures": r"(\w+_r\d+)_",
    "scenes": r"(\w+_shot\d+)_",
    "coins": r"_coin(\d+)",
    "small-faces": r"_face(\d+)",
}
PATCHES_PER_CLASS = toy(120, 8)
SHOTS, PER_SHOT = 24, 5
FRAMES = toy(360, 24)
SMALL_FRAMES = toy(600, 24)


def photo(name: str) -> Image.Image:
    """A packaged photograph by name, as PIL (greyscale ones stay "L")."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return Image.fromarray(load_sample_image(f"{name}.jpg"))
    import skimage.data

    array = np.asarray(getattr(skimage.data, name)())
    return Image.fromarray(array[..., :3] if array.ndim == 3 else array)


def out_size(rng: np.random.Generator) -> tuple[int, int]:
    """A picture size as users have them: 64-200 px a side, aspect 3:4 to 4:3."""
    long = int(rng.integers(80, 201))
    short = max(64, int(long * rng.uniform(0.75, 1.0)))
    return (long, short) if rng.random() < 0.5 else (short, long)


def save_as_user(image: Image.Image, path: Path, rng: np.random.Generator) -> None:
    """Saved in one of the modes and formats a folder of users' pictures holds."""
    kind = rng.choice(["jpg", "jpg", "png", "png_rgba", "png_palette"])
    if kind == "jpg":
        image.save(path.with_suffix(".jpg"), quality=int(rng.integers(70, 96)))
    elif kind == "png":
        image.save(path.with_suffix(".png"))
    elif kind == "png_rgba":
        image.convert("RGBA").save(path.with_suffix(".png"))
    else:
        image.convert("RGB").quantize(128).save(path.with_suffix(".png"))


def broken_files(folder: Path, count: int) -> None:
    """A truncated JPEG, an empty file, a text file named .png: what a scrape leaves behind."""
    folder.mkdir(parents=True, exist_ok=True)
    valid = next(p for p in sorted(folder.iterdir()) if p.suffix == ".jpg")
    makers = [
        lambda: (folder / "broken_truncated.jpg").write_bytes(valid.read_bytes()[:300]),
        lambda: (folder / "broken_empty.jpg").write_bytes(b""),
        lambda: (folder / "broken_notes.png").write_text("not a picture\n"),
    ]
    for make in makers[:count]:
        make()


def jitter(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Light, contrast and colour as they change between two photographs."""
    image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.75, 1.25))
    image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.8, 1.2))
    if image.mode == "RGB":
        image = ImageEnhance.Color(image).enhance(rng.uniform(0.8, 1.2))
    return image


def make_textures(root: Path, seed: int = 0) -> Path:
    """`root/<class>/<class>_r<region>_<i>.<ext>` (see the module docstring)."""
    rng = np.random.default_rng([seed, 1])
    for name in TEXTURES:
        source = photo(name)
        label = name.split("_")[0] if name != "immunohistochemistry" else "tissue"
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        cell_w, cell_h = source.width // 4, source.height // 4
        for i in range(PATCHES_PER_CLASS):
            region = i % 16
            rx, ry = (region % 4) * cell_w, (region // 4) * cell_h
            size = out_size(rng)
            scale = rng.uniform(0.6, 1.0) * min(cell_w / size[0], cell_h / size[1])
            cw, ch = int(size[0] * scale), int(size[1] * scale)
            left = rx + int(rng.integers(0, cell_w - cw + 1))
            top = ry + int(rng.integers(0, cell_h - ch + 1))
            patch = source.crop((left, top, left + cw, top + ch)).resize(size, Image.BICUBIC)
            if rng.random() < 0.5:
                patch = patch.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            patch = jitter(patch, rng)
            save_as_user(patch, folder / f"{label}_r{region:02d}_{i:03d}", rng)
    broken_files(root / "brick", 2)
    broken_files(root / "grass", 1)
    return root


def make_scenes(root: Path, seed: int = 0) -> Path:
    """`root/<class>/<class>_shot<k>_<j>.<ext>` (see the module docstring)."""
    rng = np.random.default_rng([seed, 2])
    for name in SCENES:
        source = photo(name).convert("RGB")
        label = {"chelsea": "cat", "china": "temple"}.get(name, name)
        folder = root / label
        folder.mkdir(parents=True, exist_ok=True)
        for shot in range(SHOTS):
            share = rng.uniform(0.4, 0.8)
            sw, sh = int(source.width * share), int(source.height * share)
            sx = int(rng.integers(0, source.width - sw + 1))
            sy = int(rng.integers(0, source.height - sh + 1))
            for j in range(PER_SHOT):
                zoom = rng.uniform(0.85, 1.0)
                cw, ch = int(sw * zoom), int(sh * zoom)
                left = min(
                    source.width - cw, max(0, sx + int(rng.integers(-sw // 10, sw // 10 + 1)))
                )
                top = min(
                    source.height - ch, max(0, sy + int(rng.integers(-sh // 10, sh // 10 + 1)))
                )
                size = out_size(rng)
                picture = source.crop((left, top, left + cw, top + ch)).resize(size, Image.LANCZOS)
                if rng.random() < 0.3:
                    picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
                if rng.random() < 0.3:
                    picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
                picture = jitter(picture, rng)
                save_as_user(picture, folder / f"{label}_shot{shot:02d}_{j}", rng)
    broken_files(root / "coffee", 1)
    broken_files(root / "rocket", 3)
    return root


def cut_coins() -> list[tuple[Image.Image, Image.Image]]:
    """scikit-image's 24 coins, each (grey picture, its mask) cut to its bounding box."""
    import skimage.data
    from scipy import ndimage
    from skimage import filters, measure, segmentation

    coins = skimage.data.coins()
    markers = np.zeros_like(coins)
    markers[coins < 30], markers[coins > 150] = 1, 2
    regions = ndimage.binary_fill_holes(segmentation.watershed(filters.sobel(coins), markers) - 1)
    labels, _ = ndimage.label(regions)
    cut = []
    for region in measure.regionprops(labels):
        if region.area < 400:
            continue
        top, left, bottom, right = region.bbox
        mask = (labels[top:bottom, left:right] == region.label).astype(np.uint8) * 255
        cut.append((Image.fromarray(coins[top:bottom, left:right]), Image.fromarray(mask)))
    return cut


def distractor(source: Image.Image, rng: np.random.Generator, side: int):
    """A cut-out of another photograph: an ellipse or a rounded rectangle, and its mask."""
    w, h = side, int(side * rng.uniform(0.6, 1.4))
    left = int(rng.integers(0, source.width - w + 1))
    top = int(rng.integers(0, source.height - h + 1))
    piece = source.crop((left, top, left + w, top + h))
    mask = Image.new("L", (w, h), 0)
    draw = ImageDraw.Draw(mask)
    if rng.random() < 0.5:
        draw.ellipse((0, 0, w - 1, h - 1), fill=255)
    else:
        draw.rounded_rectangle((0, 0, w - 1, h - 1), radius=side // 5, fill=255)
    return piece, mask


def background_crop(scenes: list[Image.Image], size: tuple[int, int], rng) -> Image.Image:
    """A frame of `size` cut from one of the photographs, zoomed 1-1.6x past covering it, with
    its light and colour jittered."""
    background = scenes[int(rng.integers(len(scenes)))]
    scale = max(size[0] / background.width, size[1] / background.height) * rng.uniform(1, 1.6)
    background = background.resize(
        (int(background.width * scale) + 1, int(background.height * scale) + 1)
    )
    left = int(rng.integers(0, background.width - size[0] + 1))
    top = int(rng.integers(0, background.height - size[1] + 1))
    return jitter(background.crop((left, top, left + size[0], top + size[1])), rng)


def labelme_shape(box: tuple[float, float, float, float], kind: str) -> dict:
    """The coin as a labelme annotator draws it: a rectangle, a circle or a polygon."""
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if kind == "circle":
        points = [[cx, cy], [x2, cy]]
    elif kind == "polygon":
        angles = np.linspace(0, 2 * np.pi, 12, endpoint=False)
        rx, ry = (x2 - x1) / 2, (y2 - y1) / 2
        points = [[cx + rx * np.cos(a), cy + ry * np.sin(a)] for a in angles]
    else:
        points = [[x1, y1], [x2, y2]]
    points = [[round(float(x), 1), round(float(y), 1)] for x, y in points]
    return {"label": "coin", "points": points, "group_id": None, "shape_type": kind, "flags": {}}


def make_coins(root: Path, seed: int = 0) -> Path:
    """`root/frame_<i>[_coin<id>].jpg` + labelme JSON beside it (see the module docstring)."""
    rng = np.random.default_rng([seed, 3])
    coins = cut_coins()
    scenes = [photo(name).convert("RGB") for name in (*SCENES, "camera", "brick", "grass")]
    objects = [photo(name).convert("RGB") for name in ("rocket", "coffee", "astronaut", "flower")]
    root.mkdir(parents=True, exist_ok=True)
    for index in range(FRAMES):
        width = int(rng.integers(192, 321))
        size = (width, width * 3 // 4)
        frame = background_crop(scenes, size, rng)
        for _ in range(int(rng.integers(0, 3))):
            side = int(min(size) * rng.uniform(0.12, 0.4))
            piece, mask = distractor(objects[int(rng.integers(len(objects)))], rng, side)
            at = (
                int(rng.integers(0, size[0] - piece.width + 1)),
                int(rng.integers(0, size[1] - piece.height + 1)),
            )
            frame.paste(piece, at, mask)
        stem = f"frame_{index:04d}"
        doc = None
        if rng.random() >= 0.15:
            coin_id = int(rng.integers(len(coins)))
            picture, mask = coins[coin_id]
            side = int(min(size) * rng.uniform(0.12, 0.45))
            ratio = side / max(picture.size)
            cw, ch = max(1, round(picture.width * ratio)), max(1, round(picture.height * ratio))
            tint = np.array(
                [rng.uniform(0.85, 1.2), rng.uniform(0.75, 1.05), rng.uniform(0.5, 1.0)]
            )
            grey = np.asarray(picture.resize((cw, ch), Image.BICUBIC), dtype=np.float32)[..., None]
            coloured = Image.fromarray(np.clip(grey * tint, 0, 255).astype(np.uint8))
            x = int(rng.integers(0, size[0] - cw + 1))
            y = int(rng.integers(0, size[1] - ch + 1))
            frame.paste(coloured, (x, y), mask.resize((cw, ch), Image.BILINEAR))
            stem += f"_coin{coin_id:02d}"
            kind = rng.choice(["rectangle"] * 7 + ["circle", "polygon"] * 2)
            if kind == "circle" and abs(cw - ch) > 2:
                kind = "rectangle"
            doc = {
                "version": "5.2.1",
                "flags": {},
                "shapes": [labelme_shape((x, y, x + cw, y + ch), str(kind))],
                "imagePath": f"{stem}.jpg",
                "imageData": None,
                "imageHeight": size[1],
                "imageWidth": size[0],
            }
        frame.save(root / f"{stem}.jpg", quality=int(rng.integers(80, 96)))
        if doc is not None:
            (root / f"{stem}.json").write_text(json.dumps(doc, indent=1))
    return root


def lfw_patches() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """scikit-image's `lfw_subset`: (100 faces, 100 non-face patches), grey 25×25 in [0, 1]."""
    import skimage.data

    patches = skimage.data.lfw_subset()
    return list(patches[:100]), list(patches[100:])


def feathered(width: int, height: int) -> Image.Image:
    """An elliptical mask with a soft edge: a pasted patch fades into the background."""
    mask = Image.new("L", (width * 4, height * 4), 0)
    ImageDraw.Draw(mask).ellipse((0, 0, width * 4 - 1, height * 4 - 1), fill=255)
    soft = max(1.0, min(width, height) * 0.5)
    return mask.resize((width, height), Image.LANCZOS).filter(ImageFilter.GaussianBlur(soft / 4))


def blend(frame: Image.Image, grey: np.ndarray, box: tuple[int, int, int, int], rng) -> None:
    """Paste a grey patch (values in [0, 1]) into `box` of the frame, tinted to the mean colour
    of the frame around it, with a feathered edge."""
    x, y, w, h = box
    patch = Image.fromarray((grey * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    around = np.asarray(frame.crop((max(0, x - w), max(0, y - h), x + 2 * w, y + 2 * h)))
    tint = around.reshape(-1, 3).mean(axis=0) / max(1.0, around.mean())
    tint = np.clip(tint * rng.uniform(0.9, 1.1, 3), 0.5, 1.5)
    coloured = np.asarray(patch, dtype=np.float32)[..., None] * tint
    frame.paste(
        Image.fromarray(np.clip(coloured, 0, 255).astype(np.uint8)), (x, y), feathered(w, h)
    )


def like_a_face(grey: np.ndarray, face: np.ndarray) -> np.ndarray:
    """A patch given a face's grey mean and contrast (what a quick look goes by)."""
    spread = grey.std() or 1.0
    return np.clip((grey - grey.mean()) / spread * face.std() + face.mean(), 0, 1)


def degrade(frame: Image.Image, rng: np.random.Generator) -> Image.Image:
    """What cheap cameras do: blur on a third of the frames, and sensor noise on all."""
    if rng.random() < 1 / 3:
        frame = frame.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.6)))
    pixels = np.asarray(frame, dtype=np.float32)
    pixels = pixels + rng.normal(0, rng.uniform(2, 8), pixels.shape)
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def place(size: tuple[int, int], side: int, rng) -> tuple[int, int, int, int]:
    """(x, y, width, height) of a patch `side` wide and a little taller (as a face) in the frame."""
    height = int(side * rng.uniform(1.0, 1.2))
    x = int(rng.integers(0, size[0] - side + 1))
    y = int(rng.integers(0, size[1] - height + 1))
    return x, y, side, height


def make_small_faces(root: Path, seed: int = 0, frames: int = SMALL_FRAMES) -> Path:
    """`root/frame_<i>[_face<id>].jpg` + labelme JSON beside it (see the module docstring)."""
    import skimage.data

    rng = np.random.default_rng([seed, 4])
    faces, non_faces = lfw_patches()
    greys = [
        np.asarray(photo(name).convert("L"), dtype=np.float32) / 255
        for name in ("coffee", "chelsea", "rocket", "moon", "brick")
    ]
    # ten backgrounds without a person in them (an unlabelled face would be a wrong label)
    names = ("chelsea", "coffee", "rocket", "china", "flower", "brick", "grass", "gravel")
    scenes = [photo(name).convert("RGB") for name in names]
    for extra in (skimage.data.immunohistochemistry(), skimage.data.hubble_deep_field()):
        scenes.append(Image.fromarray(extra).convert("RGB"))
    root.mkdir(parents=True, exist_ok=True)
    for index in range(frames):
        size = (320, 240) if rng.random() < 0.5 else (400, 300)
        frame = background_crop(scenes, size, rng)

        for _ in range(int(rng.integers(0, 4))):
            face = faces[int(rng.integers(len(faces)))]
            if rng.random() < 0.5:
                grey = non_faces[int(rng.integers(len(non_faces)))]
            else:
                source = greys[int(rng.integers(len(greys)))]
                y0 = int(rng.integers(0, source.shape[0] - 50))
                x0 = int(rng.integers(0, source.shape[1] - 50))
                grey = source[y0 : y0 + 50, x0 : x0 + 50]
            side = int(min(size) * rng.uniform(0.08, 0.2))
            blend(frame, like_a_face(grey, face), place(size, side, rng), rng)
        stem = f"frame_{index:04d}"
        doc = None
        if rng.random() >= 0.2:
            face_id = int(rng.integers(len(faces)))
            x, y, w, h = place(size, int(min(size) * rng.uniform(0.08, 0.2)), rng)
            blend(frame, faces[face_id], (x, y, w, h), rng)
            stem += f"_face{face_id:03d}"
            doc = {
                "version": "5.2.1",
                "flags": {},
                "shapes": [labelme_shape((x, y, x + w, y + h), "rectangle")],
                "imagePath": f"{stem}.jpg",
                "imageData": None,
                "imageHeight": size[1],
                "imageWidth": size[0],
            }
            doc["shapes"][0]["label"] = "face"
        frame = degrade(frame, rng)
        frame.save(root / f"{stem}.jpg", quality=int(rng.integers(45, 91)))
        if doc is not None:
            (root / f"{stem}.json").write_text(json.dumps(doc, indent=1))
    return root


MAKERS = {
    "textures": make_textures,
    "scenes": make_scenes,
    "coins": make_coins,
    "small-faces": make_small_faces,
}
TASKS = {
    "textures": "classification",
    "scenes": "classification",
    "coins": "detection",
    "small-faces": "detection",
}
