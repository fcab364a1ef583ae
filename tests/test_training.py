"""training.py: a resumed run decides as an uninterrupted one, work dirs follow params, data
and code, and a saved model's bytes depend on its weights only."""

from __future__ import annotations

import time

import keras
import numpy as np
import pytest

from stages.shared import training

# Val loss per epoch: best at epoch 1, then worse. Early stopping (patience 2) stops at epoch
# 3; ReduceLROnPlateau (patience 1) halves the rate at epochs 2 and 3.
VAL_LOSS = [1.0, 0.8, 0.85, 0.9, 0.7, 0.75]


def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dropout(0.5), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    return model


def callbacks_for(model, phase_dir, first):
    """The tracked callbacks and RunState, as make_callbacks wires them (no backup, no logs)."""
    mode = "min"
    tracked = {
        "checkpoint": keras.callbacks.ModelCheckpoint(
            str(phase_dir / "best.keras"), monitor="val_loss", mode=mode, save_best_only=True
        ),
        "early_stopping": keras.callbacks.EarlyStopping(monitor="val_loss", patience=2),
        "reduce_lr": keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=1, factor=0.5),
    }
    state = training.RunState(phase_dir, tracked, first, {})
    listed = [*tracked.values(), state]
    for callback in listed:
        callback.set_model(model)
    return listed


def play(model, callbacks, epochs: range) -> list[tuple[int, float, bool]]:
    """Feed the val losses of `epochs`; (epoch, learning rate, stop) after each."""
    for callback in callbacks:
        callback.on_train_begin()
    seen = []
    for epoch in epochs:
        model(np.ones((1, 2), "float32"), training=True)  # draws from the dropout RNG
        for callback in callbacks:
            callback.on_epoch_end(epoch, {"val_loss": VAL_LOSS[epoch]})
        seen.append((epoch, float(model.optimizer.learning_rate), bool(model.stop_training)))
        if model.stop_training:
            break
    return seen


def test_a_resumed_run_stops_lowers_the_rate_and_draws_as_an_uninterrupted_one(tmp_path):
    straight = tiny_model()
    (tmp_path / "a").mkdir()
    expected = play(straight, callbacks_for(straight, tmp_path / "a", 0), range(6))
    assert expected[-1] == (3, pytest.approx(0.025), True)
    rng_after = keras.ops.convert_to_numpy(training.seed_states(straight)[0])

    model = tiny_model()
    (tmp_path / "b").mkdir()
    first = play(model, callbacks_for(model, tmp_path / "b", 0), range(3))
    # A new process: fresh callbacks and a fresh RNG state; the weights and the optimizer
    # (its learning rate) come back from the backup, here the same model object.
    training.seed_states(model)[0].assign(training.seed_states(tiny_model())[0])
    rest = play(model, callbacks_for(model, tmp_path / "b", 3), range(3, 6))
    assert first + rest == expected
    assert np.array_equal(keras.ops.convert_to_numpy(training.seed_states(model)[0]), rng_after)
    run = training.last_snapshot(tmp_path / "b")
    assert run["epochs_run"] == 4 and run["best_epoch"] == 2


def test_the_work_dir_follows_params_data_and_code_and_drops_stale_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one = training.work_dir("stage", {"lr": 0.1}, "md5a")
    one.mkdir(parents=True)
    assert training.work_dir("stage", {"lr": 0.1}, "md5a") == one and one.exists()
    other = training.work_dir("stage", {"lr": 0.2}, "md5a")
    assert other != one and not one.exists()  # an abandoned run's state is deleted
    assert training.work_dir("stage", {"lr": 0.2}, "md5b") != other
    monkeypatch.setattr(training, "code_hash", lambda: "edited")
    assert training.work_dir("stage", {"lr": 0.2}, "md5a") != other


def test_the_same_weights_save_to_the_same_bytes(tmp_path):
    model = tiny_model()
    training.save_model(model, tmp_path / "one.keras", {"a": 1})
    time.sleep(1.1)  # Keras stamps the save time to the second
    training.save_model(model, tmp_path / "two.keras", {"a": 1})
    assert (tmp_path / "one.keras").read_bytes() == (tmp_path / "two.keras").read_bytes()
    loaded = keras.models.load_model(tmp_path / "two.keras")
    x = np.ones((3, 2), "float32")
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    model.layers[-1].kernel.assign(model.layers[-1].kernel + 1.0)
    training.save_model(model, tmp_path / "three.keras", {"a": 1})
    assert (tmp_path / "three.keras").read_bytes() != (tmp_path / "one.keras").read_bytes()
