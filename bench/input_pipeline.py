"""Input-pipeline headroom: a training epoch fed from files vs from in-memory tensors."""

from __future__ import annotations

from pathlib import Path

from bench.common import project_params, row, temp_project, timed
from stages import augment, sample, split


def run() -> list[dict]:
    import numpy as np
    import tensorflow as tf

    from stages.shared import classifiers, tfdata
    from stages.shared.manifest import read_manifest

    params = project_params()
    size, batch = params["base"]["image_size"]["classification"], 32
    stages = [(m.main, ["classification"]) for m in (sample, split, augment)]
    with temp_project(params, stages):
        frame = read_manifest(Path("data/augmented/classification/manifest.csv"), "classification")
        frame = frame[frame["split"] == "train"]
        classes = sorted(frame["label"].unique())
        targets = tfdata.one_hot(frame["label"], classes)
        paths = list(frame["path"])
        images = np.stack([tfdata.load_image(p, size) for p in paths])

        def from_files():
            return tfdata.make_dataset(paths, targets, size, batch, shuffle_seed=0, cache="none")

        def from_memory():
            data = tf.data.Dataset.from_tensor_slices((images, targets))
            return data.shuffle(len(paths), seed=0).batch(batch).prefetch(tf.data.AUTOTUNE)

        model = classifiers.build_classifier(
            "simple_cnn", size=size, num_classes=len(classes), dropout=0.3, aug=[]
        )
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
        model.fit(from_memory(), epochs=1, verbose=0, shuffle=False)  # trace the graph once
        # Interleaved, best of two each: the machine's noise hits both sides alike.
        files_s, memory_s = float("inf"), float("inf")
        for _ in range(2):
            files_s = min(
                files_s, timed(lambda: model.fit(from_files(), epochs=1, verbose=0, shuffle=False))
            )
            memory_s = min(
                memory_s,
                timed(lambda: model.fit(from_memory(), epochs=1, verbose=0, shuffle=False)),
            )
        rate = len(paths) / timed(lambda: sum(1 for _ in from_files()))
    ratio = files_s / memory_s
    print(
        f"input: files {files_s:.2f}s, memory {memory_s:.2f}s, ratio {ratio:.2f}; "
        f"pipeline alone {rate:.0f} img/s"
    )
    return [
        row("classifier epoch, files / in-memory", round(ratio, 2), "<= 1.10", ratio <= 1.10),
        row("input pipeline alone, img/s (no model)", round(rate)),
    ]
