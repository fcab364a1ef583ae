"""cost.py: parameters as Keras counts them, FLOPs by hand, and the cost in the training
stage's metrics."""

from __future__ import annotations

import logging

import keras

from stages.shared.models.cost import count_flops, model_cost
from stages.shared.models.store import save_model


def conv_dense(size: int = 10) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(4, 3, padding="valid"),  # 8×8×4 outputs of 3·3·3 inputs
            keras.layers.Flatten(),
            keras.layers.Dense(5),  # 256 inputs
        ]
    )


def test_flops_of_one_conv_and_one_dense_by_hand():
    # Conv2D: 8·8·4 outputs × 27 multiply-adds × 2, + one bias add each; Dense: 256 × 5 × 2
    # + 5 bias adds.
    by_hand = 2 * 8 * 8 * 4 * 27 + 8 * 8 * 4 + 2 * 256 * 5 + 5
    assert count_flops(conv_dense(), 10) == by_hand == 16645


def test_cost_counts_what_keras_counts_and_the_file_size(tmp_path):
    model = conv_dense()
    save_model(model, tmp_path / "m.keras", {})
    cost = model_cost(model, tmp_path / "m.keras", 10)
    assert cost["parameters"] == model.count_params() == (27 * 4 + 4) + (256 * 5 + 5)
    assert cost["model_bytes"] == (tmp_path / "m.keras").stat().st_size
    assert cost["flops_per_image"] == 16645


def test_flops_are_of_inference_silent_and_the_log_level_is_restored(capfd, caplog):
    # Dropout is the identity at inference: the count is conv_dense's. (In training mode it
    # adds a random mask and its multiplications.)
    size = 10
    with_dropout = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Conv2D(4, 3, padding="valid"),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(5),
        ]
    )
    capfd.readouterr()
    with caplog.at_level(logging.INFO, logger="tensorflow"):
        assert count_flops(with_dropout, size) == 16645
        assert logging.getLogger("tensorflow").level == logging.INFO  # restored
    assert capfd.readouterr().out == ""  # no profiler table on the stage's output
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.records
