"""`python -m stages.compare A B --seeds 5`: is configuration B better than A, or did it land
on a luckier seed? (a tool, not a pipeline stage; `make compare A=... B=... SEEDS=5`)

A and B are git revisions (branch, tag, commit) or DVC experiment names. Each is run as
`dvc exp run` over training seeds 1..N (`train_<model>.seed`; the data, and so the test split,
follow `base.seed` and stay fixed), one after the other in the workspace (no queue worker to
wait for). The experiments are named after the configuration's commit (or experiment), the
model and the seed, and a seed whose experiment already has test metrics is not run again (the
training stages persist their DVCLive history, so DVC's run cache does not restore them; `dvc
exp remove` an experiment to run its seed again). For each headline test
metric it prints mean ± sd for A and for B, the difference B − A paired by seed with its 95%
t-interval, and a verdict: "B better" or "B worse" when the interval excludes 0, else
"cannot tell" (Bouthillier et al., "Accounting for Variance in Machine Learning
Benchmarks", MLSys 2021). `--fail-if-worse` exits 1 when B is worse on any of them, for a CI
gate. Needs a clean git workspace: it checks revisions out to queue them, then returns.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys

import numpy as np

from stages.shared.core.cli import UserError, run_stage
from stages.shared.core.paths import EVAL_DIR, MODELS
from stages.shared.evaluation.metrics import HEADLINES, LOWER_IS_BETTER
from stages.shared.review.summary import table

DVC = (sys.executable, "-m", "dvc")


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    """A git or dvc command; a failure is one line with its own message."""
    done = subprocess.run(list(args), capture_output=True, text=True)
    if check and done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["failed"]
        raise UserError(f"{' '.join(args[:3])}: {tail[0]}")
    return done


def experiment_names() -> set[str]:
    """Names of the DVC experiments of this repository, whatever commit they derive from."""
    listed = run(*DVC, "exp", "list", "--all-commits", "--name-only").stdout
    return {line.strip() for line in listed.splitlines() if line.strip()}


def resolve(config: str, argument: str) -> str:
    """'rev' or 'exp' for a configuration, or one line naming the argument."""
    found = run("git", "rev-parse", "--verify", "--quiet", f"{config}^{{commit}}", check=False)
    if found.returncode == 0:
        return "rev"
    if config in experiment_names():
        return "exp"
    raise UserError(f"{argument}: {config!r} is neither a git revision nor a DVC experiment")


def run_seeds(
    config: str, kind: str, label: str, model: str, seeds: int, home: str
) -> tuple[str, list[str]]:
    """Run `config` once per seed, except the seeds whose experiment already has test
    metrics; return the commit the experiments derive from (DVC lists an experiment under its
    baseline commit only) and their names."""
    if kind == "rev":
        run("git", "checkout", "-q", config)
    baseline = run("git", "rev-parse", "HEAD").stdout.strip()
    source = baseline[:7] if kind == "rev" else config
    names = [f"compare-{source}-{model}-seed{seed}" for seed in range(1, seeds + 1)]
    done = measured(baseline, model)
    try:
        for seed, name in enumerate(names, start=1):
            if name in done:
                print(f"{label} ({config}), seed {seed}: {name}, already run", flush=True)
                continue
            run("git", "checkout", "-q", "--", ".")  # each seed starts from the config itself
            if kind == "exp":
                run(*DVC, "exp", "apply", config)
            seeded = f"train_{model}.seed={seed}"
            print(f"{label} ({config}), seed {seed}: {name}", flush=True)
            run(*DVC, "exp", "run", "-n", name, "-S", seeded, f"evaluate@{model}")
    finally:
        run("git", "checkout", "-q", "--", ".")
        run("git", "checkout", "-q", home)
    return baseline, names


def measured(baseline: str, model: str) -> dict[str, dict]:
    """{experiment name: its test metrics} of the experiments of `baseline` that have them."""
    shown = json.loads(run(*DVC, "exp", "show", "--json", "--rev", baseline).stdout)
    found = {}
    path = (EVAL_DIR / model / "metrics.json").as_posix()
    for commit in shown:
        for exp in commit.get("experiments") or []:
            for rev in exp.get("revs", []):
                data = rev.get("data") or {}
                metrics = (data.get("metrics") or {}).get(path, {}).get("data")
                if rev.get("name") and metrics:
                    found[rev["name"]] = metrics
    return found


def collect(baseline: str, names: list[str], model: str) -> list[dict]:
    """The test metrics of the named experiments of `baseline`, in order."""
    found = measured(baseline, model)
    missing = [n for n in names if n not in found]
    if missing:
        raise UserError(f"{missing[0]}: no test metrics — see `dvc queue logs {missing[0]}`")
    return [found[n] for n in names]


def t_quantile(df: int) -> float:
    """The 97.5th percentile of Student's t with `df` degrees of freedom."""
    from scipy import stats

    return float(stats.t.ppf(0.975, df))


def verdict(metric: str, low: float, high: float) -> str:
    """'B better' / 'B worse' when the paired interval excludes 0, else 'cannot tell'."""
    if low <= 0 <= high:
        return "cannot tell"
    b_higher = low > 0
    return "B better" if b_higher != (metric in LOWER_IS_BETTER) else "B worse"


def verdict_row(metric: str, a: np.ndarray, b: np.ndarray) -> tuple:
    """metric, A mean ± sd, B mean ± sd, paired difference with its interval, verdict."""
    diff = b - a
    mean = float(diff.mean())
    half = t_quantile(len(diff) - 1) * float(diff.std(ddof=1)) / math.sqrt(len(diff))
    low, high = mean - half, mean + half
    return (
        metric,
        f"{a.mean():.4f} ± {a.std(ddof=1):.4f}",
        f"{b.mean():.4f} ± {b.std(ddof=1):.4f}",
        f"{mean:+.4f} ({low:+.4f} to {high:+.4f})",
        verdict(metric, low, high),
    )


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the reference: git revision or DVC experiment")
    parser.add_argument("b", help="the candidate: git revision or DVC experiment")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--model", choices=list(MODELS), default="classifier")
    parser.add_argument("--fail-if-worse", action="store_true")
    args = parser.parse_args(argv)
    if args.seeds < 2:
        raise UserError(f"--seeds: {args.seeds} — an interval needs at least 2 seeds")
    kinds = {"A": resolve(args.a, "A"), "B": resolve(args.b, "B")}
    if run("git", "status", "--porcelain", "--untracked-files=no").stdout.strip():
        raise UserError("the git workspace has changes — commit or stash them, then compare")
    home = run("git", "rev-parse", "--abbrev-ref", "HEAD").stdout.strip()
    home = run("git", "rev-parse", "HEAD").stdout.strip() if home == "HEAD" else home
    names = {
        label: run_seeds(config, kinds[label], label, args.model, args.seeds, home)
        for label, config in (("A", args.a), ("B", args.b))
    }
    runs = {label: collect(*queued, args.model) for label, queued in names.items()}
    rows = []
    for metric in HEADLINES[args.model]:
        a = np.array([r.get(metric) for r in runs["A"]], dtype=float)
        b = np.array([r.get(metric) for r in runs["B"]], dtype=float)
        if not (np.isnan(a).any() or np.isnan(b).any()):
            rows.append(verdict_row(metric, a, b))
    headers = ("metric", f"A ({args.a})", f"B ({args.b})", "B − A, paired (95% CI)", "verdict")
    print(table(headers, rows))
    if args.fail_if_worse and any(row[-1] == "B worse" for row in rows):
        sys.exit(1)


if __name__ == "__main__":
    run_stage(main)
