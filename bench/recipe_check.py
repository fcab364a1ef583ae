"""Do the default params hold on data they were not tuned on?

`make recipe-check` (not part of `make test` or `make bench`). Builds the datasets of
`bench/recipe_data.py` from photographs that ship inside installed packages, then, for each
dataset and for the embedded sample, makes a fresh git + DVC project with the pipeline's code
and the committed `params.yaml` (only `data.<task>` and the split's grouping changed: a user
pointing the pipeline at their folder does the same) and runs `dvc repro evaluate@<model>`,
the real pipeline: split, augment, training, evaluation. The classification sets are also
fed to the hand-written baseline of `bench/recipe_baseline.py` on the same split.

A detection dataset is trained SEEDS times (default 3: the base seed, then
`train_detector.seed` 1, 2, ...; the split and the augmented images stay the same): on a few
hundred frames one training run moves AP50 by up to 0.09 from the next, so a target holds
when the mean over the seeds reaches it. The classifier is checked on the base seed.

Prints a table of the test metrics with `evaluate`'s 95 % intervals (the base seed's run),
the seeds' mean and range, the targets, and the wall time; writes bench/recipe_check.json and
bench/RECIPE_CHECK.md.

    make recipe-check [ONLY=textures,coins] [SEEDS=3]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from bench.__main__ import machine
from bench.common import ROOT, edit_params, eval_report, project_params
from bench.project import new_pipeline_repo
from bench.recipe_data import GROUP_PATTERNS, MAKERS, TASKS

WORK = ROOT / ".work" / "recipe-check"
SAMPLE_TASKS = {"sample-digits": "classification", "sample-faces": "detection"}
MODEL = {"classification": "classifier", "detection": "detector"}
TARGETS = {  # metric: lowest accepted value (classification also: >= the baseline)
    "classification": {"accuracy": 0.95},
    "detection": {"ap50": 0.90, "mean_iou": 0.72},
}
# Small objects among look-alikes: boxes held tighter, and presence must beat saying
# "present" every time (20 % of its frames are negatives) by 0.10.
DATASET_TARGETS = {
    "small-faces": {"ap50": 0.90, "mean_iou": 0.75, "presence_over_baseline": 0.10},
}


def targets_of(name: str, task: str) -> dict[str, float]:
    return DATASET_TARGETS.get(name, TARGETS[task])


def scored(report: dict, keys: list[str]) -> dict:
    """The target metrics of an evaluation report; `presence_over_baseline` is the presence
    accuracy minus the constant answer's (the report's mean-box baseline)."""
    values = dict(report)
    if "presence_over_baseline" in keys:
        constant = report["baseline"]["mean_box"]["presence_accuracy"]
        values["presence_over_baseline"] = round(report["presence_accuracy"] - constant, 4)
    return {key: values[key] for key in keys}


def command(args: list[str], cwd: Path) -> str:
    """Run a command in the project; its stdout, or one line with the tail of stderr."""
    env = {
        **os.environ,
        "TQDM_DISABLE": "1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {cwd}:\n{result.stderr[-3000:]}")
    return result.stdout


def new_project(folder: Path, task: str, data: Path | None, pattern: str | None) -> Path:
    """The pipeline's code and params in a new git + DVC repository, `data.<task>` set."""
    shutil.rmtree(folder, ignore_errors=True)
    params = project_params()
    if data is not None:
        params["data"][task] = str(data)
        params["split"]["group_pattern"][task] = pattern
    return new_pipeline_repo(folder, params)


def evaluate_run(project: Path, model: str) -> tuple[dict, float]:
    """`dvc repro evaluate@<model>` in the project: the test metrics and the seconds it took."""
    started = time.perf_counter()
    command(["dvc", "repro", "-q", f"evaluate@{model}"], project)
    seconds = time.perf_counter() - started
    return eval_report(project, model), seconds


def over_seeds(runs: list[dict], keys: list[str]) -> dict:
    """Each metric's mean over the training seeds' runs, and its lowest and highest value."""
    return {
        key: {
            "mean": round(sum(run[key] for run in runs) / len(runs), 4),
            "low": min(run[key] for run in runs),
            "high": max(run[key] for run in runs),
        }
        for key in keys
    }


def check(name: str, task: str, data: Path | None, seeds: int = 1) -> dict:
    """One dataset through `dvc repro evaluate@<model>`: test metrics, intervals, time; for
    detection, again with training seeds 1 .. seeds - 1 (only training and evaluation re-run)."""
    model = MODEL[task]
    project = new_project(WORK / "runs" / name, task, data, GROUP_PATTERNS.get(name))
    scores, seconds = evaluate_run(project, model)
    report = json.loads((project / f"reports/data/{task}.json").read_text())
    keys = list(targets_of(name, task))
    runs = [{"seed": "base", **scored(scores, keys), "seconds": round(seconds, 1)}]
    for seed in range(1, seeds if task == "detection" else 1):
        edit_params(project, lambda params, seed=seed: params[f"train_{model}"].update(seed=seed))
        again, took = evaluate_run(project, model)
        runs.append({"seed": seed, **scored(again, keys), "seconds": round(took, 1)})
    found = {
        "dataset": name,
        "task": task,
        "images": report["images"],
        "skipped": report["skipped"]["count"],
        "test_images": scores["test_images"],
        "seconds": round(seconds, 1),
        **scored(scores, keys),
        "ci95": {key: scores["ci95"].get(key) for key in keys},
    }
    if len(runs) > 1:
        found["seeds"] = {"runs": runs, **over_seeds(runs, keys)}
    if task == "classification":
        baseline = subprocess.run(
            [sys.executable, "-m", "bench.recipe_baseline", str(project)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            check=True,
        )
        found["baseline"] = json.loads(baseline.stdout.strip().splitlines()[-1])
    found["holds"] = holds(found)
    return found


def holds(found: dict) -> bool:
    """Every target of the dataset's task met, by the mean over the training seeds when there
    are several (classification: and the baseline matched)."""
    seeds = found.get("seeds")
    wanted = targets_of(found["dataset"], found["task"])
    value = {key: seeds[key]["mean"] if seeds else found[key] for key in wanted}
    ok = all(value[key] >= low for key, low in wanted.items())
    if "baseline" in found:
        ok = ok and found["accuracy"] >= found["baseline"]["accuracy"]
    return ok


def interval(found: dict, key: str) -> str:
    ci = found["ci95"].get(key)
    return f"{found[key]:.3f} ({ci['low']:.3f}–{ci['high']:.3f})" if ci else f"{found[key]:.3f}"


def across(found: dict) -> str:
    """'mean (lowest–highest) over N seeds' of each target metric, or '-' for one run."""
    seeds = found.get("seeds")
    if not seeds:
        return "-"
    return (
        ", ".join(
            f"{key} {seeds[key]['mean']:.3f} ({seeds[key]['low']:.3f}–{seeds[key]['high']:.3f})"
            for key in targets_of(found["dataset"], found["task"])
        )
        + f" over {len(seeds['runs'])}"
    )


def minutes(found: dict) -> str:
    """The first run's time, and with several seeds the total."""
    seeds = found.get("seeds")
    first = f"{found['seconds'] / 60:.1f} min"
    if not seeds:
        return first
    return f"{first} ({sum(run['seconds'] for run in seeds['runs']) / 60:.1f} for all seeds)"


def table(results: list[dict]) -> str:
    lines = [
        "| dataset | task | images (skipped) | test images | test metric, base seed (95 % CI)"
        " | mean (range) over training seeds | target | baseline | holds | time |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for found in results:
        task = found["task"]
        wanted = targets_of(found["dataset"], task)
        metrics = ", ".join(f"{key} {interval(found, key)}" for key in wanted)
        target = ", ".join(f"{key} ≥ {low}" for key, low in wanted.items())
        baseline = found["baseline"]["accuracy"] if "baseline" in found else "-"
        if "baseline" in found:
            target += ", ≥ baseline"
        lines.append(
            f"| {found['dataset']} | {task} | {found['images']} ({found['skipped']})"
            f" | {found['test_images']} | {metrics} | {across(found)} | {target} | {baseline}"
            f" | {'yes' if found['holds'] else 'no'} | {minutes(found)} |"
        )
    return "\n".join(lines)


def write_report(results: dict[str, dict]) -> None:
    """bench/RECIPE_CHECK.md: the latest result of every dataset, with when and where."""
    measured = sorted({f"{r['date']} on {r['machine']}" for r in results.values()})
    header = (
        "# Recipe check\n\n`make recipe-check` with the committed params.yaml on each dataset"
        " (`bench/recipe_data.py` describes them; a detection target holds when the mean over"
        " the training seeds reaches it); the latest run of each, measured"
        f" {'; '.join(measured)}.\n\n"
    )
    (ROOT / "bench/RECIPE_CHECK.md").write_text(header + table(list(results.values())) + "\n")


def main() -> None:
    """Check the datasets named in ONLY (default: all); the committed table keeps the latest
    result of every dataset, each with the date it was measured."""
    only = [n for n in os.environ.get("ONLY", "").split(",") if n]
    seeds = os.environ.get("SEEDS") or "3"
    if not seeds.isdigit() or int(seeds) < 1:
        raise SystemExit(f"SEEDS: {seeds!r} is not a number of training seeds (1, 2, 3, ...)")
    seeds = int(seeds)
    order = [*MAKERS, *SAMPLE_TASKS]
    unknown = sorted(set(only) - set(order))
    if unknown:
        raise SystemExit(f"ONLY: unknown dataset {', '.join(unknown)}; choices: {', '.join(order)}")
    record = ROOT / "bench/recipe_check.json"
    results = json.loads(record.read_text())["results"] if record.exists() else {}
    ran = []
    for name in [n for n in order if not only or n in only]:
        if name in MAKERS:
            data = WORK / "data" / name
            if not data.exists():
                MAKERS[name](data)
            found = check(name, TASKS[name], data, seeds)
        else:
            found = check(name, SAMPLE_TASKS[name], None, seeds)
        found["date"], found["machine"] = time.strftime("%Y-%m-%d"), machine()
        results[name] = found
        ran.append(found)
        print(json.dumps(found), flush=True)
    print(table(ran))
    results = {name: results[name] for name in order if name in results}
    record.write_text(json.dumps({"results": results}, indent=2) + "\n")
    write_report(results)
    if not all(found["holds"] for found in ran):
        raise SystemExit("recipe check: a target does not hold (table above)")


if __name__ == "__main__":
    main()
