"""The README's commands and CI's, timed on a fresh clone of the last commit, one after the
other, nothing else of this project running: the install (`make .venv/.dev` from the locks),
`make run` (the whole default pipeline), `make test-fast`, then every `make` line of `.ci/run`
in its order, with CI=true as CI runs them (`make lint`, `make test`, `make docs`, `make
test-docs`, `make bench-smoke`, the fast part of `make test-isa`). The tests' own durations
come from JUnit reports (PYTEST_ARGS), so the table also lists the slowest tests.

`python -m bench.quickstart` writes bench/QUICKSTART.md and bench/quickstart.json (the README
quotes them; a test holds the two to agree), and tests/durations.json, each test's seconds, from
which `make test-docs` deals the longest sections first to both workers. It takes over an hour
here, so no check runs it whole; `--only STEP,...` times some steps (after the install).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from bench.common import ROOT, machine

RESULTS = ROOT / "bench/quickstart.json"
REPORT = ROOT / "bench/QUICKSTART.md"
DURATIONS = ROOT / "tests/durations.json"  # each test's seconds: the order of the next runs
INSTALL = "install"
README_STEPS = {
    INSTALL: "make .venv/.dev",
    "make run": "make run",
    "make test-fast": "make test-fast",
}
# Targets, idle, on the project's 2-core machine: seconds.
TARGETS = {"make test": 600, "make test-fast": 180, "make test-docs": 720, ".ci/run": 2700}
PYTEST_TARGETS = ("make test", "make test-fast", "make test-docs")
SLOWEST = 25


def minutes_seconds(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60} min {whole % 60} s"


def tests_passed(output: str) -> int | None:
    """How many tests pytest's last summary line says passed."""
    found = re.findall(r"(\d+) passed", output)
    return int(found[-1]) if found else None


def ci_steps(script: str) -> list[str]:
    """The `make` commands of a CI script, in order (continued lines joined)."""
    lines = script.replace("\\\n", " ").splitlines()
    return [" ".join(line.split()) for line in lines if line.strip().startswith("make ")]


def step_name(command: str) -> str:
    """A step's name: its command without the assignments (`make test-isa ISA_TESTS=...`)."""
    return " ".join(word for word in shlex.split(command) if "=" not in word)


def junit_cases(path: Path) -> list[tuple[str, str, float]]:
    """(module path, test name, seconds) of each test of a JUnit report; none if it is missing."""
    if not path.exists():
        return []
    return [(case.get("classname", "").replace(".", "/"), case.get("name", ""),
             float(case.get("time", 0))) for case in ET.parse(path).iter("testcase")]  # fmt: skip


def slowest(reports: dict[str, Path], count: int = SLOWEST) -> list[dict]:
    """The `count` slowest tests of the JUnit reports {step: file}: step, test, seconds."""
    found = [
        {"step": step, "test": f"{module.rsplit('/', 1)[-1]}::{name}", "seconds": round(time, 1)}
        for step, path in reports.items()
        for module, name, time in junit_cases(path)
    ]
    return sorted(found, key=lambda t: -t["seconds"])[:count]


def durations(reports: dict[str, Path]) -> dict[str, float]:
    """{test id: seconds} of the tests of `make test` and `make test-docs` (every test once),
    set-up included: the order of the next docs runs (tests/conftest.py: Schedule)."""
    found = {
        f"{module}.py::{name}": round(time, 2)
        for step in ("make test", "make test-docs")
        if step in reports
        for module, name, time in junit_cases(reports[step])
    }
    return dict(sorted(found.items()))


def verdicts(steps: dict[str, dict], ci: list[str]) -> list[dict]:
    """Each target against its measured step; `.ci/run`: the install and CI's steps added."""
    ran = {INSTALL, *ci}
    measured = {name: step["seconds"] for name, step in steps.items()}
    if ran <= set(measured):
        measured[".ci/run"] = sum(measured[name] for name in ran)
    return [
        {
            "what": name,
            "seconds": round(measured[name], 1),
            "target": target,
            "holds": measured[name] <= target,
        }
        for name, target in TARGETS.items()
        if name in measured
    ]


def report(data: dict) -> str:
    rows = [
        f"| `{name}` | {minutes_seconds(step['seconds'])} |"
        + (f" {step['tests']} tests passed |" if step["tests"] else " |")
        for name, step in data["steps"].items()
    ]
    budget = [
        f"| `{v['what']}` | {minutes_seconds(v['seconds'])} | ≤ {minutes_seconds(v['target'])} |"
        f" {'yes' if v['holds'] else 'no'} |"
        for v in data["budget"]
    ]
    tests = [f"| {t['test']} | `{t['step']}` | {t['seconds']} |" for t in data["slowest"]]
    return (
        "# The README's commands and CI's on a fresh clone\n\n"
        f"{data['date']}, commit {data['commit']}, {data['machine']}; `python -m "
        "bench.quickstart`, one step after the other, nothing else of this project running.\n\n"
        "| step | time | |\n| --- | --- | --- |\n" + "\n".join(rows) + "\n\n"
        "## The time budget\n\n`.ci/run` is the install and its `make` steps added up"
        " (Chromium was installed already).\n\n"
        "| what | time | target | holds |\n| --- | --- | --- | --- |\n" + "\n".join(budget) + "\n\n"
        f"## The {len(tests)} slowest tests\n\nSeconds of each, set-up included, in the step"
        " that ran it (two workers share the step's wall time).\n\n"
        "| test | step | seconds |\n| --- | --- | --- |\n" + "\n".join(tests) + "\n"
    )


def run_step(command: str, clone: Path, junit: Path | None, ci: bool) -> tuple[float, str]:
    """Seconds a step took in the clone, and what it printed; a failing step ends the run."""
    args = shlex.split(command)
    if junit is not None:
        args.append(f"PYTEST_ARGS=--junitxml={junit}")
    env = {**os.environ, **({"CI": "true"} if ci else {})}
    started = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out:
        code = subprocess.run(args, cwd=clone, env=env, stdout=out, stderr=out).returncode
        out.seek(0)
        said = out.read()
    seconds = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{command} failed (exit {code}):\n{said[-3000:]}")
    return seconds, said


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="steps to time (comma-separated), no files")
    args = parser.parse_args(argv)
    ci = {step_name(command): command for command in ci_steps((ROOT / ".ci/run").read_text())}
    plan = {**README_STEPS, **ci}
    only = [name for name in args.only.split(",") if name]
    unknown = sorted(set(only) - set(plan))
    if unknown:
        raise SystemExit(f"--only: unknown {', '.join(unknown)}; choices: {', '.join(plan)}")
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    steps, reports = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        for name, command in plan.items():
            if only and name not in only and name != INSTALL:
                continue
            junit = Path(tmp) / f"{name.replace(' ', '_')}.xml" if name in PYTEST_TARGETS else None
            seconds, said = run_step(command, clone, junit, ci=name in ci)
            steps[name] = {"seconds": round(seconds, 1), "tests": tests_passed(said)}
            if junit is not None:
                reports[name] = junit
            print(f"{name}: {minutes_seconds(seconds)}", flush=True)
        data = {
            "date": time.strftime("%Y-%m-%d"),
            "commit": commit,
            "machine": machine(),
            "steps": steps,
            "budget": verdicts(steps, list(ci)),
            "slowest": slowest(reports),
        }
    print(report(data))
    if only:  # a part: shown, not written over the whole
        return
    RESULTS.write_text(json.dumps(data, indent=1) + "\n")
    DURATIONS.write_text(json.dumps(durations(reports), indent=0) + "\n")
    REPORT.write_text(report(data))
    print(f"wrote {REPORT}")


if __name__ == "__main__":
    main()
