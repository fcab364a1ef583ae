"""The training package (loop, state, callbacks, optim) and saving a model: a resumed run
and code, and a saved model's bytes depend on its weights only."""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zipfile
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

from stages.shared.core import seeding
from stages.shared.core.cli import UserError
from stages.shared.models import store
from stages.shared.params.sections import load_params
from stages.shared.training import callbacks as fit_callbacks
from stages.shared.training import loop, optim
from stages.shared.training import state as run_state
from tests.conftest import ROOT

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
    state = fit_callbacks.RunState(phase_dir, tracked, first, {})
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
    rng_after = keras.ops.convert_to_numpy(seeding.seed_states(straight)[0])

    model = tiny_model()
    (tmp_path / "b").mkdir()
    first = play(model, callbacks_for(model, tmp_path / "b", 0), range(3))
    # A new process: fresh callbacks and a fresh RNG state; the weights and the optimizer
    # (its learning rate) come back from the backup, here the same model object.
    seeding.seed_states(model)[0].assign(seeding.seed_states(tiny_model())[0])
    rest = play(model, callbacks_for(model, tmp_path / "b", 3), range(3, 6))
    assert first + rest == expected
    assert np.array_equal(keras.ops.convert_to_numpy(seeding.seed_states(model)[0]), rng_after)
    run = run_state.last_snapshot(tmp_path / "b")
    assert run["epochs_run"] == 4 and run["best_epoch"] == 2


def test_the_work_dir_follows_params_data_and_code_and_drops_stale_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one = run_state.work_dir("stage", {"lr": 0.1}, "md5a")
    one.mkdir(parents=True)
    assert run_state.work_dir("stage", {"lr": 0.1}, "md5a") == one and one.exists()
    other = run_state.work_dir("stage", {"lr": 0.2}, "md5a")
    assert other != one and not one.exists()  # an abandoned run's state is deleted
    assert run_state.work_dir("stage", {"lr": 0.2}, "md5b") != other
    monkeypatch.setattr(run_state, "code_hash", lambda: "edited")
    assert run_state.work_dir("stage", {"lr": 0.2}, "md5a") != other
    # values JSON cannot write (a path) are keyed by their text
    assert run_state.work_dir("stage", {"p": Path("a")}, "m") == run_state.work_dir(
        "stage", {"p": "a"}, "m"
    )


def test_a_run_resumes_only_the_state_of_the_same_section_params_base_and_data(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    cfg = load_params("train_classifier", ROOT / "params.yaml")
    base = load_params("base", ROOT / "params.yaml")

    def run(section="train_classifier", cfg=cfg, base=base, md5="m1"):
        return loop.run_dir(section, cfg, base, md5)

    first = run()
    assert run() == first
    assert run(base=base.model_copy(update={"seed": base.seed + 1})) != first
    assert run(cfg=cfg.model_copy(update={"epochs": cfg.epochs + 1})) != first
    assert run(md5="m2") != first
    assert run(section="train_detector") != first


def test_the_same_weights_save_to_the_same_bytes(tmp_path):
    model = tiny_model()
    store.save_model(model, tmp_path / "one.keras", {"a": 1})
    time.sleep(1.1)  # Keras stamps the save time to the second
    store.save_model(model, tmp_path / "two.keras", {"a": 1})
    assert (tmp_path / "one.keras").read_bytes() == (tmp_path / "two.keras").read_bytes()
    loaded = keras.models.load_model(tmp_path / "two.keras")
    x = np.ones((3, 2), "float32")
    assert np.array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    model.layers[-1].kernel.assign(model.layers[-1].kernel + 1.0)
    store.save_model(model, tmp_path / "three.keras", {"a": 1})
    assert (tmp_path / "three.keras").read_bytes() != (tmp_path / "one.keras").read_bytes()


PARAMS = ROOT / "params.yaml"


def rate_at(schedule, step: int) -> float:
    return float(keras.ops.convert_to_numpy(schedule(step)))


def test_each_schedule_gives_the_rate_its_docstring_promises_at_each_epoch():
    assert optim.make_schedule("constant", 0.01, 10, 5, 0.9) == 0.01
    exponential = optim.make_schedule("exponential", 0.01, 10, 5, 0.5)
    assert [rate_at(exponential, s) for s in (0, 10, 20, 35)] == pytest.approx(
        [0.01, 0.005, 0.0025, 0.01 * 0.5**3.5]
    )
    inverse = optim.make_schedule("inverse_time", 0.01, 10, 5, 0.75)  # the tutorial's
    assert [rate_at(inverse, s) for s in (0, 10, 30, 15)] == pytest.approx(
        [0.01, 0.0075, 0.005, 0.01 / 1.5]
    )
    cosine = optim.make_schedule("cosine", 0.01, 10, 4, 0.9)  # 40 steps in all
    assert [rate_at(cosine, s) for s in (0, 20, 40, 60)] == pytest.approx(
        [0.01, 0.005, 0.0, 0.0], abs=1e-9
    )
    one_step = optim.make_schedule("cosine", 0.01, 0, 4, 0.9)  # no batches: one step
    assert rate_at(one_step, 1) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(
        UserError,
        match=r"^unknown schedule 'cyclic'; choices: constant, exponential, "
        r"inverse_time, cosine$",
    ):
        optim.make_schedule("cyclic", 0.01, 10, 5, 0.9)


def test_optimizers_by_name_with_the_rate_and_sgd_momentum():
    kinds = {"adam": "Adam", "adamw": "AdamW", "sgd": "SGD", "rmsprop": "RMSprop"}
    for name, kind in kinds.items():
        optimizer = optim.make_optimizer(name, 0.25)
        assert type(optimizer).__name__ == kind
        assert float(keras.ops.convert_to_numpy(optimizer.learning_rate)) == 0.25
    assert optim.make_optimizer("sgd", 0.1).momentum == 0.9
    with pytest.raises(UserError, match=r"^unknown optimizer 'lion'; choices: adam, adamw, sgd, "):
        optim.make_optimizer("lion", 0.1)


def test_the_logged_rate_is_the_optimizer_rate_and_the_live_step_the_epoch():
    model = tiny_model()
    model.optimizer.learning_rate = 0.125
    logger = fit_callbacks.LearningRateLogger()
    logger.set_model(model)
    logs = {"loss": 1.0}
    logger.on_epoch_end(3, logs)
    logger.on_epoch_end(4, None)  # Keras may pass no logs
    assert logs == {"loss": 1.0, "learning_rate": 0.125}

    class Live:
        step = 0

    live = Live()
    fit_callbacks.AlignLiveStep(live).on_epoch_begin(7)
    assert live.step == 7


def test_the_code_hash_follows_every_file_name_and_byte(tmp_path, monkeypatch):
    (tmp_path / "shared").mkdir()
    (tmp_path / "a.py").write_text("x = 1\n")
    (tmp_path / "shared/b.py").write_text("y = 2\n")
    (tmp_path / "notes.txt").write_text("not code")
    monkeypatch.setattr(run_state, "STAGES_DIR", tmp_path)
    first = run_state.code_hash()
    assert len(first) == 64 and first == run_state.code_hash()
    (tmp_path / "notes.txt").write_text("edited, still not code")
    assert run_state.code_hash() == first
    (tmp_path / "shared/b.py").write_text("y = 3\n")
    edited = run_state.code_hash()
    assert edited != first
    (tmp_path / "shared/b.py").rename(tmp_path / "shared/c.py")
    assert run_state.code_hash() != edited


def test_scores_are_maximised_and_losses_minimised():
    modes = {m: fit_callbacks.monitor_mode(m) for m in ("val_accuracy", "val_mean_iou", "val_loss")}
    assert modes == {"val_accuracy": "max", "val_mean_iou": "max", "val_loss": "min"}
    assert fit_callbacks.monitor_mode("val_box_loss") == "min"


def test_resume_points_come_from_the_backup_and_phase_one(tmp_path):
    state = tmp_path / "run"
    assert run_state.backup_epoch(state) == 0 and run_state.run_resume_point(state) == 0
    (state / "backup").mkdir(parents=True)
    (state / "backup/training_metadata.json").write_text('{"epoch": 3, "batch": 0}')
    assert run_state.backup_epoch(state) == 3 and run_state.run_resume_point(state) == 3
    assert run_state.resume_point(state, 5) == 5
    # Phase 1 is over after 9 epochs (its snapshots go past 9: "10" sorts before "9" as text).
    (state / run_state.PHASE1).write_text("")
    (state / "run_state.json").write_text(
        json.dumps({"epochs": {"9": {"epochs_run": 9}, "10": {"epochs_run": 10}}})
    )
    assert run_state.last_snapshot(state) == {"epochs_run": 10}
    assert run_state.run_resume_point(state) == 10  # phase 2 not started yet
    (state / "fine_tune/backup").mkdir(parents=True)
    (state / "fine_tune/backup/training_metadata.json").write_text('{"epoch": 12}')
    assert run_state.run_resume_point(state) == 12


def test_the_run_state_records_the_end_and_the_epoch_counts_of_either_phase(tmp_path):
    assert run_state.read_run_state(tmp_path) == {"epochs": {}, "finished": False}
    assert run_state.run_epochs(tmp_path) == {"epochs_run": 0, "best_epoch": 0}
    model = tiny_model()
    (tmp_path / "b").mkdir()
    callbacks = callbacks_for(model, tmp_path / "b", 0)
    play(model, callbacks, range(2))
    callbacks[-1].on_train_end()
    record = run_state.read_run_state(tmp_path / "b")
    assert record["finished"] is True and sorted(record["epochs"]) == ["1", "2"]
    assert run_state.run_epochs(tmp_path / "b") == {"epochs_run": 2, "best_epoch": 2}
    fine = tmp_path / "b" / run_state.FINE_TUNE
    fine.mkdir()
    (fine / "run_state.json").write_text(
        json.dumps({"epochs": {"5": {"epochs_run": 5, "best_epoch": 4, "x": 1}}})
    )
    assert run_state.run_epochs(tmp_path / "b") == {"epochs_run": 5, "best_epoch": 4}
    assert (
        fit_callbacks._number(np.float32(0.5)) == 0.5
        and type(fit_callbacks._number(np.int64(2))) is float
    )
    assert fit_callbacks._number(None) is None and fit_callbacks._number(3) == 3


def test_the_training_seed_is_its_own_or_the_base_seed():
    cfg, base = load_params("train_classifier", PARAMS), load_params("base", PARAMS)
    assert loop.training_seed(base, cfg.model_copy(update={"seed": None})) == base.seed
    assert loop.training_seed(base, cfg.model_copy(update={"seed": base.seed + 7})) == (
        base.seed + 7
    )


def test_stage_paths_take_each_default_or_its_flag():
    defaults = {"manifest": "m.csv", "live_dir": "reports/train"}
    assert loop.stage_paths([], defaults, "d") == defaults
    assert loop.stage_paths(["--live-dir", "x"], defaults, "d") == {
        "manifest": "m.csv",
        "live_dir": "x",
    }


def test_a_fast_debug_run_trains_one_epoch_of_each_phase():
    cfg = load_params("train_classifier", PARAMS)
    assert loop.debug_epochs(cfg) is cfg
    fast = loop.debug_epochs(cfg.model_copy(update={"debug": "fast", "epochs": 9}))
    assert fast.epochs == 1 and fast.fine_tune.epochs == 0
    tuned = cfg.model_copy(
        update={"debug": "fast", "fine_tune": cfg.fine_tune.model_copy(update={"epochs": 6})}
    )
    assert loop.debug_epochs(tuned).fine_tune.epochs == 1
    detector = load_params("train_detector", PARAMS).model_copy(update={"debug": "fast"})
    assert loop.debug_epochs(detector).epochs == 1  # no fine_tune section


def test_trimming_the_history_drops_the_epochs_to_train_again_and_keeps_bytes(tmp_path):
    folder = tmp_path / "plots/metrics/train"
    folder.mkdir(parents=True)
    kept = "timestamp\tstep\tloss\n1\t0\t0.50000001\n2\t1\t0.4\n"
    (folder / "loss.tsv").write_text(kept + "3\t2\t0.3\n4\t3\t0.2\n")
    (tmp_path / "plots/metrics/lr.tsv").write_text("step\tlr\n0\t1\n")
    before = (tmp_path / "plots/metrics/lr.tsv").stat().st_mtime_ns
    run_state.trim_history(tmp_path, 2)
    assert (folder / "loss.tsv").read_text() == kept
    assert (tmp_path / "plots/metrics/lr.tsv").read_text() == "step\tlr\n0\t1\n"
    assert (tmp_path / "plots/metrics/lr.tsv").stat().st_mtime_ns == before  # not rewritten


def test_a_saved_model_carries_no_save_date_and_fixed_entry_times(tmp_path):
    path = tmp_path / "m.keras"
    store.save_model(tiny_model(), path, {"classes": ["a", "b"]})
    with zipfile.ZipFile(path) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        meta = json.loads(archive.read("metadata.json"))
    assert "date_saved" not in meta and meta["keras_version"] == keras.__version__
    # the metadata says which archive it describes
    md5 = hashlib.md5(path.read_bytes()).hexdigest()
    assert json.loads(path.with_suffix(".json").read_text()) == {
        "classes": ["a", "b"],
        "model_md5": md5,
    }
    assert not list(tmp_path.glob(".*tmp"))


def test_the_callbacks_watch_the_monitor_in_its_direction_with_the_params(tmp_path):
    cfg = load_params("train_classifier", PARAMS).model_copy(
        update={"monitor": "val_accuracy", "early_stopping_patience": 6}
    )
    cfg = cfg.model_copy(
        update={"reduce_lr": cfg.reduce_lr.model_copy(update={"patience": 3, "factor": 0.25})}
    )
    paths = {"guard": "guard", "throughput": "speed", "tensorboard": tmp_path / "tb"}

    class Live:
        step = 0

    phase = tmp_path / "run" / run_state.FINE_TUNE
    carried = {"checkpoint": {"best": 0.75}}
    callbacks = fit_callbacks.make_callbacks(cfg, phase, Live(), paths, 2, carried)
    assert callbacks[0] == "guard"
    kinds = [type(c).__name__ for c in callbacks[1:]]
    assert kinds == ["AtomicCheckpoint", "EarlyStopping", "ReduceLROnPlateau",
                     "LearningRateLogger", "AlignLiveStep", "str", "TensorBoard",
                     "DVCLiveCallback", "RunState", "AtomicBackup"]  # fmt: skip
    assert callbacks[kinds.index("str") + 1] == "speed"  # the stage's throughput callback
    checkpoint, stopping, reduce = callbacks[1:4]
    assert checkpoint.filepath == str(tmp_path / "run" / "best.keras")  # one file, both phases
    assert (checkpoint.monitor, checkpoint.save_best_only, checkpoint.best) == (
        "val_accuracy",
        True,
        0.75,
    )
    assert checkpoint.mode == stopping.mode == reduce.mode == "max"  # higher is better
    assert (stopping.monitor, stopping.patience) == ("val_accuracy", 6)
    assert (reduce.patience, reduce.factor, reduce.min_lr) == (3, 0.25, cfg.reduce_lr.min_lr)
    assert callbacks[-2].resume_epoch == 2 and callbacks[-2].carried == carried
    live = callbacks[kinds.index("AlignLiveStep") + 1].live
    assert live is callbacks[kinds.index("DVCLiveCallback") + 1].live  # the stage's own Live
    assert isinstance(live, Live)
    board = callbacks[kinds.index("TensorBoard") + 1]
    assert board.log_dir == str(tmp_path / "tb")  # where the stage says, not ./logs
    assert (board.histogram_freq, board.write_graph) == (0, False)
    assert callbacks[-1].backup_dir == str(phase / "backup")
    assert not callbacks[-1].delete_checkpoint
    off = cfg.model_copy(update={"reduce_lr": cfg.reduce_lr.model_copy(update={"patience": 0})})
    names = [
        type(c).__name__ for c in fit_callbacks.make_callbacks(off, tmp_path, Live(), paths, 0, {})
    ]
    assert "ReduceLROnPlateau" not in names


def test_dvclive_neither_saves_an_experiment_nor_writes_a_dvc_yaml(tmp_path, monkeypatch, caplog):
    """The stage runs inside `dvc repro` / `dvc exp run`, which own both; run by hand, it
    must not warn about (or make) an experiment of its own."""
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.DEBUG):
        live = run_state.open_live(str(tmp_path / "live"), 0)
        live.log_metric("loss", 1.0)
        live.next_step()
        live.end()
    assert "experiment" not in caplog.text.lower()
    assert not list(tmp_path.rglob("dvc.yaml"))
    assert (tmp_path / "live/metrics.json").exists()


class KilledWhileSaving(Exception):
    """Stands for a SIGKILL that lands while a file is being written."""


def die_half_way(path) -> None:
    Path(path).write_bytes(b"\x89HDF\r\n half a file")
    raise KilledWhileSaving


def test_a_run_killed_while_saving_resumes_from_the_last_whole_backup_and_best_model(tmp_path):
    x = np.linspace(-1, 1, 16, dtype="float32").reshape(8, 2)
    y = x.sum(axis=1, keepdims=True)
    fit = {"x": x, "y": y, "validation_data": (x, y), "batch_size": 4, "verbose": 0}
    backup, best = tmp_path / "backup", tmp_path / "best.keras"

    def callbacks():
        checkpoint = fit_callbacks.AtomicCheckpoint(
            str(best), monitor="val_loss", save_best_only=True
        )
        return [checkpoint, fit_callbacks.AtomicBackup(str(backup), delete_checkpoint=False)]

    model = tiny_model()
    model.fit(epochs=2, callbacks=callbacks(), **fit)
    after_two = [w.copy() for w in model.get_weights()]
    best_bytes = best.read_bytes()
    # Epoch 3 improves (the loss still falls), so both files are rewritten: killed half-way.
    model.save = lambda filepath, **_: die_half_way(filepath)
    model.save_weights = lambda filepath, **_: die_half_way(filepath)
    with pytest.raises(KilledWhileSaving):
        model.fit(epochs=3, callbacks=callbacks(), **fit)
    assert best.read_bytes() == best_bytes  # the last whole best model is still there
    keras.saving.load_model(best)

    resumed, started = tiny_model(), []
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: started.append(epoch)
    )
    restore = fit_callbacks.AtomicBackup(str(backup), delete_checkpoint=False)
    restore.set_model(resumed)
    resumed.optimizer.build(resumed.trainable_variables)
    restore.on_train_begin()  # what fit does first: load the backup
    assert all(np.array_equal(a, b) for a, b in zip(resumed.get_weights(), after_two, strict=True))
    resumed.fit(epochs=3, callbacks=[restore, record], **fit)
    assert started == [2]  # 0-based: epoch 3 is run again, from epoch 2's weights


def test_an_epochs_speed_is_its_training_batches_time_and_the_median_spans_a_resume(tmp_path):
    from dvclive import Live

    # epoch 0 starts at 10 s, its last batch ends at 14 s (validation after it is not read):
    # 80 images in 4 s; epoch 1: 2 s; epoch 2, after a resume: 1 s.
    times = iter([10.0, 11.0, 12.0, 14.0, 20.0, 22.0, 30.0, 31.0])

    def clock():
        return next(times)

    def epoch(callback, number: int, batches: int) -> None:
        callback.on_epoch_begin(number)
        for batch in range(batches):
            callback.on_train_batch_end(batch)
        callback.on_epoch_end(number)

    folder = tmp_path / "speed"
    first = Live(str(folder), dvcyaml=False, save_dvc_exp=False)
    speed = fit_callbacks.Throughput(first, 80, 1_000_000, "a CPU, 2 cores", clock)
    epoch(speed, 0, 3)
    epoch(speed, 1, 1)
    later = run_state.open_live(str(folder), 2)  # a resumed run keeps epochs 0 and 1
    epoch(fit_callbacks.Throughput(later, 80, 1_000_000, "a CPU, 2 cores", clock), 2, 1)
    rates = pd.read_csv(folder / "plots/metrics/train/images_per_second.tsv", sep="\t")
    assert rates[["step", "images_per_second"]].values.tolist() == [[0, 20], [1, 40], [2, 80]]
    summary = json.loads((folder / "metrics.json").read_text())
    assert summary["train"] == {"images_per_second": 80.0, "model_gflops_per_second": 0.24}
    assert summary["median"] == {"images_per_second": 40.0, "model_gflops_per_second": 0.12}
    assert (summary["device"], summary["flops_per_image"], summary["backward_factor"]) == (
        "a CPU, 2 cores",
        1_000_000,
        3,
    )


def test_with_several_steps_a_call_a_speed_still_counts_the_training_batches_only(tmp_path):
    import tensorflow as tf
    from dvclive import Live

    from stages.shared.training.execution import set_steps

    # The clock moves only when a batch is read: 1 s for each of the 6 training batches, 100 s
    # for each validation batch. Calls of 3 steps: the speed is 48 images / 6 s.
    clock = {"now": 0.0}

    def costing(seconds: float, batches: int):
        def tick(x):
            clock["now"] += seconds
            return x

        def read(x, y):
            return tf.ensure_shape(tf.py_function(tick, [x], tf.float32), (8, 4)), y

        x = np.zeros((batches * 8, 4), "float32")
        y = np.zeros((batches * 8, 1), "float32")
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(8).map(read)

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    set_steps(model, 3)
    live = Live(str(tmp_path / "speed"), dvcyaml=False, save_dvc_exp=False)
    speed = fit_callbacks.Throughput(live, 48, 1_000_000, "a CPU", lambda: clock["now"])
    model.fit(costing(1.0, 6), validation_data=costing(100.0, 2), epochs=1, verbose=0,
              callbacks=[speed], shuffle=False)  # fmt: skip
    assert clock["now"] == 206.0  # validation ran, after the training batches
    summary = json.loads((tmp_path / "speed/metrics.json").read_text())
    assert summary["train"]["images_per_second"] == 8.0


def test_xla_is_named_off_exactly_when_keras_turns_it_off_under_op_determinism():
    from tensorflow.python.framework.config import is_op_determinism_enabled

    base = load_params("base", PARAMS)
    cfg = load_params("train_detector", PARAMS)
    on = base.model_copy(update={"jit_compile": True})
    note = loop.xla_note(on, cfg.model_copy(update={"deterministic": True}), "train_detector")
    assert note == (
        "base.jit_compile is off while train_detector.deterministic is true (Keras runs no XLA"
        " under op determinism): set train_detector.deterministic: false to compile"
    )
    assert loop.xla_note(on, cfg.model_copy(update={"deterministic": False}), "x") is None
    assert loop.xla_note(base.model_copy(update={"jit_compile": False}), cfg, "x") is None
    # the premise, in this Keras: under op determinism a jit_compile=True model runs no XLA
    seeding.seed_everything(0, deterministic_ops=True)
    assert is_op_determinism_enabled()
    model = tiny_model()
    model.compile(optimizer="sgd", loss="mse", jit_compile=True)
    assert model.jit_compile is False
