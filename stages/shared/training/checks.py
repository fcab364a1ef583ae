"""Sanity checks every training run makes on itself, after A. Karpathy's "A Recipe for
Training Neural Networks" (2019) and the debug runs of lightning-hydra-template:

- the output layer starts at the data's prior (class frequencies, presence rate), so the
  first steps are not spent learning it (Karpathy: "init well");
- the loss of the first batch at initialisation is compared with the loss the prior gives
  (a wrong loss, label or scale shows up before any training);
- `debug: overfit` trains one fixed batch until its loss is near zero (a model that cannot
  is broken: frozen layers, labels detached from images, a wrong loss);
- a loss that turns NaN or infinite stops training with one line;
- a run whose best val score is no better than an answer that ignores the image (the train
  prior, the mean train box) ends with one warning line, recorded as `checks.learned`;
- the first training batch, as the model receives it, is kept for `plot` to draw.
"""

from __future__ import annotations

import io
import logging
import math
import zipfile
from pathlib import Path

import keras
import numpy as np

from stages.shared.core.cli import UserError
from stages.shared.core.seeding import seed_states
from stages.shared.models.backbones import flat_layers

log = logging.getLogger(__name__)

FIRST_BATCH_FACTOR = 1.5  # a first-batch loss outside [expected / 1.5, expected × 1.5] warns
# Scores are reported to 4 decimals: a model closer than this to its baseline is no better.
LEARNED_MARGIN = 1e-4


def output_layer(model: keras.Model) -> keras.layers.Dense:
    """The last Dense layer of a model (its output), nested models opened."""
    dense = [layer for layer in flat_layers(model) if isinstance(layer, keras.layers.Dense)]
    return dense[-1]


def start_at_prior(layer: keras.layers.Dense, bias: np.ndarray) -> None:
    """Make an output layer answer the prior whatever its input: kernel 0, bias the prior
    (log frequencies before a softmax, the logit of the rate before a sigmoid). A random
    kernel would add logits of a size set by the features, not by the data; the kernel
    still gets its gradient from the first step on."""
    kernel, _ = layer.get_weights()
    layer.set_weights([np.zeros_like(kernel), np.asarray(bias, dtype="float32").reshape(-1)])


def class_prior(onehot: np.ndarray) -> np.ndarray:
    """Class frequencies of one-hot targets, clipped away from 0 (a log must exist)."""
    prior = np.maximum(onehot.mean(axis=0), 1e-6)
    return prior / prior.sum()


def prior_cross_entropy(prior: np.ndarray, label_smoothing: float, onehot=None) -> float:
    """Categorical cross-entropy of predicting `prior` for the one-hot labels of a batch (by
    default, labels distributed as the prior itself), with Keras' label smoothing (targets
    (1 − ε)·y + ε / K): the loss a model that starts at the prior has on that batch."""
    labels = np.asarray(prior if onehot is None else onehot, dtype=np.float64).reshape(
        -1, len(prior)
    )
    targets = (1 - label_smoothing) * labels + label_smoothing / len(prior)
    return float(-(targets * np.log(prior)).sum(axis=1).mean())


def binary_cross_entropy(rate: float, labels=None) -> float:
    """Binary cross-entropy of predicting `rate` for 0/1 `labels` (by default, labels with
    that rate: the entropy of the rate)."""
    rate = min(max(rate, 1e-6), 1 - 1e-6)
    share = rate if labels is None else float(np.mean(labels))
    return float(-(share * math.log(rate) + (1 - share) * math.log(1 - rate)))


def logit(rate: float) -> float:
    """The pre-sigmoid value whose sigmoid is `rate`."""
    rate = min(max(rate, 1e-6), 1 - 1e-6)
    return math.log(rate / (1 - rate))


def first_batch_report(loss: float, expected: float, what: str) -> dict:
    """The first-batch check: the loss beside its expected value, and a one-line warning
    when their ratio is outside the stated factor."""
    ratio = loss / expected if expected > 0 else float("inf")
    ok = 1 / FIRST_BATCH_FACTOR <= ratio <= FIRST_BATCH_FACTOR
    if not ok:
        log.warning(
            "first-batch check: %s %.4f at initialisation, expected %.4f from the data's prior"
            " (%.2f×, beyond %.1f×) — check the labels, the loss and the input scaling",
            what,
            loss,
            expected,
            ratio,
            FIRST_BATCH_FACTOR,
        )
    return {
        "loss": what,
        "first_batch": round(loss, 4),
        "expected_from_prior": round(expected, 4),
        "ratio": round(ratio, 3),
        "within_factor": FIRST_BATCH_FACTOR,
        "ok": ok,
    }


def learned_report(metric: str, best: float, baseline: float, name: str, higher: bool) -> dict:
    """Whether the saved model beat its input-independent baseline on val (`higher`: a
    higher score is better), with a one-line warning when it did not: a model that answers
    no better than a constant must not be saved and evaluated as if it had learned."""
    margin = best - baseline if higher else baseline - best
    learned = bool(margin > LEARNED_MARGIN)
    if not learned:
        log.warning(
            "never learned: the best val %s %.4f is no better than %.4f, %s's — check the"
            " labels, the learning rate and what the model can see",
            metric,
            best,
            baseline,
            name,
        )
    return {
        "learned": learned,
        "metric": metric,
        "best": round(best, 4),
        "baseline": round(baseline, 4),
        "baseline_name": name,
    }


def overfit_one_batch(model, batch, steps: int, threshold: float) -> dict:
    """Train on one fixed batch, dropout off, up to `steps` steps (stopping once the loss is
    below `threshold`); the final train loss and whether it got there."""
    for layer in flat_layers(model):
        if isinstance(layer, keras.layers.Dropout):
            layer.rate = 0.0
    images, targets = batch
    first = loss = float(model.train_on_batch(images, targets, return_dict=True)["loss"])
    step = 1
    while step < steps and not loss < threshold:
        loss = float(model.train_on_batch(images, targets, return_dict=True)["loss"])
        step += 1
    passed = loss < threshold
    log.info(
        "overfit check: train loss %.4g after %d steps (threshold %g): %s",
        loss,
        step,
        threshold,
        "passed" if passed else "FAILED",
    )
    return {
        "mode": "overfit",
        "images": len(images),
        "steps": step,
        "first_loss": round(first, 6),
        "final_loss": round(loss, 6),
        "threshold": threshold,
        "passed": passed,
    }


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops training with one line when the loss becomes NaN or infinite, naming the epoch,
    the batch (or, with several steps per call, the batches of the call it showed in) and the
    params most likely at fault; no model is written after it."""

    def __init__(self, section: str, learning_rate: float, mixed_precision: bool):
        super().__init__()
        self.section, self.rate, self.mixed = section, learning_rate, mixed_precision
        self.epoch, self.last = 0, -1  # the last batch (0-based) a call of this epoch ended on

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch, self.last = epoch, -1

    def on_train_batch_end(self, batch, logs=None):
        # Keras calls this once per call, with the index of the call's last batch.
        first, self.last = self.last + 2, batch
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        fix = f"lower {self.section}.learning_rate (now {self.rate:g})"
        if self.mixed:
            fix += " or set base.mixed_precision: float32"
        where = f"batch {batch + 1}" if first == batch + 1 else f"batches {first}–{batch + 1}"
        raise UserError(
            f"training loss became {float(loss)} at epoch {self.epoch + 1}, {where}"
            f" — {fix}, then `dvc repro`; no model was written"
        )


def save_arrays(path: Path, **arrays: np.ndarray) -> None:
    """An .npz (numpy.load reads it) with fixed file times: same arrays, same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, buffer.getvalue())


def seen_by_model(model, images, layers: list) -> np.ndarray:
    """`images` through the model's own in-model augmentation layers in training mode, as
    the first training step sees them; their random state is put back afterwards."""
    if not layers:
        return np.asarray(images)
    states = seed_states(model)
    saved = [keras.ops.convert_to_numpy(v) for v in states]
    out = images
    for layer in layers:
        out = layer(out, training=True)
    for variable, value in zip(states, saved, strict=True):
        variable.assign(value)
    return keras.ops.convert_to_numpy(out)


def balanced_weights(labels, classes: list[str]) -> dict[int, float]:
    """sklearn's 'balanced' class weights (samples / (classes × count)), by class index."""
    from sklearn.utils.class_weight import compute_class_weight

    weights = compute_class_weight("balanced", classes=np.array(classes), y=np.array(labels))
    return {i: float(w) for i, w in enumerate(weights)}


def prior_baseline(monitor: str, prior: np.ndarray, label_smoothing: float, val_onehot) -> dict:
    """What answering the train prior scores on val in the monitored metric: the majority
    class (val_accuracy) or the prior's cross-entropy (val_loss). The yardstick of
    `learned_report` for a classifier."""
    if monitor == "val_accuracy":
        majority = float((np.asarray(val_onehot).argmax(axis=1) == prior.argmax()).mean())
        return {"metric": "accuracy", "baseline": majority, "name": "the majority class",
                "higher": True}  # fmt: skip
    loss = prior_cross_entropy(prior, label_smoothing, val_onehot)
    return {"metric": "loss", "baseline": loss, "name": "the train prior", "higher": False}
