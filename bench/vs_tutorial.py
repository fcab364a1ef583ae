"""Our input pipeline vs the Keras tutorials' way, same model, same images, same epochs.

Ours: `tfdata.make_dataset` over the shards `augment` writes of the split, here with no
augmented copies (decoded images cached in RAM, seeded shuffle, prefetch); augmentation
happens offline, once, in the `augment` stage. The tutorials' ("Image classification from
scratch" on keras.io): `image_dataset_from_directory` over class folders, prefetch, and
random augmentation layers inside the model, recomputed every epoch. Both train the default
`simple_cnn` on the train split of the sample and are scored on its test split.
"""

from __future__ import annotations

from pathlib import Path

from bench.common import EpochTimer, project_params, row, temp_project, toy
from stages import augment, sample, split

EPOCHS = toy(6, 2)


def tutorial_folder(rows, root: Path) -> Path:
    """Class folders of links to the train images, as the tutorials expect their data."""
    from stages.shared.core.config import dataset_root

    data = dataset_root("classification")  # where the manifest's paths start
    for i, item in enumerate(rows.itertuples(index=False)):
        target = root / item.label / f"{i:05d}{Path(item.path).suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to((data / item.path).resolve())
    return root


def train_and_score(model, train, test, epochs: int, steps=None) -> tuple[float, float]:
    """(seconds of the fastest epoch after the first, test accuracy)."""
    timer = EpochTimer()
    model.fit(train, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[timer])
    accuracy = model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
    # The first epoch traces the graph (and fills our cache); the fastest of the others is
    # the least disturbed by whatever else the machine does.
    return min(timer.seconds[1:]), float(accuracy)


def run() -> list[dict]:
    import keras

    from stages.shared.data import tfdata
    from stages.shared.data.manifest import read_manifest
    from stages.shared.models import classifiers

    params = project_params()
    params["augment"]["classification"]["copies"] = 0  # the split's images, as they are
    batch, seed = 32, 0
    stages = [(m.main, ["classification"]) for m in (sample, split, augment)]
    with temp_project(params, stages):
        folder = Path("data/augmented/classification")
        frame = read_manifest(folder / "manifest.csv", "classification")
        size = tfdata.shards.read_spec(folder)["image_size"]
        classes = sorted(frame["label"].unique())
        train_rows, test_rows = frame[frame["split"] == "train"], frame[frame["split"] == "test"]

        def dataset(rows, shuffle):
            labels = tfdata.one_hot(rows["label"], classes)
            epochs = range(EPOCHS)  # the training stream: every epoch in its own order
            split_name = rows["split"].iloc[0]
            return tfdata.make_dataset(folder, split_name, labels, batch, shuffle, epochs=epochs)

        def model(aug):
            keras.utils.set_random_seed(seed)
            built = classifiers.build_classifier(
                "simple_cnn", size=size, num_classes=len(classes), dropout=0.3, aug=aug
            )
            built.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
            return built

        test = dataset(test_rows, None)
        steps = tfdata.steps_per_epoch(len(train_rows), batch)
        ours = dataset(train_rows, seed)
        ours_s, ours_acc = train_and_score(model([]), ours, test, EPOCHS, steps)
        folder = tutorial_folder(train_rows, Path("tutorial"))
        tutorial_data = keras.utils.image_dataset_from_directory(
            folder, image_size=(size, size), batch_size=batch, label_mode="categorical", seed=seed
        ).prefetch(2)
        aug = [keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.1)]
        tut_s, tut_acc = train_and_score(model(aug), tutorial_data, test, EPOCHS)
    ratio = ours_s / tut_s
    print(
        f"vs tutorial: ours {ours_s:.2f}s/epoch (test acc {ours_acc:.3f}), tutorial {tut_s:.2f}s"
        f"/epoch (test acc {tut_acc:.3f}), ratio {ratio:.2f}"
    )
    return [
        row("epoch time, ours / tutorial's pipeline", round(ratio, 2), "<= 1.0", ratio <= 1.0),
        row(f"test accuracy after {EPOCHS} epochs, ours", round(ours_acc, 4)),
        row(f"test accuracy after {EPOCHS} epochs, tutorial's", round(tut_acc, 4)),
    ]
