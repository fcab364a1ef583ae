"""What moves the detector on small objects among look-alikes: one lever at a time, over seeds.

On the recipe check's `small-faces` (bench/recipe_data.py), in one git + DVC project: the
committed params (`default`), then each lever — a few params over them — trained with the base
seed and `train_detector.seed` 1, 2, ... (the split stays; augment re-runs only for a lever
that changes what it writes), each run `dvc repro evaluate@detector`, the real pipeline. Per
lever: each test metric's mean and range over the seeds, the base seed's 95 % interval, the
presence accuracy over its constant baseline (always "present"), the minutes of a run.

    python -m bench.recipe_levers [--seeds 3] [--only NAME[,NAME]] [--render]
    python -m bench.recipe_levers --to-recipe-check

Writes bench/recipe_levers.json (every run, merged over invocations: `--only` re-measures the
named levers; a lever's seeds already recorded with the same params are kept, so `--seeds 3`
after `--seeds 1` runs seeds 1 and 2 only) and bench/RECIPE_LEVERS.md. `--to-recipe-check`
writes the default lever's runs (the committed params, seeds base, 1, 2) as `make
recipe-check`'s result for the dataset: the runs it would make.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from bench.common import ROOT, SMOKE, machine, project_params
from bench.levers import set_dotted
from bench.recipe_check import (
    WORK,
    evaluate_run,
    holds,
    new_project,
    over_seeds,
    presence_over_constant,
    targets_of,
    write_report,
)
from bench.recipe_data import GROUP_PATTERNS, MAKERS

DATASET = "small-faces"
KEYS = ("ap50", "mean_iou", "ap50_95", "presence_accuracy")
RECORD = ROOT / "bench/recipe_levers.json"
REPORT = ROOT / "bench/RECIPE_LEVERS.md"

# name → (params set over the committed ones, why it is tried)
LEVERS: dict[str, tuple[dict[str, object], str]] = {
    "default": (
        {},
        "the committed params.yaml: `auto` gives these boxes 256 px (their median box is 1.5 %"
        " of the frame, under 2.5 %; the frames are 320 and 400 px wide) and 6 copies (under 5 %)",
    ),
    "input 176 px": (
        {"base.image_size.detection": 176},
        "the input `auto` gave before small boxes counted: 12 px at the boxes' 10 % quantile,"
        " within 64-192; the smallest faces span 10 px instead of 15",
    ),
    "3 copies": (
        {"base.image_size.detection": 176, "augment.detection.copies": 3},
        "the copies `auto` gave before small boxes counted (65 faces: not few); training IoU"
        " 0.80 against 0.62 on validation at epoch 40",
    ),
    "input 128 px": (
        {"base.image_size.detection": 128, "augment.detection.copies": 3},
        "the input `auto` gave before its top was raised from 128 to 192 px (with 3 copies)",
    ),
    "input 320 px": (
        {"base.image_size.detection": 320},
        "the frames' own width (320 and 400 px): every face at its own resolution or more",
    ),
    "copy-paste": (
        {"augment.detection.paste": 0.5},
        "half the copies of frames without a face get a training face pasted in: new places"
        " and backgrounds for the 65 training faces",
    ),
    "adamw": (
        {"train_detector.optimizer": "adamw"},
        "weight decay (Keras' 0.004) against the same over-fitting",
    ),
    "80 epochs at 176 px": (
        {
            "base.image_size.detection": 176,
            "train_detector.epochs": 80,
            "train_detector.early_stopping_patience": 20,
        },
        "twice the epochs, against `input 176 px`: its runs stopped at 36, 38 and 40 of 40 and the"
        " 256 px runs at 40, 40 and 39; at 176 px a run fits a working session here, at 256 px"
        " 80 epochs would take about 2.8 h",
    ),
}


def run_lever(project: Path, changes: dict, seed: int | None) -> dict:
    """One training of the detector with `changes` over the committed params and `seed`,
    then its evaluation: test metrics, intervals, baseline, minutes."""
    params = project_params()
    params["data"]["detection"] = str(WORK / "data" / DATASET)
    params["split"]["group_pattern"]["detection"] = GROUP_PATTERNS[DATASET]
    set_dotted(params, {**changes, "train_detector.seed": seed})
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    report, seconds = evaluate_run(project, "detector")
    meta = json.loads((project / "models/detector.json").read_text())
    data = json.loads((project / "reports/data/detection.json").read_text())
    return {
        "seed": seed,
        "images": data["images"],
        "skipped": data["skipped"]["count"],
        "test_images": report["test_images"],
        **{key: report[key] for key in KEYS},
        "ci95": {key: report["ci95"][key] for key in KEYS},
        "baseline_presence_accuracy": report["baseline"]["mean_box"]["presence_accuracy"],
        "image_size": meta["image_size"],
        "epochs_run": meta["epochs_run"],
        "best_epoch": meta["best_epoch"],  # the saved epoch: did the run stop on a plateau?
        "minutes": round(seconds / 60, 1),
        "date": time.strftime("%Y-%m-%d"),
    }


def kept_runs(record: dict, name: str, changes: dict, seeds: int) -> tuple[list, list]:
    """(the lever's recorded runs that stay, the seeds still to run): runs recorded with other
    params are dropped; seeds are None (the base seed), then 1 .. seeds - 1."""
    last = record["levers"].get(name, {})
    runs = [run for run in last.get("runs", []) if last.get("changes") == changes]
    done = {run["seed"] for run in runs}
    return runs, [seed for seed in [None, *range(1, seeds)] if seed not in done]


def epochs(run: dict) -> str:
    """Epochs run, and in brackets the saved (best) one where the run recorded it."""
    best = run.get("best_epoch")
    return f"{run['epochs_run']}" + (f" ({best})" if best else "")


def render(record: dict) -> str:
    lines = [
        "# The detector on small objects: levers over seeds\n",
        f"`python -m bench.recipe_levers` on the recipe check's `{DATASET}`"
        " (bench/recipe_data.py): each lever over the committed params, trained with the base"
        " seed and `train_detector.seed` 1, 2, ...; mean (lowest–highest) over the seeds, and"
        " the base seed's 95 % interval. Presence: accuracy minus the constant baseline's.",
        f"Measured {record['date']} on {record['machine']}.\n",
        "| lever | params | seeds | AP50 | mean IoU | AP50-95 | presence over baseline"
        " | input | epochs run (best) | minutes a run |",
        "| --- | --- | ---: | --- | --- | --- | --- | ---: | ---: | ---: |",
    ]
    for name, found in record["levers"].items():
        runs = found["runs"]
        if not runs:
            continue
        stats, base = over_seeds(runs, KEYS), runs[0]

        def cell(key: str, stats=stats, base=base) -> str:
            ci = base["ci95"][key]
            return (
                f"{stats[key]['mean']:.3f} ({stats[key]['low']:.3f}–{stats[key]['high']:.3f});"
                f" seed 0: {ci['low']:.3f}–{ci['high']:.3f}"
            )

        over = [presence_over_constant(run) for run in runs]
        changes = ", ".join(f"`{k}: {v}`" for k, v in found["changes"].items()) or "-"
        lines.append(
            f"| {name} | {changes} | {len(runs)} | {cell('ap50')} | {cell('mean_iou')}"
            f" | {cell('ap50_95')} | {sum(over) / len(over):+.3f} ({min(over):+.3f}–"
            f"{max(over):+.3f}) | {base['image_size']} | "
            f"{'/'.join(map(epochs, runs))} |"
            f" {sum(run['minutes'] for run in runs) / len(runs):.1f} |"
        )
    lines.append("")
    lines += [
        f"- **{name}**: {why}"
        for name, (_, why) in LEVERS.items()
        if record["levers"].get(name, {}).get("runs")
    ]
    return "\n".join(lines) + "\n"


def recipe_check_entry(record: dict) -> dict:
    """The default lever's runs as `make recipe-check`'s result for the dataset: the same
    pipeline, committed params and training seeds (base, 1, 2, ...) that
    `make recipe-check ONLY=small-faces` trains, so the same numbers."""
    runs = record["levers"]["default"]["runs"]
    keys = list(targets_of(DATASET, "detection"))
    data = next((run for run in runs if "images" in run), None)
    if data is None:
        raise SystemExit("--to-recipe-check: no default run records its dataset; run one")

    def scores(run: dict) -> dict:
        over = round(presence_over_constant(run), 4)
        return {**{key: run[key] for key in keys if key in run}, "presence_over_baseline": over}

    rows = [
        {"seed": "base" if run["seed"] is None else run["seed"], **scores(run),
         "seconds": round(run["minutes"] * 60, 1)}
        for run in runs
    ]  # fmt: skip
    base = runs[0]
    found = {
        "dataset": DATASET,
        "task": "detection",
        **{key: data[key] for key in ("images", "skipped", "test_images")},
        "seconds": rows[0]["seconds"],
        **scores(base),
        "ci95": {key: base["ci95"].get(key) for key in keys},
        "seeds": {"runs": rows, **over_seeds(rows, keys)},
        "measured_by": "python -m bench.recipe_levers (its default lever: the committed params)",
        "date": max(run.get("date", record["date"]) for run in runs),  # its runs', not the file's
        "machine": record["machine"],
    }
    found["holds"] = holds(found)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--only", default="", help="levers to (re-)measure, comma-separated")
    parser.add_argument("--render", action="store_true", help="rewrite the table, run nothing")
    parser.add_argument(
        "--to-recipe-check",
        action="store_true",
        help=f"write the default lever's runs as the recipe check's {DATASET} result, run nothing",
    )
    args = parser.parse_args(argv)
    fresh = SMOKE or not RECORD.exists()  # a smoke run measures its lever anew
    record = {"levers": {}} if fresh else json.loads(RECORD.read_text())
    if args.to_recipe_check:
        checked = ROOT / "bench/recipe_check.json"
        results = json.loads(checked.read_text())["results"]
        results[DATASET] = recipe_check_entry(record)
        checked.write_text(json.dumps({"results": results}, indent=2) + "\n")
        write_report(results)
        return
    if not args.render:
        only = [name for name in args.only.split(",") if name]
        unknown = sorted(set(only) - set(LEVERS))
        if unknown:
            raise SystemExit(f"--only: unknown lever {', '.join(unknown)}; choices: {list(LEVERS)}")
        data = WORK / "data" / DATASET
        if not data.exists():
            MAKERS[DATASET](data)
        project = new_project(WORK / "levers", "detection", data, GROUP_PATTERNS[DATASET])
        for name, (changes, _) in LEVERS.items():
            if only and name not in only:
                continue
            runs, missing = kept_runs(record, name, changes, args.seeds)
            for seed in missing:
                runs.append(run_lever(project, changes, seed))
                print(f"{name} seed {seed}: {json.dumps(runs[-1])}", flush=True)
                record["levers"][name] = {"changes": changes, "runs": runs}
                record.update(date=time.strftime("%Y-%m-%d"), machine=machine())
                RECORD.write_text(json.dumps(record, indent=1) + "\n")
    record["levers"] = {name: record["levers"][name] for name in LEVERS if name in record["levers"]}
    REPORT.write_text(render(record))
    print(REPORT.read_text())


if __name__ == "__main__":
    main()
