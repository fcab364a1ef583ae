"""The bar to beat: a careful hand-written Keras script, as the TensorFlow "Image
classification" tutorial writes it, on the same train / val / test images as the pipeline.

`keras.utils.image_dataset_from_directory` over class folders (links to the split's train and
val images), a fixed 64 px input, `cache` + `prefetch`, random flip / rotation / zoom layers in
the model, three Conv-MaxPool blocks, dropout 0.2, a 128-unit dense layer, Adam 1e-3, the same
number of epochs as `train_classifier.epochs`, and the best val-accuracy epoch kept
(EarlyStopping with `restore_best_weights`). Scored on the split's test images.

    python -m bench.recipe_baseline <project folder>   (after `split@classification`)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import yaml

SIZE = 64


def link_folder(rows, root: Path, project: Path) -> Path:
    """Class folders of links to the images, as the tutorials expect their data."""
    from stages.shared.core.config import dataset_root

    data = project / dataset_root("classification", project / "params.yaml")
    for i, item in enumerate(rows.itertuples(index=False)):
        target = root / str(item.label) / f"{i:05d}{Path(item.path).suffix.lower()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((data / item.path).resolve())
    return root


def tutorial_model(num_classes: int):
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            layers.RandomFlip("horizontal"),
            layers.RandomRotation(0.1),
            layers.RandomZoom(0.1),
            layers.Rescaling(1.0 / 255),
            layers.Conv2D(16, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(32, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Conv2D(64, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(),
            layers.Dropout(0.2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(num_classes),
        ]
    )


def run(project: Path) -> dict:
    """Train and score the tutorial model in `project` (its split manifest and params)."""
    import keras
    import pandas as pd
    import tensorflow as tf

    params = yaml.safe_load((project / "params.yaml").read_text())
    epochs, seed = params["train_classifier"]["epochs"], params["base"]["seed"]
    frame = pd.read_csv(project / "data/split/classification.csv")
    work = project / "baseline"
    folders = {
        name: link_folder(frame[frame["split"] == name], work / name, project)
        for name in ("train", "val", "test")
    }
    classes = sorted(str(c) for c in frame["label"].unique())

    def data(name: str, shuffle: bool):
        return keras.utils.image_dataset_from_directory(
            folders[name],
            image_size=(SIZE, SIZE),
            batch_size=32,
            class_names=classes,
            shuffle=shuffle,
            seed=seed,
            verbose=False,
        )

    keras.utils.set_random_seed(seed)
    train = data("train", True).cache().prefetch(tf.data.AUTOTUNE)
    val = data("val", False).cache().prefetch(tf.data.AUTOTUNE)
    test = data("test", False)
    model = tutorial_model(len(classes))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    keep_best = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", patience=epochs, restore_best_weights=True
    )
    started = time.perf_counter()
    model.fit(train, validation_data=val, epochs=epochs, callbacks=[keep_best], verbose=0)
    seconds = time.perf_counter() - started
    accuracy = model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    return {"accuracy": round(float(accuracy), 4), "seconds": round(seconds, 1), "epochs": epochs}


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]))))
