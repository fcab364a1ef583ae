"""Input-pipeline headroom: a training epoch fed from augment's shards through our tf.data
reader (cached in memory, and streamed) vs the same epoch fed from in-memory tensors, for the
classifier and the detector; and the reader's own rate against the pipeline it replaced
(one image file per record, decoded by PIL inside `tf.numpy_function`)."""

from __future__ import annotations

import statistics
from pathlib import Path

from bench.common import EpochTimer, project_params, row, temp_project, timed, toy
from stages import augment, sample, split

TARGET_EPOCH = 1.10  # streamed or cached epoch / in-memory epoch
TARGET_RATE = 3.0  # shard reader img/s / file reader img/s


def classifier_case(params: dict):
    """(model, train rows, targets, batch) for the default classifier."""
    from stages.shared.data import shards, tfdata
    from stages.shared.data.manifest import read_manifest
    from stages.shared.models import classifiers

    frame = read_manifest(Path("data/augmented/classification/manifest.csv"), "classification")
    frame = frame[frame["split"] == "train"]
    classes = sorted(frame["label"].unique())
    size = shards.read_spec("data/augmented/classification")["image_size"]
    model = classifiers.build_classifier(
        "simple_cnn", size=size, num_classes=len(classes), dropout=0.3, aug=[]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    targets = tfdata.one_hot(frame["label"], classes)
    return "classification", model, frame, targets, params["train_classifier"]["batch_size"]


def detector_case(params: dict):
    """(model, train rows, targets, batch) for the default detector, built and compiled as
    its stage builds it."""
    from stages.shared.core.config import parse_section
    from stages.shared.data import shards
    from stages.shared.data.manifest import read_manifest
    from stages.train_detector import Detector

    frame = read_manifest(Path("data/augmented/detection/manifest.csv"), "detection")
    frame = frame[frame["split"] == "train"]
    task = Detector(parse_section(Detector.params, params["train_detector"]), frame)
    model = task.build(shards.read_spec("data/augmented/detection")["image_size"])
    task.compile(model, task.cfg.learning_rate, jit_compile=False)
    return "detection", model, frame, task.targets(frame), task.cfg.batch_size


def as_files(task: str, frame) -> list[str]:
    """The training records as image files, as the pipeline kept them before shards: a kept
    image is the user's file, a copy a file of its own (PNG for classification, JPEG q95 for
    detection, the former defaults)."""
    import numpy as np
    from PIL import Image

    from stages.shared.core.config import dataset_root
    from stages.shared.data.tfdata import read_pixels

    pixels = read_pixels(f"data/augmented/{task}", "train")
    root = dataset_root(task)  # where the manifest's paths start
    folder = Path(f"files/{task}")
    folder.mkdir(parents=True)
    paths = []
    for i, (path, source) in enumerate(zip(frame["path"], frame["source"], strict=True)):
        if path == source:
            paths.append((root / path).as_posix())
            continue
        fmt, options = ("png", {}) if task == "classification" else ("jpg", {"quality": 95})
        paths.append(str(folder / f"{i:06d}.{fmt}"))
        Image.fromarray(pixels[i].astype(np.uint8)).save(paths[-1], **options)
    return paths


def file_reader(paths: list[str], targets, size: int, batch: int, epochs: int):
    """The reader shards replaced: paths shuffled, each decoded by PIL in a numpy_function
    inside a parallel map (the GIL lets one decode run at a time)."""
    import tensorflow as tf

    from stages.shared.data.tfdata import load_image

    def load(path: tf.Tensor) -> tf.Tensor:
        image = tf.numpy_function(lambda p: load_image(p.decode(), size), [path], tf.float32)
        image.set_shape((size, size, 3))
        return image

    data = tf.data.Dataset.from_tensor_slices((paths, targets)).shuffle(len(paths), seed=0)
    data = data.map(lambda p, t: (load(p), t), num_parallel_calls=tf.data.AUTOTUNE)
    return data.batch(batch).repeat(epochs).prefetch(tf.data.AUTOTUNE)


EPOCHS = toy(5, 2)  # per fit: the first is timed apart (it traces, and fills the cache)
ROUNDS = toy(3, 1)  # fits of each reader, interleaved


def headroom(task: str, model, frame, targets, batch: int) -> dict[str, float]:
    """Seconds of a training epoch fed four ways (the best epoch after the first of each
    fit, over interleaved rounds) and the readers' own rates."""
    import tensorflow as tf

    from stages.shared.data import tfdata

    folder = f"data/augmented/{task}"
    images = tfdata.read_pixels(folder, "train")
    size, steps = images.shape[1], tfdata.steps_per_epoch(len(images), batch)
    paths = as_files(task, frame)
    readers = {
        "memory": lambda: (
            tf.data.Dataset.from_tensor_slices((images, targets))
            .shuffle(len(images), seed=0)
            .batch(batch)
            .repeat(EPOCHS)
            .prefetch(tf.data.AUTOTUNE)
        ),
        # the training stages' stream: every epoch in its own order, back to back
        "cached": lambda: tfdata.make_dataset(
            folder, "train", targets, batch, 0, "memory", range(EPOCHS)
        ),
        "streamed": lambda: tfdata.make_dataset(
            folder, "train", targets, batch, 0, "none", range(EPOCHS)
        ),
        "files": lambda: file_reader(paths, targets, size, batch, EPOCHS),
    }

    def epochs(data) -> list[float]:
        # Epochs as training runs them, timed by Keras' callbacks: the time `fit` itself
        # sometimes spends setting up or tearing down (a second, at random, whatever the data)
        # is no part of an epoch.
        timer = EpochTimer()
        model.fit(data, epochs=EPOCHS, steps_per_epoch=steps, verbose=0, callbacks=[timer])
        return timer.seconds[1:]

    epochs(readers["memory"]())  # trace the graph once
    seconds: dict[str, list[float]] = {name: [] for name in readers}
    for _ in range(ROUNDS):  # interleaved: noise hits every reader alike
        for name, make in readers.items():
            seconds[name] += epochs(make())
    result = {name: min(values) for name, values in seconds.items()}
    medians = {name: round(statistics.median(values), 2) for name, values in seconds.items()}
    print(f"input {task}: median epoch seconds {medians}")

    def rate(make) -> float:
        return len(images) / min(timed(lambda: sum(1 for _ in make())) for _ in range(3))

    result["rate"] = rate(lambda: tfdata.make_dataset(folder, "train", targets, batch, 0, "none"))
    result["file_rate"] = rate(lambda: file_reader(paths, targets, size, batch, 1))
    return result


def run() -> list[dict]:
    params = project_params()
    stages = [
        (m.main, [task])
        for task in ("classification", "detection")
        for m in (sample, split, augment)
    ]
    rows = []
    with temp_project(params, stages):
        for name, case in (("classifier", classifier_case), ("detector", detector_case)):
            t = headroom(*case(params))
            cached, streamed = t["cached"] / t["memory"], t["streamed"] / t["memory"]
            faster = t["rate"] / t["file_rate"]
            before = t["files"] / t["memory"]
            print(
                f"input {name}: memory {t['memory']:.2f}s, shards cached {t['cached']:.2f}s,"
                f" shards streamed {t['streamed']:.2f}s, files through PIL {t['files']:.2f}s;"
                f" reader alone {t['rate']:.0f} img/s, files through PIL {t['file_rate']:.0f}"
                " img/s"
            )
            rows += [
                row(
                    f"{name} epoch, shards (cache: auto) / in-memory",
                    round(cached, 2),
                    f"<= {TARGET_EPOCH}",
                    cached <= TARGET_EPOCH,
                ),
                row(
                    f"{name} epoch, shards streamed (cache: none) / in-memory",
                    round(streamed, 2),
                    f"<= {TARGET_EPOCH}",
                    streamed <= TARGET_EPOCH,
                ),
                row(
                    f"{name} epoch, files through PIL (the former reader) / in-memory",
                    round(before, 2),
                ),
                row(
                    f"{name} input pipeline alone: shards / files through PIL"
                    f" ({t['rate']:.0f} vs {t['file_rate']:.0f} img/s)",
                    round(faster, 1),
                    f">= {TARGET_RATE}",
                    faster >= TARGET_RATE,
                ),
            ]
    return rows
