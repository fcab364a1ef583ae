"""How much the test metrics move when nothing that should matter changes: the training seed,
a repeated run, oneDNN on or off, the CPU instruction set oneDNN may use, the thread count.

`make noise-floor` (not part of `make bench`: about 80 minutes on 2 cores). Builds the default
sample once (split and augment at `base.seed`, so the test split is fixed), then trains and
evaluates the models with the default params under each variant below, each in its own
process. The detector's ten-minute run is repeated once; the kernel variants, which ask
whether a setting removes the CPU model from the result, run on the classifier (a minute
each). Writes bench/noise_floor.json and bench/NOISE_FLOOR.md.

- seeds: `train_<model>.seed` 1..SEEDS (initialisation, batch order, dropout);
- repeat: the first seed again, same settings: is a run reproducible on this machine?
- onednn_off: TF_ENABLE_ONEDNN_OPTS=0, TensorFlow's own (Eigen) kernels instead of oneDNN's;
- isa_avx: ONEDNN_MAX_CPU_ISA=AVX, oneDNN limited to AVX as on an older CPU: a stand-in for
  "another CPU model", since oneDNN picks its kernels from the CPU it finds;
- onednn_off_isa_avx, onednn_off_one_thread: does turning oneDNN off make the ISA and the
  thread count irrelevant (a candidate setting for equal results across CPU models)?
"""

from __future__ import annotations

import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.__main__ import machine
from bench.common import ROOT, SMOKE, edit_params, project_params, toy

SEEDS = toy(5, 2)
METRICS = {
    "classifier": ("accuracy", "macro_f1"),
    "detector": ("ap50", "ap50_95", "mean_iou", "presence_accuracy"),
}
BOTH, CLASSIFIER = tuple(METRICS), ("classifier",)
VARIANTS = {  # name: (environment, models)
    "repeat": ({}, BOTH),
    "onednn_off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, CLASSIFIER),
    "isa_avx": ({"ONEDNN_MAX_CPU_ISA": "AVX"}, CLASSIFIER),
    "onednn_off_isa_avx": (
        {"TF_ENABLE_ONEDNN_OPTS": "0", "ONEDNN_MAX_CPU_ISA": "AVX"},
        CLASSIFIER,
    ),
    "onednn_off_one_thread": (
        {
            "TF_ENABLE_ONEDNN_OPTS": "0",
            "TF_NUM_INTRAOP_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "1",
        },
        CLASSIFIER,
    ),
}
if SMOKE:  # one setting: the same code path as the others
    VARIANTS = {"onednn_off": VARIANTS["onednn_off"]}


def stage(root: Path, module: str, *args: str, env: dict | None = None) -> float:
    """Run a stage script as its own process; its wall seconds."""
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", f"stages.{module}", *args],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TQDM_DISABLE": "1", **(env or {})},
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{module} {args} failed:\n{result.stderr[-3000:]}")
    return time.perf_counter() - started


def train_and_evaluate(root: Path, seed: int, env: dict, models=BOTH) -> dict:
    """The models trained with `seed` under `env`; their test metrics and seconds."""

    def set_seeds(params: dict) -> None:
        for model in METRICS:
            params[f"train_{model}"]["seed"] = seed

    edit_params(root, set_seeds)
    found = {}
    for model in models:
        seconds = stage(root, f"train_{model}", env=env)
        stage(root, "evaluate", model, env=env)
        scores = json.loads((root / f"reports/eval/{model}/metrics.json").read_text())
        meta = json.loads((root / f"models/{model}.json").read_text())
        found[model] = {
            **{k: scores[k] for k in METRICS[model]},
            "epochs_run": meta["epochs_run"],
            "train_seconds": round(seconds, 1),
            "weights_md5": hashlib.md5((root / f"models/{model}.keras").read_bytes()).hexdigest(),
        }
    return found


def summarise(runs: list[dict]) -> dict:
    """Per model and metric: mean, sample standard deviation, min and max over runs."""
    table = {}
    for model, keys in METRICS.items():
        for key in keys:
            values = [run[model][key] for run in runs]
            table[f"{model} {key}"] = {
                "mean": round(statistics.mean(values), 4),
                "sd": round(statistics.stdev(values), 4),
                "min": min(values),
                "max": max(values),
            }
    return table


def largest_change(one: dict, two: dict) -> dict:
    """Largest absolute metric difference per model, and whether the weights are identical."""
    return {
        model: {
            "max_abs_metric_difference": round(
                max(abs(one[model][k] - two[model][k]) for k in keys), 4
            ),
            "identical_weights": one[model]["weights_md5"] == two[model]["weights_md5"],
            "time_ratio": round(two[model]["train_seconds"] / one[model]["train_seconds"], 2),
        }
        for model, keys in METRICS.items()
        if model in two
    }


def report(result: dict) -> str:
    """NOISE_FLOOR.md."""
    lines = [
        "# How much the numbers move",
        "",
        f"{result['date']}, {result['machine']}; `make noise-floor` took {result['minutes']} min."
        f" Default params, one fixed test split; {SEEDS} training seeds.",
        "",
        "| metric | mean | sd | min | max |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, row in result["seeds"].items():
        lines.append(f"| {name} | {row['mean']} | {row['sd']} | {row['min']} | {row['max']} |")
    lines += [
        "",
        "| variant (vs seed 1, default settings) | model | largest metric change"
        " | identical weights | training time ratio |",
        "| --- | --- | --- | --- | --- |",
    ]
    for variant, models in result["variants"].items():
        for model, row in models.items():
            lines.append(
                f"| {variant} | {model} | {row['max_abs_metric_difference']}"
                f" | {'yes' if row['identical_weights'] else 'no'} | {row['time_ratio']} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "params.yaml").write_text(yaml.safe_dump(project_params(), sort_keys=False))
        for task in ("classification", "detection"):
            for module in ("sample", "split", "augment"):
                stage(root, module, task)
        runs = []
        for seed in range(1, SEEDS + 1):
            runs.append(train_and_evaluate(root, seed, {}))
            print(f"seed {seed}: {runs[-1]}", flush=True)
        variants = {}
        for name, (env, models) in VARIANTS.items():
            other = train_and_evaluate(root, 1, env, models)
            variants[name] = largest_change(runs[0], other)
            print(f"{name}: {other} → {variants[name]}", flush=True)
    result = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "minutes": round((time.perf_counter() - started) / 60, 1),
        "runs": runs,
        "seeds": summarise(runs),
        "variants": variants,
    }
    Path("bench/noise_floor.json").write_text(json.dumps(result, indent=2) + "\n")
    Path("bench/NOISE_FLOOR.md").write_text(report(result))
    print(report(result))


if __name__ == "__main__":
    main()
