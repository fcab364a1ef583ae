"""What each speed switch of training costs and gives, against the default in one run.

For each model, on the default pipeline's sample (split and augment once, then each lever's
full default training and its evaluation, one after the other):

- `deterministic: false` (TensorFlow op determinism off),
- `base.jit_compile: true` with `deterministic: false` (XLA on the CPU; Keras compiles nothing
  while op determinism is on, so XLA alone would measure nothing),
- `base.mixed_precision: mixed_bfloat16` (where the CPU has AVX512-BF16 or AMX),
- the batch size ×4 with the learning rate ×4 (the linear rule),

each lever's training speed is the median epoch of the stage's own throughput log
(reports/throughput/<model>: images/s from the epoch's start to its last training batch),
as a ratio to the default's; MFU is that epoch's model FLOP/s over this machine's measured
float32 peak (bench.mfu.peak; the bfloat16 lever also against the bfloat16 peak). The test
metrics come with their 95 % intervals; a lever "keeps the metrics" when each of its
headline metrics falls in the default run's interval.

    python -m bench.levers                      # (make bench runs it with the others)
    python -m bench.levers --only jit_compile   # the default and the levers named so, again

Writes bench/LEVERS.md (the table, dated, with the machine) and bench/levers.json.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.common import (
    ROOT,
    cpu_info,
    eval_report,
    machine,
    project_params,
    row,
    run_measured,
    stage_command,
    table,
    toy,
)
from bench.project import dvc, new_pipeline_repo

MODELS = {"classifier": "classification", "detector": "detection"}
TARGET_MFU = 0.5
PAYS = 1.05  # a lever pays when its median epoch is at least this much faster


def levers(params: dict, model: str, bf16: bool) -> dict[str, dict[str, object]]:
    """name → the params it sets (dotted keys), the default first."""
    section = f"train_{model}"
    batch, rate = params[section]["batch_size"], params[section]["learning_rate"]
    found: dict[str, dict[str, object]] = {
        "default": {},
        # The default runs several steps a call (auto): against one, the same model, faster?
        "steps_per_execution: 1": {"base.steps_per_execution": 1},
        "deterministic: false": {f"{section}.deterministic": False},
        "jit_compile: true, deterministic: false": {
            "base.jit_compile": True,
            f"{section}.deterministic": False,
        },
    }
    if bf16:
        found["mixed_precision: mixed_bfloat16"] = {"base.mixed_precision": "mixed_bfloat16"}
    found[f"batch_size {4 * batch}, learning_rate ×4"] = {
        f"{section}.batch_size": 4 * batch,
        f"{section}.learning_rate": 4 * rate,
    }
    return found


def set_dotted(params: dict, changes: dict[str, object]) -> None:
    for key, value in changes.items():
        *path, last = key.split(".")
        target = params
        for part in path:
            target = target[part]
        target[last] = value


def train_and_score(project: Path, model: str, changes: dict, defaults: dict) -> dict:
    """One full training of `model` with `changes` over the defaults, then its evaluation."""
    params = copy.deepcopy(defaults)
    set_dotted(params, changes)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    seconds, _ = run_measured(stage_command(f"train_{model}"), project)
    run_measured(stage_command("evaluate", model), project)
    speed = json.loads((project / "reports/throughput" / model / "metrics.json").read_text())
    meta = json.loads((project / "models" / f"{model}.json").read_text())
    report = eval_report(project, model)
    from stages.shared.evaluation.metrics import HEADLINES

    return {
        "train_s": seconds,
        "epochs_run": meta["epochs_run"],
        "images_per_second": speed["median"]["images_per_second"],
        "gflops": speed["median"]["model_gflops_per_second"],
        "metrics": {key: report[key] for key in HEADLINES[model]},
        "ci95": {key: report["ci95"][key] for key in HEADLINES[model]},
    }


def outside(result: dict, default: dict) -> list[str]:
    """The headline metrics of `result` outside the default's 95 % interval."""
    return [
        key
        for key, value in result["metrics"].items()
        if value is not None
        and not default["ci95"][key]["low"] <= value <= default["ci95"][key]["high"]
    ]


def within(result: dict, default: dict) -> bool:
    """Every headline metric of `result` inside the default's 95 % interval."""
    return not outside(result, default)


def metrics_text(result: dict) -> str:
    return ", ".join(
        f"{key} {value:.3f} ({result['ci95'][key]['low']:.3f}–{result['ci95'][key]['high']:.3f})"
        for key, value in result["metrics"].items()
    )


def run(only: str | None = None) -> list[dict]:
    """Every lever (or the default and those whose name holds `only`, merged into the last
    bench/levers.json), then bench/LEVERS.md."""
    from bench.mfu import peak

    only = only or toy(None, "steps_per_execution")  # a smoke run: the default and one more
    flags = set(cpu_info().get("flags", "").split())
    bf16 = bool(flags & {"avx512_bf16", "amx_bf16"})
    peaks = {"float32": peak("float32")}
    if bf16:
        peaks["bfloat16"] = peak("bfloat16")
    defaults = project_params()
    found: dict[str, dict[str, dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        project = new_pipeline_repo(Path(tmp) / "project", defaults)
        dvc("repro", "-q", "augment@classification", "augment@detection", cwd=project)
        for model in MODELS:
            found[model] = {}
            for name, changes in levers(defaults, model, bf16).items():
                if only and name != "default" and only not in name:
                    continue
                result = train_and_score(project, model, changes, defaults)
                # a ratio is to the default of the same run
                result["default_images_per_second"] = found[model].get("default", result)[
                    "images_per_second"
                ]
                found[model][name] = result
                print(f"levers: {model} {name}: {json.dumps(result)}", flush=True)
    if only:  # the other levers as last measured, each with its own run's default
        last = json.loads((ROOT / "bench/levers.json").read_text())["found"]
        found = {
            model: {
                name: found[model].get(name) or last[model][name]
                for name in levers(defaults, model, bf16)
                if name in found[model] or name in last[model]
            }
            for model in found
        }
    record = {"date": time.strftime("%Y-%m-%d"), "peaks": peaks, "found": found}
    (ROOT / "bench/levers.json").write_text(json.dumps(record, indent=1) + "\n")
    return write(found, peaks)


def write(found: dict, peaks: dict) -> list[dict]:
    """bench/LEVERS.md from the measurements; its rows."""
    rows = rows_of(found, peaks)
    (ROOT / "bench/LEVERS.md").write_text(
        "# Speed switches of training\n\n"
        f"{time.strftime('%Y-%m-%d')}, {machine()}; written by `python -m bench.levers` (each"
        " lever a full default training of the sample, one after the other; ratio = median"
        " epoch images/s over the default's of the same run: a lever re-measured alone with"
        " `--only` carries its own run's default).\n\n" + table(rows) + "\n"
    )
    return rows


def rows_of(found: dict, peaks: dict) -> list[dict]:
    rows = [row("float32 peak (bench.mfu.peak), GFLOP/s", round(peaks["float32"] / 1e9, 1))]
    if "bfloat16" in peaks:
        rows.append(row("bfloat16 peak, GFLOP/s", round(peaks["bfloat16"] / 1e9, 1)))
    else:
        rows.append(row("mixed_bfloat16", "not measured: no AVX512-BF16 or AMX on this CPU"))
    for model, results in found.items():
        default = results["default"]
        best = ("default", default)
        for name, result in results.items():
            ratio = result["images_per_second"] / result["default_images_per_second"]
            mfu = result["gflops"] * 1e9 / peaks["float32"]
            kept = within(result, default)
            if ratio >= PAYS and kept and result["gflops"] > best[1]["gflops"]:
                best = (name, result)
            bf16_mfu = ""
            if "bfloat16" in name and "bfloat16" in peaks:
                bf16_mfu = f", {100 * result['gflops'] * 1e9 / peaks['bfloat16']:.1f} % of bf16"
            off = outside(result, default)
            note = f"; outside the default's interval: {', '.join(off)}" if off else ""
            rows.append(
                row(
                    f"{model}: {name} — median epoch {result['images_per_second']:.0f} images/s,"
                    f" MFU {100 * mfu:.1f} %{bf16_mfu}; {result['epochs_run']} epochs in"
                    f" {result['train_s']:.0f} s; test {metrics_text(result)}{note}",
                    f"{ratio:.2f}×",
                    "keeps the metrics" if name != "default" else "-",
                    kept if name != "default" else None,
                )
            )
        mfu = best[1]["gflops"] * 1e9 / peaks["float32"]
        rows.append(
            row(
                f"{model}: training MFU with what pays ({best[0]})",
                f"{100 * mfu:.1f} %",
                f">= {100 * TARGET_MFU:.0f} %",
                mfu >= TARGET_MFU,
            )
        )
        if mfu < TARGET_MFU:  # what would reach it, and what it costs
            name, top = max(results.items(), key=lambda item: item[1]["gflops"])
            rows.append(
                row(
                    f"{model}: what stops it — the fastest lever ({name}) moves"
                    f" {', '.join(outside(top, default)) or 'no metric'} out of the default's"
                    " interval; bench/MFU.md splits a step into its fixed and per-image cost",
                    f"{100 * top['gflops'] * 1e9 / peaks['float32']:.1f} %",
                )
            )
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:2] == ["--render"]:  # LEVERS.md again from bench/levers.json
        saved = json.loads((ROOT / "bench/levers.json").read_text())
        print(table(write(saved["found"], saved["peaks"])))
    else:
        print(table(run(sys.argv[2] if sys.argv[1:2] == ["--only"] else None)))
