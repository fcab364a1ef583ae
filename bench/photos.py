"""Phone-sized photos: the same 240 photos (4 classes) at 12 MP (4000×3000 JPEG) and at
400×300, through the classification branch; per-image time of split, augment, the first
training epoch and evaluate, and the training stage's peak RSS, 12 MP / 400×300.

The photos are built from scikit-image's natural pictures (one per class: random crops,
flips and brightness, then resized to 4000×3000 with a little sensor noise), so the JPEG
files are the size a phone writes (2–4 MB each).

Split at 12 MP is held to its floor, not to the small photos: entropy decoding reads every
coefficient of the file whatever the output size, so a 12 MP JPEG costs more than a 400×300
one however little of it is kept. The floor is what split cannot avoid per photo: reading the
file, its md5, and Pillow's reduced decode (`draft`) at the split's size, nothing else,
timed in this process; split's per-photo cost is its stage time less its start-up (the same
command with `--help`: every import, no photo), over the photos.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np

from bench.common import project_params, row, run_measured, stage_command, temp_project, toy

CLASSES = ("astronaut", "coffee", "chelsea", "rocket")
PER_CLASS = toy(60, 6)
BIG, SMALL = toy((4000, 3000), (800, 600)), (400, 300)


def make_photos(root: Path) -> None:
    """`root/big/<class>/*.jpg` at 12 MP and `root/small/...` at 400×300, the same photos."""
    import skimage.data
    from PIL import Image, ImageEnhance

    rng = np.random.default_rng(0)
    for name in CLASSES:
        source = Image.fromarray(getattr(skimage.data, name)()).convert("RGB")
        for i in range(PER_CLASS):
            w, h = source.size
            share = rng.uniform(0.55, 0.95)
            cw, ch = int(w * share), int(h * share)
            left, top = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = source.crop((left, top, left + cw, top + ch))
            if rng.random() < 0.5:
                crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.8, 1.2))
            big = np.asarray(crop.resize(BIG, Image.BICUBIC), dtype=np.int16)
            big = np.clip(big + rng.integers(-6, 7, big.shape), 0, 255).astype(np.uint8)
            photo = Image.fromarray(big)
            for kind, size in (("big", BIG), ("small", SMALL)):
                path = root / kind / name / f"{name}_{i:02d}.jpg"
                path.parent.mkdir(parents=True, exist_ok=True)
                shown = photo if size == BIG else photo.resize(size, Image.LANCZOS)
                shown.save(path, quality=90)


def first_epoch_seconds() -> float:
    """The first training epoch of the default classifier, in this process (cwd: project)."""
    import keras

    from stages import train_classifier
    from stages.shared.params.sections import load_params
    from stages.shared.training import loop

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds = time.perf_counter() - self.started

    timer = Timer()
    paths = {
        "manifest": "data/augmented/classification/manifest.csv",
        "model": "models/timed.keras",
        "live_dir": "reports/train/timed",
        "throughput_dir": "reports/throughput/timed",
        "tensorboard": "reports/tensorboard/timed",
        "batch": "models/timed_batch.npz",
        "extra_callbacks": [timer],
    }
    cfg = load_params("train_classifier").model_copy(update={"epochs": 1})
    loop.train(train_classifier.Classifier, cfg, load_params("base"), paths)
    return timer.seconds


TARGET_SPLIT_OVER_FLOOR = 1.3


def floor_seconds(folder: Path) -> float:
    """Seconds per photo of the unavoidable work: read the bytes, md5, reduced decode."""
    import hashlib
    import io

    from PIL import Image

    from stages.shared.data.images import HASH_SIDE

    photos = sorted(folder.rglob("*.jpg"))
    best = float("inf")
    for _ in range(2):  # the second pass reads from the page cache, as split does
        start = time.perf_counter()
        for path in photos:
            data = path.read_bytes()
            hashlib.md5(data).hexdigest()
            with Image.open(io.BytesIO(data)) as img:
                img.draft(img.mode, (HASH_SIDE, HASH_SIDE))
                img.load()
        best = min(best, time.perf_counter() - start)
    return best / len(photos)


def split_over_floor(folder: Path) -> dict:
    """Split's seconds per photo (less its start-up) and the floor's, on one folder."""
    params = project_params()
    params["data"]["classification"] = str(folder)
    params["split"]["group_by"]["classification"] = "none"
    with temp_project(copy.deepcopy(params), []) as root:
        startup = min(run_measured(stage_command("split", "--help"), root)[0] for _ in range(2))
        split_s = min(
            run_measured(stage_command("split", "classification"), root)[0] for _ in range(2)
        )
    photos = len(list(folder.rglob("*.jpg")))
    return {"split": (split_s - startup) / photos, "floor": floor_seconds(folder)}


def split_floor_rows(folder: Path) -> list[dict]:
    found = split_over_floor(folder)
    ratio = found["split"] / found["floor"]
    print(
        f"photos split at 12 MP: {1000 * found['split']:.1f} ms/photo, floor"
        f" {1000 * found['floor']:.1f} ms (read + md5 + reduced decode), {ratio:.2f}×"
    )
    return [
        row(
            f"split per photo at 12 MP / its floor (read, md5, reduced decode;"
            f" {1000 * found['split']:.1f} / {1000 * found['floor']:.1f} ms)",
            round(ratio, 2),
            f"<= {TARGET_SPLIT_OVER_FLOOR}",
            ratio <= TARGET_SPLIT_OVER_FLOOR,
        )
    ]


def measure(folder: Path) -> dict:
    """Per-image seconds of each stage and the training stage's peak RSS, on one folder."""
    import pandas as pd

    params = project_params()
    params["data"]["classification"] = str(folder)
    params["split"]["group_by"]["classification"] = "none"
    params["train_classifier"]["epochs"] = 1
    with temp_project(copy.deepcopy(params), []) as root:
        split_s, _ = run_measured(stage_command("split", "classification"), root)
        augment_s, _ = run_measured(stage_command("augment", "classification"), root)
        frame = pd.read_csv(root / "data/split/classification.csv")
        train_n, test_n = (frame["split"] == "train").sum(), (frame["split"] == "test").sum()
        _, train_rss = run_measured(stage_command("train_classifier"), root)
        evaluate_s, _ = run_measured(stage_command("evaluate", "classifier"), root)
        epoch_s = first_epoch_seconds()
    return {
        "split": split_s / len(frame),
        "augment": augment_s / train_n,
        "first epoch": epoch_s / (2 * train_n),  # originals + one augmented copy each
        "evaluate": evaluate_s / test_n,
        "rss": train_rss,
    }


def run() -> list[dict]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        make_photos(Path(tmp))
        small = measure(Path(tmp) / "small")
        big = measure(Path(tmp) / "big")
        rows = split_floor_rows(Path(tmp) / "big")
    for stage in ("split", "augment", "first epoch", "evaluate"):
        ratio = big[stage] / small[stage]
        print(
            f"photos {stage}: {1000 * small[stage]:.1f} ms/image at 400×300,"
            f" {1000 * big[stage]:.1f} at 12 MP ({ratio:.2f}×)"
        )
        if stage == "split":  # held to its floor above; the ratio to small photos is shown
            rows.append(row(f"{stage} per image, 12 MP / 400×300", round(ratio, 2)))
        else:
            rows.append(
                row(f"{stage} per image, 12 MP / 400×300", round(ratio, 2), "<= 2", ratio <= 2)
            )
        rows.append(row(f"{stage} ms per image at 12 MP", round(1000 * big[stage], 1)))
    rss = big["rss"] / small["rss"]
    rows.append(row("training peak RSS, 12 MP / 400×300", round(rss, 2), "<= 1.2", rss <= 1.2))
    return rows


if __name__ == "__main__":  # the split-against-its-floor part alone
    import sys
    import tempfile

    from bench.common import table

    if sys.argv[1:2] == ["--split-floor"]:
        import time

        from bench.common import ROOT, machine

        with tempfile.TemporaryDirectory() as tmp:
            make_photos(Path(tmp))
            found = table(split_floor_rows(Path(tmp) / "big"))
        print(found)
        (ROOT / "bench/SPLIT_FLOOR.md").write_text(
            "# Split of 12 MP photos against its floor\n\n"
            f"{time.strftime('%Y-%m-%d')}, {machine()}; written by `python -m bench.photos"
            " --split-floor` (`make bench` measures it with the other photo figures).\n\n"
            + found
            + "\n"
        )
