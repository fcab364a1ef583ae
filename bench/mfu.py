"""Model FLOPs utilisation: how close training and inference run to what this machine can do.

Peak: the best of several large matrix multiplies through TensorFlow on all cores (float32,
4096×4096: 2·n³ FLOPs each), and bfloat16 where the CPU has AVX512-BF16 or AMX; a GPU's,
when TensorFlow sees one, the same way. Achieved: each default model trained as its stage
trains it (the stage's Task: data from the augmented shards, model, compile), one epoch
after a warm-up, timed alone: FLOPs per image (cost.count_flops: forward, a multiply-add
counts two) × 3 (callbacks.BACKWARD_FACTOR, the one the training stages log with: the backward
pass costs about twice the forward, a gradient for the activations and one for the weights,
the estimate nanoGPT's MFU and Kaplan et al. 2020 use)
× images / seconds. Inference: `predict_on_batch` over test-sized batches, forward FLOPs
only. MFU = achieved / peak.

What stops a small model short of the peak shows in the batch-size sweep: per-step time at
batch 8 to 512 separates the fixed cost of a step (the Python and tf.function dispatch, the
optimizer's update of every variable) from the cost per image.

    python -m bench.mfu          # (make bench runs it with the others)

Writes bench/MFU.md (the table, dated, with the machine).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import ROOT, cpu_info, machine, project_params, row, run_measured, table, toy
from bench.project import dvc, new_pipeline_repo

MATMUL_SIDE = toy(4096, 256)
BATCHES = toy((8, 32, 128, 512), (4, 8))
TARGET_MFU = 0.5
TARGET_CLASSIFIER_AUTO = 0.55  # the classifier's training MFU with several steps a call
# "Not slower": auto's epoch against 1 step a call, two alternated epochs each, within 2 %.
TARGET_NOT_SLOWER = 0.98


def peak(dtype: str = "float32", device: str = "/CPU:0", repeats: int = 5) -> float:
    """FLOP/s of the best of `repeats` n×n matrix multiplies (after one warm-up)."""
    import tensorflow as tf

    n = MATMUL_SIDE
    with tf.device(device):
        a = tf.random.stateless_normal((n, n), seed=(1, 2), dtype=tf.float32)
        b = tf.random.stateless_normal((n, n), seed=(3, 4), dtype=tf.float32)
        a, b = tf.cast(a, dtype), tf.cast(b, dtype)
        matmul = tf.function(lambda x, y: tf.reduce_sum(tf.cast(tf.matmul(x, y), tf.float32)))
        matmul(a, b).numpy()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            matmul(a, b).numpy()
            best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def median_seconds(run, repeats: int = 7) -> float:
    """Median wall time of `run()` over `repeats` calls (after one that traces)."""
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def per_step(model, iterator, steps: int) -> float:
    """Median seconds a step of the compiled training function, at `steps` steps a call."""
    from stages.shared.training.execution import set_steps

    set_steps(model, steps)
    model.make_train_function()  # returns the function only when it existed already
    function = model.train_function
    return median_seconds(lambda: function(iterator)) / steps


def step_parts(model, images, targets) -> dict:
    """Where a training step's time goes at the stage's batch, on one batch held in memory:
    seconds of the compiled step at 1 and at 8 steps a call (their difference per step is the
    dispatch from Python), of the step without the optimizer's update (the gradients summed
    instead of applied), and of the forward pass alone in training mode."""
    import tensorflow as tf

    iterator = iter(tf.data.Dataset.from_tensors((images, targets)).repeat())
    parts = {"step": per_step(model, iterator, 1), "step_in_call": per_step(model, iterator, 8)}
    # The update replaced by a sum of the gradients into a variable: a side effect, so that the
    # graph still computes every gradient (an unused one would be pruned away).
    sink = tf.Variable(0.0)

    def consume(grads, variables=None):
        sink.assign(tf.add_n([tf.reduce_sum(tf.cast(g, tf.float32)) for g in grads]))

    model.optimizer.apply = consume  # shadows the method while the step is traced
    try:
        parts["step_without_update"] = per_step(model, iterator, 1)
    finally:
        del model.optimizer.apply
    forward = tf.function(lambda x: model(x, training=True))
    parts["forward"] = median_seconds(
        lambda: tf.nest.map_structure(lambda t: t.numpy(), forward(images))
    )
    return parts


def granularity(model, data: dict) -> dict:
    """One epoch at 1 step a call and at `auto`'s choice, alternated twice (median of each),
    and the parts of a step (`step_parts`)."""
    from bench.common import timed_epoch
    from stages.shared.training import execution, inputs

    images, targets = inputs.first_batch(data)
    chosen = execution.choose_steps("auto", model, images, targets, data["steps"])
    epochs: dict[int, list[float]] = {1: [], chosen["steps"]: []}
    for _ in range(2):
        for steps in epochs:
            execution.set_steps(model, steps)
            epochs[steps].append(timed_epoch(model, data))
    medians = {str(steps): statistics.median(times) for steps, times in epochs.items()}
    parts = step_parts(model, images, targets)
    execution.set_steps(model, 1)
    return {"auto": chosen, "epoch_s": medians, "steps": data["steps"], "parts": parts}


def train_and_infer(model_name: str) -> dict:
    """(In the probe's process, cwd: a project after augment.) One timed epoch of the
    default training and batched inference of `model_name`, with its FLOPs per image; the
    epoch again at `base.steps_per_execution: auto` (`granularity`)."""
    import numpy as np

    from bench.common import stage_setup, timed_epoch
    from stages.shared.models.cost import count_flops

    model, task, cfg, size, train_rows, data = stage_setup(model_name)
    epoch_s = timed_epoch(model, data)
    flops = count_flops(model, size)
    result = {
        "size": size,
        "batch_size": cfg.batch_size,
        "flops_per_image": flops,
        "train_images": len(train_rows),
        "epoch_s": epoch_s,
        "calls": granularity(model, data),
    }
    import tensorflow as tf

    sweep = {}
    for batch in BATCHES:  # training steps on one batch of random pixels: the step's own cost
        pixels = np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3))
        targets = task.targets(train_rows.sample(batch, replace=True, random_state=0))
        model.make_train_function()
        step = model.train_function
        batch_data = tf.data.Dataset.from_tensors(
            (tf.constant(pixels, tf.float32), tf.nest.map_structure(tf.constant, targets))
        ).repeat()
        iterator = iter(batch_data)
        step(iterator)  # trace this batch size
        model.predict_on_batch(pixels)
        train_times, infer_times = [], []
        for _ in range(7):  # the median step: robust to a neighbour's burst
            start = time.perf_counter()
            step(iterator)
            train_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            model.predict_on_batch(pixels)
            infer_times.append(time.perf_counter() - start)
        sweep[batch] = {
            "train_step_s": float(np.median(train_times)),
            "infer_batch_s": float(np.median(infer_times)),
        }
    result["sweep"] = sweep
    return result


def probe(project: Path, model_name: str) -> dict:
    out = project / f"mfu-{model_name}.json"
    command = [sys.executable, "-m", "bench.mfu", "--probe", str(project), model_name, str(out)]
    run_measured(command, project)
    return json.loads(out.read_text())


def granularity_rows(model_name: str, result: dict, top: float) -> list[dict]:
    """MFU and images/s at 1 step a call and at auto's, their ratio, and the parts of a step."""
    from stages.shared.training.callbacks import BACKWARD_FACTOR

    calls, flops, images = result["calls"], result["flops_per_image"], result["train_images"]
    auto = calls["auto"]["steps"]
    one_s, auto_s = calls["epoch_s"]["1"], calls["epoch_s"][str(auto)]
    rows = []
    for label, seconds in (
        ("1", one_s),
        (f"auto ({auto} of the epoch's {calls['steps']})", auto_s),
    ):
        rate = images / seconds
        mfu = BACKWARD_FACTOR * flops * rate / top
        target = model_name == "classifier" and label != "1"
        rows.append(
            row(
                f"{model_name}: training MFU, steps per call {label} ({rate:.0f} images/s)",
                f"{100 * mfu:.2f} %",
                f">= {100 * TARGET_CLASSIFIER_AUTO:.0f} %" if target else "-",
                mfu >= TARGET_CLASSIFIER_AUTO if target else None,
            )
        )
    ratio = one_s / auto_s
    rows.append(
        row(
            f"{model_name}: speed with auto against 1 step a call (epoch time ratio, same run)",
            f"{ratio:.2f}×",
            f">= {TARGET_NOT_SLOWER:.2f}×",
            ratio >= TARGET_NOT_SLOWER,
        )
    )
    parts = calls["parts"]
    dispatch = parts["step"] - parts["step_in_call"]
    update = parts["step"] - parts["step_without_update"]
    backward = parts["step_without_update"] - parts["forward"]
    loop = one_s / calls["steps"] - parts["step"]
    seconds = {
        "step": parts["step"],
        "forward": parts["forward"] - dispatch,
        "backward": backward,
        "update": update,
        "dispatch": dispatch,
        "loop": loop,
    }
    ms = {name: f"{1000 * value:.1f} ms" for name, value in seconds.items()}
    rows.append(
        row(
            f"{model_name}: where a step at batch {result['batch_size']} goes (one batch in"
            f" memory, each part a difference of two timings): forward {ms['forward']}, backward"
            f" {ms['backward']}, optimizer update {ms['update']}, dispatch from Python"
            f" {ms['dispatch']}; fit's loop and input pipeline {ms['loop']} more",
            ms["step"],
        )
    )
    return rows


def run() -> list[dict]:
    from stages.shared.training.callbacks import BACKWARD_FACTOR  # the stages' own factor

    flags = set(cpu_info().get("flags", "").split())
    peaks = {"float32": peak("float32")}
    if flags & {"avx512_bf16", "amx_bf16"}:
        peaks["bfloat16"] = peak("bfloat16")
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        peaks["gpu float32"] = peak("float32", "/GPU:0")
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = new_pipeline_repo(Path(tmp) / "project", project_params())
        dvc("repro", "-q", "augment@classification", "augment@detection", cwd=project)
        for model_name in ("classifier", "detector"):
            found[model_name] = probe(project, model_name)
    print(json.dumps({"peaks": peaks, **found}, indent=1))
    top = peaks["float32"]
    rows = [
        row(
            f"peak: {MATMUL_SIDE}x{MATMUL_SIDE} matmul through TensorFlow, {kind}, GFLOP/s",
            round(value / 1e9, 1),
        )
        for kind, value in peaks.items()
    ]
    if "bfloat16" not in peaks:
        rows.append(row("bfloat16 peak", "not measured: no AVX512-BF16 or AMX on this CPU"))
    for model_name, result in found.items():
        flops = result["flops_per_image"]
        images_s = result["train_images"] / result["epoch_s"]
        achieved = BACKWARD_FACTOR * flops * images_s
        mfu = achieved / top
        rows.append(
            row(
                f"{model_name}: training MFU, default epoch ({images_s:.0f} images/s,"
                f" {flops / 1e6:.1f} MFLOPs/image, batch {result['batch_size']},"
                f" {result['size']} px)",
                f"{100 * mfu:.2f} %",
                f">= {100 * TARGET_MFU:.0f} %",
                mfu >= TARGET_MFU,
            )
        )
        rows.extend(granularity_rows(model_name, result, top))
        sweep = result["sweep"]
        best_batch = max(sweep, key=lambda b: int(b) / sweep[b]["infer_batch_s"])
        infer = int(best_batch) / sweep[best_batch]["infer_batch_s"]
        rows.append(
            row(
                f"{model_name}: inference MFU, predict_on_batch at batch {best_batch}"
                f" ({infer:.0f} images/s)",
                f"{100 * flops * infer / top:.2f} %",
            )
        )
        small, large = sweep[str(BATCHES[0])], sweep[str(BATCHES[-1])]
        per_image = (large["train_step_s"] - small["train_step_s"]) / (BATCHES[-1] - BATCHES[0])
        fixed = small["train_step_s"] - per_image * BATCHES[0]
        at_large = BACKWARD_FACTOR * flops * BATCHES[-1] / large["train_step_s"] / top
        rows.append(
            row(
                f"{model_name}: a training step = {1000 * fixed:.1f} ms fixed +"
                f" {1e6 * per_image:.0f} us per image (steps at batch {BATCHES[0]} and"
                f" {BATCHES[-1]}); MFU at batch {BATCHES[-1]}",
                f"{100 * at_large:.2f} %",
            )
        )
    (ROOT / "bench/MFU.md").write_text(
        "# Model FLOPs utilisation\n\n"
        f"{time.strftime('%Y-%m-%d')}, {machine()}; written by `python -m bench.mfu` (nothing"
        " else running).\n\n" + table(rows) + "\n"
    )
    return rows


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        sys.path.insert(0, str(ROOT))
        os.chdir(sys.argv[2])
        Path(sys.argv[4]).write_text(json.dumps(train_and_infer(sys.argv[3])))
    else:
        print(table(run()))
