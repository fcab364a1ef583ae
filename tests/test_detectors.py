"""detectors.py: the FaceTracker learns, decays its rate, and round-trips through .keras."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from stages.shared.core.cli import UserError
from stages.shared.models.detectors import CenterBox, FaceTracker, SpatialSoftmax
from stages.shared.training.optim import make_optimizer, make_schedule


def batch(size=32, n=8):
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (n, size, size, 3)).astype("float32")
    present = np.array([[1], [0]] * (n // 2), "float32")
    boxes = np.tile([[0.1, 0.2, 0.5, 0.6]], (n, 1)).astype("float32") * present
    return images, (present, boxes)


def tiny_tracker(pooling="flatten", box_head="dense") -> FaceTracker:
    keras.utils.set_random_seed(0)
    model = FaceTracker(
        "plain_cnn", 32, head_width=16, pooling=pooling, dropout=0.0, box_head=box_head
    )
    model(np.zeros((1, 32, 32, 3), "float32"))
    return model


def test_one_training_step_lowers_the_loss_with_the_compiled_optimizer():
    model = tiny_tracker()
    optimizer = keras.optimizers.Adam(1e-3)
    model.compile(optimizer=optimizer, localization="corners", loss_weights=(1.0, 0.5))
    data = batch()
    before = float(model._compute_losses(data, training=True)[0])
    model.train_step(data)
    after = float(model._compute_losses(data, training=True)[0])
    assert after < before
    assert int(optimizer.iterations) == 1  # the optimizer given to compile did the step


def test_the_learning_rate_decays_across_steps():
    schedule = make_schedule("inverse_time", 1e-3, steps_per_epoch=2, epochs=3, decay=0.75)
    assert float(schedule(2)) == pytest.approx(0.75e-3) and float(schedule(4)) == pytest.approx(
        0.6e-3
    )
    model = tiny_tracker()
    model.compile(optimizer=make_optimizer("adam", schedule))
    images, targets = batch()
    data = tf.data.Dataset.from_tensor_slices((images, targets)).batch(4)  # 2 steps an epoch
    start = float(model.optimizer.learning_rate)
    model.fit(data, epochs=2, verbose=0, shuffle=False)
    assert start == pytest.approx(1e-3)
    assert float(model.optimizer.learning_rate) == pytest.approx(0.6e-3)


@pytest.mark.parametrize(
    ("pooling", "box_head"),
    [("flatten", "dense"), ("softargmax", "dense"), ("max", "dense"), ("softargmax", "center")],
)
def test_save_load_round_trip_gives_the_same_predictions(tmp_path, pooling, box_head):
    model = tiny_tracker(pooling, box_head)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), localization="giou")
    images, targets = batch()
    model.fit(images, targets, epochs=1, batch_size=4, verbose=0)
    model.save(tmp_path / "d.keras")
    loaded = keras.models.load_model(tmp_path / "d.keras")
    for a, b in zip(
        model.predict(images, verbose=0), loaded.predict(images, verbose=0), strict=True
    ):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert loaded.localization == "giou" and loaded.get_config()["head_width"] == 16
    assert loaded.get_config()["box_head"] == box_head


def test_vgg16_backbone_builds_without_weights():
    model = FaceTracker("vgg16", 32, head_width=8, pooling="max")
    presence, box = model(np.zeros((2, 32, 32, 3), "float32"))
    assert presence.shape == (2, 1) and box.shape == (2, 4)
    assert model.backbone.name == "backbone" and model.backbone.get_layer("vgg16")


def test_unknown_backbone_and_pooling_are_clear_errors():
    with pytest.raises(
        UserError, match=r"unknown backbone 'resnet50'; choices: plain_cnn, mobilenet_v2"
    ):
        FaceTracker("resnet50", 32)
    with pytest.raises(UserError, match=r"unknown pooling 'sum'; choices: max, avg, flatten"):
        FaceTracker("plain_cnn", 32, pooling="sum")
    with pytest.raises(UserError, match=r"unknown box_head 'grid'; choices: dense, center"):
        FaceTracker("plain_cnn", 32, box_head="grid")


def test_spatial_softmax_finds_the_hot_spot():
    features = np.zeros((1, 4, 5, 2), "float32")
    features[0, 1, 3, 0] = 50.0  # channel 0: hot at row 1 of 0..3, column 3 of 0..4
    out = np.asarray(SpatialSoftmax()(features))
    assert out.shape == (1, 6)  # mean x, mean y, max; per channel
    mean_x, mean_y, peak = out[0, ::2]
    assert mean_x == pytest.approx(3 / 4, abs=1e-3) and mean_y == pytest.approx(1 / 3, abs=1e-3)
    assert peak == 50.0
    assert out[0, 1] == pytest.approx(0.5) and out[0, 3] == pytest.approx(0.5)  # flat channel


def center_cells(height=4, width=5, row=1, col=3, offset=(0.0, 0.0), size=(0.4, 0.25)):
    """A (1, height, width, 5) map whose centre logits peak at one cell, every cell saying
    the same offset (in cells, -1..1) and size (shares of the image)."""
    cells = np.zeros((1, height, width, 5), "float32")
    cells[0, row, col, 0] = 60.0
    cells[..., 1:3] = np.arctanh(offset)
    cells[..., 3:5] = np.log(np.array(size) / (1 - np.array(size)))
    return cells


def test_the_center_head_answers_the_hot_cells_box_moved_by_its_offset():
    # The hot cell (row 1, column 3) of a 4×5 map has its centre at x = 3.5/5, y = 1.5/4.
    box = np.asarray(CenterBox()(center_cells(offset=(0.5, -0.5))))[0]
    cx, cy = (3.5 + 0.5) / 5, (1.5 - 0.5) / 4
    np.testing.assert_allclose(box, [cx - 0.2, cy - 0.125, cx + 0.2, cy + 0.125], atol=1e-5)


def test_the_center_head_moves_its_box_with_the_object_and_keeps_it_in_the_image():
    # The same cells one column to the right: the same box, one cell (1/5) to the right.
    here = np.asarray(CenterBox()(center_cells(col=1)))[0]
    there = np.asarray(CenterBox()(center_cells(col=2)))[0]
    np.testing.assert_allclose(there - here, [0.2, 0, 0.2, 0], atol=1e-5)
    # A box past the edge is clipped to it; two equally hot cells: the mean of their boxes.
    cells = center_cells(col=0, size=(0.6, 0.25))
    left = np.asarray(CenterBox()(cells))[0]
    assert left[0] == 0.0 and left[2] == pytest.approx(0.1 + 0.3)
    cells[0, 1, 4, 0] = 60.0  # a second hot cell, as hot, in the last column
    both = np.asarray(CenterBox()(cells))[0]  # x: (-0.2, 0.4) and (0.6, 1.2)
    np.testing.assert_allclose(both, [0.2, 0.25, 0.8, 0.5], atol=1e-5)


def test_evaluation_scores_are_the_weighted_losses_and_metrics_of_its_predictions(tmp_path):
    from stages.shared.evaluation.metrics import box_iou
    from stages.shared.models.losses import localization_loss

    model = tiny_tracker()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), localization="giou",
                  loss_weights=(2.0, 0.25))  # fmt: skip
    # The box head answers (0.2, 0.2, 0.7, 0.7) whatever the image: boxes that overlap.
    out = model.box_head.layers[-1]
    corners = np.array([0.2, 0.2, 0.7, 0.7])
    out.set_weights([np.zeros_like(out.kernel), np.log(corners / (1 - corners))])
    images, (present, _) = batch()
    rng = np.random.default_rng(4)
    xy = rng.uniform(0, 0.5, (8, 2))
    boxes = np.concatenate([xy, xy + rng.uniform(0.1, 0.4, (8, 2))], axis=1) * present
    boxes = boxes.astype("float32")
    found = model.evaluate(images, (present, boxes), batch_size=8, verbose=0, return_dict=True)
    pred_present, pred_box = (np.asarray(p, "float64") for p in model.predict(images, verbose=0))
    bce = -np.mean(present * np.log(pred_present) + (1 - present) * np.log(1 - pred_present))
    box_loss = float(localization_loss("giou")(boxes, pred_box.astype("float32"), present))
    ious = box_iou(boxes.astype("float64"), pred_box)[present[:, 0] == 1]
    expected = {
        "class_loss": bce,
        "box_loss": box_loss,
        "loss": 2.0 * box_loss + 0.25 * bce,
        "mean_iou": ious.mean(),
        "presence_accuracy": np.mean((pred_present >= 0.5) == present),
    }
    assert found == pytest.approx(expected, abs=2e-4)
    assert found["mean_iou"] > 0.1  # objects only: the negatives' empty boxes are not counted
    names = ["loss", "class_loss", "box_loss", "mean_iou", "presence_accuracy"]
    assert [m.name for m in model.metrics] == names
    logits = keras.ops.convert_to_numpy(model.presence_logits(images))
    assert np.allclose(1 / (1 + np.exp(-logits)), pred_present, atol=1e-5)


def test_the_compile_settings_come_back_with_the_saved_model(tmp_path):
    model = tiny_tracker()
    model.compile(optimizer=keras.optimizers.SGD(0.03), localization="giou",
                  loss_weights=(3, 0.5))  # fmt: skip
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")
    assert (loaded.localization, loaded.loss_weights) == ("giou", (3.0, 0.5))
    assert type(loaded.optimizer).__name__ == "SGD"
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.03)
    assert loaded.get_config()["head_width"] == 16 and loaded.get_config()["pooling"] == "flatten"
    bare = tiny_tracker()
    assert bare.get_compile_config() is None
    bare.save(tmp_path / "bare.keras")
    assert keras.models.load_model(tmp_path / "bare.keras").compiled is False


def test_heads_have_the_params_width_dropout_and_outputs():
    model = FaceTracker("plain_cnn", 32, head_width=12, pooling="avg", dropout=0.375)
    presence, box = model(np.zeros((2, 32, 32, 3), "float32"))
    assert presence.shape == (2, 1) and box.shape == (2, 4)
    for head, units, activation in ((model.presence_head, 1, "linear"),
                                    (model.box_head, 4, "sigmoid")):  # fmt: skip
        pool, hidden, drop, out = head.layers
        assert type(pool).__name__ == "GlobalAveragePooling2D"
        assert (hidden.units, hidden.activation.__name__) == (12, "relu")
        assert drop.rate == 0.375
        assert (out.units, out.activation.__name__, out.dtype_policy.name) == (
            units,
            activation,
            "float32",
        )


def test_a_training_step_runs_the_model_in_training_mode():
    """BatchNorm normalises by the batch's own statistics and updates its moving ones: the
    step's loss is the training-mode loss, not the inference one."""
    keras.utils.set_random_seed(0)
    model = FaceTracker("plain_cnn", 32, head_width=16, dropout=0.0)
    model(np.zeros((1, 32, 32, 3), "float32"))
    model.compile(optimizer=keras.optimizers.SGD(0.0), localization="corners")
    data = batch()
    norm = next(v for v in model.variables if v.path.endswith("moving_mean"))
    before = keras.ops.convert_to_numpy(norm).copy()
    logs = model.train_step(data)
    assert not np.allclose(keras.ops.convert_to_numpy(norm), before)  # the moving mean moved
    # a rate of 0 leaves the weights as they were: the same loss again, in each mode
    trained = float(model._compute_losses(data, training=True)[0])
    inference = float(model._compute_losses(data, training=False)[0])
    assert float(logs["loss"]) == pytest.approx(trained, rel=1e-5)
    assert abs(trained - inference) > 1e-3
