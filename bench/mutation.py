"""`make mutation [FILES=...]`: mutmut over stages/, each module against its own fast tests.

Each module runs in its own scratch copy of the project (`.work/mutation/<module>`), where
mutmut mutates only that file and runs only the test files listed for it in `TESTS` (the fast
ones: `-m "not slow"`). Inside those, mutmut picks for each mutant the tests that call the
mutated function. Survivors that cannot change anything observable are listed in
`tests/mutation_equivalents.toml`, one line of why each, and are excluded from the score.

A module with more mutants than `--sample` (default 50; 0 = every mutant) runs a seeded
random sample of them, the same sample for the same code: its score is an estimate with a
95 % (Wilson) interval, and the score over stages/ a stratified estimate over the modules.

Results accumulate in `bench/mutation.json` (one entry per module, with the commit it was
measured at), so a scoped run updates only its modules; `bench/MUTATION.md` is the table and
`.work/mutation/survivors.md` the diffs of every surviving mutant.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / ".work" / "mutation"
RESULTS = ROOT / "bench" / "mutation.json"
TABLE = ROOT / "bench" / "MUTATION.md"
EQUIVALENTS = ROOT / "tests" / "mutation_equivalents.toml"

# The test files that test each module: its own file, and the stage tests that drive it.
TESTS: dict[str, list[str]] = {
    "stages/augment.py": ["augment"],
    "stages/compare.py": ["compare"],
    "stages/evaluate.py": ["evaluate"],
    "stages/environment.py": ["lockfile"],
    "stages/export.py": ["export"],
    "stages/metrics_diff.py": ["metrics_diff"],
    "stages/plot.py": ["plot"],
    "stages/summary.py": ["plot"],
    "stages/predict.py": ["predict", "export"],
    "stages/review.py": ["review"],
    "stages/params_reference.py": ["docs"],
    "stages/sample.py": ["sample", "duplicates"],
    "stages/split.py": ["split", "formats", "duplicates"],
    "stages/train_classifier.py": ["train_classifier", "checks"],
    "stages/train_detector.py": ["train_detector"],
    "stages/shared/data/augmentation.py": ["augment"],
    "stages/shared/models/backbones.py": ["backbones"],
    "stages/shared/evaluation/baselines.py": ["baselines", "evaluate"],
    "stages/shared/evaluation/behaviour.py": ["behaviour", "evaluate"],
    "stages/shared/training/checks.py": ["checks"],
    "stages/shared/training/execution.py": ["execution", "checks"],
    "stages/shared/models/classifiers.py": ["classifiers"],
    "stages/shared/core/cli.py": ["cli"],
    "stages/shared/models/cost.py": ["cost"],
    "stages/shared/data/datasets.py": ["datasets", "formats", "augment", "sample", "split"],
    "stages/shared/models/detectors.py": ["detectors"],
    "stages/shared/training/distribute.py": ["distribute", "training"],
    "stages/shared/data/duplicates.py": ["duplicates", "split"],
    "stages/shared/review/dvcplots.py": ["dvcplots", "plot"],
    "stages/shared/models/exporting.py": ["export"],
    "stages/shared/data/images.py": ["images", "formats", "tfdata"],
    "stages/shared/models/inference.py": ["inference", "evaluate"],
    "stages/shared/evaluation/intervals.py": ["intervals", "slices", "evaluate"],
    "stages/shared/data/labelme.py": ["labelme", "formats", "split"],
    "stages/shared/models/losses.py": ["losses"],
    "stages/shared/data/manifest.py": ["manifest", "formats"],
    "stages/shared/evaluation/metrics.py": ["metrics", "baselines", "behaviour"],
    "stages/shared/core/config.py": ["params"],
    "stages/shared/core/paths.py": ["paths", "formats", "split", "dvc_yaml"],
    "stages/shared/review/plotting.py": ["plotting", "plot"],
    "stages/shared/core/machine.py": ["machine"],
    "stages/shared/core/lockfile.py": ["lockfile"],
    "stages/shared/core/seeding.py": ["seeding", "training", "splitting", "tfdata"],
    "stages/shared/data/shards.py": ["shards", "tfdata", "augment"],
    "stages/shared/evaluation/slices.py": ["slices", "evaluate"],
    "stages/shared/data/splitting.py": ["splitting", "split", "duplicates"],
    "stages/shared/review/summary.py": ["summary", "metrics_diff"],
    "stages/shared/data/tfdata.py": ["tfdata", "shards", "formats"],
    "stages/shared/training/loop.py": ["training", "train_classifier", "checks"],
    "stages/shared/training/callbacks.py": ["training"],
    "stages/shared/training/state.py": ["training"],
    "stages/shared/training/optim.py": ["training", "detectors"],
    "stages/shared/training/inputs.py": ["inputs"],
    "stages/shared/models/store.py": ["store", "training", "inference", "backbones"],
    "stages/shared/models/registry.py": ["registry"],
    "stages/release.py": ["registry"],
    "stages/shared/params/training.py": ["params"],
    "stages/shared/params/split.py": ["params"],
    "stages/shared/params/sample.py": ["params"],
    "stages/shared/params/train_classifier.py": ["params"],
    "stages/shared/params/evaluate.py": ["params", "slices"],
}
# Not listed: the params modules that only declare fields (augment, data, export, plot,
# train_detector, whose one validator calls params/training.check_backbone_weights): mutmut
# mutates function bodies, and a pydantic validator is traced by none of its tests (so each
# section's checks are plain functions the validator calls, measured where they live).

# The pure-logic modules, held to the higher target.
PURE = {
    "stages/shared/data/splitting.py",
    "stages/shared/data/labelme.py",
    "stages/shared/data/images.py",
    "stages/shared/data/augmentation.py",
    "stages/shared/data/manifest.py",
    "stages/shared/core/config.py",
    "stages/shared/core/lockfile.py",
    "stages/shared/models/losses.py",
    "stages/shared/evaluation/metrics.py",
    "stages/shared/models/inference.py",
    "stages/shared/review/summary.py",
}
TARGET_PURE, TARGET_ALL = 90.0, 80.0
DEFAULT_SAMPLE = 50  # mutants a module runs at most (0: all)

# Modules whose tests run TensorFlow graphs (models, tf.data) or render Vega-Lite with
# vl-convert. Neither is fork-safe once it has run its threads: a mutant forked from the
# process that ran those tests can hang without using CPU, where mutmut's CPU-time limit never
# fires. These run from a fork server, slower.
FORK_SERVER = {
    "stages/summary.py",
    "stages/evaluate.py",
    "stages/export.py",
    "stages/plot.py",
    "stages/predict.py",
    "stages/review.py",
    "stages/train_classifier.py",
    "stages/train_detector.py",
    "stages/shared/models/backbones.py",
    "stages/shared/evaluation/baselines.py",
    "stages/shared/evaluation/behaviour.py",
    "stages/shared/training/checks.py",
    "stages/shared/models/classifiers.py",
    "stages/shared/models/cost.py",
    "stages/shared/models/detectors.py",
    "stages/shared/training/distribute.py",
    "stages/shared/review/dvcplots.py",
    "stages/shared/models/exporting.py",
    "stages/shared/models/inference.py",
    "stages/shared/evaluation/intervals.py",
    "stages/shared/review/plotting.py",
    "stages/shared/core/seeding.py",
    "stages/shared/data/shards.py",
    "stages/shared/evaluation/slices.py",
    "stages/shared/data/tfdata.py",
    "stages/shared/training/loop.py",
    "stages/shared/training/callbacks.py",
    "stages/shared/training/state.py",
    "stages/shared/training/optim.py",
    "stages/shared/training/inputs.py",
    "stages/shared/models/store.py",
    "stages/shared/params/train_classifier.py",
    "stages/shared/params/train_detector.py",
    "stages/shared/params/training.py",
    "stages/shared/params/evaluate.py",
}

# Modules whose code also runs in worker processes (augment's process pool). mutmut learns
# which tests reach a function in the test process only, so it does not run, for a mutant of
# such code, the tests that reach it through a worker. Their survivors are run again against
# every test in the module's test files (the mutant is chosen by MUTANT_UNDER_TEST, which the
# workers inherit).
WORKER_CODE = {"stages/augment.py", "stages/shared/data/augmentation.py"}

# What the scratch copy needs besides stages/ and tests/ (mutmut copies these into mutants/).
ALSO_COPY = [
    "params.yaml",
    "dvc.yaml",
    "paths.yaml",
    ".importlinter",
    "dvc.lock",
    ".dvc/plots",
    ".dvc/config",
    ".github",
    "review",
    "pretrained",
    "reports",
    "bench",
    "Makefile",
    "requirements.txt",  # the lock tests read the intent files and their locks
    "requirements-dev.txt",
    "requirements.lock",
    "requirements-dev.lock",
    "README.md",
    "mkdocs.yml",  # the docs tests build the site
    "docs",
]


# Keras reads these methods' signatures (`training=` in `call`, the arguments of `__init__`);
# mutmut's wrapper around a mutated method would replace them with (*args, **kwargs).
KERAS_READS = {"__init__", "call", "build"}


def keep_keras_signatures(path: Path) -> int:
    """Mark the Keras-read methods of Layer/Model subclasses in `path` not to be mutated."""
    lines = path.read_text().split("\n")
    marked = 0
    for node in ast.walk(ast.parse("\n".join(lines))):
        if not isinstance(node, ast.ClassDef):
            continue
        bases = [ast.unparse(base) for base in node.bases]
        if not any(b.endswith(("Layer", "Model")) for b in bases):
            continue
        for method in node.body:
            if isinstance(method, ast.FunctionDef) and method.name in KERAS_READS:
                header = method.body[0].lineno - 2  # 0-based index of the line before the body
                while not lines[header].rstrip().endswith(":"):
                    header -= 1
                lines[header] += "  # pragma: no mutate block"
                marked += 1
    path.write_text("\n".join(lines))
    return marked


def scratch_project(module: str) -> Path:
    """A copy of the project where mutmut mutates `module` only, against its test files."""
    work = WORK / module.replace("/", ".").removesuffix(".py")
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "stages", work / "stages", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    for name in ALSO_COPY:
        source, target = ROOT / name, work / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            shutil.copy2(source, target)
    keep_keras_signatures(work / module)
    pytest_section = (ROOT / "pyproject.toml").read_text().split("[tool.pytest.ini_options]")[1]
    pytest_section = pytest_section.split("\n[tool.")[0]
    tests = [f"tests/test_{name}.py" for name in TESTS[module]]
    (work / "pyproject.toml").write_text(
        "[tool.pytest.ini_options]"
        + pytest_section
        + "\n[tool.mutmut]\n"
        + 'source_paths = ["stages"]\n'
        + f"only_mutate = [{json.dumps(module)}]\n"
        + "timeout_multiplier = 5.0\n"
        + ('process_isolation = "forkserver"\n' if module in FORK_SERVER else "")
        + 'pytest_add_cli_args = ["-m", "not slow and not browser", "-p", "no:cacheprovider"]\n'
        + f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        + f"also_copy = {json.dumps(ALSO_COPY)}\n"
    )
    return work


def load_equivalents() -> list[dict]:
    return tomllib.loads(EQUIVALENTS.read_text()).get("equivalent", [])


def changed_lines(diff: str) -> tuple[list[str], list[str]]:
    """The removed and added lines of a mutant's diff, stripped."""
    lines = diff.splitlines()
    removed = [x[1:].strip() for x in lines if x.startswith("-") and not x.startswith("---")]
    added = [x[1:].strip() for x in lines if x.startswith("+") and not x.startswith("+++")]
    return removed, added


def function_of(mutant: str) -> str:
    """`stages.shared.evaluation.metrics.x_auc__mutmut_3` → `auc`; methods → `Class.method`."""
    name = mutant.rsplit("__mutmut_", 1)[0].rsplit(".", 1)[-1]
    if name.startswith("xǁ"):
        _, cls, method = name.split("ǁ")
        return f"{cls}.{method}"
    return name.removeprefix("x_")


def is_equivalent(module: str, mutant: str, diff: str, equivalents: list[dict]) -> dict | None:
    removed, added = changed_lines(diff)
    for entry in equivalents:
        if (
            entry["module"] == module
            and entry["function"] == function_of(mutant)
            and [entry["before"]] == removed
            and [entry["after"]] == added
        ):
            return entry
    return None


def read_results(work: Path, module: str) -> tuple[dict, list[tuple[str, str]]]:
    """Counts per status for `module`, and (mutant, diff) of each survivor not listed as
    equivalent."""
    sys.path.insert(0, str(work))
    cwd = os.getcwd()
    os.chdir(work)
    try:
        from mutmut.mutation.diff_apply import get_diff_for_mutant
        from mutmut.stats import status_by_exit_code

        meta = json.loads((work / "mutants" / f"{module}.meta").read_text())
        equivalents = load_equivalents()
        counts = {"mutants": 0, "killed": 0, "survived": 0, "equivalent": 0, "no tests": 0}
        survivors = []
        for mutant, code in sorted(meta["exit_code_by_key"].items()):
            if code is None:  # not in this run's sample
                continue
            # A mutant that aborts the test process (SIGABRT, e.g. a drawing too large to
            # allocate) failed its tests, as mutmut already counts SIGSEGV and SIGKILL.
            status = "killed" if code == -6 else status_by_exit_code[code]
            counts["mutants"] += 1
            if status in ("killed", "timeout", "segfault"):
                counts["killed"] += 1
            elif status == "no tests":
                counts["no tests"] += 1
            else:
                diff = get_diff_for_mutant(mutant, path=Path(module))
                if status == "survived" and is_equivalent(module, mutant, diff, equivalents):
                    counts["equivalent"] += 1
                else:
                    counts["survived"] += 1
                    survivors.append((mutant, f"# {status}\n{diff}"))
        return counts, survivors
    finally:
        os.chdir(cwd)
        sys.path.remove(str(work))


def score(counts: dict) -> float:
    """Killed / (mutants − equivalents), in percent; a mutant no test reaches counts as alive."""
    judged = counts["mutants"] - counts["equivalent"]
    return round(100 * counts["killed"] / judged, 1) if judged else 100.0


def wilson(killed: int, judged: int, population: int) -> list[float] | None:
    """The 95 % Wilson interval of a sampled module's score, in percent (None: every mutant
    ran, the score is exact)."""
    if not judged or judged >= population:
        return None
    z, p = 1.96, killed / judged
    centre = (p + z * z / (2 * judged)) / (1 + z * z / judged)
    half = z * math.sqrt(p * (1 - p) / judged + z * z / (4 * judged**2)) / (1 + z * z / judged)
    return [round(100 * max(centre - half, 0.0), 1), round(100 * min(centre + half, 1.0), 1)]


def commit() -> str:
    return subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()


LIST_MUTANTS = """
import json, sys
from pathlib import Path
from mutmut.mutation.file_mutation import mutate_file_contents
from mutmut.utils.format_utils import get_mutant_name
path = Path(sys.argv[1])
names = mutate_file_contents(str(path), path.read_text()).mutant_names
print(json.dumps([get_mutant_name(path, name) for name in names]))
"""


def mutant_names(work: Path, module: str) -> list[str]:
    """Every mutant mutmut makes of `module` in its scratch copy, by name."""
    done = subprocess.run(
        [sys.executable, "-c", LIST_MUTANTS, module],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def choose(names: list[str], module: str, sample: int) -> list[str]:
    """All the mutants, or a random sample of `sample` seeded by the module's name: the same
    code gives the same sample, run after run."""
    if not sample or len(names) <= sample:
        return names
    return sorted(random.Random(f"mutation:{module}").sample(sorted(names), sample))


def mutmut(work: Path, workers: int, log: Path, names: list[str] | None = None) -> None:
    """One `mutmut run` over the mutants of the scratch project (`names`: only those)."""
    with log.open("a") as out:
        code = subprocess.run(
            [
                str(Path(sys.executable).parent / "mutmut"),
                "run",
                "--max-children",
                str(workers),
                *(names or []),
            ],
            cwd=work,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "TQDM_DISABLE": "1", "CUDA_VISIBLE_DEVICES": ""},
        ).returncode
    if code != 0:
        tail = log.read_text(errors="replace").replace("\r", "\n").splitlines()[-15:]
        raise SystemExit(f"mutmut failed in {work} (log: {log}):\n" + "\n".join(tail))


def recheck(work: Path, module: str, workers: int, status: str) -> int:
    """Run each mutant of `module` with this status again, in a fresh Python process (no
    fork) against its whole test files, and keep that verdict; returns how many changed."""
    from concurrent.futures import ThreadPoolExecutor

    from mutmut.stats import status_by_exit_code

    meta_path = work / "mutants" / f"{module}.meta"
    meta = json.loads(meta_path.read_text())
    names = [
        k
        for k, v in meta["exit_code_by_key"].items()
        if v is not None and status_by_exit_code[v] == status
    ]
    tests = [f"tests/test_{name}.py" for name in TESTS[module]]
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider"]
    command += ["-m", "not slow and not browser", *tests]

    def run(name: str) -> tuple[str, int]:
        env = {**os.environ, "MUTANT_UNDER_TEST": name, "CUDA_VISIBLE_DEVICES": ""}
        try:
            done = subprocess.run(
                command, cwd=work / "mutants", env=env, capture_output=True, timeout=900
            )
        except subprocess.TimeoutExpired:
            return name, 36  # a time-out again: it stands
        return name, 1 if done.returncode == 1 else 0 if done.returncode == 0 else 35

    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(run, names))
    changed = 0
    for name, code in results:
        changed += status_by_exit_code[code] != status
        meta["exit_code_by_key"][name] = code
    meta_path.write_text(json.dumps(meta))
    return changed


def run_module(module: str, workers: int, sample: int) -> tuple[dict, list[tuple[str, str]]]:
    """Mutants run forked from the process that ran the tests once (fast), or from a fork
    server (FORK_SERVER); time-outs, and the survivors of WORKER_CODE, are run again in a
    fresh process, and that verdict stands. At most `sample` mutants run (0: all)."""
    work = scratch_project(module)
    started = time.perf_counter()
    log = work / "mutmut.log"
    population = mutant_names(work, module)
    chosen = choose(population, module, sample)
    mutmut(work, workers, log, chosen if len(chosen) < len(population) else None)
    # A mutant that hits the CPU-time limit may be one that loops, or a forked TensorFlow
    # that spins; a fresh process (no fork) tells them apart.
    rerun = recheck(work, module, workers, "timeout")
    rechecked = recheck(work, module, workers, "survived") if module in WORKER_CODE else 0
    minutes = (time.perf_counter() - started) / 60
    counts, survivors = read_results(work, module)
    judged = counts["mutants"] - counts["equivalent"]
    entry = {
        **counts,
        "population": len(population),
        "interval": wilson(counts["killed"], judged, len(population) - counts["equivalent"]),
        "time-outs changed on recheck": rerun,
        "killed on recheck": rechecked,
        "score": score(counts),
        "minutes": round(minutes, 1),
        "tests": TESTS[module],
        "commit": commit(),
        "date": time.strftime("%Y-%m-%d"),
    }
    return entry, survivors


def totals(entries: dict[str, dict], modules) -> dict:
    """Counts summed over the modules' runs, and the score over all their mutants: each
    module's score weighted by its mutants not judged equivalent (estimated from its sample
    where it ran one), with the 95 % interval of that stratified estimate."""
    keys = ("mutants", "killed", "survived", "equivalent", "no tests")
    measured = [entries[m] for m in modules if m in entries]
    summed = {k: sum(e[k] for e in measured) for k in keys}
    weights, shares, variance = [], [], 0.0
    for e in measured:
        run = e["mutants"] - e["equivalent"]
        population = e.get("population", e["mutants"])
        weight = population * run / e["mutants"] if e["mutants"] else 0.0
        share = e["killed"] / run if run else 1.0
        weights.append(weight)
        shares.append(share)
        if run and e["mutants"] < population:  # sampled: finite-population variance
            variance += weight**2 * share * (1 - share) / run * (1 - e["mutants"] / population)
    total = sum(weights)
    estimate = sum(w * p for w, p in zip(weights, shares, strict=True)) / total if total else 1.0
    half = 1.96 * math.sqrt(variance) / total if total else 0.0
    return {
        **summed,
        "population": sum(e.get("population", e["mutants"]) for e in measured),
        "score": round(100 * estimate, 1),
        "interval": [round(100 * (estimate - half), 1), round(100 * min(estimate + half, 1.0), 1)]
        if variance
        else None,
        "minutes": round(sum(e["minutes"] for e in measured), 1),
    }


def interval_text(entry: dict) -> str:
    low_high = entry.get("interval")
    return f"{low_high[0]}–{low_high[1]}" if low_high else "exact"


def render(entries: dict[str, dict]) -> str:
    head = (
        "| module | mutants | run | killed | survived | equivalent | no tests | score % |"
        " 95 % interval | min | measured at |\n"
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |\n"
    )
    rows = []
    for module in TESTS:
        if module not in entries:
            rows.append(f"| {module} | not measured yet | | | | | | | | | |")
            continue
        e = entries[module]
        mark = " (pure logic)" if module in PURE else ""
        rows.append(
            f"| {module}{mark} | {e.get('population', e['mutants'])} | {e['mutants']} |"
            f" {e['killed']} | {e['survived']} | {e['equivalent']} | {e['no tests']} |"
            f" {e['score']} | {interval_text(e)} | {e['minutes']} | {e['commit']} {e['date']} |"
        )
    pure, every = totals(entries, PURE), totals(entries, TESTS)
    measured = sum(m in entries for m in TESTS)
    for name, t in (
        ("pure-logic modules", pure),
        (f"stages/ ({measured} of {len(TESTS)} modules)", every),
    ):
        rows.append(
            f"| **{name}** | {t['population']} | {t['mutants']} | {t['killed']} |"
            f" {t['survived']} | {t['equivalent']} | {t['no tests']} | **{t['score']}** |"
            f" {interval_text(t)} | {t['minutes']} | |"
        )
    return head + "\n".join(rows) + "\n"


def save(entries: dict[str, dict]) -> None:
    """bench/mutation.json, bench/MUTATION.md and `make bench`'s mutation rows."""
    pure, every = totals(entries, PURE), totals(entries, TESTS)
    RESULTS.write_text(
        json.dumps(
            {
                "pure_logic": pure,
                "stages": every,
                "targets": {"pure_logic": TARGET_PURE, "stages": TARGET_ALL},
                "modules": entries,
            },
            indent=2,
        )
        + "\n"
    )
    TABLE.write_text(
        "# Mutation score\n\n`make mutation` (bench/mutation.py): mutmut over each module"
        " with its own fast tests.\nScore = killed / (mutants − equivalents); mutants no test"
        " reaches count as alive.\nA module with more mutants than `--sample` runs a seeded"
        " random sample (`run`): its\nscore is an estimate with a 95 % Wilson interval, and"
        " the totals weight each module by its\nmutants (a stratified estimate).\n"
        "Targets: pure-logic modules ≥ 90 %, stages/ ≥ 80 %.\n\n" + render(entries)
    )
    update_bench_results()


def recount(entries: dict[str, dict], modules: list[str]) -> None:
    """Count the last run of each module again with the equivalents listed since (its
    mutants' verdicts stand; nothing runs again)."""
    for module in modules:
        work = WORK / module.replace("/", ".").removesuffix(".py")
        if module not in entries or not (work / "mutants" / f"{module}.meta").exists():
            continue
        counts, _ = read_results(work, module)
        entry = entries[module]
        if counts["mutants"] != entry["mutants"]:  # the scratch copy holds another (broken-off) run
            continue
        judged = counts["mutants"] - counts["equivalent"]
        population = entry.get("population", counts["mutants"])
        entry.update(counts, score=score(counts))
        entry["interval"] = wilson(counts["killed"], judged, population - counts["equivalent"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", help="modules to mutate (default: all of stages/)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--sample",
        type=int,
        default=DEFAULT_SAMPLE,
        help=f"mutants a module runs at most, a seeded random sample (default {DEFAULT_SAMPLE};"
        " 0: all)",
    )
    parser.add_argument(
        "--recount",
        action="store_true",
        help="count the last runs again with tests/mutation_equivalents.toml, running nothing",
    )
    args = parser.parse_args(argv)
    modules = args.files or list(TESTS)
    unknown = [m for m in modules if m not in TESTS]
    if unknown:
        raise SystemExit(
            f"no test files are listed for {', '.join(unknown)}: add them to TESTS in "
            "bench/mutation.py"
        )
    entries = json.loads(RESULTS.read_text())["modules"] if RESULTS.exists() else {}
    if args.recount:
        recount(entries, modules)
        save(entries)
        print(render(entries))
        return
    report = [f"# Surviving mutants ({time.strftime('%Y-%m-%d %H:%M')})\n"]
    for module in modules:
        print(f"== {module} (tests: {', '.join(TESTS[module])})", flush=True)
        entry, survivors = run_module(module, args.workers, args.sample)
        entries[module] = entry
        print(
            f"   {entry['killed']}/{entry['mutants'] - entry['equivalent']} killed"
            f" ({entry['score']}%, {interval_text(entry)}), {entry['survived']} survived,"
            f" {entry['equivalent']} equivalent, {entry['mutants']} of {entry['population']}"
            f" mutants run, {entry['minutes']} min",
            flush=True,
        )
        report += [f"\n## {module}\n"] + [f"\n### {m}\n```diff\n{d}\n```\n" for m, d in survivors]
        save(entries)
        (WORK / "survivors.md").write_text("".join(report))
    print("\n" + render(entries))
    print(f"survivors' diffs: {WORK / 'survivors.md'}")


def rows() -> list[dict]:
    """The mutation score rows for `make bench`'s table, from the last `make mutation`."""
    from bench.common import row

    if not RESULTS.exists():
        return []
    data = json.loads(RESULTS.read_text())
    pure, every = data["pure_logic"], data["stages"]
    current = {m: e for m, e in data["modules"].items() if m in TESTS}  # not former paths
    dates = sorted({e["date"] for e in current.values()})
    when = f"make mutation {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else "")
    measured = f"{len(current)} of {len(TESTS)} modules"
    return [
        row(
            f"mutation score, pure-logic modules, % ({when})",
            pure["score"],
            f">= {TARGET_PURE:g}",
            pure["score"] >= TARGET_PURE,
        ),
        row(
            f"mutation score, stages/, % ({measured}, {when}; 95 % interval"
            f" {interval_text(every)})",
            every["score"],
            f">= {TARGET_ALL:g}",
            every["score"] >= TARGET_ALL and len(current) == len(TESTS),
        ),
    ]


def update_bench_results() -> None:
    """Put the mutation score rows into `make bench`'s results (bench/results.json, RESULTS.md)."""
    from bench.common import write_results

    path = ROOT / "bench" / "results.json"
    data = json.loads(path.read_text())
    kept = [r for r in data["results"] if "mutation score" not in r["figure"]]
    write_results(kept + rows(), {k: v for k, v in data.items() if k != "results"})


if __name__ == "__main__":
    main()
