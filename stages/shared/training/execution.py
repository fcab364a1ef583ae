"""Steps per call of the compiled training step (`base.steps_per_execution`).

Keras runs N training steps per call of its compiled function when its `steps_per_execution`
is N: the same batches in the same order and the same updates, with one dispatch from Python,
and one round of the per-batch callbacks, per N steps. The trained weights do not depend on
N (a test holds it byte for byte), so neither does the saved model: N is set on the model after
`compile`, which leaves the compile config a `.keras` file carries at 1.

A call always runs all its N steps, also the last call of an epoch: Keras 3 makes ceil(S / N)
calls of an S-step epoch, so an N that does not divide S would train more batches an epoch than
S, out of the next epoch's stream. N is therefore a divisor of the epoch's steps: a number from
params is lowered to one, and `auto` rounds up to one.

`auto` picks the fewest steps per call whose fixed cost stays under FIXED_SHARE of the call,
from a short probe of the model on its first batch: calls of 1 and of PROBE_STEPS steps, timed
between the ends of consecutive calls inside `fit` (so Keras' own loop counts as fixed cost),
give the fixed cost per call and the cost per step. The probe trains, so every variable it
changes (weights, optimizer slots, random states) is put back before the run starts. An
epoch of at most PROBE_STEPS steps is one call: there is nothing to measure. On several
replicas a call runs one step (`choose_steps` says why).
"""

from __future__ import annotations

import logging
import math
import statistics
import time

import keras
import numpy as np

FIXED_SHARE = 0.10  # the fixed cost's largest share of a call
PROBE_STEPS = 8  # steps per call in the probe's second half
PROBE_CALLS = 5  # timed calls of each kind (after the first, which traces)

log = logging.getLogger(__name__)


def steps_for_share(fixed: float, per_step: float, limit: int, share: float = FIXED_SHARE) -> int:
    """The fewest steps N per call with fixed / (fixed + N × per_step) ≤ share, in [1, limit]."""
    if per_step <= 0.0:  # no measurable work per step: only the epoch bounds the call
        return max(1, limit)
    needed = math.ceil(fixed * (1.0 - share) / (share * per_step) - 1e-9)
    return max(1, min(limit, needed))


def whole_calls(steps: int, epoch: int, up: bool) -> int:
    """The divisor of `epoch` nearest `steps` from above (`up`) or below: whole calls an epoch."""
    fits = [d for d in range(1, max(epoch, 1) + 1) if epoch % d == 0] or [1]
    return min(d for d in fits if d >= steps) if up else max(d for d in fits if d <= steps)


def split_cost(one: float, many: float, steps: int) -> tuple[float, float]:
    """(fixed, per step) seconds of a call, from the time of a call of 1 step and of `steps`."""
    per_step = max((many - one) / (steps - 1), 0.0)
    return max(one - per_step, 0.0), per_step


class CallEnds(keras.callbacks.Callback):
    """The clock at the end of each call of the training function (Keras calls the batch
    callbacks once per call)."""

    def __init__(self, clock=time.perf_counter):
        super().__init__()
        self.clock, self.ends = clock, []

    def on_train_batch_end(self, batch, logs=None):
        self.ends.append(self.clock())

    def median_call(self) -> float:
        """The median time between consecutive call ends (the first call, which traces, is
        not timed: it has no end before it)."""
        return statistics.median(np.diff(self.ends))


def set_steps(model: keras.Model, steps: int) -> None:
    """Run `steps` training steps per call from the next `fit` on."""
    model.steps_per_execution = steps
    model.train_function = None  # traced again at the new granularity


def time_call(model: keras.Model, dataset, steps: int) -> float:
    """Median seconds of a call of `steps` steps, within `fit` on `dataset`."""
    set_steps(model, steps)
    ends = CallEnds()
    model.fit(dataset, steps_per_epoch=steps * (PROBE_CALLS + 1), epochs=1, verbose=0,
              callbacks=[ends], shuffle=False)  # fmt: skip
    return ends.median_call()


def probe(model: keras.Model, images, targets) -> tuple[float, float]:
    """(fixed seconds per call, seconds per step) of training `model` on one batch; the model,
    its optimizer and its random states are left as they were."""
    import tensorflow as tf

    with model.distribute_strategy.scope():  # as fit builds it: mirrored slots under a strategy
        model.optimizer.build(model.trainable_variables)  # its slots exist, to be restored
    state = [*model.variables, *model.optimizer.variables]
    saved = [keras.ops.convert_to_numpy(v) for v in state]
    dataset = tf.data.Dataset.from_tensors((images, targets)).repeat()
    try:
        one = time_call(model, dataset, 1)
        many = time_call(model, dataset, PROBE_STEPS)
    finally:
        for variable, value in zip(state, saved, strict=True):
            variable.assign(value)
    return split_cost(one, many, PROBE_STEPS)


def replicated(model: keras.Model) -> bool:
    """Whether `model` trains on several replicas (mirrored, or across workers)."""
    strategy = getattr(model, "distribute_strategy", None)
    return strategy is not None and strategy.num_replicas_in_sync > 1


def choose_steps(setting: int | str, model: keras.Model, images, targets, limit: int) -> dict:
    """{steps, fixed_ms, per_step_ms}: the steps per call for a run whose epoch has `limit`
    steps, a divisor of it — a number from params (lowered to one), or `auto` (the probe's
    choice, raised to one). On several replicas, one: Keras 3's loop of several steps a call
    fails under tf.distribute (InvalidArgumentError, seen with MirroredStrategy on two
    logical CPUs and with two local workers)."""
    if replicated(model):
        if setting not in ("auto", 1):
            log.warning("base.steps_per_execution: %s runs as 1 on several replicas", setting)
        return {"steps": 1}
    if setting != "auto":
        return {"steps": whole_calls(min(int(setting), limit), limit, up=False)}
    if limit <= PROBE_STEPS:
        return {"steps": max(1, limit)}
    fixed, per_step = probe(model, images, targets)
    return {
        "steps": whole_calls(steps_for_share(fixed, per_step, limit), limit, up=True),
        "fixed_ms": round(1000 * fixed, 2),
        "per_step_ms": round(1000 * per_step, 2),
    }
