"""Input-pipeline headroom: a training epoch fed from files through our tf.data builder vs the
same epoch fed from in-memory tensors, for the classifier and the detector."""

from __future__ import annotations

from pathlib import Path

from bench.common import project_params, row, temp_project, timed
from stages import augment, sample, split


def classifier_case(params: dict):
    """(model, paths, targets, size, batch) for the default classifier."""
    from stages.shared import classifiers, tfdata
    from stages.shared.manifest import read_manifest

    frame = read_manifest(Path("data/augmented/classification/manifest.csv"), "classification")
    frame = frame[frame["split"] == "train"]
    classes = sorted(frame["label"].unique())
    size = params["base"]["image_size"]["classification"]
    model = classifiers.build_classifier(
        "simple_cnn", size=size, num_classes=len(classes), dropout=0.3, aug=[]
    )
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    targets = tfdata.one_hot(frame["label"], classes)
    return model, list(frame["path"]), targets, size, params["train_classifier"]["batch_size"]


def detector_case(params: dict):
    """(model, paths, targets, size, batch) for the default detector."""
    import keras

    from stages.shared.manifest import read_manifest
    from stages.shared.params import parse_section
    from stages.train_detector import build_model, detection_targets

    frame = read_manifest(Path("data/augmented/detection/manifest.csv"), "detection")
    frame = frame[frame["split"] == "train"]
    cfg = parse_section("train_detector", params["train_detector"])
    size = params["base"]["image_size"]["detection"]
    model = build_model(cfg, size)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), localization=cfg.localization_loss)
    return model, list(frame["path"]), detection_targets(frame), size, cfg.batch_size


def headroom(model, paths, targets, size: int, batch: int) -> dict[str, float]:
    """Epoch seconds fed three ways (best of four, interleaved) and the pipeline's own rate."""
    import numpy as np
    import tensorflow as tf

    from stages.shared import tfdata

    images = np.stack([tfdata.load_image(p, size) for p in paths])

    def files(cache: str):
        return lambda: tfdata.make_dataset(paths, targets, size, batch, shuffle_seed=0, cache=cache)

    def memory():
        data = tf.data.Dataset.from_tensor_slices((images, targets))
        return data.shuffle(len(paths), seed=0).batch(batch).prefetch(tf.data.AUTOTUNE)

    def epoch(data):
        return timed(lambda: model.fit(data, epochs=1, verbose=0, shuffle=False))

    epoch(memory())  # trace the graph once
    # The stages' default (`cache: auto`) decodes in epoch 1, then serves from RAM.
    cached = files("memory")()
    epoch(cached)
    seconds = {"memory": [], "cached": [], "streamed": []}
    for _ in range(4):  # interleaved, best of four: noise hits every variant alike
        seconds["memory"].append(epoch(memory()))
        seconds["cached"].append(epoch(cached))
        seconds["streamed"].append(epoch(files("none")()))
    result = {name: min(values) for name, values in seconds.items()}
    result["rate"] = len(paths) / timed(lambda: sum(1 for _ in files("none")()))
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
            print(
                f"input {name}: memory {t['memory']:.2f}s, files cached {t['cached']:.2f}s,"
                f" files streamed {t['streamed']:.2f}s; pipeline alone {t['rate']:.0f} img/s"
            )
            rows += [
                row(
                    f"{name} epoch, files (cache: auto) / in-memory",
                    round(cached, 2),
                    "<= 1.10",
                    cached <= 1.10,
                ),
                row(f"{name} epoch, files streamed (cache: none) / in-memory", round(streamed, 2)),
                row(f"{name} input pipeline alone, img/s (no model)", round(t["rate"])),
            ]
    return rows
