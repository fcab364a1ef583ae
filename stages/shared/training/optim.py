"""Optimizers and learning-rate schedules by name: the one list of each (the params schema
reads its choices from here)."""

from __future__ import annotations

import keras

from stages.shared.core.cli import UserError

OPTIMIZERS = {
    "adam": keras.optimizers.Adam,
    "adamw": keras.optimizers.AdamW,
    "sgd": lambda learning_rate: keras.optimizers.SGD(learning_rate, momentum=0.9),
    "rmsprop": keras.optimizers.RMSprop,
}


def constant(rate: float, steps_per_epoch: int, epochs: int, decay: float):
    """The rate itself, left to ReduceLROnPlateau."""
    return rate


def exponential(rate: float, steps_per_epoch: int, epochs: int, decay: float):
    """rate · decay^epoch."""
    return keras.optimizers.schedules.ExponentialDecay(
        rate, decay_steps=steps_per_epoch, decay_rate=decay
    )


def inverse_time(rate: float, steps_per_epoch: int, epochs: int, decay: float):
    """rate / (1 + (1/decay − 1) · epoch): what the face-tracking tutorial's legacy
    `Adam(decay=(1/0.75 − 1)/steps)` did, per step."""
    return keras.optimizers.schedules.InverseTimeDecay(
        rate, decay_steps=steps_per_epoch, decay_rate=1.0 / decay - 1.0
    )


def cosine(rate: float, steps_per_epoch: int, epochs: int, decay: float):
    """Anneals to zero over all epochs."""
    return keras.optimizers.schedules.CosineDecay(
        rate, decay_steps=max(steps_per_epoch * epochs, 1)
    )


SCHEDULES = {"constant": constant, "exponential": exponential,
             "inverse_time": inverse_time, "cosine": cosine}  # fmt: skip


def make_schedule(name: str, rate: float, steps_per_epoch: int, epochs: int, decay: float):
    """A learning rate or LearningRateSchedule by name (Keras 3 ignores the old `decay=`
    argument); `decay` is the share of the rate left after one epoch."""
    if name not in SCHEDULES:
        raise UserError(f"unknown schedule {name!r}; choices: {', '.join(SCHEDULES)}")
    return SCHEDULES[name](rate, steps_per_epoch, epochs, decay)


def make_optimizer(name: str, learning_rate) -> keras.optimizers.Optimizer:
    """Look up an optimizer by name."""
    if name not in OPTIMIZERS:
        raise UserError(f"unknown optimizer {name!r}; choices: {', '.join(OPTIMIZERS)}")
    return OPTIMIZERS[name](learning_rate=learning_rate)
