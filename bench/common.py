"""Helpers the benchmarks share: a throw-away project directory and result rows."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from stages.shared.core.machine import cpu_info

ROOT = Path(__file__).resolve().parents[1]

# `make bench-smoke` (bench/smoke.py): each entry point once at toy size, in a copy of the
# tree: it runs, its figures mean nothing, and nothing committed is written.
SMOKE = os.environ.get("BENCH_SMOKE") == "1"


def toy(full, small):
    """`full` in a measurement, `small` in a smoke run."""
    return small if SMOKE else full


def project_params() -> dict:
    """The project's params.yaml as a dict (in a smoke run, with the tests' tiny settings)."""
    if SMOKE:
        from bench.project import tiny_params

        return tiny_params()
    return yaml.safe_load((ROOT / "params.yaml").read_text())


def edit_params(project: Path, edit: Callable[[dict], object]) -> None:
    """Change the params.yaml of a (throw-away) project: `edit` changes the loaded dict."""
    path = project / "params.yaml"
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@contextlib.contextmanager
def temp_project(params: dict, stages: list[tuple[Callable, list[str]]]) -> Iterator[Path]:
    """Run stage mains in a temporary directory with `params`; yield it as the cwd."""
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        try:
            Path("params.yaml").write_text(yaml.safe_dump(params))
            for main, argv in stages:
                main(argv)
            yield Path(tmp)
        finally:
            os.chdir(cwd)


def eval_report(project: Path, model: str) -> dict:
    """A model's whole test report in a project: `evaluate`'s detail with its headline."""
    import json

    folder = project / "reports/eval" / model
    return {**json.loads((folder / "detail.json").read_text()),
            **json.loads((folder / "metrics.json").read_text())}  # fmt: skip


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def row(figure: str, value: float, target: str = "-", holds: bool | None = None) -> dict:
    """One line of the results table."""
    verdict = "-" if holds is None else ("yes" if holds else "no")
    return {"figure": figure, "value": value, "target": target, "holds": verdict}


def run_measured(command: list[str], cwd: Path, env: dict | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of a command and everything it starts.

    A fresh Python parent runs it, so `RUSAGE_CHILDREN` holds this command's processes only.
    """
    probe = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "code = subprocess.run(sys.argv[1:]).returncode\n"
        "t = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(f'{t} {rss}', file=sys.stderr)\n"
        "sys.exit(code)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe, *command],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1", **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    seconds, rss = result.stderr.strip().splitlines()[-1].split()
    return float(seconds), float(rss)


def stage_command(module: str, *args: str) -> list[str]:
    """A stage as its own process (`run_measured` puts the project on PYTHONPATH)."""
    return [sys.executable, "-m", f"stages.{module}", *args]


def table(rows: list[dict]) -> str:
    lines = ["| figure | measured | target | holds |", "| --- | --- | --- | --- |"]
    lines += [f"| {r['figure']} | {r['value']} | {r['target']} | {r['holds']} |" for r in rows]
    return "\n".join(lines)


def write_results(rows: list[dict], meta: dict) -> None:
    Path("bench/results.json").write_text(json.dumps({**meta, "results": rows}, indent=2) + "\n")
    Path("bench/RESULTS.md").write_text(
        f"# Benchmark results\n\n{meta['date']}, {meta['machine']}; `make bench` took"
        f" {meta['minutes']} min. Ratios are measured in one run (see `bench/`).\n\n"
        + table(rows)
        + "\n"
    )


def vector_isa(flags: set[str]) -> str:
    """The widest x86 vector instruction set in a CPU's flags: oneDNN picks its kernels by it,
    so two machines that differ here train to other weights ("How much do the numbers move")."""
    for flag, name in (("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX")):
        if flag in flags:
            return name
    return "no AVX"


def machine() -> str:
    """CPU model and vector ISA, cores, memory and OS of this machine, in one line."""
    first = cpu_info()
    cpu = first.get("model name") or platform.processor() or platform.machine()
    if "flags" in first:
        cpu = f"{cpu} ({vector_isa(set(first['flags'].split()))})"
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return (
        f"{cpu}, {os.cpu_count()} cores, {memory:.0f} GiB RAM, no GPU used, {platform.platform()}"
    )


def stage_setup(model_name: str, **overrides) -> tuple:
    """(In a probe's process, cwd: a project after augment.) The training stage's own data
    and compiled model for `model_name`, with `overrides` over its params section:
    (model, task, cfg, size, training rows, data as `inputs.train_val_data` gives it)."""
    from stages.shared.data.manifest import input_size, read_manifest
    from stages.shared.params.sections import load_params
    from stages.shared.training import inputs, loop

    if model_name == "classifier":
        from stages.train_classifier import Classifier as Task
    else:
        from stages.train_detector import Detector as Task
    task_name = "classification" if model_name == "classifier" else "detection"
    cfg, base = load_params(f"train_{model_name}"), load_params("base")
    cfg = cfg.model_copy(update=overrides)
    manifest = f"data/augmented/{task_name}/manifest.csv"
    frame = read_manifest(Path(manifest), task_name)
    size = input_size(getattr(base.image_size, task_name), frame)
    seed = loop.training_seed(base, cfg)
    task = Task(cfg, frame)
    rows, data = inputs.train_val_data(
        frame, manifest, task.targets, size, cfg, seed, cfg.batch_size
    )
    model = task.build(size)
    task.compile(model, cfg.learning_rate, False)
    return model, task, cfg, size, rows, data


def timed_epoch(model, data: dict) -> float:
    """Seconds of one epoch of `data`'s training stream, after a traced warm-up of 2 calls."""
    calls = getattr(model, "steps_per_execution", 1)
    warm = min(2 * calls, data["steps"])  # whole calls: `calls` divides the epoch
    model.fit(data["train"](range(1)), steps_per_epoch=warm, epochs=1, verbose=0)
    timer = EpochTimer()  # the epoch alone, without fit's own set-up
    model.fit(data["train"](range(1)), epochs=1, verbose=0, callbacks=[timer])
    return timer.seconds[0]


def stage_epoch(model_name: str, **overrides) -> tuple:
    """The training stage's model for `model_name` (`stage_setup`) and one timed epoch of it
    after a traced warm-up: (model, task, cfg, size, training rows, seconds)."""
    model, task, cfg, size, rows, data = stage_setup(model_name, **overrides)
    return model, task, cfg, size, rows, timed_epoch(model, data)


class EpochTimer:
    """Wall time of each epoch (a Keras callback, built lazily so TF loads only when used)."""

    def __new__(cls):
        import keras

        class Timer(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.seconds = []

            def on_epoch_begin(self, epoch, logs=None):
                self.started = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                self.seconds.append(time.perf_counter() - self.started)

        return Timer()
