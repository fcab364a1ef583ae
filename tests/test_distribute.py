"""distribute.py and the training stages under tf.distribute: mirrored on logical CPUs, and
two local multi-worker processes."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from stages import augment, sample, split
from stages.shared.core.cli import UserError
from stages.shared.training import distribute
from tests.conftest import ROOT, TINY_PARAMS, write_params


def test_batch_and_learning_rate_scale_with_replicas():
    assert distribute.scaled(16, 1e-3, 4, scale_rate=False) == (64, 1e-3)
    assert distribute.scaled(16, 1e-3, 4, scale_rate=True) == (64, 4e-3)


def test_only_the_chief_writes_outputs(monkeypatch):
    paths = {"manifest": "data/m.csv", "model": "models/c.keras", "live_dir": "reports/train/c"}
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief() and distribute.worker_paths(paths) == paths
    cluster = {"worker": ["localhost:1", "localhost:2"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 1}})
    )
    assert not distribute.is_chief()
    moved = distribute.worker_paths(paths)
    assert moved["manifest"] == "data/m.csv"  # inputs stay
    assert moved["model"] == ".work/worker-1/models/c.keras"
    assert moved["live_dir"] == ".work/worker-1/reports/train/c"
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": 0}})
    )
    assert distribute.is_chief()
    with_chief = {**cluster, "chief": ["localhost:3"]}
    monkeypatch.setenv(
        "TF_CONFIG", json.dumps({"cluster": with_chief, "task": {"type": "worker", "index": 0}})
    )
    assert not distribute.is_chief()


def test_a_malformed_tf_config_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{'cluster': ")
    with pytest.raises(UserError, match=r"TF_CONFIG: not valid JSON"):
        distribute.is_chief()


def test_the_multi_worker_patches_refuse_another_keras(monkeypatch):
    import keras

    monkeypatch.setattr(keras, "__version__", "3.16.0")
    with pytest.raises(
        UserError,
        match=r"multi_worker patches internals of Keras 3\.15\.x .* this is Keras 3\.16\.0"
        r" — install the Keras of requirements\.txt, or use strategy: mirrored on one machine$",
    ):
        distribute.patch_keras_for_multi_worker()


def test_multi_worker_without_tf_config_is_one_clear_line(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(UserError, match=r"multi_worker needs the TF_CONFIG environment variable"):
        distribute.make_strategy("multi_worker")


# --- training under a strategy: separate processes (devices are fixed once TF starts) ---


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A project directory with sampled, split and augmented tiny data for both tasks."""
    work = tmp_path_factory.mktemp("distribute")
    cwd = os.getcwd()
    os.chdir(work)
    try:
        # Faces in every frame: the localization loss averages over the objects of each
        # replica's half batch, which matches the whole batch's average only when every
        # image has one (with negatives, it would be a real, not a numerical, difference).
        detection = {**TINY_PARAMS["sample"]["detection"], "negative_fraction": 0.0}
        write_params(
            work, **{**TINY_PARAMS, "sample": {**TINY_PARAMS["sample"], "detection": detection}}
        )
        for task in ("classification", "detection"):
            for stage in (sample, split, augment):
                stage.main([task])
    finally:
        os.chdir(cwd)
    return work


def train(work: Path, stage: str, env_extra: dict | None = None, **base) -> subprocess.Popen:
    """Start a training stage with `base.distribute` (and the batch) set."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1", **(env_extra or {})}
    return subprocess.Popen(
        [sys.executable, "-m", f"stages.{stage}"],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def set_run(
    work: Path, stage: str, batch: int, strategy: str, logical_cpus: int = 0, **extra
) -> None:
    path = work / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["base"]["distribute"] = {
        "strategy": strategy,
        "logical_cpus": logical_cpus,
        "scale_learning_rate": False,
    }
    params[stage]["batch_size"] = batch
    params[stage]["epochs"] = 2
    params[stage].update(extra)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def finished(process: subprocess.Popen) -> str:
    output = process.communicate(timeout=600)[0]
    assert process.returncode == 0, output[-4000:]
    assert "Traceback" not in output
    return output


def train_losses(work: Path, live: str) -> list[float]:
    return pd.read_csv(work / f"reports/train/{live}/plots/metrics/train/loss.tsv", sep="\t")[
        "loss"
    ].tolist()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stage", "live", "task", "extra"),
    [
        # The classifier without BatchNorm (simple_cnn), for the reason given for the detector.
        ("train_classifier", "classifier", "classification", {"architecture": "simple_cnn"}),
        # A frozen backbone keeps its BatchNorm in inference mode: in training mode each
        # replica would normalise its half batch with its own statistics, a real difference
        # from one device that would hide a wrongly scaled gradient in the custom train_step.
        ("train_detector", "detector", "detection", {"trainable_backbone": False}),
    ],
)
def test_mirrored_on_two_cpus_matches_one_device(prepared, stage, live, task, extra):
    # One batch of the whole train split: the data order (which tf.data's shuffle does not
    # keep across strategies) cannot matter. SGD, unlike Adam, is not invariant to the scale
    # of the gradient, so a gradient summed over replicas without the 1/replicas share of
    # the loss would show as a different second epoch.
    rows = pd.read_csv(prepared / f"data/augmented/{task}/manifest.csv")
    batch = int((rows["split"] == "train").sum())
    assert batch % 2 == 0  # two replicas of half the batch each
    # The output layer starts at the prior (kernel 0), so the first step moves only that
    # layer; three steps at a high rate move the loss far enough to see the gradient's scale.
    extra = {**extra, "dropout": 0.0, "optimizer": "sgd", "learning_rate": 0.5, "epochs": 3}
    set_run(prepared, stage, batch, "auto", **extra)
    finished(train(prepared, stage))
    single = train_losses(prepared, live)
    set_run(prepared, stage, batch // 2, "mirrored", logical_cpus=2, **extra)  # same global batch
    output = finished(train(prepared, stage))
    assert "training on 2 replica(s): mirrored (MirroredStrategy)" in output
    mirrored = train_losses(prepared, live)
    assert len(single) == len(mirrored) == 3
    steps = [single[0] - single[1], single[0] - single[2]]
    assert min(abs(step) for step in steps) > 1e-4, single  # the steps changed the model
    # Same examples, same global batch, same start: the same run up to float summation order,
    # measured on what the steps changed (a gradient scaled ×2 moves it ×2).
    assert [mirrored[0] - mirrored[1], mirrored[0] - mirrored[2]] == pytest.approx(
        steps, rel=2e-2
    ), (single, mirrored)


@pytest.mark.slow
def test_on_several_replicas_a_call_runs_one_step(prepared):
    # Keras 3's loop of several steps a call leaves a placeholder unfed under MirroredStrategy
    # (InvalidArgumentError): the stage runs one step a call there, and says so for a number.
    set_run(prepared, "train_classifier", 4, "mirrored", logical_cpus=2, architecture="simple_cnn")
    path = prepared / "params.yaml"
    params = yaml.safe_load(path.read_text())
    params["base"]["steps_per_execution"] = 2
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    output = finished(train(prepared, "train_classifier"))
    assert "base.steps_per_execution: 2 runs as 1 on several replicas" in output
    speed = json.loads((prepared / "reports/throughput/classifier/metrics.json").read_text())
    assert speed["steps_per_execution"] == {"steps": 1}
    params["base"]["steps_per_execution"] = "auto"  # back for the module's other tests
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_local_workers_train_one_run_and_only_the_chief_writes(prepared):
    set_run(prepared, "train_classifier", 8, "multi_worker")
    workers = [f"localhost:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        env = {"TF_CONFIG": json.dumps(config)}
        processes.append(train(prepared, "train_classifier", env))
    outputs = [finished(process) for process in processes]
    for output in outputs:
        assert "training on 2 replica(s): multi_worker" in output
    meta = json.loads((prepared / "models/classifier.json").read_text())
    assert meta["epochs_run"] == 2 and (prepared / "models/classifier.keras").exists()
    assert (prepared / ".work/worker-1/models/classifier.keras").exists()
    # Both workers stepped through the same synchronous run: the same loss in their logs.
    chief = train_losses(prepared, "classifier")
    other = pd.read_csv(
        prepared / ".work/worker-1/reports/train/classifier/plots/metrics/train/loss.tsv", sep="\t"
    )["loss"].tolist()
    assert chief == pytest.approx(other, rel=1e-6)


@pytest.mark.parametrize(
    ("choice", "on_cpu", "on_gpu"),
    [
        ("auto", "float32", "mixed_float16"),
        ("float32", "float32", "float32"),
        ("mixed_bfloat16", "mixed_bfloat16", "mixed_bfloat16"),
        ("mixed_float16", "mixed_float16", "mixed_float16"),
    ],
)
def test_each_precision_choice_sets_its_policy_and_auto_picks_by_the_device(
    choice, on_cpu, on_gpu, caplog
):
    import keras
    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    try:
        with caplog.at_level(logging.WARNING):
            policy = distribute.set_precision(choice)
        assert policy == (on_gpu if gpu else on_cpu) == keras.mixed_precision.global_policy().name
        warned = "mixed_float16 on a CPU is slow" in caplog.text
        assert warned == (policy == "mixed_float16" and not gpu)
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_an_old_true_or_false_precision_names_the_choices(workdir):
    from stages.shared.core.config import BaseParams, load_params

    write_params(workdir, base={"mixed_precision": True})
    with pytest.raises(UserError, match=r"base\.mixed_precision.*'auto'.*'mixed_bfloat16'"):
        load_params(BaseParams)


@pytest.mark.float16
def test_detector_trains_under_mixed_float16_with_loss_scaling():
    """What a GPU run does (float16 compute, float32 outputs, scaled loss), run on the CPU."""
    import keras
    import numpy as np

    from stages.shared.models.detectors import FaceTracker

    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = FaceTracker("plain_cnn", 32, head_width=8)
        model(np.zeros((1, 32, 32, 3), "float32"))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), localization="giou")
        assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
        rng = np.random.default_rng(0)
        images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
        targets = (
            np.ones((8, 1), "float32"),
            np.tile([[0.1, 0.2, 0.6, 0.7]], (8, 1)).astype("float32"),
        )
        before = [w.numpy().copy() for w in model.box_head.trainable_weights]
        history = model.fit(images, targets, batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])
        after = model.box_head.trainable_weights
        assert any(not np.allclose(b, a.numpy()) for b, a in zip(before, after, strict=True))
        presence, box = model.predict_on_batch(images)
        assert presence.dtype == box.dtype == np.float32  # float32 outputs for stable losses
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_on_one_cpu_auto_is_the_default_strategy_and_others_are_named():
    import keras
    import tensorflow as tf

    assert distribute.make_strategy("auto") is tf.distribute.get_strategy()
    with pytest.raises(UserError, match=r"^unknown strategy 'ring'; choices: auto, mirrored, "):
        distribute.make_strategy("ring")
    assert distribute.set_precision("auto") == "float32"  # no GPU here: float16 would be slow
    assert keras.mixed_precision.global_policy().name == "float32"


def test_a_tf_config_that_is_not_an_object_is_ignored_and_objects_are_kept(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "[1, 2]")
    assert distribute.tf_config() == {} and distribute.task_of_this_worker() == ("chief", 0)
    cluster = {"worker": ["a:1", "b:2"]}
    config = {"cluster": cluster, "task": {"type": "worker", "index": 1}}
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))
    guard = object()
    moved = distribute.worker_paths({"model": "m.keras", "guard": guard})
    assert moved == {"model": ".work/worker-1/m.keras", "guard": guard}  # objects stay


# --- the multi-worker patches and the device set-up, in this process ---


class Multi:
    """A stand-in for MultiWorkerMirroredStrategy: records its reductions, and gives the
    first local value of a per-replica batch."""

    def __init__(self):
        self.reduced = []

    def reduce(self, op, value, axis):
        self.reduced.append((op, value, axis))
        return f"mean of {value}"

    def experimental_local_results(self, value):
        return (f"local {value}", f"remote {value}")


@pytest.fixture
def patched(monkeypatch):
    """Keras' trainer with recording stand-ins for the two functions the patch wraps, and
    the patch applied; everything is put back after the test."""
    from keras.src.backend.tensorflow import trainer

    calls = []
    monkeypatch.setattr(
        trainer, "reduce_per_replica", lambda v, s, r: calls.append(("reduce", v, r)) or "orig"
    )
    monkeypatch.setattr(
        trainer.TensorFlowTrainer,
        "_maybe_symbolic_build",
        lambda self, iterator=None, data_batch=None: calls.append(("build", iterator, data_batch)),
    )
    monkeypatch.setattr(
        trainer, "_collective_all_reduce_multi_worker", lambda s: isinstance(s, Multi)
    )
    # as in a process that never patched: no mark at all (put back as it was afterwards)
    monkeypatch.setattr(trainer, "_multi_worker_patched", False, raising=False)
    monkeypatch.delattr(trainer, "_multi_worker_patched")
    distribute.patch_keras_for_multi_worker()
    return trainer, calls


def test_under_multi_worker_scalar_logs_are_averaged_without_an_axis(patched):
    trainer, calls = patched
    strategy = Multi()
    logs = {"loss": 1.5, "accuracy": 0.5}
    for reduction in ("auto", "mean"):
        assert trainer.reduce_per_replica(logs, strategy, reduction) == {
            "loss": "mean of 1.5",
            "accuracy": "mean of 0.5",
        }
    assert sorted(strategy.reduced) == [("MEAN", 0.5, None)] * 2 + [("MEAN", 1.5, None)] * 2
    assert calls == []
    # any other reduction, or another strategy: Keras' own
    assert trainer.reduce_per_replica(logs, strategy, "concat") == "orig"
    assert trainer.reduce_per_replica(logs, object(), "mean") == "orig"
    assert calls == [("reduce", logs, "concat"), ("reduce", logs, "mean")]


def test_under_multi_worker_the_model_is_built_from_a_local_batch(patched):
    trainer, calls = patched
    model = type("Model", (), {"distribute_strategy": Multi()})()
    iterator = [(0, 0, iter([{"image": "batch0"}, {"image": "batch1"}]))]
    trainer.TensorFlowTrainer._maybe_symbolic_build(model, iterator)
    assert calls == [("build", None, {"image": "local batch0"})]
    # without an iterator, or under another strategy: Keras' own, with what it was given
    calls.clear()
    trainer.TensorFlowTrainer._maybe_symbolic_build(model, None, "given")
    model.distribute_strategy = object()
    trainer.TensorFlowTrainer._maybe_symbolic_build(model, iterator, "given")
    assert calls == [("build", None, "given"), ("build", iterator, "given")]


def test_the_patches_apply_once(patched):
    trainer, calls = patched
    reduce, build = trainer.reduce_per_replica, trainer.TensorFlowTrainer._maybe_symbolic_build
    distribute.patch_keras_for_multi_worker()  # a second strategy in the same process
    assert trainer.reduce_per_replica is reduce
    assert trainer.TensorFlowTrainer._maybe_symbolic_build is build
    assert trainer.reduce_per_replica({"x": 1}, object(), "mean") == "orig"
    assert calls == [("reduce", {"x": 1}, "mean")]  # wrapped once, not twice


def test_multi_worker_patches_keras_then_builds_the_strategy(monkeypatch):
    import tensorflow as tf

    order = []
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["a:1"]}}))
    monkeypatch.setattr(distribute, "patch_keras_for_multi_worker", lambda: order.append("patch"))
    monkeypatch.setattr(
        tf.distribute, "MultiWorkerMirroredStrategy", lambda: order.append("strategy") or "mwms"
    )
    assert distribute.make_strategy("multi_worker") == "mwms" and order == ["patch", "strategy"]


def test_mirrored_on_a_cpu_runs_a_replica_per_logical_cpu():
    import tensorflow as tf

    strategy = distribute.make_strategy("mirrored")
    cpus = [device.name for device in tf.config.list_logical_devices("CPU")]
    assert strategy.num_replicas_in_sync == len(cpus)
    assert [tf.DeviceSpec.from_string(d).device_type for d in strategy.extended.worker_devices] == [
        "CPU"
    ] * len(cpus)


def test_setup_sets_precision_and_strategy_and_splits_the_cpu_only_when_asked(caplog):
    import keras
    import tensorflow as tf

    from stages.shared.core.config import BaseParams

    tf.config.list_logical_devices("CPU")  # TensorFlow has started: devices are fixed
    base = BaseParams.model_validate(yaml.safe_load((ROOT / "params.yaml").read_text())["base"])
    one = base.model_copy(update={"mixed_precision": "mixed_bfloat16"})
    try:
        with caplog.at_level(logging.INFO, logger=distribute.__name__):
            strategy = distribute.setup(one)
        assert strategy is tf.distribute.get_strategy()
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        assert "training on 1 replica(s): auto (_DefaultDistributionStrategy)" in caplog.text
    finally:
        keras.mixed_precision.set_global_policy("float32")

    def cpus(count: int):
        return base.model_copy(
            update={"distribute": base.distribute.model_copy(update={"logical_cpus": count})}
        )

    assert distribute.setup(cpus(1)) is tf.distribute.get_strategy()  # one device: no split
    with pytest.raises(RuntimeError, match=r"^base\.distribute\.logical_cpus must be set up first"):
        distribute.setup(cpus(2))


def test_with_gpus_auto_mirrors_them_in_mixed_float16(gpus, monkeypatch, caplog):
    import keras
    import tensorflow as tf

    gpus.update({"gpu0": {}, "gpu1": {}})
    mirrored = []
    monkeypatch.setattr(
        tf.distribute, "MirroredStrategy", lambda devices=None: mirrored.append(devices) or "m"
    )
    try:
        with caplog.at_level(logging.WARNING):
            assert distribute.set_precision("auto") == "mixed_float16"
            assert distribute.set_precision("mixed_float16") == "mixed_float16"
        assert "slow" not in caplog.text  # float16 units: no warning
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert distribute.make_strategy("auto") == "m" and mirrored == [None]
    assert distribute.make_strategy("mirrored") == "m" and mirrored == [None, None]  # the GPUs
    del gpus["gpu1"]
    assert distribute.make_strategy("auto") is tf.distribute.get_strategy()  # one GPU
    gpus.clear()
    distribute.make_strategy("mirrored")  # no GPU: the logical CPUs, by name
    assert mirrored[-1] == [d.name for d in tf.config.list_logical_devices("CPU")]
