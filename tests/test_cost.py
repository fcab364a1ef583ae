"""cost.py: parameters as Keras counts them, FLOPs by hand, and the cost in the training
stage's metrics."""

from __future__ import annotations

import keras

from stages.shared.cost import count_flops, model_cost
from stages.shared.training import save_model


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
